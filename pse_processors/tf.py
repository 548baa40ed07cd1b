"""TensorFlow: a ``TFLogitsProcessor`` that runs eagerly and inside ``tf.function(jit_compile=True)``.

Nothing here keeps Python state between calls. Each call recomputes every row's state from the
generated part of the padded buffer with a ``tf.while_loop`` over the device tables, then masks
the scores, so the same code runs in eager mode, in a graph and under XLA, and beam reordering
cannot mix states up. The walk, the constructor and parsing live in
:mod:`pse_processors.runtime.in_graph` (shared with Flax); this module gives its tensor ops.
"""

from __future__ import annotations

import math
from typing import Any, Callable, Union

import numpy as np
import tensorflow as tf
from transformers import TFLogitsProcessor

from .errors import InvalidLogitsError
from .runtime.in_graph import InGraphProcessor


class _TFOps:
    """The in-graph walk's tensor ops in TensorFlow (see ``runtime.in_graph.GraphOps``)."""

    constants = staticmethod(tf.init_scope)  # eager constants even when first built while tracing
    constant = staticmethod(tf.constant)
    where = staticmethod(tf.where)
    minimum = staticmethod(tf.minimum)
    gather = staticmethod(tf.gather)

    @staticmethod
    def last(found: tf.Tensor) -> tf.Tensor:
        return tf.reduce_max(tf.where(found, tf.range(tf.shape(found)[1]), -1), axis=1)

    @staticmethod
    def int32(x: Any) -> tf.Tensor:
        return tf.cast(x, tf.int32)

    @staticmethod
    def take(x: tf.Tensor, index: tf.Tensor, axis: int) -> tf.Tensor:
        return tf.gather(x, index, axis=axis)

    @staticmethod
    def pad(x: tf.Tensor, n: int) -> tf.Tensor:
        return tf.pad(x, [[0, 0], [0, n]])

    @staticmethod
    def initial_states(ids: tf.Tensor, state: int) -> tf.Tensor:
        return tf.fill([tf.shape(ids)[0]], tf.constant(state, tf.int32))

    @staticmethod
    def block(x: tf.Tensor, b: tf.Tensor, size: int) -> tf.Tensor:
        return x[:, b * size:(b + 1) * size]

    @staticmethod
    def loop(blocks: tf.Tensor, most: int, body: Callable, state: tf.Tensor) -> tf.Tensor:
        _, states = tf.while_loop(
            lambda b, _: b < blocks, lambda b, s: (b + 1, body(b, s)), (tf.constant(0, tf.int32), state),
            maximum_iterations=most,
        )
        return states

    @staticmethod
    def mask_key(dtype: Any) -> None:
        return None  # boolean masks serve every dtype

    @staticmethod
    def masks(allowed: np.ndarray, dtype: Any) -> tf.Tensor:
        return tf.constant(allowed)

    @staticmethod
    def apply(scores: tf.Tensor, mask: tf.Tensor) -> tf.Tensor:
        return tf.where(mask, scores, tf.constant(-math.inf, dtype=scores.dtype))

    @staticmethod
    def jit(fn: Callable) -> Callable:
        # Eager calls run the same graph, traced once per shape (an eager while_loop costs ~0.1 ms a token).
        return tf.function(fn)


class TFPSELogitsProcessor(InGraphProcessor, TFLogitsProcessor):
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
            `Choice([...])`, structure in free text (`Reasoning`, `Delimited`, `Tools`: one automaton
            with the markers, the prompt read for an opened or closed reasoning block, a thinking
            budget counted in the graph; a `Grammar` inside is refused), or a compiled `Matcher`
            (on the byte automaton).
        tokenizer: the model's tokenizer (or a `pse_processors.Vocabulary`).
        max_new_tokens: the `max_new_tokens` passed to `generate` (the prompt is the buffer width minus
            this). Taken from `generation_config.max_new_tokens` when not given.
        prompt_length: the prompt's width instead, when the buffer width is not prompt + `max_new_tokens`.
        generation_config: the model's `GenerationConfig`; its `eos_token_id`s also end the output.
        eos_token_ids: more ids that end the output.
        max_table_bytes: refuse constraints whose device tables need more memory
            (`CompileLimitError`); see `pse_processors.runtime.device_tables`.
        options: a `pse_processors.CompileOptions` (its back end must be the byte automaton, `"dfa"`).
        **compile_options: single options of `CompileOptions` by name (`whitespace`...), over `options`.

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

    namespace = "tf"
    ops = _TFOps()

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
        static_cur = int(cur_len) if isinstance(cur_len, (int, np.integer)) else None
        prompt = self._prompt(input_ids.shape[0], input_ids.shape[1], scores.shape[0], scores.shape[1], static_cur)
        cur = tf.convert_to_tensor(cur_len, dtype=tf.int32)
        return self._apply(input_ids, scores, cur, prompt, traced=not tf.executing_eagerly())
