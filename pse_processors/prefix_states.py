"""Per-row automaton state for eager frameworks, keyed by the token prefix, not the row index.

Beam search reorders rows and assisted decoding rolls back, so a row's index says nothing
about its history. Each row's state is looked up by the bytes of its whole token sequence
(prompt included); a miss is derived from the parent prefix (the row minus its last token),
which the previous call stored. A row whose parent is unknown is either a known prompt plus
generated tokens (re-walked from the prompt) or a new prompt (initial state).
"""

from __future__ import annotations

from collections import OrderedDict

import numpy as np

from .grammar import DEAD, DONE, CompiledGrammar

_MAX_PROMPTS = 4096


class PrefixStates:
    """Maps token rows to automaton states. One instance per processor.

    Args:
        grammar: the compiled grammar.
        max_bytes: memory cap for stored prefixes; past it, all but the latest call's rows are
            dropped (they are re-derived from their prompt when needed).
    """

    def __init__(self, grammar: CompiledGrammar, max_bytes: int = 64 << 20) -> None:
        self.grammar = grammar
        self.max_bytes = max_bytes
        self.reset()

    def reset(self) -> None:
        """Forget every prompt and prefix: the next call starts a new generation."""
        self._states: dict[bytes, int] = {}
        self._bytes = 0
        self._prompts: "OrderedDict[bytes, int]" = OrderedDict()  # prompt bytes -> length in tokens
        self._prompt_lengths: set[int] = set()

    def states(self, rows: np.ndarray) -> list[int]:
        """The state of each row of ``rows`` (int64 ``[batch, length]``), after its last token."""
        rows = np.ascontiguousarray(rows, dtype=np.int64)
        width = rows.shape[1] * 8
        out = []
        fresh: dict[bytes, int] = {}
        for row in rows:
            key = row.tobytes()
            state = self._states.get(key)
            if state is None:
                parent = self._states.get(key[:-8]) if width else None
                if parent is not None:
                    state = self._step(parent, int(row[-1]))
                else:
                    state = self._recover(row, key)
                self._states[key] = state
                self._bytes += width
            fresh[key] = state
            out.append(state)
        if self._bytes > self.max_bytes:
            self._states = fresh
            self._bytes = width * len(fresh)
        return out

    def _step(self, state: int, token: int) -> int:
        if state == DONE:
            return DONE  # generate pads finished rows
        nxt = self.grammar.advance(state, token)
        return DEAD if nxt is None else nxt

    def _recover(self, row: np.ndarray, key: bytes) -> int:
        for length in sorted(self._prompt_lengths, reverse=True):
            if length <= len(row) and key[: length * 8] in self._prompts:
                return self.grammar.walk(row[length:].tolist())
        self._prompts[key] = len(row)
        self._prompt_lengths.add(len(row))
        while len(self._prompts) > _MAX_PROMPTS:
            self._prompts.popitem(last=False)
            self._prompt_lengths = set(self._prompts.values())
        return self.grammar.initial_state
