"""The thinking budget: a matcher over either back end that counts reasoning tokens.

:class:`BudgetMatcher` wraps the matcher of a :class:`~pse_processors.Reasoning` with
``max_tokens``. Its states intern (inner state, phase, count) as ints, as llguidance's nodes are:

- the phase follows the markers from the tokens themselves, whatever the back end: how much of
  ``start`` is written, then, inside the reasoning, how much of ``end`` (a KMP scan over bytes and
  marker tokens), then past the reasoning;
- the count is the number of tokens generated inside the reasoning (a token that completes
  ``end`` does not count);
- once the count reaches ``max_tokens``, the mask is the inner mask AND "on the way to ``end``":
  a token marker allows that token only; a text marker allows the tokens whose bytes continue it
  from where it stands, possibly completing it and running into the answer.

Steps cost a dictionary look-up or two more than the inner matcher's; masks are the inner
matcher's except where the budget is spent.

Example:
    >>> import pse_processors as pse
    >>> vocab = pse.Vocabulary([bytes([b]) for b in range(256)] + [None], eos_token_ids=[256])
    >>> matcher = pse.compile(pse.Reasoning(pse.Choice(["ok"]), start="<t>", end="</t>", max_tokens=2), vocab)
    >>> state = matcher.walk(list(b"<t>ab"))  # two reasoning tokens: the budget is spent
    >>> [chr(t) for t in matcher.allowed_token_ids(state)]
    ['<']
"""

from __future__ import annotations

import threading
from typing import Any, Iterable, Optional, Sequence

import numpy as np

from ..constraints.structure import ReasoningMarkers
from ..errors import SchemaError
from .base import DONE, Matcher
from .prompts import PromptScanner, unit_text

_AFTER = 1 << 30  # the phase past the reasoning
_CONTINUATION = bytes(range(0x80, 0xC0))  # UTF-8 continuation bytes


class BudgetMatcher(Matcher):
    """A reasoning block's matcher with a thinking budget (see the module docstring)."""

    def __init__(self, inner: Matcher, markers: ReasoningMarkers) -> None:
        super().__init__(inner.vocabulary, inner.spec)
        self.inner = inner
        self.backend = inner.backend
        self.markers = markers
        self.max_tokens = int(markers.max_tokens or 0)
        tokens = sorted({u for u in (*markers.start, *markers.end) if isinstance(u, int)})
        self._symbols = {t: k for k, t in enumerate(tokens)}
        self._start = unit_text(markers.start, self._symbols)
        self._end = unit_text(markers.end, self._symbols)
        self._fail = kmp_failure(self._end)
        self._dummy = inner.vocabulary.dummy_prefix
        self._intern: dict[tuple, int] = {}
        self._parts: list[tuple] = []
        self._phase_steps: dict[tuple, int] = {}
        self._on_the_way: dict[int, np.ndarray] = {}
        self._table_lock = threading.Lock()
        self.initial_state = self._state(inner.initial_state, -1, 0)
        scanner = PromptScanner(inner, markers)
        phases = (-1, 0, _AFTER)
        self.states_by_category = tuple(self._state(s, p, 0) for s, p in zip(scanner.states, phases))
        self.prompt_scanner = _Mapped(scanner, self.states_by_category)

    @property
    def nbytes(self) -> int:
        return self.inner.nbytes

    @property
    def dense_automaton(self) -> Any:
        # The count is no part of the automaton: the in-graph processors walk the inner matcher's
        # dense automaton with the budget beside it (runtime/structure_tables.py).
        raise SchemaError(
            "a thinking budget (Reasoning(max_tokens=...)) has no dense automaton of its own: use .inner's, with "
            "the budget's tables of pse_processors.runtime.structure_tables", None,  # type: ignore[arg-type]
        )

    def __repr__(self) -> str:
        return f"BudgetMatcher({self.inner!r}, max_tokens={self.max_tokens})"

    def _state(self, inner: int, phase: int, count: int) -> int:
        key = (inner, phase, count)
        found = self._intern.get(key)
        if found is None:
            with self._table_lock:
                found = self._intern.get(key)
                if found is None:
                    found = self._intern[key] = len(self._parts)
                    self._parts.append(key)
        return found

    def parts(self, state: int) -> tuple[int, int, int]:
        """``(inner state, phase, count)`` of a live state."""
        return self._parts[state]

    def _phase_after(self, phase: int, token: int) -> int:
        """The phase after ``token`` (cached per (phase, token))."""
        key = (phase, token)
        found = self._phase_steps.get(key)
        if found is not None:
            return found
        symbol = self._symbols.get(token)
        data = self._token_bytes[token]
        units = chr(256 + symbol) if symbol is not None else (data or b"").decode("latin-1")
        current = phase
        for unit in units:
            if current == _AFTER:
                break
            if current < 0:  # -1 - i: i units of start written
                written = -1 - current
                if written == 0 and unit == " " and self._dummy:
                    continue
                written += 1
                current = 0 if written == len(self._start) else -1 - written
                continue
            while current and self._end[current] != unit:
                current = self._fail[current - 1]
            if self._end[current] == unit:
                current += 1
            if current == len(self._end):
                current = _AFTER
        self._phase_steps[key] = current
        return current

    def step(self, state: int, token_id: int) -> Optional[int]:
        if state < 0:
            return DONE if state == DONE else None
        inner_state, phase, count = self._parts[state]
        following = self.inner.step(inner_state, token_id)
        if following is None or following < 0:
            return following
        if 0 <= phase < _AFTER and count >= self.max_tokens and not self.on_the_way_mask(phase)[token_id]:
            return None  # the budget is spent: only the way to `end`
        after = self._phase_after(phase, token_id) if phase != _AFTER else _AFTER
        if 0 <= phase < _AFTER and 0 <= after < _AFTER:
            count = min(count + 1, self.max_tokens)
        elif not 0 <= after < _AFTER:
            count = 0
        return self._state(following, after, count)

    def is_accepting(self, state: int) -> bool:
        return state == DONE or (state >= 0 and self.inner.is_accepting(self._parts[state][0]))

    def _spent(self, state: int) -> Optional[int]:
        """The end marker's progress when the budget is spent in ``state``, else ``None``."""
        _, phase, count = self._parts[state]
        return phase if 0 <= phase < _AFTER and count >= self.max_tokens else None

    def _compute_mask(self, state: int) -> int:
        inner_state = self._parts[state][0]
        inner_id = self.inner.mask_id(inner_state)
        progress = self._spent(state)
        content = b"inner" + inner_id.to_bytes(8, "little", signed=True)
        if progress is not None:
            content += b"spent" + progress.to_bytes(8, "little")
        return self._mask_id_for(state, content)

    def _walk(self, state: int) -> tuple[np.ndarray, bool]:
        inner_state = self._parts[state][0]
        # The inner matcher's cached mask (EOS set exactly where it is accepting).
        allowed, accepting = self.inner.allowed_mask(inner_state), self.inner.is_accepting(inner_state)
        progress = self._spent(state)
        if progress is not None:
            allowed = allowed & self.on_the_way_mask(progress)[: allowed.size]
        return allowed, accepting

    def on_the_way_mask(self, progress: int) -> np.ndarray:
        """bool ``[vocab]``: the tokens that continue ``end`` from ``progress`` units written."""
        found = self._on_the_way.get(progress)
        if found is not None:
            return found
        rest = self._end[progress:]
        mask = np.zeros(self.vocab_size, dtype=bool)
        marker_token = ord(rest[0]) >= 256
        text_run = b"" if marker_token else rest.split(next((c for c in rest if ord(c) >= 256), "\uffff"))[0].encode("latin-1")
        whole = len(text_run) == len(rest)
        for index, data in enumerate(self._token_bytes):
            if data is None:
                continue
            # The budget may run out inside a character: its continuation bytes (which the inner
            # matcher allows only there) may come first, else no token could follow.
            way = data.lstrip(_CONTINUATION)
            if way != data and len(data) - len(way) <= 3 and not way:
                mask[index] = True
            elif not marker_token and (text_run.startswith(way) or (whole and way.startswith(text_run))):
                mask[index] = len(data) - len(way) <= 3
        if marker_token:  # a token marker: that token
            mask[next(t for t, k in self._symbols.items() if k == ord(rest[0]) - 256)] = True
        mask.setflags(write=False)
        self._on_the_way[progress] = mask
        return mask


class _Mapped:
    """A :class:`PromptScanner` whose states are the budget matcher's."""

    def __init__(self, scanner: PromptScanner, states: tuple) -> None:
        self.scanner = scanner
        self.states = states

    def category(self, prompt_ids: Iterable[int]) -> int:
        return self.scanner.category(prompt_ids)

    def __call__(self, prompt_ids: Iterable[int]) -> int:
        return self.states[self.scanner.category(prompt_ids)]


def kmp_failure(pattern: Sequence) -> list[int]:
    """KMP failure table: for each prefix length - 1, the longest proper border (the end marker's
    progress here, and in the in-graph tables of ``runtime/structure_tables.py``)."""
    fail = [0] * len(pattern)
    k = 0
    for i in range(1, len(pattern)):
        while k and pattern[i] != pattern[k]:
            k = fail[k - 1]
        if pattern[i] == pattern[k]:
            k += 1
        fail[i] = k
    return fail

