"""Dense state tables with token equivalence classes, built once from an outlines-core index.

Tokens that move every state the same way form one class; real grammars have a few dozen to
a few hundred classes over 49k-262k tokens. The grammar then needs only:

- ``token_class``: int32 ``[vocab]``, the class of each token id;
- ``transitions``: int32 ``[states, classes]``, the next state, or -1 when rejected;
- ``accepting``: bool ``[states]``.

These tables replace the index at run time, are small on disk (compressed ``.npz``, no pickle), and
are what the jit/XLA frameworks put on the device.
"""

from __future__ import annotations

import json
import logging
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO, Union

import numpy as np

logger = logging.getLogger(__name__)

# Each token's column of next states is hashed as sum over states of R[state] * (next + 1),
# twice with independent random odd weights (128 bits): work grows with the number of
# transitions, not states x vocabulary. A collision is astronomically unlikely, and
# _check_classes would still catch it.
_SEED = 0x5EED_CAFE


@dataclass(frozen=True)
class GrammarTables:
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
    def load(cls, path: Path, meta: dict, vocab_size: int) -> "GrammarTables":
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


def build_tables(index: Any, vocab_size: int) -> GrammarTables:
    """Tables from an outlines-core index built over ``vocab_size`` tokens plus the end sentinel.

    The sentinel's id is ``vocab_size`` (see ``cache._build_index``): a state is accepting when
    the sentinel leads to a final state. Ids above it (outlines' own EOS) are ignored.
    """
    start = time.perf_counter()
    raw: dict = index.get_transitions()
    initial = index.get_initial_state()
    states = [initial] + sorted(s for s in raw if s != initial)
    sentinel = vocab_size
    accepting = np.zeros(len(states), dtype=bool)
    pairs = []
    for dense, state in enumerate(states):
        targets = raw.get(state, {})
        after_sentinel = targets.get(sentinel)
        accepting[dense] = after_sentinel is not None and index.is_final_state(after_sentinel)
        keys = np.fromiter(targets.keys(), dtype=np.int64, count=len(targets))
        values = np.fromiter(targets.values(), dtype=np.int64, count=len(targets))
        keep = keys < vocab_size
        pairs.append((keys[keep], values[keep]))
    del raw
    top = max([max(states)] + [int(values.max()) for _, values in pairs if values.size])
    lut = np.full(top + 1, -1, np.int32)
    lut[states] = np.arange(len(states), dtype=np.int32)
    rows: list[tuple[np.ndarray, np.ndarray]] = []
    h1 = np.zeros(vocab_size, dtype=np.uint64)
    h2 = np.zeros(vocab_size, dtype=np.uint64)
    weights = np.random.default_rng(_SEED).integers(0, 2**63, size=(len(states), 2), dtype=np.uint64) * np.uint64(2) + np.uint64(1)
    for dense, (keys, targets) in enumerate(pairs):
        values = lut[targets]
        if (values < 0).any():
            raise ValueError("the index leads to a state it does not describe")
        rows.append((keys, values))
        code = values.astype(np.uint64) + np.uint64(1)
        h1[keys] += weights[dense, 0] * code  # keys are unique within a state
        h2[keys] += weights[dense, 1] * (code * code + np.uint64(0x632BE59BD9B4E019))
    _, token_class = np.unique(np.stack([h1, h2], axis=1), axis=0, return_inverse=True)
    token_class = token_class.reshape(-1).astype(np.int32)
    transitions = np.full((len(states), int(token_class.max()) + 1 if vocab_size else 1), -1, dtype=np.int32)
    for dense, (keys, values) in enumerate(rows):
        transitions[dense, token_class[keys]] = values
    tables = GrammarTables(token_class, transitions, accepting, 0)
    _check_classes(tables, rows)
    logger.info(
        "built tables: %d states x %d classes (%d tokens) in %.2fs",
        tables.num_states, tables.num_classes, vocab_size, time.perf_counter() - start,
    )
    return tables


def _check_classes(tables: GrammarTables, rows: list) -> None:
    """Every token must behave exactly as its class: catch a hash collision, never trust it.

    Per state: the allowed tokens' classes lead where the tokens do, and the allowed classes
    hold exactly as many tokens as the state allows (so no disallowed token shares a class
    with an allowed one)."""
    class_size = np.bincount(tables.token_class, minlength=tables.num_classes)
    for dense, (keys, values) in enumerate(rows):
        row = tables.transitions[dense]
        if int(class_size[row >= 0].sum()) != len(keys) or not np.array_equal(row[tables.token_class[keys]], values):
            raise RuntimeError("token equivalence classes collided; please report this schema")
