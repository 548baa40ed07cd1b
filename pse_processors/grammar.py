"""The compiled grammar: dense state tables with token classes, plus cached masks.

States are dense ints ``0..num_states-1``, plus two of ours:

- :data:`DONE`, reached by EOS from an accepting state; it allows only EOS.
- :data:`DEAD`, where :meth:`CompiledGrammar.walk` ends after a token the constraint
  rejects; it allows only EOS.
"""

from __future__ import annotations

from typing import Any, Iterable, Optional

import numpy as np

from .constraints import ConstraintSpec
from .lru import SizedLRU
from .tables import GrammarTables
from .vocabulary import Vocabulary

DONE = -1
DEAD = -2

_MASK_CACHE_BYTES = 64 << 20


class CompiledGrammar:
    """A constraint compiled against one vocabulary. Build it with :func:`pse_processors.compile`.

    The matcher API works on plain ints and numpy arrays, independent of any ML framework.

    Example:
        >>> import pse_processors as pse
        >>> vocab = pse.Vocabulary([b"a", b"b", b"ab", None], eos_token_ids=[3])
        >>> grammar = pse.compile(pse.Regex("ab?"), vocab)
        >>> state = grammar.advance(grammar.initial_state, 0)
        >>> sorted(grammar.allowed_token_ids(state).tolist()), grammar.is_accepting(state)
        ([1, 3], True)
        >>> grammar.accepts([2, 3]), grammar.accepts([1])
        (True, False)
    """

    def __init__(self, tables: GrammarTables, vocabulary: Vocabulary, spec: ConstraintSpec) -> None:
        self.tables = tables
        self.vocabulary = vocabulary
        self.spec = spec
        self.initial_state: int = tables.initial
        self._token_class = tables.token_class
        self._transitions = tables.transitions
        self._accepting = tables.accepting
        self._eos = np.array(sorted(vocabulary.eos_token_ids), dtype=np.int64)
        self._eos_set = vocabulary.eos_token_ids
        self._masks = SizedLRU(_MASK_CACHE_BYTES, lambda mask: mask.nbytes)
        # Many states allow the same tokens (every position inside a string, say): masks are
        # cached per distinct allowed set, not per state.
        signature = np.concatenate([self._transitions >= 0, self._accepting[:, None]], axis=1)
        _, mask_ids = np.unique(signature, axis=0, return_inverse=True)
        self._mask_id_list: list[int] = mask_ids.reshape(-1).tolist()
        self.num_masks = max(self._mask_id_list, default=-1) + 1
        # Pure-Python views for the per-token hot path: on the cold caches that a forward pass
        # leaves behind, numpy scalar indexing costs microseconds per call, list indexing not.
        self._token_class_list: list[int] = self._token_class.tolist()
        self._accepting_list: list[bool] = self._accepting.tolist()
        self._rows: dict[int, list[int]] = {}
        #: Per-framework device caches, keyed by framework name; shared by every processor
        #: built on this grammar.
        self.device_cache: dict[Any, Any] = {}

    @property
    def vocab_size(self) -> int:
        return self.vocabulary.size

    @property
    def num_states(self) -> int:
        return self.tables.num_states

    def __repr__(self) -> str:
        return (
            f"CompiledGrammar({self.spec.kind}, {self.num_states} states, {self.tables.num_classes} token classes, "
            f"vocab {self.vocab_size})"
        )

    def is_accepting(self, state: int) -> bool:
        """True when the text so far is complete: EOS is allowed."""
        return state == DONE or (state >= 0 and bool(self._accepting[state]))

    def mask_id(self, state: int) -> int:
        """Id of the allowed-token set of ``state``: states with equal sets share it.

        ``DONE`` and ``DEAD`` (EOS only) share the id ``num_masks``."""
        return self._mask_id_list[state] if state >= 0 else self.num_masks

    def allowed_mask(self, state: int, width: Optional[int] = None) -> np.ndarray:
        """Allowed tokens as a read-only bool array of ``width`` (default: vocab size).

        Ids past the vocabulary are False; EOS ids are True in accepting states.
        """
        width = self.vocab_size if width is None else width
        key = (self.mask_id(state), width)
        mask = self._masks.get(key)
        if mask is not None:
            return mask
        mask = np.zeros(width, dtype=bool)
        n = min(width, self.vocab_size)
        if state >= 0:
            mask[:n] = (self._transitions[state] >= 0)[self._token_class[:n]]
        if self.is_accepting(state) or state == DEAD:
            mask[self._eos[self._eos < width]] = True
        mask.setflags(write=False)
        self._masks.put(key, mask)
        return mask

    def allowed_token_ids(self, state: int) -> np.ndarray:
        """Sorted ids allowed in ``state`` (EOS ids included when accepting)."""
        return np.flatnonzero(self.allowed_mask(state))

    def bitmask(self, state: int) -> np.ndarray:
        """Allowed tokens as a packed little-endian int32 bitmask of ``ceil(vocab/32)`` words."""
        words = (self.vocab_size + 31) // 32
        return np.packbits(self.allowed_mask(state, words * 32), bitorder="little").view(np.int32)

    def advance(self, state: int, token_id: int) -> Optional[int]:
        """The state after ``token_id``, or ``None`` if the constraint rejects it."""
        if state == DONE:
            return DONE if token_id in self._eos_set else None
        return self.step(state, int(token_id))

    def step(self, state: int, token_id: int) -> Optional[int]:
        """The hot-path :meth:`advance` for a live state (>= 0) or ``DONE`` and a Python int.

        ``DONE`` stays ``DONE`` whatever the token (generate pads finished rows).
        """
        if state < 0:
            return DONE if state == DONE else None
        if token_id in self._eos_set:
            return DONE if self._accepting_list[state] else None
        if not 0 <= token_id < self.vocab_size:
            return None
        row = self._rows.get(state)
        if row is None:
            row = self._rows[state] = self._transitions[state].tolist()
        nxt = row[self._token_class_list[token_id]]
        return nxt if nxt >= 0 else None

    def accepts(self, token_ids: Iterable[int]) -> bool:
        """True when ``token_ids`` (optionally ending in EOS) is a complete, valid output."""
        state: Optional[int] = self.initial_state
        for token in token_ids:
            state = self.advance(state, token)  # type: ignore[arg-type]
            if state is None:
                return False
        return self.is_accepting(state)  # type: ignore[arg-type]

    def walk(self, token_ids: Iterable[int], state: Optional[int] = None) -> int:
        """Advance through ``token_ids`` from ``state`` (default: initial); a rejection gives :data:`DEAD`."""
        current = self.initial_state if state is None else state
        for token in token_ids:
            nxt = self.step(current, int(token))  # step keeps DONE: generate pads finished rows
            if nxt is None:
                return DEAD
            current = nxt
        return current
