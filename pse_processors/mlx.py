"""MLX: a logits processor for mlx-lm's ``generate``, ``stream_generate``, ``generate_step``,
``batch_generate`` and ``BatchGenerator``.

This module only moves arrays: compiling, the per-sequence states, the choice of masks and
parsing live in :mod:`pse_processors.runtime.eager`, shared with PyTorch.

mlx-lm calls ``processor(tokens, logits)`` with the 1-D prompt plus the generated tokens and
``[1, vocab]`` logits, one sequence at a time (``batch_generate`` shares one processor across
its rows), once more after the last token (a look-ahead step), and, with a draft model, at
speculative positions that may be rolled back. So the state is looked up by the token prefix,
never kept per call or per row index.

mlx is lazy: reading the scores inside the hook would make it wait for the forward pass (and,
on a busy machine, for the scheduler). So the NaN / -inf check of a row is deferred to that
row's next call (:mod:`pse_processors.runtime.deferred_checks`): the error is raised one call
later, before mlx-lm yields that token; plain decoding never waits for mlx here.
"""

from __future__ import annotations

from typing import Any, Iterable, Optional, Union

import mlx.core as mx
import numpy as np

from .compiler.options import CompileOptions
from .constraints.spec import Constraint
from .errors import InvalidLogitsError
from .matchers import Matcher
from .runtime.deferred_checks import DeferredChecks
from .runtime.eager import EagerProcessor
from .runtime.row_checks import describe


def unwrap_tokenizer(tokenizer: Any) -> tuple[Any, set[int]]:
    """mlx-lm's ``TokenizerWrapper`` -> (the Hugging Face tokenizer, its EOS ids)."""
    if type(tokenizer).__module__.startswith("mlx_lm") and hasattr(tokenizer, "_tokenizer"):
        return tokenizer._tokenizer, {int(i) for i in (getattr(tokenizer, "eos_token_ids", None) or ())}
    return tokenizer, set()


class MLXPSELogitsProcessor(EagerProcessor):
    r"""An mlx-lm logits processor that only lets the model produce text matching a constraint: a
    JSON Schema, a Pydantic model, a `Regex` or a `Choice`.

    Pass it in `logits_processors=[processor]` to `mlx_lm.generate`, `stream_generate`,
    `generate_step` or `batch_generate`, or per sequence to `BatchGenerator.insert`. Each
    sequence's state is derived from its token prefix, so one instance serves every row of a batch,
    speculative decoding with a draft model (rollbacks included) and repeated calls. After the
    structure is complete only EOS is allowed, so generation stops by itself.

    Args:
        constraint: a JSON Schema (`dict` or JSON `str`), a Pydantic model class, `Regex("...")`,
            `Choice([...])`, or a compiled `Matcher`.
        tokenizer: mlx-lm's `TokenizerWrapper` (its EOS ids end the output), a Hugging Face
            tokenizer, or a `pse_processors.Vocabulary`.
        eos_token_ids: more ids that end the output.
        options: a `pse_processors.CompileOptions`.
        **compile_options: single options of `CompileOptions` by name (`whitespace`, `backend`...), over `options`.

    Raises (when called):
        InvalidLogitsError: the logits are not `[rows, vocab]` floats matching `tokens`, or they are
            NaN where the constraint allows tokens.
        VocabularyError: the logits are narrower than the tokenizer (another model's tokenizer).
        ConstraintConflictError: a processor before this one set every allowed token to -inf.

    Example:

    ```python
    >>> from mlx_lm import generate
    >>> from pse_processors.embedded import load_smollm2_mlx
    >>> from pse_processors.mlx import MLXPSELogitsProcessor
    >>> model, tokenizer = load_smollm2_mlx()  # doctest: +SKIP
    >>> schema = {"type": "object", "properties": {"name": {"type": "string", "maxLength": 20}}, "required": ["name"]}
    >>> processor = MLXPSELogitsProcessor(schema, tokenizer)  # doctest: +SKIP
    >>> messages = [{"role": "user", "content": "Extract a name from this text: John Smith is a developer."}]
    >>> prompt = tokenizer.apply_chat_template(messages, add_generation_prompt=True)  # doctest: +SKIP
    >>> text = generate(model, tokenizer, prompt, max_tokens=30, logits_processors=[processor])  # doctest: +SKIP
    >>> processor.parse(text)  # doctest: +SKIP
    {'name': 'John Smith'}

    ```
    """

    namespace = "mlx"

    def __init__(
        self,
        constraint: Union[Constraint, Matcher],
        tokenizer: Any = None,
        *,
        eos_token_ids: Optional[Iterable[int]] = None,
        options: Optional[CompileOptions] = None,
        **compile_options: Any,
    ) -> None:
        hf_tokenizer, wrapper_eos = unwrap_tokenizer(tokenizer)
        extra_eos = sorted(wrapper_eos | {int(i) for i in (eos_token_ids or ())}) or None
        super().__init__(
            "MLXPSELogitsProcessor", constraint, hf_tokenizer, options=options, option_kwargs=compile_options,
            eos_token_ids=extra_eos,
        )
        self._checks = DeferredChecks(self.matcher)

    def reset(self) -> None:
        """Forget all tracked prefixes and pending checks: the next call starts a new generation.

        Needed only when a new prompt equals a sequence this processor saw plus exactly one token
        that the constraint allows there, which would otherwise look like a continuation."""
        super().reset()
        self._checks.clear()

    def __call__(self, tokens: mx.array, logits: mx.array) -> mx.array:
        if not isinstance(logits, mx.array) or logits.ndim != 2:
            raise InvalidLogitsError(f"expected logits as an mx.array [rows, vocab], got {describe(logits)}")
        if not mx.issubdtype(logits.dtype, mx.floating):
            raise InvalidLogitsError(f"logits must be a floating-point array, not {logits.dtype}")
        rows = np.asarray(tokens)  # waits for the last sampled token only
        if rows.ndim == 1:
            rows = rows[None]
        if rows.ndim != 2 or rows.shape[0] != logits.shape[0] or not np.issubdtype(rows.dtype, np.integer):
            raise InvalidLogitsError(
                f"expected integer tokens [length] for logits [1, vocab] (or [rows, length] for [rows, vocab]), got "
                f"tokens {describe(tokens)} and logits {tuple(logits.shape)}"
            )
        context = (logits.dtype, logits.shape[-1])
        masks = self._masks(context, _nbytes)
        states, keys = self._prefix.states_and_keys(rows)
        self._checks.check(keys, states, rows, context[1])
        mask_ids = self._rows(states)
        if len(mask_ids) == 1:  # one allowed set: broadcast
            mask = self._mask(masks, mask_ids[0], states[0], context)
        else:
            mask = mx.stack([self._mask(masks, m, state, context) for m, state in zip(mask_ids, states)])
        processed = logits + mask
        self._checks.record(keys, states, processed.max(axis=-1))  # lazy: read only if a next token is suspect
        return processed

    def _device_mask(self, additive: np.ndarray, context: tuple) -> mx.array:
        mask = mx.array(additive).astype(context[0])
        mx.eval(mask)  # cached once, not recomputed inside every step's graph
        return mask

    def _host_ids(self, output: Any) -> Any:
        return np.asarray(output) if isinstance(output, mx.array) else output


def _nbytes(mask: mx.array) -> int:
    return mask.nbytes
