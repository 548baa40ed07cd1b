"""MLX: a logits processor for mlx-lm's ``generate``, ``stream_generate``, ``generate_step``,
``batch_generate`` and ``BatchGenerator``.

This module only moves arrays; the grammar, its masks and the per-sequence state live in the
framework-free core, shared with the other frameworks.

mlx-lm calls ``processor(tokens, logits)`` with the 1-D prompt plus the generated tokens and
``[1, vocab]`` logits, one sequence at a time (``batch_generate`` shares one processor across
its rows), once more after the last token (a look-ahead step), and, with a draft model, at
speculative positions that may be rolled back. So the state is looked up by the token prefix,
never kept per call or per row index.

mlx is lazy: reading the scores inside the hook would make it wait for the forward pass (and,
on a busy machine, for the scheduler). So the NaN / -inf check of a row is deferred to that
row's next call, and the scores are read only when the token sampled from them is suspect: one
the constraint rejects (a sample from masked scores with a finite allowed maximum never is), or
the first or last id, where mlx-lm's samplers land when every score is NaN or -inf. The error is
raised one call later, before mlx-lm yields that token; plain decoding never waits for mlx here.
"""

from __future__ import annotations

import logging
import math
from collections import OrderedDict
from typing import Any, Iterable, Optional, Union

import mlx.core as mx
import numpy as np

from .constraints.spec import Constraint
from .errors import InvalidLogitsError
from .matchers.automaton import CompiledGrammar
from .caching.lru import SizedLRU
from .runtime.device_cache import device_cache
from .runtime.prefix_states import PrefixStates
from .runtime.results import parse_output
from .runtime.row_checks import bad_row_error, resolve_grammar

logger = logging.getLogger(__name__)

_CACHE_NAMESPACE = "mlx"
#: Upper bound of the memory held by one grammar's cached MLX masks (all dtypes and widths).
MLX_MASK_CACHE_BYTES = 256 << 20
#: Rows whose score check is still waiting for their next token (rolled-back drafts never get one).
_MAX_PENDING_CHECKS = 4096

_EOS_FORBIDDEN = "a logits processor or logit_bias before this one banned EOS"
_TOKEN_FORCED = "a logits processor or logit_bias before this one banned every token the constraint allows here"
_REMEDY = "Remove the conflicting processor or bias, or raise max_tokens."


def _describe(array: Any) -> str:
    shape = getattr(array, "shape", None)
    return f"{type(array).__name__} of shape {tuple(shape)}" if shape is not None else type(array).__name__


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
        self._contexts: dict = device_cache(self.grammar, _CACHE_NAMESPACE)
        self._checked_widths: set[int] = set()
        # key of a row -> (its best masked score, lazy; its state): checked when the row's next token arrives.
        self._pending: "OrderedDict[bytes, tuple[mx.array, int]]" = OrderedDict()

    def __reduce__(self) -> tuple:
        # The recipe only (see pickling.py): an unpickled processor knows no prefixes and
        # builds its device masks on first use.
        from .compiler.recipes import rebuild

        return rebuild, (type(self), (self.grammar,), {})

    def reset(self) -> None:
        """Forget all tracked prefixes and pending checks: the next call starts a new generation.

        Needed only when a new prompt equals a sequence this processor saw plus exactly one token
        that the constraint allows there, which would otherwise look like a continuation."""
        self._prefix.reset()
        self._pending.clear()

    def __call__(self, tokens: mx.array, logits: mx.array) -> mx.array:
        if not isinstance(logits, mx.array) or logits.ndim != 2:
            raise InvalidLogitsError(f"expected logits as an mx.array [rows, vocab], got {_describe(logits)}")
        if not mx.issubdtype(logits.dtype, mx.floating):
            raise InvalidLogitsError(f"logits must be a floating-point array, not {logits.dtype}")
        rows = np.asarray(tokens)  # waits for the last sampled token only
        if rows.ndim == 1:
            rows = rows[None]
        if rows.ndim != 2 or rows.shape[0] != logits.shape[0] or not np.issubdtype(rows.dtype, np.integer):
            raise InvalidLogitsError(
                f"expected integer tokens [length] for logits [1, vocab] (or [rows, length] for [rows, vocab]), got "
                f"tokens {_describe(tokens)} and logits {tuple(logits.shape)}"
            )
        context = (logits.dtype, logits.shape[-1])
        masks = self._contexts.get(context)
        if masks is None:
            masks = self._open_context(context)
        states, keys = self._prefix.states_and_keys(rows)
        if self._pending:
            self._check_parents(keys, states, rows, context[1])
        mask_id = self.grammar.mask_id
        mask_ids = [mask_id(state) for state in states]
        first = mask_ids[0]
        if all(m == first for m in mask_ids):  # one allowed set: broadcast
            mask = self._mask(masks, first, states[0], context)
        else:
            mask = mx.stack([self._mask(masks, m, state, context) for m, state in zip(mask_ids, states)])
        processed = logits + mask
        best = processed.max(axis=-1)  # lazy: read only if the row's next token is suspect
        pending = self._pending
        if len(keys) == 1:
            pending[keys[0]] = (best, states[0])
        else:
            for row, (key, state) in enumerate(zip(keys, states)):
                pending[key] = (best[row], state)
        while len(pending) > _MAX_PENDING_CHECKS:
            pending.popitem(last=False)
        return processed

    def _check_parents(self, keys: list[bytes], states: list[int], rows: np.ndarray, width: int) -> None:
        """Raise if a row's last token was sampled from scores with no allowed, finite token."""
        pending, initial = self._pending, self.grammar.initial_state
        for row, key in enumerate(keys):
            found = pending.pop(key[:-8], None)
            if found is None:
                continue
            # A rejected token leaves the row in the initial state (see PrefixStates).
            token = int(rows[row, -1])
            if states[row] != initial and token != 0 and token != width - 1:
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
