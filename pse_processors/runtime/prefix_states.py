"""Per-row automaton state for eager frameworks, keyed by the token prefix, not the row index.

Beam search reorders rows and assisted decoding rolls back, so a row's index says nothing
about its history. Each row's state is looked up by the bytes of its whole token sequence
(prompt included). A miss is derived from the parent prefix (the row minus its last token),
which an earlier call stored. A row is a new prompt (initial state) when its parent is
unknown, or when the constraint rejects its last token: generate never samples a masked
token, so such a row is a new prompt that extends an earlier one (or a beam already at -inf,
or a rejected speculative candidate, whose scores no longer matter).

A new prompt starts in ``matcher.initial_state_for(prompt)`` (the initial state, unless the
constraint reads its prompt: a :class:`~pse_processors.Reasoning` block that the chat template
opened or closed), computed once per new row: the key holds the prompt, so later steps inherit it.

Ambiguity: a new prompt that equals an earlier row plus one token *that the constraint
allows there* looks like a continuation. Call :meth:`PrefixStates.reset` between such
``generate`` calls.

Fast path: when every row is the previous call's row plus one token (plain decoding: one numpy
comparison of the whole batch with the last call's rows), the states advance without dictionary
lookups, and the rows are not keyed yet: the latest rows hold every prefix of a run of such calls,
so their keys are written into the dictionary only when a later call needs a lookup (beam search,
a rollback, a new prompt), and only as many as the memory cap keeps.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from typing import Optional

import numpy as np

from .. import defaults
from ..matchers import Matcher


class PrefixStates:
    """Maps token rows to automaton states. One instance per processor.

    Args:
        matcher: the compiled :class:`~pse_processors.Matcher`.
        max_bytes: memory cap for the stored prefixes (default ``defaults.PREFIX_CACHE_BYTES``); past it, the least recently used are
            dropped. Rows of the latest calls are always kept, so a dropped prefix is never
            needed by a running generation.

    Example:
        >>> import numpy as np, pse_processors as pse
        >>> matcher = pse.compile(pse.Choice(["ab"]), pse.Vocabulary([b"a", b"b", b"x", None], eos_token_ids=[3]))
        >>> tracker = PrefixStates(matcher)
        >>> s0 = tracker.states(np.array([[2, 2]]))           # the prompt: initial state
        >>> s1 = tracker.states(np.array([[2, 2, 0]]))        # then "a" was generated
        >>> matcher.allowed_token_ids(s1[0]).tolist()
        [1]
    """

    def __init__(self, matcher: Matcher, max_bytes: Optional[int] = None) -> None:
        self.matcher = matcher
        self.max_bytes = defaults.PREFIX_CACHE_BYTES if max_bytes is None else max_bytes
        self._lock = threading.Lock()  # one processor may serve generate() calls in several threads
        self.reset()

    def reset(self) -> None:
        """Forget every prefix: the next call starts a new generation."""
        self._states: "OrderedDict[bytes, int]" = OrderedDict()
        self._bytes = 0
        self._last = b""  # the last call's rows, as bytes (a snapshot: the caller may reuse its buffer)
        self._last_shape = (0, 0)
        self._last_states: list[int] = []
        # Fast-path calls not keyed yet: _pending[j] holds the states of the last rows' prefixes
        # of length _pending_from + j.
        self._pending: list[list[int]] = []
        self._pending_from = 0

    def states(self, rows: np.ndarray) -> list[int]:
        """The state of each row of ``rows`` (int ``[batch, length]``), after its last token."""
        with self._lock:
            return self._states_locked(rows)

    def states_and_keys(self, rows: np.ndarray) -> tuple[list[int], list[bytes]]:
        """:meth:`states`, and each row's key (its int64 bytes): a row's parent key is ``key[:-8]``."""
        with self._lock:
            states = self._states_locked(rows)
            return states, self._keys(self._last, self._last_shape)

    @staticmethod
    def _keys(data: bytes, shape: tuple) -> list[bytes]:
        """Each row's key: its slice of the batch's bytes."""
        step = 8 * shape[1]
        return [data[row * step : (row + 1) * step] for row in range(shape[0])]

    def _states_locked(self, rows: np.ndarray) -> list[int]:
        rows = np.ascontiguousarray(rows, dtype=np.int64)
        data, shape = rows.tobytes(), rows.shape
        # Plain decoding (each row is the same row of the last call plus one token): one comparison
        # of bytes for the whole batch; bytes beat numpy calls on the cold caches after a forward pass.
        if shape == (self._last_shape[0], self._last_shape[1] + 1) and (
            data[:-8] == self._last if shape[0] == 1 else rows[:, :-1].tobytes() == self._last
        ):
            # A Python loop over the rows: one lookup in the dense automaton costs more below about
            # 64 rows (a dozen numpy calls at ~4 us each, measured).
            states = list(map(self.matcher.step, self._last_states, rows[:, -1].tolist()))
            if None in states:  # a rejected token: a new prompt
                keys = self._keys(data, shape)
                states = [self._initial(keys[row]) if state is None else state for row, state in enumerate(states)]
            if not self._pending:
                self._pending_from = shape[1]
            self._pending.append(states)
        else:
            self._key_pending()
            states = [self._lookup(key) for key in self._keys(data, shape)]
            self._evict(len(states))
        self._last, self._last_shape, self._last_states = data, shape, states
        return states

    def _key_pending(self) -> None:
        """Write the fast-path calls' rows into the dictionary, newest first up to the memory cap."""
        pending, (batch, length) = self._pending, self._last_shape
        if not pending:
            return
        self._pending = []
        rows = np.frombuffer(self._last, dtype=np.int64).reshape(batch, length)
        first, room = len(pending), self.max_bytes
        while first > 0 and room >= 8 * (self._pending_from + first - 1) * batch:
            first -= 1
            room -= 8 * (self._pending_from + first) * batch
        for j in range(first, len(pending)):  # oldest first: the least recently used end
            prefix = self._pending_from + j
            for row, state in zip(rows, pending[j]):
                self._remember(row[:prefix].tobytes(), state)
        self._evict(batch)

    def _evict(self, keep: int) -> None:
        while self._bytes > self.max_bytes and len(self._states) > keep:
            dropped, _ = self._states.popitem(last=False)
            self._bytes -= len(dropped)

    def _remember(self, key: bytes, state: int) -> None:
        if key not in self._states:
            self._bytes += len(key)
        self._states[key] = state

    def _lookup(self, key: bytes) -> int:
        state = self._states.get(key)
        if state is not None:
            self._states.move_to_end(key)
            return state
        parent = self._states.get(key[:-8]) if key else None
        if parent is not None:
            state = self.matcher.step(parent, int.from_bytes(key[-8:], "little", signed=True))
        if state is None:
            state = self._initial(key)
        self._remember(key, state)
        return state

    def _initial(self, key: bytes) -> int:
        """The state of a new prompt (the row of ``key``), read from it when the constraint reads prompts."""
        matcher = self.matcher
        if matcher.prompt_scanner is None:
            return matcher.initial_state
        return matcher.initial_state_for(np.frombuffer(key, dtype=np.int64).tolist())
