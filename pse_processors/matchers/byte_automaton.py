"""The constraint's automaton over UTF-8 bytes, built by outlines-core and kept as one dense table.

outlines-core's ``Index`` walks every state x every token of the vocabulary up front, which
costs seconds on 128k-262k vocabularies. We build it over the 256 single bytes instead
(milliseconds) and walk the real tokens ourselves, lazily, through a token trie
(:mod:`pse_processors.vocabulary.token_trie`). The byte automaton does not depend on the tokenizer, so
one cached file serves every vocabulary.

- ``next_state``: int32 ``[states, 256 + K]``, the next state, or -1 when the byte is rejected;
  columns past 256 are K *symbols* that no text spells (special-token markers of structure in
  free text, see :mod:`~pse_processors.matchers.compose`); K = 0 for every regex;
- ``accepting``: bool ``[states]``, True where the text so far is complete;
- state 0 is the initial state.
"""

from __future__ import annotations

import hashlib
import json
import logging
import time
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO, Optional, Union

import numpy as np

from ..caching.store import write_atomically
from ..constraints.regex_size import may_be_long, shortest_match
from ..errors import CompileLimitError, SchemaError, UnsatisfiableConstraintError
from ..json_schema.fragments import FIRST_MEMBER_MARK as _MARK_TEXT
from ..json_schema.fragments import expanded_length
from .byte_sentinels import SPARE_ROWS, exclude_sentinel_chars

logger = logging.getLogger(__name__)

# outlines-core 0.2.14 drops a token whose last byte follows a complete match (after "0" in
# "0(\.5)?" the token "." is missing), which with single-byte tokens would cut transitions out
# of every final state. Appending a sentinel character U+10FFFF means no match is complete
# before the sentinel; "accepting" is "the sentinel's bytes lead to a final state" (exact: x
# U+10FFFF is in L U+10FFFF exactly when x is in L). byte_sentinels.py then cuts exactly the
# sentinel characters (U+10FFFD-U+10FFFF) and the states partway into the trailing one; the
# rest of plane 16 stays as the regex allows it.
_SENTINEL = "\U0010FFFF".encode()
# A leading sentinel too: outlines-core's DFA construction takes time exponential in n on
# regexes that *start* with a byte the body repeats ('"(?:[a-z]|\\"){n}"': 11 s at n=16),
# and is instant once anything precedes it. The initial state is the one after U+10FFFE.
_PREFIX = "\U0010FFFE".encode()
# The JSON Schema compiler writes objects as "{" MARK (?:, m1)? (?:, m2)? ... "}" (linear in the
# number of optional members). Here every state p that reads MARK is rewired to behave as
# "after '{' MARK ','" minus the optional space: the first member present loses its comma,
# and "}" closes an empty object. MARK is plane-16 private use; JSON string classes leave out
# U+10FFFD-U+10FFFF (fragments.SENTINELS), so no JSON text spells it.
FIRST_MEMBER_MARK = "\U0010FFFD".encode()


@dataclass(frozen=True)
class ByteAutomaton:
    """A deterministic automaton over bytes; see the module docstring.

    Example:
        >>> from pse_processors.matchers.byte_automaton import ByteAutomaton
        >>> dfa = ByteAutomaton.build("ab?")
        >>> bool(dfa.accepting[dfa.walk(b"a")]), bool(dfa.accepting[dfa.walk(b"ab")]), dfa.walk(b"b")
        (True, True, None)
    """

    next_state: np.ndarray
    accepting: np.ndarray

    initial = 0

    @property
    def num_states(self) -> int:
        return int(self.next_state.shape[0])

    @property
    def nbytes(self) -> int:
        return int(self.next_state.nbytes + self.accepting.nbytes)

    @property
    def num_symbols(self) -> int:
        """K: the columns past the 256 bytes (0 unless built by :mod:`~pse_processors.matchers.compose`)."""
        return int(self.next_state.shape[1]) - 256

    def walk(self, data: bytes, state: int = 0) -> "int | None":
        """The state after ``data`` from ``state``, or ``None`` if some byte is rejected."""
        for byte in data:
            state = int(self.next_state[state, byte])
            if state < 0:
                return None
        return state

    @classmethod
    def build(cls, regex: str, max_states: int = 1_000_000) -> "ByteAutomaton":
        """Compile ``regex`` (Rust ``regex`` syntax, full match) with outlines-core.

        Raises:
            SchemaError: outlines-core cannot parse or compile the regex.
            CompileLimitError: the automaton has more than ``max_states`` states.
            UnsatisfiableConstraintError: no text matches the regex.
        """
        from outlines_core import Index
        from outlines_core import Vocabulary as OCVocabulary

        start = time.perf_counter()
        if may_be_long(regex, max_states) and shortest_match(regex) >= max_states:  # refused now, not after the build
            raise CompileLimitError(
                f"the constraint's shortest match is {shortest_match(regex):,} characters long, so its byte "
                f"automaton has more states than the limit of {max_states:,} (max_states): bound fewer repetitions"
            )
        single_bytes = {bytes([b]): [b] for b in range(256)}
        try:
            index = Index(f"\\x{{10FFFE}}(?:{regex})\\x{{10FFFF}}", OCVocabulary(256, single_bytes))
        except ValueError as exc:
            message = str(exc)
            if "incompatible with the regex" in message or "no allowed" in message.lower():
                raise UnsatisfiableConstraintError(f"no text satisfies the constraint (outlines-core: {message})") from exc
            # regex-automata says "error building NFA" for syntax errors and size limits alike.
            if "exceeds" in message or ("NFA" in message and expanded_length(regex) > 100_000):
                raise CompileLimitError(f"the constraint's automaton is too large to build: {message}") from exc
            raise SchemaError(f"the constraint's regex cannot be compiled: {message}", "") from exc
        raw: dict = index.get_transitions()
        initial = index.get_initial_state()
        for byte in _PREFIX:
            initial = raw[initial][byte]
        finals = set(index.get_final_states())
        states = [initial] + sorted(s for s in raw if s != initial)
        states += sorted(finals - set(states))
        if len(states) > max_states:
            raise CompileLimitError(
                f"the constraint's byte automaton has {len(states):,} states, over the limit of {max_states:,} "
                "(max_states): bound fewer repetitions or lower max_recursion_depth/any_value_depth"
            )
        dense = {state: i for i, state in enumerate(states)}
        table = np.full((len(states) + SPARE_ROWS, 256), -1, dtype=np.int32)
        next_state = table[: len(states)]
        for state, targets in raw.items():
            row = next_state[dense[state]]
            for byte, target in targets.items():
                if byte < 256:
                    row[byte] = dense[target]
        del raw, index
        accepting = np.zeros(len(states), dtype=bool)
        final_dense = np.array(sorted(dense[s] for s in finals), dtype=np.int64)
        current = np.arange(len(states))
        for byte in _SENTINEL:
            current = np.where(current >= 0, next_state[np.maximum(current, 0), byte], -1)
        hit = current >= 0
        accepting[hit] = np.isin(current[hit], final_dense)
        if _MARK_TEXT in regex:
            _drop_first_separators(next_state)
        next_state, accepting = exclude_sentinel_chars(table, accepting)
        if not accepting[0] and (next_state[0] < 0).all():
            raise UnsatisfiableConstraintError(
                "no text satisfies the constraint without U+10FFFD-U+10FFFF, which are never generated"
            )
        automaton = cls(next_state, accepting)
        logger.info("byte automaton: %d states in %.3fs", automaton.num_states, time.perf_counter() - start)
        return automaton

    def save(self, target: Union[Path, BinaryIO], meta: dict, sidecar: Optional[Path] = None) -> None:
        """Write the automaton and ``meta`` (a JSON-able dict) as ``.npz`` (no pickle).

        A table over 16 MB (16k states) goes to ``sidecar`` instead, a plain ``.npy`` that
        :meth:`load` memory-maps: a warm cache hit must take milliseconds, and reading (or
        inflating) a 128 MB table takes hundreds. Pages are then read as states are visited.
        The ``.npz`` is written last, so its presence means the sidecar is complete."""
        table = self.next_state
        if sidecar is None or table.nbytes <= _INLINE_BYTES:
            np.savez(target, next_state=table, accepting=self.accepting,
                     meta=np.frombuffer(json.dumps(meta).encode(), dtype=np.uint8))
            return
        write_atomically(sidecar, lambda handle: np.save(handle, np.ascontiguousarray(table)), "grammar table")
        stored = dict(meta, table={"shape": list(table.shape), "sample": _sample(table)})
        np.savez(target, accepting=self.accepting, meta=np.frombuffer(json.dumps(stored).encode(), dtype=np.uint8))

    @classmethod
    def load(cls, path: Union[Path, BinaryIO], meta: dict, sidecar: Optional[Path] = None) -> "ByteAutomaton":
        """Read a file written by :meth:`save`; raise ``ValueError`` unless it is intact and ``meta`` matches.

        ``sidecar``: where a large table is (default: ``path`` as ``.npy``). An inline table is
        checked entirely; a memory-mapped sidecar by dtype, shape and sampled rows (a full
        scan would read the whole file)."""
        with np.load(path, allow_pickle=False) as data:
            stored = json.loads(bytes(data["meta"]).decode())
            table_info = stored.pop("table", None)
            if stored != meta:
                raise ValueError(f"the file belongs to another constraint ({stored} != {meta})")
            accepting = data["accepting"]
            if table_info is None:
                automaton = cls(data["next_state"], accepting)
                automaton.validate()
                return automaton
        if sidecar is None:
            sidecar = Path(path).with_suffix(".npy")  # type: ignore[arg-type]
        table = np.load(sidecar, mmap_mode="r", allow_pickle=False)
        if list(table.shape) != table_info["shape"] or _sample(table) != table_info["sample"]:
            raise ValueError("the table file does not match its index")
        automaton = cls(table, accepting)
        automaton.validate(full=False)
        return automaton

    def validate(self, full: bool = True) -> None:
        """Raise ``ValueError`` if the arrays are inconsistent (a damaged file)."""
        table, accepting = self.next_state, self.accepting
        if table.dtype != np.int32 or accepting.dtype != np.bool_:
            raise ValueError("wrong dtypes")
        if table.ndim != 2 or table.shape[1] < 256 or accepting.shape != (table.shape[0],) or not table.shape[0]:
            raise ValueError("wrong shapes")
        if full and (table.min() < -1 or table.max() >= table.shape[0]):
            raise ValueError("transitions out of range")


_INLINE_BYTES = 16 << 20


def _sample(table: np.ndarray) -> str:
    """A digest of 64 rows spread over the table: catches a swapped or truncated sidecar cheaply."""
    rows = np.linspace(0, table.shape[0] - 1, num=min(64, table.shape[0])).astype(np.int64)
    return hashlib.blake2b(np.ascontiguousarray(table[rows]).tobytes(), digest_size=16).hexdigest()


def _drop_first_separators(next_state: np.ndarray) -> None:
    """Rewire every state that reads FIRST_MEMBER_MARK (see above), in place."""
    current = np.arange(next_state.shape[0])
    for byte in FIRST_MEMBER_MARK:
        current = np.where(current >= 0, next_state[np.maximum(current, 0), byte], -1)
    # Only states whose single way out is the mark: inside a string the same bytes are just
    # the character U+10FFFD (one of many transitions there).
    lone = (next_state >= 0).sum(axis=1) == 1
    for p in np.flatnonzero((current >= 0) & lone).tolist():
        q = int(current[p])
        row = np.full(256, -1, dtype=np.int32)
        r = int(next_state[q, ord(",")])
        if r >= 0:
            row[:] = next_state[r]
            row[ord(" ")] = -1  # no space before the first member
        row[ord("}")] = next_state[q, ord("}")]
        next_state[p] = row
