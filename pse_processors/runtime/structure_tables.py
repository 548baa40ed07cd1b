"""Device tables for a reasoning block in the graph: where the prompt left it, and the thinking budget.

A :class:`~pse_processors.Reasoning` compiles to one byte automaton (``matchers/compose.py``), so the
in-graph walk of :mod:`.in_graph` runs it over :mod:`.device_tables` like any constraint. Two
things are not in that automaton, and both are small automata over tokens here, walked in the same
graph from the same buffer:

- **the prompt scan** (:class:`ScanTables`): the eager processors ask
  :class:`~pse_processors.matchers.prompts.PromptScanner` once per row whether the chat template
  opened the block (start inside the reasoning), closed it (start at the answer), or neither (the
  output starts with ``start``, also after a closed block of an earlier turn). "The last
  ``start``, then an ``end`` after it, then only whitespace" is a regular language over the
  prompt's units (bytes, the marker tokens, a barrier for any other byte-less token): a few
  states of (kind, progress in ``start``, progress in ``end``) walked over the static prompt
  width, whose category picks each row's start state;
- **the budget** (:class:`BudgetTables`): :class:`~pse_processors.matchers.budget.BudgetMatcher`'s
  phase (how much of ``start`` is written, then the progress in ``end``, then past it) is a
  token automaton as well, and its count is a counter carried along the walk: +1 for a token
  inside the reasoning (one that completes ``end`` does not count), back to 0 outside. Once the
  count reaches ``max_tokens``, a token off the way to ``end`` leads to ``dead`` and the mask is
  the automaton's AND the way's row for the phase (``way_masks``; row 0 allows everything).

Each is built from a total byte automaton over 256 bytes and the marker tokens as symbols,
walked once per state through the vocabulary's token trie (vectorized), and reduced to token
classes; ids past the vocabulary and byte-less tokens that are no marker take the ``stay``
column (a barrier for the scan, no change for the budget). Sizes: a few dozen states and
classes plus one int32 class per logit id (and, with a budget, ``len(end) + 1`` dense rows).

Example (a Qwen3-like vocabulary where ``<t>`` and ``</t>`` are single tokens):
    >>> import pse_processors as pse
    >>> vocab = pse.Vocabulary([bytes([b]) for b in range(256)] + [None, None, None], eos_token_ids=[258],
    ...                        special_tokens={"<t>": 256, "</t>": 257})
    >>> matcher = pse.compile(pse.Reasoning(pse.Choice(["ok"]), start="<t>", end="</t>", max_tokens=2), vocab)
    >>> tables = structure_tables(matcher, 259)
    >>> [tables.scan.category_of(p) for p in ([ord("Q")], [ord("Q"), 256], [256, ord("x"), 257, ord("\\n")])]
    [0, 1, 2]
    >>> tables.scan.category_of([256, ord("x"), 257, ord("y"), 258, ord("Q")])  # an earlier turn's block
    0
    >>> tables.budget.max_tokens, tables.budget.num_phases  # start (1 unit), end (1 unit), after
    (2, 3)
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from typing import Any, Callable, Optional

import numpy as np

from ..matchers import Matcher
from ..matchers.budget import BudgetMatcher, kmp_failure
from ..matchers.prompts import ANSWER, INSIDE, START, WHITESPACE, PromptScanner
from .device_cache import device_cache

_CACHE_KEY = "structure_tables"
_lock = threading.Lock()
_SEED = 0x5CA7_7AB1E
_AFTER = 3  # the scan's kind for a closed block then more than whitespace (category START)


@dataclass(frozen=True)
class TokenAutomaton:
    """A total automaton over token classes: int32 ``transitions[Q, C]``, int32 ``token_class[width + 1]``
    (the last entry and ids past the vocabulary: the ``stay`` class); state 0 is initial."""

    transitions: np.ndarray
    token_class: np.ndarray

    def walk(self, token_ids: Any, state: int = 0) -> int:
        """The state after ``token_ids`` (reference walk, for tests)."""
        width = self.token_class.size - 1
        for token in token_ids:
            token = int(token)
            state = int(self.transitions[state, self.token_class[token if 0 <= token < width else width]])
        return state

    @property
    def nbytes(self) -> int:
        return int(self.transitions.nbytes + self.token_class.nbytes)


@dataclass(frozen=True)
class ScanTables:
    """The prompt scan: ``automaton`` over the prompt, the ``category`` (int32 ``[Q]``) of its states,
    and the matcher's (inner) start state and the budget's start phase of each category."""

    automaton: TokenAutomaton
    category: np.ndarray
    start_states: np.ndarray
    start_phases: np.ndarray
    #: When both markers are one token each (Qwen3, DeepSeek-R1): their ids, and the category is
    #: read from their last positions (and the last token that is not ``blank``), with no walk
    #: over the prompt; else ``None``.
    marker_tokens: Optional[tuple] = None
    #: With ``marker_tokens``: bool ``[width + 1]``, the tokens that are whitespace only.
    blank: Optional[np.ndarray] = None

    def category_of(self, prompt_ids: Any) -> int:
        """:data:`~pse_processors.matchers.prompts.START`, ``INSIDE`` or ``ANSWER`` for a prompt."""
        return int(self.category[self.automaton.walk(prompt_ids)])


@dataclass(frozen=True)
class BudgetTables:
    """The thinking budget: the phase ``automaton`` (state 0: nothing of ``start`` written), which
    phases are ``inside`` the reasoning (int32 0/1 ``[P]``), ``on_way`` (int32 0/1 ``[P, C]``: the
    classes that continue ``end`` from each phase), ``way_row`` (int32 ``[P]``: the phase's row
    of ``way_masks``, 0 outside the reasoning) and ``way_masks`` (bool ``[rows, width]``, row 0
    all True)."""

    automaton: TokenAutomaton
    inside: np.ndarray
    on_way: np.ndarray
    way_row: np.ndarray
    way_masks: np.ndarray
    max_tokens: int

    @property
    def num_phases(self) -> int:
        return int(self.automaton.transitions.shape[0])


@dataclass(frozen=True)
class StructureTables:
    """What a reasoning block adds to the device tables (either may be ``None``)."""

    scan: Optional[ScanTables]
    budget: Optional[BudgetTables]

    @property
    def nbytes(self) -> int:
        total = 0
        if self.scan is not None:
            total += self.scan.automaton.nbytes
        if self.budget is not None:
            total += self.budget.automaton.nbytes + self.budget.on_way.nbytes + self.budget.way_masks.nbytes
        return total


def automaton_matcher(matcher: Matcher) -> Matcher:
    """The byte-automaton matcher whose dense tables the walk runs (a budget's inner matcher)."""
    return matcher.inner if isinstance(matcher, BudgetMatcher) else matcher


def structure_tables(matcher: Matcher, width: int) -> Optional[StructureTables]:
    """The scan and budget tables of ``matcher`` for logits ``width`` wide, or ``None`` when its
    constraint reads no prompt and has no budget. Built once per matcher and width."""
    scanner = getattr(matcher, "prompt_scanner", None)
    if scanner is None and not isinstance(matcher, BudgetMatcher):
        return None
    cache = device_cache(matcher, _CACHE_KEY)
    with _lock:
        found = cache.get(width)
        if found is None:
            found = cache[width] = _build(matcher, width)
    return found


def _build(matcher: Matcher, width: int) -> StructureTables:
    base = automaton_matcher(matcher)
    markers = matcher.markers if isinstance(matcher, BudgetMatcher) else matcher.spec.structure.reasoning
    tokens = sorted({u for u in (*markers.start, *markers.end) if isinstance(u, int)})
    column = {t: 256 + k for k, t in enumerate(tokens)}
    start = [b for u in markers.start for b in (u if isinstance(u, bytes) else [column[u]])]
    end = [b for u in markers.end for b in (u if isinstance(u, bytes) else [column[u]])]
    trie = base.trie.with_symbols(tokens)
    budget = _budget(matcher, base, start, end, trie, width) if isinstance(matcher, BudgetMatcher) else None
    inner_states = PromptScanner(base, markers).states
    phases = np.array([0, len(start), len(start) + len(end)], dtype=np.int32)  # START, INSIDE, ANSWER
    return StructureTables(_scan(start, end, trie, base, width, np.asarray(inner_states, np.int32), phases), budget)


def _kmp(pattern: list[int]) -> Callable[[int, int], int]:
    """``step(progress, unit)``: the longest prefix of ``pattern`` ending after one more unit."""
    fail = kmp_failure(pattern)

    def step(progress: int, unit: int) -> int:
        if progress == len(pattern):
            progress = fail[progress - 1]
        while progress and pattern[progress] != unit:
            progress = fail[progress - 1]
        return progress + 1 if pattern[progress] == unit else progress

    return step


def _scan(start: list[int], end: list[int], trie: Any, base: Matcher, width: int, states: np.ndarray,
          phases: np.ndarray) -> ScanTables:
    """States (kind, progress in start, progress in end), as ``PromptScanner.category`` reads a
    prompt; the kinds are the categories and :data:`_AFTER` (a closed block, then more than
    whitespace: category START, but an ``end`` may still close the last ``start`` anew)."""
    columns = 256 + trie.symbol_tokens.size
    step_start, step_end = _kmp(start), _kmp(end)
    blank = frozenset(WHITESPACE.encode())
    index: dict[tuple, int] = {}
    order: list[tuple] = []

    def intern(key: tuple) -> int:
        if key not in index:
            index[key] = len(order)
            order.append(key)
        return index[key]

    def barrier(kind: int) -> tuple:  # a byte-less token that is no marker: breaks matches, is no whitespace
        return (_AFTER if kind == ANSWER else kind, 0, 0)

    intern((START, 0, 0))
    rows: list[list[int]] = []
    while len(rows) < len(order):
        kind, i, j = order[len(rows)]
        intern(barrier(kind))
        row = []
        for unit in range(columns):
            i2 = step_start(i, unit)
            if i2 == len(start):  # the last start so far: inside, and end is looked for after it
                row.append(intern((INSIDE, i2, 0)))
            elif kind == START:
                row.append(intern((START, i2, 0)))
            else:
                j2 = step_end(j, unit)
                if j2 == len(end) or (kind == ANSWER and unit in blank):
                    row.append(intern((ANSWER, i2, j2)))
                else:
                    row.append(intern((_AFTER if kind == ANSWER else kind, i2, j2)))
        rows.append(row)
    table = np.array(rows, dtype=np.int32)
    stay = np.array([index[barrier(kind)] for kind, _, _ in order], dtype=np.int32)
    automaton = _token_automaton(table, stay, trie, base.vocab_size, width)
    category = np.array([START if kind == _AFTER else kind for kind, _, _ in order], dtype=np.int32)
    single = len(start) == len(end) == 1 and min(start[0], end[0]) >= 256
    tokens = tuple(int(trie.symbol_tokens[u - 256]) for u in (start[0], end[0])) if single else None
    blank_tokens = _blank_tokens(trie, base.vocab_size, width, blank) if single else None
    return ScanTables(automaton, category, states, phases, tokens, blank_tokens)


def _blank_tokens(trie: Any, vocab_size: int, width: int, blank: frozenset) -> np.ndarray:
    """bool ``[width + 1]``: the tokens whose bytes are all whitespace (byte-less ones, marker
    tokens and ids past the vocabulary are not)."""
    table = np.ones((2, 256 + trie.symbol_tokens.size), dtype=np.int32)  # state 0: whitespace so far
    table[0, sorted(blank)] = 0
    row = trie.next_states(table, 0)
    found = np.zeros(width + 1, dtype=bool)
    found[: min(width, vocab_size)] = (row == 0)[: min(width, vocab_size)]
    found.setflags(write=False)
    return found


def _budget(matcher: BudgetMatcher, base: Matcher, start: list[int], end: list[int], trie: Any, width: int) -> BudgetTables:
    """Phases as :class:`BudgetMatcher` counts them: ``i < len(start)``: i units of start written (a
    leading space skipped on a dummy-prefix tokenizer); ``len(start) + j``: inside, j units of end;
    ``len(start) + len(end)``: past the reasoning."""
    columns = 256 + trie.symbol_tokens.size
    step_end = _kmp(end)
    after = len(start) + len(end)
    table = np.empty((after + 1, columns), dtype=np.int32)
    for i in range(len(start)):
        table[i] = i + 1  # any unit: the matcher itself holds the output to start
        if i == 0 and base.vocabulary.dummy_prefix:
            table[i, ord(" ")] = 0
    for j in range(len(end)):
        for unit in range(columns):
            j2 = step_end(j, unit)
            table[len(start) + j, unit] = after if j2 == len(end) else len(start) + j2
    table[after] = after
    # The tokens on the way to end from each inside phase (the budget matcher's own masks).
    way = np.ones((after + 1, base.vocab_size), dtype=bool)
    for j in range(len(end)):
        way[len(start) + j] = matcher.on_the_way_mask(j)[: base.vocab_size]
    automaton = _token_automaton(table, np.arange(after + 1, dtype=np.int32), trie, base.vocab_size, width, extra=way)
    cls = automaton.token_class
    firsts = np.unique(cls[: base.vocab_size], return_index=True)[1]
    on_way = np.ones((after + 1, automaton.transitions.shape[1]), dtype=np.int32)
    on_way[:, cls[firsts]] = way[:, firsts]
    on_way[len(start):after, -1] = 0  # the stay class (byte-less tokens, ids past the vocabulary) is never on the way
    inside = np.zeros(after + 1, dtype=np.int32)
    inside[len(start):after] = 1
    way_row = np.zeros(after + 1, dtype=np.int32)
    way_row[len(start):after] = np.arange(1, len(end) + 1)
    way_masks = np.zeros((len(end) + 1, width), dtype=bool)
    way_masks[0] = True
    way_masks[1:, : base.vocab_size] = way[len(start):after]
    for array in (inside, on_way, way_row, way_masks):
        array.setflags(write=False)
    return BudgetTables(automaton, inside, on_way, way_row, way_masks, int(matcher.max_tokens))


def _token_automaton(table: np.ndarray, stay: np.ndarray, trie: Any, vocab_size: int, width: int,
                     extra: Optional[np.ndarray] = None) -> TokenAutomaton:
    """The token-level automaton of a total byte automaton ``table`` (0 initial): each state's row
    over the vocabulary through ``trie`` (a byte-less token that is no symbol: ``stay[state]``),
    tokens with equal columns (and equal ``extra[:, token]``) sharing a class; one last class
    for ``stay`` (ids past the vocabulary)."""
    states = table.shape[0]
    rows = np.empty((states, vocab_size), dtype=np.int32)
    for state in range(states):
        row = trie.next_states(table, state)
        rows[state] = np.where(row >= 0, row, stay[state])
    signature = rows if extra is None else np.vstack([rows, extra.astype(np.int32)])
    weights = np.random.default_rng(_SEED).integers(0, 2**63, size=(signature.shape[0], 2), dtype=np.uint64) | np.uint64(1)
    codes = signature.astype(np.uint64) + np.uint64(1)
    hashes = np.stack([weights[:, 0] @ codes, weights[:, 1] @ (codes * codes + np.uint64(0x632BE59BD9B4E019))], axis=1)
    _, first, token_class = np.unique(hashes, axis=0, return_index=True, return_inverse=True)
    token_class = token_class.reshape(-1).astype(np.int32)
    if not np.array_equal(signature[:, first][:, token_class], signature):
        raise RuntimeError("token classes of the reasoning tables collided; please report this tokenizer")
    transitions = np.concatenate([rows[:, first], stay[:, None]], axis=1).astype(np.int32)
    classes = np.full(width + 1, len(first), dtype=np.int32)
    classes[: min(width, vocab_size)] = token_class[: min(width, vocab_size)]
    transitions.setflags(write=False)
    classes.setflags(write=False)
    return TokenAutomaton(transitions, classes)
