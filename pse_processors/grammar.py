"""The compiled grammar: an outlines-core token automaton plus cached masks.

States are outlines-core state ids, plus two of ours:

- :data:`DONE`, reached by EOS from an accepting state; it allows only EOS.
- :data:`DEAD`, where :meth:`CompiledGrammar.walk` ends after a token the constraint
  rejects; it allows only EOS.
"""

from __future__ import annotations

import logging
from typing import Any, Iterable, Optional

import numpy as np

from .constraints import ConstraintSpec
from .vocabulary import Vocabulary

logger = logging.getLogger(__name__)

DONE = -1
DEAD = -2


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

    def __init__(self, index: Any, vocabulary: Vocabulary, spec: ConstraintSpec) -> None:
        self.index = index
        self.vocabulary = vocabulary
        self.spec = spec
        self.initial_state: int = index.get_initial_state()
        # The index was built over the regex plus an end sentinel, whose token id is the
        # vocabulary size (see cache._build_index): accepting = the sentinel is allowed.
        self._sentinel = vocabulary.size
        self._accepting: dict[int, bool] = {}
        self._eos = np.array(sorted(vocabulary.eos_token_ids), dtype=np.int64)
        self._allowed: dict[int, np.ndarray] = {}
        self._bitmask: dict[int, np.ndarray] = {}
        self._bool_masks: dict[tuple[int, int], np.ndarray] = {}
        #: Per-framework device caches, keyed by the framework module; shared by every
        #: processor built on this grammar.
        self.device_cache: dict[Any, dict] = {}

    @property
    def vocab_size(self) -> int:
        return self.vocabulary.size

    def is_accepting(self, state: int) -> bool:
        """True when the text so far is complete: EOS is allowed."""
        if state == DONE:
            return True
        cached = self._accepting.get(state)
        if cached is None:
            after = self.index.get_next_state(state, self._sentinel) if state >= 0 else None
            cached = after is not None and self.index.is_final_state(after)
            self._accepting[state] = cached
        return cached

    def allowed_token_ids(self, state: int) -> np.ndarray:
        """Sorted ids allowed in ``state`` (EOS ids included when accepting)."""
        cached = self._allowed.get(state)
        if cached is None:
            if state in (DONE, DEAD):
                cached = self._eos
            else:
                ids = np.fromiter(self.index.get_allowed_tokens(state), dtype=np.int64)
                ids = ids[ids < self._sentinel]  # drop the sentinel and outlines' own EOS
                if self.is_accepting(state):
                    ids = np.concatenate([ids, self._eos])
                cached = np.unique(ids)
            cached.setflags(write=False)
            self._allowed[state] = cached
        return cached

    def bitmask(self, state: int) -> np.ndarray:
        """Allowed tokens as a packed little-endian int32 bitmask of ``ceil(vocab/32)`` words."""
        cached = self._bitmask.get(state)
        if cached is None:
            words = (self.vocab_size + 31) // 32
            bits = np.zeros(words * 32, dtype=bool)
            bits[self.allowed_token_ids(state)] = True
            cached = np.packbits(bits, bitorder="little").view(np.int32)
            cached.setflags(write=False)
            self._bitmask[state] = cached
        return cached

    def allowed_mask(self, state: int, width: Optional[int] = None) -> np.ndarray:
        """Allowed tokens as a bool array of ``width`` (default: vocab size); ids past the vocabulary are False."""
        width = self.vocab_size if width is None else width
        cached = self._bool_masks.get((state, width))
        if cached is None:
            bits = np.unpackbits(self.bitmask(state).view(np.uint8), bitorder="little").astype(bool)
            cached = np.zeros(width, dtype=bool)
            n = min(width, self.vocab_size)
            cached[:n] = bits[:n]
            cached.setflags(write=False)
            self._bool_masks[(state, width)] = cached
        return cached

    def advance(self, state: int, token_id: int) -> Optional[int]:
        """The state after ``token_id``, or ``None`` if the constraint rejects it."""
        token_id = int(token_id)
        if token_id in self.vocabulary.eos_token_ids:
            return DONE if self.is_accepting(state) else None
        if state in (DONE, DEAD) or not 0 <= token_id < self.vocab_size:
            return None
        if self.vocabulary.token_bytes[token_id] is None:
            return None
        return self.index.get_next_state(state, token_id)

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
            if current == DONE:
                continue  # after EOS, generate pads the row: nothing more to check
            nxt = self.advance(current, token)
            if nxt is None:
                return DEAD
            current = nxt
        return current
