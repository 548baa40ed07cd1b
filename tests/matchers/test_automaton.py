"""The matcher API on the byte automaton: states, masks, bitmasks, ``step`` and the dense automaton
(the whole automaton over token classes that the in-graph processors run)."""

from __future__ import annotations

import numpy as np

import pse_processors as pse
from pse_processors.matchers.automaton import DEAD, DONE

VOCAB = pse.Vocabulary([b"{", b"}", b'"a"', b":", b" ", b"1", b"2", b",", b"-", None, b"x"], eos_token_ids=[9])
SCHEMA = {"type": "object", "properties": {"a": {"type": "integer"}}, "required": ["a"]}


def test_matcher_api(disk_cache):
    grammar = pse.compile(SCHEMA, VOCAB, backend="dfa")
    state = grammar.initial_state
    assert grammar.allowed_token_ids(state).tolist() == [0]
    assert not grammar.is_accepting(state)
    for token in [0, 2, 3, 4, 5, 6]:
        assert token in grammar.allowed_token_ids(state)
        state = grammar.advance(state, token)
        assert state is not None
    assert grammar.advance(state, 10) is None
    assert 9 not in grammar.allowed_token_ids(state)
    state = grammar.advance(state, 1)
    assert grammar.is_accepting(state)
    assert grammar.allowed_token_ids(state).tolist() == [9]
    assert grammar.advance(state, 9) == DONE and grammar.allowed_token_ids(DONE).tolist() == [9]
    assert grammar.advance(grammar.initial_state, 9) is None
    assert grammar.accepts([0, 2, 3, 5, 1]) and grammar.accepts([0, 2, 3, 5, 1, 9])
    assert not grammar.accepts([0, 2, 3, 5]) and not grammar.accepts([0, 2, 3, 1])
    assert grammar.walk([0, 10]) == DEAD and grammar.allowed_token_ids(DEAD).tolist() == [9]


def test_bitmask_matches_allowed_ids(disk_cache):
    grammar = pse.compile(SCHEMA, VOCAB, backend="dfa")
    state = grammar.walk([0, 2, 3])
    mask = grammar.bitmask(state)
    assert mask.dtype == np.int32 and mask.shape == ((VOCAB.size + 31) // 32,)
    bits = np.unpackbits(mask.view(np.uint8), bitorder="little")
    assert np.flatnonzero(bits).tolist() == grammar.allowed_token_ids(state).tolist() == [4, 5, 6, 8]
    wide = grammar.allowed_mask(state, 40)
    assert wide.shape == (40,) and np.flatnonzero(wide).tolist() == [4, 5, 6, 8]


def test_step_agrees_with_advance(disk_cache):
    grammar = pse.compile(SCHEMA, VOCAB, backend="dfa")
    states = _reachable(grammar)  # the states between tokens
    assert len(states) > 5
    for state in states:
        for token in range(-1, VOCAB.size + 2):
            assert grammar.step(state, token) == grammar.advance(state, token)
    for token in range(-1, VOCAB.size + 2):
        assert grammar.step(DONE, token) == DONE  # generate pads finished rows
    # States with the same allowed set share one mask id, and only those.
    for a in states:
        for b in states:
            same = np.array_equal(grammar.allowed_mask(a), grammar.allowed_mask(b))
            assert same == (grammar.mask_id(a) == grammar.mask_id(b))


def _reachable(grammar):
    states, queue = {grammar.initial_state}, [grammar.initial_state]
    while queue:
        state = queue.pop()
        for token in grammar.allowed_token_ids(state).tolist():
            nxt = grammar.advance(state, token)
            if nxt is not None and nxt >= 0 and nxt not in states:
                states.add(nxt)
                queue.append(nxt)
    return sorted(states)


def test_materialized_tables_agree_with_lazy_walk(disk_cache):
    grammar = pse.compile(SCHEMA, VOCAB, backend="dfa")
    tables = grammar.dense_automaton
    for state in _reachable(grammar):
        row = tables.transitions[state][tables.token_class]
        for token in range(VOCAB.size):
            expected = grammar.advance(state, token)
            if token in VOCAB.eos_token_ids:
                continue
            assert row[token] == (-1 if expected is None else expected)
        assert tables.accepting[state] == grammar.is_accepting(state)
