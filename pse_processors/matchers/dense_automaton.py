"""The dense automaton: the byte automaton over token equivalence classes, for in-graph processors.

Tokens that move every state the same way form one class; real grammars have a few dozen to
a few hundred classes over 49k-262k tokens. The grammar then needs only:

- ``token_class``: int32 ``[vocab]``, the class of each token id;
- ``transitions``: int32 ``[states, classes]``, the next state, or -1 when rejected;
- ``accepting``: bool ``[states]``.

The jit/XLA frameworks put them on the device; the eager processors read every state's mask
from them (``AutomatonMatcher.precompute_masks``: one gather per distinct allowed set instead
of a trie walk per state). They are small on disk (compressed ``.npz``).
"""

from __future__ import annotations

import json
import logging
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO, Union

import numpy as np

from ..deprecation import deprecated_names

logger = logging.getLogger(__name__)

# Each token's column of next states is hashed as sum over states of R[state] * (next + 1),
# twice with independent random odd weights (128 bits). A collision is astronomically
# unlikely, and materialize() checks every row anyway.
_SEED = 0x5EED_CAFE
# Rows kept during the hashing walk and compared with the filled table (about this many).
_CHECKED_ROWS = 16


@dataclass(frozen=True)
class DenseAutomaton:
    """The automaton as dense arrays; see the module docstring."""

    token_class: np.ndarray
    transitions: np.ndarray
    accepting: np.ndarray
    initial: int

    @property
    def num_states(self) -> int:
        return int(self.transitions.shape[0])

    @property
    def num_classes(self) -> int:
        return int(self.transitions.shape[1])

    def save(self, target: Union[Path, BinaryIO], meta: dict) -> None:
        """Write the tables and ``meta`` (a JSON-able dict) as ``.npz`` to a path or binary file."""
        np.savez_compressed(  # the transition table compresses ~15x
            target, token_class=self.token_class, transitions=self.transitions, accepting=self.accepting,
            initial=np.int64(self.initial), meta=np.frombuffer(json.dumps(meta).encode(), dtype=np.uint8),
        )

    @classmethod
    def load(cls, path: Union[Path, BinaryIO], meta: dict, vocab_size: int) -> "DenseAutomaton":
        """Read tables written by :meth:`save`; raise ``ValueError`` unless they are intact and ``meta`` matches."""
        with np.load(path, allow_pickle=False) as data:
            stored = json.loads(bytes(data["meta"]).decode())
            if stored != meta:
                raise ValueError(f"the file belongs to another grammar ({stored} != {meta})")
            tables = cls(data["token_class"], data["transitions"], data["accepting"], int(data["initial"]))
        tables.validate(vocab_size)
        return tables

    def validate(self, vocab_size: int) -> None:
        """Raise ``ValueError`` if the arrays are inconsistent (a damaged file)."""
        tc, tr, acc = self.token_class, self.transitions, self.accepting
        if tc.dtype != np.int32 or tr.dtype != np.int32 or acc.dtype != np.bool_:
            raise ValueError("wrong dtypes")
        if tc.shape != (vocab_size,) or tr.ndim != 2 or acc.shape != (tr.shape[0],):
            raise ValueError("wrong shapes")
        if tc.size and (tc.min() < 0 or tc.max() >= tr.shape[1]):
            raise ValueError("token classes out of range")
        if tr.size and (tr.min() < -1 or tr.max() >= tr.shape[0]):
            raise ValueError("transitions out of range")
        if not 0 <= self.initial < tr.shape[0]:
            raise ValueError("initial state out of range")


def materialize(next_state: np.ndarray, accepting: np.ndarray, trie: Any, vocab_size: int) -> DenseAutomaton:
    """Dense token-level tables from a byte automaton and a vocabulary's token trie.

    Only states reachable at token boundaries from the initial state get a row; the others
    (inside a multi-byte token) keep rows of -1. State ids are the byte automaton's, so they
    agree with :meth:`Matcher.step`. Each reachable state's row is walked once through the
    trie and hashed into the token classes (no ``[states, vocab]`` array is ever held); the
    table is then filled by walking one token per class from every state at once
    (:meth:`~pse_processors.vocabulary.token_trie.TokenTrie.walk_tokens`), and a sample of
    rows is checked against their walks.
    """
    start = time.perf_counter()
    num_states = int(next_state.shape[0])
    weights = np.random.default_rng(_SEED).integers(0, 2**63, size=(num_states, 2), dtype=np.uint64) * np.uint64(2) + np.uint64(1)
    h1 = np.zeros(vocab_size, dtype=np.uint64)
    h2 = np.zeros(vocab_size, dtype=np.uint64)
    seen = np.zeros(num_states, dtype=bool)
    seen[0] = True
    queue = [0]
    checks: dict[int, np.ndarray] = {}  # rows kept, spread over the walk, to check the filled table against
    stride, walked = max(1, num_states // _CHECKED_ROWS), 0
    while queue:
        state = queue.pop()
        row = trie.next_states(next_state, state)
        if walked % stride == 0:
            checks[state] = row
        walked += 1
        code = row.astype(np.uint64) + np.uint64(1)  # -1 (rejected) hashes as 0
        h1 += weights[state, 0] * code
        h2 += weights[state, 1] * (code * code + np.uint64(0x632BE59BD9B4E019))
        targets = np.unique(row[row >= 0])
        fresh = targets[~seen[targets]]
        seen[fresh] = True
        queue.extend(fresh.tolist())
    _, first, token_class = np.unique(np.stack([h1, h2], axis=1), axis=0, return_index=True, return_inverse=True)
    token_class = token_class.reshape(-1).astype(np.int32)
    transitions = np.full((num_states, max(len(first), 1)), -1, dtype=np.int32)
    reachable = np.flatnonzero(seen)
    transitions[reachable, : len(first)] = trie.walk_tokens(next_state, reachable, first)
    for state, row in checks.items():
        if not np.array_equal(transitions[state, token_class], row):
            raise RuntimeError("token equivalence classes collided; please report this schema")
    tables = DenseAutomaton(token_class, transitions, accepting.copy(), 0)
    logger.info(
        "materialized tables: %d states (%d reachable) x %d classes (%d tokens) in %.2fs",
        num_states, int(seen.sum()), tables.num_classes, vocab_size, time.perf_counter() - start,
    )
    return tables


def reachable_states(tables: DenseAutomaton) -> np.ndarray:
    """Sorted int64 ids of the states reachable at token boundaries from ``tables.initial``.

    Example:
        >>> tables = DenseAutomaton(np.array([0, 1], dtype=np.int32), np.array([[1, -1], [-1, 1], [0, 0]], dtype=np.int32),
        ...                         np.array([False, True, False]), 0)
        >>> reachable_states(tables).tolist()
        [0, 1]
    """
    seen = np.zeros(tables.num_states, dtype=bool)
    seen[tables.initial] = True
    frontier = np.array([tables.initial], dtype=np.int64)
    while frontier.size:
        targets = np.unique(tables.transitions[frontier])
        targets = targets[targets >= 0]
        frontier = targets[~seen[targets]]
        seen[frontier] = True
    return np.flatnonzero(seen)


__getattr__ = deprecated_names(__name__, {"GrammarTables": (DenseAutomaton, "DenseAutomaton")})
