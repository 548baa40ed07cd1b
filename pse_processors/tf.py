"""TensorFlow: a ``TFLogitsProcessor`` that runs eagerly and inside ``tf.function(jit_compile=True)``.

Nothing here keeps Python state between calls. Each call recomputes every row's state from the
generated part of the padded buffer with a ``tf.while_loop`` over the device tables of
:mod:`pse_processors.runtime.device_tables`, then masks the scores, so the same code runs in eager mode,
in a graph and under XLA, and beam reordering cannot mix states up.
"""

from __future__ import annotations

import logging
import math
from typing import Any, Iterable, Optional, Union

import numpy as np
import tensorflow as tf
from transformers import TFLogitsProcessor

from .constraints.spec import Constraint
from .runtime.device_cache import device_cache
from .runtime.device_tables import DEFAULT_MAX_TABLE_BYTES, DeviceTables, in_graph_constraint
from .errors import InvalidLogitsError
from .matchers.automaton import CompiledGrammar
from .runtime.results import parse_output

logger = logging.getLogger(__name__)

_CACHE_NAMESPACE = "tf"


#: Positions walked per loop iteration (unrolled): XLA's per-iteration overhead dominates otherwise.
_BLOCK = 8


class _TFTables:
    """One grammar's device tables as TensorFlow tensors (eager, so any graph can capture them)."""

    def __init__(self, tables: DeviceTables) -> None:
        with tf.init_scope():  # eager constants even when first built while tracing
            self.transitions = tf.constant(tables.transitions.reshape(-1))
            self.token_class = tf.constant(tables.token_class)
            self.mask_row = tf.constant(tables.mask_row)
            if tables.row_masks is not None:  # one row copy per sequence
                self.masks = tf.constant(tables.row_masks)
                self.mask_class = None
            else:  # [rows, classes], gathered through the token classes
                self.masks = tf.constant(np.unique(tables.allowed, axis=0))
                self.mask_class = tf.constant(tables.token_class[: tables.width])
        self.num_classes = tables.num_classes
        self.initial = tables.initial
        self.width = tables.width
        self.eager: Any = None  # the tf.function that eager calls go through, built on first use


def _states(tables: _TFTables, input_ids: tf.Tensor, cur_len: tf.Tensor, prompt_length: int) -> tf.Tensor:
    """int32 ``[batch]``: each row's state after ``input_ids[:, prompt_length:cur_len]``."""
    ids = tf.cast(input_ids, tf.int32)
    batch = tf.shape(ids)[0]
    length = ids.shape[1]
    width, num_classes = tables.width, tables.num_classes
    generated = ids[:, prompt_length:]
    generated = tf.where((generated < 0) | (generated >= width), width, generated)  # the never class
    classes = tf.gather(tables.token_class, generated)  # [batch, new], one gather for the whole buffer
    span = length - prompt_length
    padded = max(-(-span // _BLOCK), 1) * _BLOCK
    classes = tf.pad(classes, [[0, 0], [0, padded - span]])
    walked = tf.cast(cur_len, tf.int32) - prompt_length

    def block(b: tf.Tensor, state: tf.Tensor) -> tuple:
        chunk = classes[:, b * _BLOCK:(b + 1) * _BLOCK]
        for k in range(_BLOCK):
            nxt = tf.gather(tables.transitions, state * num_classes + chunk[:, k])
            state = tf.where(b * _BLOCK + k < walked, nxt, state)
        return b + 1, state

    blocks = tf.minimum((walked + _BLOCK - 1) // _BLOCK, padded // _BLOCK)
    _, states = tf.while_loop(
        lambda b, _: b < blocks, block, (tf.constant(0, tf.int32), tf.fill([batch], tf.constant(tables.initial, tf.int32))),
        maximum_iterations=padded // _BLOCK,
    )
    return states


def _apply(tables: _TFTables, input_ids: tf.Tensor, scores: tf.Tensor, cur_len: tf.Tensor, prompt_length: int) -> tf.Tensor:
    rows = tf.gather(tables.mask_row, _states(tables, input_ids, cur_len, prompt_length))
    if tables.mask_class is None:
        mask = tf.gather(tables.masks, rows)  # [batch, width]
    else:
        mask = tf.gather(tf.gather(tables.masks, rows), tables.mask_class, axis=1)  # [batch, classes] -> [batch, width]
    return tf.where(mask, scores, tf.constant(-math.inf, dtype=scores.dtype))


class TFPSELogitsProcessor(TFLogitsProcessor):
    r"""[`TFLogitsProcessor`] that only lets a TensorFlow model produce text matching a constraint: a JSON
    Schema, a Pydantic model, a `Regex` or a `Choice`. It works in eager mode and inside
    `tf.function(..., jit_compile=True)`.

    TensorFlow's `generate` hands the processor the whole buffer, padded to `max_length`. The processor
    recomputes each row's state from the generated part on every call, in the graph, so it needs to know
    where the prompt ends: pass the `max_new_tokens` you give `generate` (or `prompt_length`). Rows are
    independent, so greedy search, sampling, beam search (rows are beams) and left-padded batches all
    work. After the structure is complete only EOS is allowed; padding after EOS is accepted.

    Args:
        constraint: a JSON Schema (`dict` or JSON `str`), a Pydantic model class, `Regex("...")`,
            `Choice([...])`, or a `CompiledGrammar`.
        tokenizer: the model's tokenizer (or a `pse_processors.Vocabulary`).
        max_new_tokens: the `max_new_tokens` passed to `generate` (the prompt is the buffer width minus
            this). Taken from `generation_config.max_new_tokens` when not given.
        prompt_length: the prompt's width instead, when the buffer width is not prompt + `max_new_tokens`.
        generation_config: the model's `GenerationConfig`; its `eos_token_id`s also end the output.
        eos_token_ids: more ids that end the output.
        max_table_bytes: refuse constraints whose device tables need more memory
            (`CompileLimitError`); see `pse_processors.runtime.device_tables`.
        **compile_options: options of `pse_processors.compile` (`whitespace`, `max_recursion_depth`...).

    Examples:

    ```python
    >>> import tensorflow as tf
    >>> from transformers import GPT2Config, PreTrainedTokenizerFast, TFGPT2LMHeadModel, TFLogitsProcessorList
    >>> from pse_processors import TFPSELogitsProcessor
    >>> from pse_processors.embedded import smollm2_dir
    >>> tokenizer = PreTrainedTokenizerFast.from_pretrained(smollm2_dir())
    >>> tf.keras.utils.set_random_seed(0)
    >>> model = TFGPT2LMHeadModel(GPT2Config(vocab_size=len(tokenizer), n_embd=32, n_layer=1, n_head=2))
    >>> schema = {"type": "object", "properties": {"ok": {"type": "boolean"}}, "required": ["ok"]}
    >>> processor = TFPSELogitsProcessor(schema, tokenizer, max_new_tokens=12)
    >>> inputs = tokenizer(["JSON:"], return_tensors="tf")
    >>> generate = tf.function(model.generate, jit_compile=True)
    >>> out = generate(**inputs, logits_processor=TFLogitsProcessorList([processor]), max_new_tokens=12,
    ...                do_sample=False, eos_token_id=tokenizer.eos_token_id, pad_token_id=0)
    >>> processor.parse(out[0], prompt_length=inputs["input_ids"].shape[1])
    {'ok': False}

    ```
    """

    def __init__(
        self,
        constraint: Union[Constraint, CompiledGrammar],
        tokenizer: Any = None,
        *,
        max_new_tokens: Optional[int] = None,
        prompt_length: Optional[int] = None,
        generation_config: Any = None,
        eos_token_ids: Optional[Iterable[int]] = None,
        max_table_bytes: int = DEFAULT_MAX_TABLE_BYTES,
        **compile_options: Any,
    ) -> None:
        self._core = in_graph_constraint(
            "TFPSELogitsProcessor", constraint, tokenizer, max_new_tokens=max_new_tokens, prompt_length=prompt_length,
            generation_config=generation_config, eos_token_ids=eos_token_ids, max_table_bytes=max_table_bytes,
            compile_options=compile_options,
        )
        grammar = self.grammar = self._core.grammar
        self._tables_by_width: dict = device_cache(grammar, _CACHE_NAMESPACE)

    def __reduce__(self) -> tuple:
        # The recipe only (see pickling.py): the device tables are rebuilt on first use.
        from .compiler.recipes import reduce_in_graph_processor

        return reduce_in_graph_processor(self)

    def _tables(self, width: int) -> _TFTables:
        tables = self._tables_by_width.get(width)
        if tables is None:
            tables = self._tables_by_width.setdefault(width, _TFTables(self._core.tables(width)))
        return tables

    def __call__(self, input_ids: tf.Tensor, scores: tf.Tensor, cur_len: Union[int, tf.Tensor]) -> tf.Tensor:
        input_ids = tf.convert_to_tensor(input_ids)
        scores = tf.convert_to_tensor(scores)
        if input_ids.shape.rank != 2 or scores.shape.rank != 2:
            raise InvalidLogitsError(
                f"expected input_ids [batch, max_length] and scores [batch, vocab], got {input_ids.shape} and {scores.shape}"
            )
        if not scores.dtype.is_floating:
            raise InvalidLogitsError(f"scores must be floating-point, not {scores.dtype.name}")
        if not input_ids.dtype.is_integer:
            raise InvalidLogitsError(f"input_ids must be integers, not {input_ids.dtype.name}")
        batch, length = input_ids.shape
        width = scores.shape[1]
        if width is None or length is None:
            raise InvalidLogitsError("the buffer width and the vocabulary width must be static")
        if batch is not None and scores.shape[0] is not None and batch != scores.shape[0]:
            raise InvalidLogitsError(f"input_ids has {batch} rows but scores has {scores.shape[0]}")
        prompt = self._core.prompt_length_for(length)
        if isinstance(cur_len, (int, np.integer)) and not prompt <= cur_len <= length:
            raise InvalidLogitsError(
                f"cur_len={cur_len} lies before the prompt's end ({prompt}) or past the buffer ({length}): "
                "pass the processor the same max_new_tokens as generate"
            )
        tables = self._tables(width)
        cur = tf.convert_to_tensor(cur_len, dtype=tf.int32)
        if tf.executing_eagerly():
            return _eager_apply(tables, input_ids, scores, cur, prompt)
        return _apply(tables, input_ids, scores, cur, prompt)

    def parse(self, output: Any, prompt_length: int = 0) -> Any:
        """Parse one generated row into a Python value (a dict, a Pydantic instance, or a string).

        Args:
            output: a 1-D tensor/array/list of token ids as returned by `generate` (prompt included,
                then pass `prompt_length`), or the generated text.
            prompt_length: how many leading ids are the (padded) prompt.

        Raises:
            InvalidOutputError: the output is incomplete or invalid.
        """
        if not isinstance(output, (str, bytes)):
            output = np.asarray(output).reshape(-1)[prompt_length:]
        return parse_output(self.grammar, output)


def _eager_apply(tables: _TFTables, input_ids: tf.Tensor, scores: tf.Tensor, cur: tf.Tensor, prompt: int) -> tf.Tensor:
    """Eager calls run the same graph, traced once per shape (an eager while_loop costs ~0.1 ms a token)."""
    if tables.eager is None:
        tables.eager = tf.function(lambda ids, sc, c, p: _apply(tables, ids, sc, c, p))
    return tables.eager(input_ids, scores, cur, prompt)
