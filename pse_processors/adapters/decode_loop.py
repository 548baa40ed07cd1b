"""The engine's own decode loop, for adapters that bring only ``mask_logits`` and ``sample_token``.

Each step calls the model on the whole sequence, masks the last position's logits to the tokens
that each row's state allows (the :class:`~pse_processors.Matcher` API), lets the adapter pick
the tokens, and advances the states. A row that has emitted EOS is padded.
"""

from __future__ import annotations

import logging
from typing import Any, Protocol

import numpy as np

from .. import defaults
from ..errors import InvalidOutputError
from ..matchers import Matcher

logger = logging.getLogger(__name__)


class LoopAdapter(Protocol):
    """What the loop asks of an adapter (:class:`~pse_processors.adapters.FrameworkAdapter` has it all)."""

    def to_framework(self, input_ids: np.ndarray) -> Any: ...
    def to_numpy(self, array: Any) -> np.ndarray: ...
    def mask_logits(self, logits: Any, mask_indices: tuple[np.ndarray, np.ndarray]) -> Any: ...
    def sample_token(self, logits: Any, temperature: float = 1.0) -> Any: ...


def decode(
    adapter: LoopAdapter,
    matcher: Matcher,
    model: Any,
    input_ids: np.ndarray,
    *,
    pad_token_id: int,
    max_new_tokens: int = defaults.MAX_NEW_TOKENS,
    temperature: float = 1.0,
    do_sample: bool = True,
) -> np.ndarray:
    """Generate up to ``max_new_tokens`` per row of ``input_ids`` (int64 ``[batch, length]``).

    Returns the prompt and the generated ids, int64 ``[batch, length + steps]``; a row that
    finished early is padded with ``pad_token_id`` after its EOS.

    Raises:
        InvalidOutputError: the adapter picked a token that its masked logits forbid, or an id
            outside them (negative, or past the width), or not integer ids (a bug in its
            ``mask_logits`` or ``sample_token``).
    """
    if not callable(model):
        raise TypeError(f"a custom adapter needs a callable model (input_ids -> logits), got {type(model).__name__}")
    eos = matcher.vocabulary.eos_token_ids
    temperature = float(temperature) if do_sample else 0.0
    ids = input_ids
    states = [matcher.initial_state_for(row) for row in ids.tolist()]  # a prompt may open a reasoning block
    finished = np.zeros(ids.shape[0], dtype=bool)
    for _ in range(int(max_new_tokens)):
        logits = _last_position(model(adapter.to_framework(ids)))
        width = int(logits.shape[-1])
        allowed = np.stack([matcher.allowed_mask(state, width) for state in states])
        masked = adapter.mask_logits(logits, np.nonzero(allowed))
        tokens = _sampled_ids(adapter.to_numpy(adapter.sample_token(masked, temperature=temperature)), ids.shape[0])
        for row, token in enumerate(tokens.tolist()):
            if finished[row]:
                tokens[row] = pad_token_id
                continue
            if not 0 <= token < width:  # numpy would read -1 as the last column: check before indexing
                raise InvalidOutputError(
                    f"row {row}: sample_token returned token id {token}, outside the logits' ids 0..{width - 1}; "
                    "it must return the index of a finite entry of each row"
                )
            if not allowed[row, token]:
                raise InvalidOutputError(
                    f"row {row}: the adapter picked token {token}, which the constraint forbids here; "
                    "mask_logits must set every entry outside mask_indices to -inf and sample_token must "
                    "only pick finite entries"
                )
            states[row] = matcher.advance(states[row], token)
            finished[row] = token in eos
        ids = np.concatenate([ids, tokens[:, None]], axis=1)
        if finished.all():
            break
    return ids


def _sampled_ids(sampled: Any, rows: int) -> np.ndarray:
    """What ``sample_token`` returned, as int64 ``[rows]``; InvalidOutputError if it is not one integer id per row."""
    array = np.asarray(sampled)
    if array.dtype.kind not in "iu":
        raise InvalidOutputError(f"sample_token must return integer token ids, got {array.dtype} values")
    tokens = array.astype(np.int64).reshape(-1)
    if tokens.shape[0] != rows:
        raise InvalidOutputError(f"sample_token returned {tokens.shape[0]} ids for {rows} rows")
    return tokens


def _last_position(output: Any) -> Any:
    """The ``[batch, vocab]`` logits of the last position."""
    logits = getattr(output, "logits", output)
    rank = len(logits.shape)
    if rank == 3:
        return logits[:, -1, :]
    if rank == 2:
        return logits
    raise InvalidOutputError(f"the model must return logits [batch, length, vocab] or [batch, vocab], got shape {tuple(logits.shape)}")
