"""The eager processors' mask table: one device table per matcher and context, rows gathered per batch.

A numpy array stands in for the device. Every row handed out must hold its state's mask, also
when the byte budget forces rows to be reused, and one call never loses a row it is using.
"""

from __future__ import annotations

import random

import numpy as np

import pse_processors as pse
from pse_processors.runtime.mask_table import MaskTable, TableOps

VOCAB = pse.Vocabulary([b"a", b"b", b"c", b"ab", b"ca", None], eos_token_ids=[5])
REGEX = "[ab]{0,3}c[abc]{0,2}"  # masks differ from state to state
WIDTH = 8  # padded logits: ids past the vocabulary are always masked


def _numpy_ops(allocations: list) -> TableOps:
    def allocate(rows, old):
        allocations.append(rows)
        table = np.full((rows, WIDTH), np.nan, dtype=np.float32)  # NaN: a row read before its write shows
        if old is not None:
            table[: len(old)] = old
        return table

    def write(table, row, additive):
        table[row] = additive

    return TableOps(allocate, write)


def _expected(matcher, state):
    return np.where(matcher.allowed_mask(state, WIDTH), np.float32(0), np.float32(-np.inf))


def _states(matcher, count, seed):
    """``count`` states along random paths (DONE included), so that many distinct masks come up."""
    rng = random.Random(seed)
    states = []
    while len(states) < count:
        state = matcher.initial_state
        for _ in range(rng.randint(0, 6)):
            allowed = matcher.allowed_token_ids(state).tolist()
            state = matcher.advance(state, rng.choice(allowed))
        states.append(state)
    return states


def test_rows_hold_each_states_mask_and_the_table_grows_by_doubling():
    matcher = pse.compile(pse.Regex(REGEX), VOCAB, backend="dfa")
    allocations: list = []
    table = MaskTable(matcher, WIDTH, _numpy_ops(allocations), max_bytes=1 << 20, row_bytes=WIDTH * 4)
    for seed in range(20):
        states = _states(matcher, 7, seed)
        rows = table.rows(states)
        for state, row in zip(states, rows):
            assert np.array_equal(table.table[row], _expected(matcher, state))
    assert len(table) == matcher.num_masks + 1  # every mask id, and DONE's
    assert allocations and allocations[0] == 16 and all(b == 2 * a for a, b in zip(allocations, allocations[1:]))


def test_a_budget_of_two_rows_reuses_rows_and_never_loses_one_a_call_needs():
    matcher = pse.compile(pse.Regex(REGEX), VOCAB, backend="dfa")
    allocations: list = []
    table = MaskTable(matcher, WIDTH, _numpy_ops(allocations), max_bytes=2 * WIDTH * 4, row_bytes=WIDTH * 4)
    distinct = 0
    for seed in range(40):
        states = _states(matcher, 5, seed)
        rows = table.rows(states)  # up to 5 distinct masks in one call: all kept for it
        distinct = max(distinct, len({matcher.mask_id(s) for s in states}))
        for state, row in zip(states, rows):
            assert np.array_equal(table.table[row], _expected(matcher, state))
    assert distinct > 2, "no call needed more masks than the budget: the test proves nothing"
    assert max(allocations) <= distinct + 1
