"""MLX: a logits processor for mlx-lm's ``generate``, ``stream_generate``, ``generate_step``,
``batch_generate`` and ``BatchGenerator``.

This module only moves arrays; the grammar, its masks and the per-sequence state live in the
framework-free core, shared with the other frameworks.

mlx-lm calls ``processor(tokens, logits)`` with the 1-D prompt plus the generated tokens and
``[1, vocab]`` logits, one sequence at a time (``batch_generate`` shares one processor across
its rows), once more after the last token (a look-ahead step), and, with a draft model, at
speculative positions that may be rolled back. So the state is looked up by the token prefix,
never kept per call or per row index.

mlx is lazy: reading the scores inside the hook would force the forward pass to finish there.
So the hook only schedules the row's best masked score (``mx.async_eval``, which also starts the
forward pass early), and checks it for NaN / -inf at that row's next call, when it is long
computed: the error is raised one call later, before mlx-lm yields the token that was sampled
from the bad scores.
"""

from __future__ import annotations

import logging
import math
from collections import OrderedDict
from typing import Any, Iterable, Optional, Union

import mlx.core as mx
import numpy as np

from .constraints import Constraint
from .errors import InvalidLogitsError
from .grammar import CompiledGrammar
from .lru import SizedLRU
from .prefix_states import PrefixStates
from .results import parse_output
from .row_checks import bad_row_error, resolve_grammar

logger = logging.getLogger(__name__)

_CACHE_NAMESPACE = "mlx"
#: Upper bound of the memory held by one grammar's cached MLX masks (all dtypes and widths).
MLX_MASK_CACHE_BYTES = 256 << 20
#: Rows whose score check is still waiting for their next token (rolled-back drafts never get one).
_MAX_PENDING_CHECKS = 4096

_EOS_FORBIDDEN = "a logits processor or logit_bias before this one banned EOS"
_TOKEN_FORCED = "a logits processor or logit_bias before this one banned every token the constraint allows here"
_REMEDY = "Remove the conflicting processor or bias, or raise max_tokens."


def _unwrap_tokenizer(tokenizer: Any) -> tuple[Any, set[int]]:
    """mlx-lm's ``TokenizerWrapper`` -> (the Hugging Face tokenizer, its EOS ids)."""
    if type(tokenizer).__module__.startswith("mlx_lm") and hasattr(tokenizer, "_tokenizer"):
        return tokenizer._tokenizer, {int(i) for i in (getattr(tokenizer, "eos_token_ids", None) or ())}
    return tokenizer, set()


class MLXPSELogitsProcessor:
    r"""An mlx-lm logits processor that only lets the model produce text matching a constraint: a
    JSON Schema, a Pydantic model, a `Regex` or a `Choice`.

    Pass it in `logits_processors=[processor]` to `mlx_lm.generate`, `stream_generate`,
    `generate_step` or `batch_generate`, or per sequence to `BatchGenerator.insert`. Each
    sequence's state is derived from its token prefix, so one instance serves every row of a batch,
    speculative decoding with a draft model (rollbacks included) and repeated calls. After the
    structure is complete only EOS is allowed, so generation stops by itself.

    Args:
        constraint: a JSON Schema (`dict` or JSON `str`), a Pydantic model class, `Regex("...")`,
            `Choice([...])`, or a `CompiledGrammar`.
        tokenizer: mlx-lm's `TokenizerWrapper` (its EOS ids end the output), a Hugging Face
            tokenizer, or a `pse_processors.Vocabulary`.
        eos_token_ids: more ids that end the output.
        **compile_options: options of `pse_processors.compile` (`whitespace`, `max_recursion_depth`...).

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

    def __init__(
        self,
        constraint: Union[Constraint, CompiledGrammar],
        tokenizer: Any = None,
        *,
        eos_token_ids: Optional[Iterable[int]] = None,
        **compile_options: Any,
    ) -> None:
        hf_tokenizer, wrapper_eos = _unwrap_tokenizer(tokenizer)
        extra_eos = sorted(wrapper_eos | {int(i) for i in (eos_token_ids or ())}) or None
        self.grammar = resolve_grammar(
            "MLXPSELogitsProcessor", constraint, hf_tokenizer, eos_token_ids=extra_eos, compile_options=compile_options
        )
        self._prefix = PrefixStates(self.grammar)
        # (dtype, width) -> SizedLRU of additive masks by mask id, shared by every processor of
        # this grammar, beside the other frameworks' caches.
        self._contexts: dict = self.grammar.device_cache.setdefault(_CACHE_NAMESPACE, {})
        self._checked_widths: set[int] = set()
        # key of a row -> (its best masked score, lazy; its state): checked when the row's next token arrives.
        self._pending: "OrderedDict[bytes, tuple[mx.array, int]]" = OrderedDict()

    def reset(self) -> None:
        """Forget all tracked prefixes and pending checks: the next call starts a new generation.

        Needed only when a new prompt equals a sequence this processor saw plus exactly one token
        that the constraint allows there, which would otherwise look like a continuation."""
        self._prefix.reset()
        self._pending.clear()

    def __call__(self, tokens: mx.array, logits: mx.array) -> mx.array:
        if logits.ndim != 2 or tokens.ndim not in (1, 2) or (tokens.ndim == 2 and tokens.shape[0] != logits.shape[0]):
            raise InvalidLogitsError(
                f"expected tokens [length] (or [rows, length]) and logits [rows, vocab], got {tuple(tokens.shape)} "
                f"and {tuple(logits.shape)}"
            )
        if not mx.issubdtype(logits.dtype, mx.floating):
            raise InvalidLogitsError(f"logits must be a floating-point array, not {logits.dtype}")
        rows = np.asarray(tokens)  # waits for the last sampled token only
        if rows.ndim == 1:
            if logits.shape[0] != 1:
                raise InvalidLogitsError(f"1-D tokens go with [1, vocab] logits, got {tuple(logits.shape)}")
            rows = rows[None]
        context = (logits.dtype, logits.shape[-1])
        masks = self._contexts.get(context)
        if masks is None:
            masks = self._open_context(context)
        states, keys = self._prefix.states_and_keys(rows)
        if self._pending:
            self._check_parents(keys)
        mask_id = self.grammar.mask_id
        mask_ids = [mask_id(state) for state in states]
        first = mask_ids[0]
        if all(m == first for m in mask_ids):  # one allowed set: broadcast
            mask = self._mask(masks, first, states[0], context)
        else:
            mask = mx.stack([self._mask(masks, m, state, context) for m, state in zip(mask_ids, states)])
        processed = logits + mask
        best = processed.max(axis=-1)
        mx.async_eval(best)  # computed with this step, read at the row's next call
        pending = self._pending
        if len(keys) == 1:
            pending[keys[0]] = (best, states[0])
        else:
            for row, (key, state) in enumerate(zip(keys, states)):
                pending[key] = (best[row], state)
        while len(pending) > _MAX_PENDING_CHECKS:
            pending.popitem(last=False)
        return processed

    def _check_parents(self, keys: list[bytes]) -> None:
        """Raise if a row's last token was sampled from scores with no allowed, finite token."""
        pending = self._pending
        for row, key in enumerate(keys):
            found = pending.pop(key[:-8], None)
            if found is None:
                continue
            value = found[0].item()
            if value != value or value == -math.inf:
                pending.clear()
                raise bad_row_error(
                    self.grammar, row, value, found[1], eos_forbidden=_EOS_FORBIDDEN, token_forced=_TOKEN_FORCED,
                    remedy=_REMEDY,
                )

    def _open_context(self, context: tuple) -> SizedLRU:
        width = context[1]
        if width not in self._checked_widths:
            self.grammar.check_logits_width(width)
            self._checked_widths.add(width)
        return self._contexts.setdefault(context, SizedLRU(MLX_MASK_CACHE_BYTES, lambda a: a.nbytes))

    def _mask(self, masks: SizedLRU, mask_id: int, state: int, context: tuple) -> mx.array:
        """0 where ``state`` allows the token, -inf elsewhere; cached per dtype and width."""
        mask = masks.get(mask_id)
        if mask is not None:
            return mask
        dtype, width = context
        additive = np.where(self.grammar.allowed_mask(state, width), np.float32(0), np.float32(-np.inf))
        mask = mx.array(additive).astype(dtype)
        mx.eval(mask)  # cached once, not recomputed inside every step's graph
        masks.put(mask_id, mask)
        return mask

    def parse(self, output: Any, prompt_length: int = 0) -> Any:
        """Parse one generated output into a Python value (a dict, a Pydantic instance, or a string).

        Args:
            output: the text `mlx_lm.generate` returns, or token ids (an `mx.array` or a list; with
                the prompt in front, then pass `prompt_length`).
            prompt_length: how many leading ids are the prompt.

        Raises:
            InvalidOutputError: the output is incomplete or invalid.
        """
        if isinstance(output, mx.array):
            output = np.asarray(output)
        if not isinstance(output, (str, bytes)):
            output = np.asarray(output).reshape(-1)[prompt_length:]
        return parse_output(self.grammar, output)
