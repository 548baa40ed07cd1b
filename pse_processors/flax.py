"""Flax/JAX: a ``FlaxLogitsProcessor`` that runs under Flax ``generate`` (traced or not) and ``jax.jit``.

Nothing here keeps Python state between calls. Each call recomputes every row's state from the
generated part of the padded buffer with ``lax.fori_loop`` over the device tables, then masks
the scores: the same pure function runs in Flax's Python debug loop, inside its
``lax.while_loop``, and under ``jax.jit(model.generate)``. The walk, the constructor and parsing
live in :mod:`pse_processors.runtime.in_graph` (shared with TensorFlow); this module gives its
tensor ops.
"""

from __future__ import annotations

from typing import Any, Callable, Union

import jax
import jax.numpy as jnp
import numpy as np
from jax import lax
from transformers import FlaxLogitsProcessor

from .errors import InvalidLogitsError
from .runtime.in_graph import InGraphProcessor


class _JaxOps:
    """The in-graph walk's tensor ops in JAX (see ``runtime.in_graph.GraphOps``).

    The masks are additive (0 or -inf) in the scores' dtype, made on first use per dtype: on a
    CPU, XLA gathers and selects over booleans several times slower than it adds floats."""

    constants = staticmethod(jax.ensure_compile_time_eval)  # concrete, so any trace can capture them
    constant = staticmethod(jnp.asarray)
    where = staticmethod(jnp.where)
    minimum = staticmethod(jnp.minimum)
    mask_key = staticmethod(jnp.dtype)

    @staticmethod
    def last(found: jax.Array) -> jax.Array:
        return jnp.max(jnp.where(found, jnp.arange(found.shape[1], dtype=jnp.int32), -1), axis=1)

    @staticmethod
    def int32(x: Any) -> jax.Array:
        return jnp.asarray(x).astype(jnp.int32)

    @staticmethod
    def gather(table: jax.Array, index: jax.Array) -> jax.Array:
        return table[index]

    @staticmethod
    def take(x: jax.Array, index: jax.Array, axis: int) -> jax.Array:
        return jnp.take(x, index, axis=axis, mode="clip")

    @staticmethod
    def pad(x: jax.Array, n: int) -> jax.Array:
        return jnp.pad(x, ((0, 0), (0, n)))

    @staticmethod
    def initial_states(ids: jax.Array, state: int) -> jax.Array:
        return jnp.full((ids.shape[0],), state, jnp.int32)

    @staticmethod
    def block(x: jax.Array, b: jax.Array, size: int) -> jax.Array:
        return lax.dynamic_slice_in_dim(x, b * size, size, axis=1)

    @staticmethod
    def loop(blocks: jax.Array, most: int, body: Callable, state: jax.Array) -> jax.Array:
        return lax.fori_loop(0, blocks, body, state)

    @staticmethod
    def masks(allowed: np.ndarray, dtype: Any) -> jax.Array:
        return jnp.asarray(np.where(allowed, np.float32(0), np.float32(-np.inf)), dtype=jnp.dtype(dtype))

    @staticmethod
    def apply(scores: jax.Array, mask: jax.Array) -> jax.Array:
        return scores + mask

    @staticmethod
    def jit(fn: Callable) -> Callable:
        return jax.jit(fn, static_argnums=(3,))


class FlaxPSELogitsProcessor(InGraphProcessor, FlaxLogitsProcessor):
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

    namespace = "flax"
    ops = _JaxOps()

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
        static_cur = None if isinstance(cur_len, jax.core.Tracer) else int(np.asarray(cur_len))
        prompt = self._prompt(None, int(input_ids.shape[1]), None, int(scores.shape[1]), static_cur)
        if any(isinstance(x, jax.core.Tracer) for x in (input_ids, scores, cur_len)):
            return self._apply(input_ids, scores, cur_len, prompt, traced=True)
        # Outside a trace (generate(trace=False), direct calls): one compiled function per shape.
        return self._apply(input_ids, scores, jnp.asarray(cur_len, jnp.int32), prompt, traced=False)
