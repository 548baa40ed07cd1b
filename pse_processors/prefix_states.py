"""Per-row automaton state for eager frameworks, keyed by the token prefix, not the row index.

Beam search reorders rows and assisted decoding rolls back, so a row's index says nothing
about its history. Each row's state is looked up by the bytes of its whole token sequence
(prompt included). A miss is derived from the parent prefix (the row minus its last token),
which an earlier call stored. A row is a new prompt (initial state) when its parent is
unknown, or when the constraint rejects its last token: generate never samples a masked
token, so such a row is a new prompt that extends an earlier one (or a beam already at -inf,
or a rejected speculative candidate, whose scores no longer matter).

Ambiguity: a new prompt that equals an earlier row plus one token *that the constraint
allows there* looks like a continuation. Call :meth:`PrefixStates.reset` between such
``generate`` calls.
"""

from __future__ import annotations

from collections import OrderedDict
from typing import Optional

import numpy as np

from .grammar import DONE, CompiledGrammar


class PrefixStates:
    """Maps token rows to automaton states. One instance per processor.

    Args:
        grammar: the compiled grammar.
        max_bytes: memory cap for the stored prefixes; past it, the least recently used are
            dropped. Rows of the latest calls are always kept, so a dropped prefix is never
            needed by a running generation.

    Example:
        >>> import numpy as np, pse_processors as pse
        >>> grammar = pse.compile(pse.Choice(["ab"]), pse.Vocabulary([b"a", b"b", b"x", None], eos_token_ids=[3]))
        >>> tracker = PrefixStates(grammar)
        >>> s0 = tracker.states(np.array([[2, 2]]))           # the prompt: initial state
        >>> s1 = tracker.states(np.array([[2, 2, 0]]))        # then "a" was generated
        >>> grammar.allowed_token_ids(s1[0]).tolist()
        [1]
    """

    def __init__(self, grammar: CompiledGrammar, max_bytes: int = 64 << 20) -> None:
        self.grammar = grammar
        self.max_bytes = max_bytes
        self.reset()

    def reset(self) -> None:
        """Forget every prefix: the next call starts a new generation."""
        self._states: "OrderedDict[bytes, int]" = OrderedDict()
        self._bytes = 0

    def states(self, rows: np.ndarray) -> list[int]:
        """The state of each row of ``rows`` (int ``[batch, length]``), after its last token."""
        rows = np.ascontiguousarray(rows, dtype=np.int64)
        width = rows.shape[1] * 8
        out = []
        for row in rows:
            key = row.tobytes()
            state = self._states.get(key)
            if state is None:
                parent = self._states.get(key[:-8]) if width else None
                state = self._step(parent, int(row[-1])) if parent is not None else None
                if state is None:
                    state = self.grammar.initial_state
                self._states[key] = state
                self._bytes += width
            else:
                self._states.move_to_end(key)
            out.append(state)
        while self._bytes > self.max_bytes and len(self._states) > len(rows):
            dropped, _ = self._states.popitem(last=False)
            self._bytes -= len(dropped)
        return out

    def _step(self, state: int, token: int) -> Optional[int]:
        if state == DONE:
            return DONE  # generate pads finished rows
        return self.grammar.advance(state, token)
