"""Flax/JAX: a ``FlaxLogitsProcessor`` that runs under Flax ``generate`` (traced or not) and ``jax.jit``.

Nothing here keeps Python state between calls. Each call recomputes every row's state from the
generated part of the padded buffer with ``lax.fori_loop`` over the device tables of
:mod:`pse_processors.runtime.device_tables`, then masks the scores: the same pure function runs in
Flax's Python debug loop, inside its ``lax.while_loop``, and under ``jax.jit(model.generate)``.
"""

from __future__ import annotations

import functools
import logging
from typing import Any, Iterable, Optional, Union

import jax
import jax.numpy as jnp
import numpy as np
from jax import lax
from transformers import FlaxLogitsProcessor

from .constraints.spec import Constraint
from .runtime.device_cache import device_cache
from .runtime.device_tables import DEFAULT_MAX_TABLE_BYTES, DeviceTables, in_graph_constraint
from .errors import InvalidLogitsError
from .matchers.automaton import CompiledGrammar
from .runtime.results import parse_output

logger = logging.getLogger(__name__)

_CACHE_NAMESPACE = "flax"


#: Positions walked per loop iteration (unrolled): XLA's per-iteration overhead dominates otherwise.
_BLOCK = 8


class _JaxTables:
    """One grammar's device tables as JAX arrays (concrete, so any trace can capture them).

    The masks are additive (0 or -inf) in the scores' dtype, made on first use per dtype: on a
    CPU, XLA gathers and selects over booleans several times slower than it adds floats."""

    def __init__(self, tables: DeviceTables) -> None:
        with jax.ensure_compile_time_eval():
            self.transitions = jnp.asarray(tables.transitions.reshape(-1))
            self.token_class = jnp.asarray(tables.token_class)
            self.mask_row = jnp.asarray(tables.mask_row)
            # Dense [rows, width] masks when they fit, else [rows, classes] gathered through the classes.
            self.mask_class = None if tables.row_masks is not None else jnp.asarray(tables.token_class[: tables.width])
        self._allowed = tables.row_masks if tables.row_masks is not None else np.unique(tables.allowed, axis=0)
        self._additive: dict = {}
        self.num_classes = tables.num_classes
        self.initial = tables.initial
        self.width = tables.width
        self.eager: Any = None  # jax.jit of _apply for calls outside a trace, built on first use

    def additive(self, dtype: Any) -> jax.Array:
        key = jnp.dtype(dtype)
        masks = self._additive.get(key)
        if masks is None:
            with jax.ensure_compile_time_eval():
                masks = jnp.asarray(np.where(self._allowed, 0.0, -np.inf), dtype=key)
            masks = self._additive.setdefault(key, masks)
        return masks


def _apply(tables: _JaxTables, input_ids: jax.Array, scores: jax.Array, cur_len: Any, prompt_length: int) -> jax.Array:
    """Mask ``scores`` by each row's state after ``input_ids[:, prompt_length:cur_len]``."""
    ids = jnp.asarray(input_ids).astype(jnp.int32)
    batch, length = ids.shape
    width, num_classes = tables.width, tables.num_classes
    generated = ids[:, prompt_length:]
    generated = jnp.where((generated < 0) | (generated >= width), width, generated)  # the never class
    classes = tables.token_class[generated]  # [batch, new], one gather for the whole buffer
    span = length - prompt_length
    padded = max(-(-span // _BLOCK), 1) * _BLOCK
    classes = jnp.pad(classes, ((0, 0), (0, padded - span)))
    walked = jnp.asarray(cur_len, jnp.int32) - prompt_length

    def block(b: jax.Array, state: jax.Array) -> jax.Array:
        chunk = lax.dynamic_slice_in_dim(classes, b * _BLOCK, _BLOCK, axis=1)
        for k in range(_BLOCK):
            nxt = tables.transitions[state * num_classes + chunk[:, k]]
            state = jnp.where(b * _BLOCK + k < walked, nxt, state)
        return state

    blocks = jnp.minimum((walked + _BLOCK - 1) // _BLOCK, padded // _BLOCK)
    states = lax.fori_loop(0, blocks, block, jnp.full((batch,), tables.initial, jnp.int32))
    rows = tables.mask_row[states]
    masks = tables.additive(scores.dtype)
    if tables.mask_class is None:
        mask = jnp.take(masks, rows, axis=0, mode="clip")  # [batch, width]
    else:  # [batch, classes] -> [batch, width]
        mask = jnp.take(jnp.take(masks, rows, axis=0, mode="clip"), tables.mask_class, axis=1, mode="clip")
    return scores + mask


class FlaxPSELogitsProcessor(FlaxLogitsProcessor):
    r"""[`FlaxLogitsProcessor`] that only lets a Flax model produce text matching a constraint: a JSON Schema,
    a Pydantic model, a `Regex` or a `Choice`. It works in `generate(..., trace=True)` (the default),
    `trace=False`, and under `jax.jit(model.generate)`.

    Flax's `generate` hands the processor the whole buffer, padded to prompt + `max_new_tokens`. The processor
    recomputes each row's state from the generated part on every call, in the trace, so it needs to know where
    the prompt ends: pass the `max_new_tokens` you give `generate` (or `prompt_length`). Rows are
    independent, so greedy search, sampling, beam search (rows are beams) and left-padded batches all work.
    After the structure is complete only EOS is allowed; padding after EOS is accepted.

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
    >>> import jax
    >>> from transformers import FlaxGPT2LMHeadModel, GPT2Config, PreTrainedTokenizerFast
    >>> from pse_processors import FlaxPSELogitsProcessor
    >>> from pse_processors.embedded import smollm2_dir
    >>> tokenizer = PreTrainedTokenizerFast.from_pretrained(smollm2_dir())
    >>> model = FlaxGPT2LMHeadModel(GPT2Config(vocab_size=len(tokenizer), n_embd=32, n_layer=1, n_head=2), seed=0)
    >>> processor = FlaxPSELogitsProcessor({"enum": ["red", "green"]}, tokenizer, max_new_tokens=8)
    >>> inputs = tokenizer(["Color:"], return_tensors="np")
    >>> generate = jax.jit(lambda ids: model.generate(ids, logits_processor=[processor], max_new_tokens=8,
    ...                    eos_token_id=tokenizer.eos_token_id, pad_token_id=0))
    >>> out = generate(inputs["input_ids"]).sequences
    >>> processor.parse(out[0], prompt_length=inputs["input_ids"].shape[1]) in ("red", "green")
    True

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
            "FlaxPSELogitsProcessor", constraint, tokenizer, max_new_tokens=max_new_tokens, prompt_length=prompt_length,
            generation_config=generation_config, eos_token_ids=eos_token_ids, max_table_bytes=max_table_bytes,
            compile_options=compile_options,
        )
        grammar = self.grammar = self._core.grammar
        self._tables_by_width: dict = device_cache(grammar, _CACHE_NAMESPACE)

    def __reduce__(self) -> tuple:
        # The recipe only (see pickling.py): the device tables are rebuilt on first use.
        from .compiler.recipes import reduce_in_graph_processor

        return reduce_in_graph_processor(self)

    def _tables(self, width: int) -> _JaxTables:
        tables = self._tables_by_width.get(width)
        if tables is None:
            tables = self._tables_by_width.setdefault(width, _JaxTables(self._core.tables(width)))
        return tables

    def __call__(self, input_ids: jax.Array, scores: jax.Array, cur_len: Union[int, jax.Array]) -> jax.Array:
        if np.ndim(input_ids) != 2 or np.ndim(scores) != 2:
            raise InvalidLogitsError(
                f"expected input_ids [batch, max_length] and scores [batch, vocab], got shapes "
                f"{np.shape(input_ids)} and {np.shape(scores)}"
            )
        if input_ids.shape[0] != scores.shape[0]:
            raise InvalidLogitsError(f"input_ids has {input_ids.shape[0]} rows but scores has {scores.shape[0]}")
        if not jnp.issubdtype(scores.dtype, jnp.floating):
            raise InvalidLogitsError(f"scores must be floating-point, not {scores.dtype}")
        if not jnp.issubdtype(input_ids.dtype, jnp.integer):
            raise InvalidLogitsError(f"input_ids must be integers, not {input_ids.dtype}")
        length, width = int(input_ids.shape[1]), int(scores.shape[1])
        prompt = self._core.prompt_length_for(length)
        if not isinstance(cur_len, jax.core.Tracer):
            current = int(np.asarray(cur_len))
            if not prompt <= current <= length:
                raise InvalidLogitsError(
                    f"cur_len={current} lies before the prompt's end ({prompt}) or past the buffer ({length}): "
                    "pass the processor the same max_new_tokens as generate"
                )
        tables = self._tables(width)
        if any(isinstance(x, jax.core.Tracer) for x in (input_ids, scores, cur_len)):
            return _apply(tables, input_ids, scores, cur_len, prompt)
        # Outside a trace (generate(trace=False), direct calls): one compiled function per shape.
        if tables.eager is None:
            tables.eager = jax.jit(functools.partial(_apply, tables), static_argnums=(3,))
        return tables.eager(input_ids, scores, jnp.asarray(cur_len, jnp.int32), prompt)

    def parse(self, output: Any, prompt_length: int = 0) -> Any:
        """Parse one generated row into a Python value (a dict, a Pydantic instance, or a string).

        Args:
            output: a 1-D array/list of token ids as returned by `generate(...).sequences` (prompt
                included, then pass `prompt_length`), or the generated text.
            prompt_length: how many leading ids are the (padded) prompt.

        Raises:
            InvalidOutputError: the output is incomplete or invalid.
        """
        if not isinstance(output, (str, bytes)):
            output = np.asarray(output).reshape(-1)[prompt_length:]
        return parse_output(self.grammar, output)
