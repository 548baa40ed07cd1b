"""The framework-free device tables that the TF/Flax processors run on (numpy only).

They must give exactly the masks of ``Matcher.allowed_mask`` (what the PyTorch
processor applies) along every valid path, handle EOS/padding/rejections with their own
states, cover logits wider than the tokenizer, and refuse oversized grammars by name.
"""

from __future__ import annotations

import numpy as np
import pytest

import pse_processors as pse
from pse_processors.runtime.device_tables import DEFAULT_MAX_TABLE_BYTES, InGraphConstraint, device_tables, table_bytes
from tests.helpers import FUZZ_SCHEMAS


@pytest.fixture(scope="module")
def toy_vocab():
    tokens = [b'{"a":', b"1", b"2", b"}", b" ", b"[", b"]", b",", b'"', b"x", None, None]
    return pse.Vocabulary(tokens, eos_token_ids=[10])


def random_walk(grammar, rng, steps):
    """A random valid token sequence (EOS once accepting, sometimes) and the grammar states."""
    state, tokens = grammar.initial_state, []
    eos = sorted(grammar.vocabulary.eos_token_ids)
    for _ in range(steps):
        allowed = grammar.allowed_token_ids(state)
        token = int(rng.choice(allowed))
        tokens.append(token)
        if token in eos:
            break
        state = grammar.advance(state, token)
    return tokens


@pytest.mark.parametrize("schema_index", [0, 1, 4, 8, 11, 15, 17, 18])
def test_masks_equal_the_grammar_along_random_walks(schema_index, smol_tokenizer):
    grammar = pse.compile(FUZZ_SCHEMAS[schema_index], smol_tokenizer, backend="dfa")  # device tables: the automaton
    width = grammar.vocab_size + 64
    tables = device_tables(grammar, width)
    rng = np.random.default_rng(schema_index)
    for _ in range(5):
        tokens = random_walk(grammar, rng, 40)
        state, dstate = grammar.initial_state, tables.initial
        for token in tokens:
            assert np.array_equal(tables.allowed_mask(dstate), grammar.allowed_mask(state, width))
            dstate = tables.walk([token], dstate)
            state = grammar.advance(state, token)
            assert (dstate == tables.done) == (state == pse.matchers.automaton.DONE)
        # Padding after EOS keeps DONE; it allows only EOS, like the PyTorch processor.
        if state == pse.matchers.automaton.DONE:
            after = tables.walk([0, 5, width - 1], dstate)
            assert after == tables.done
            assert np.flatnonzero(tables.allowed_mask(after)).tolist() == sorted(grammar.vocabulary.eos_token_ids)


def test_dead_state_and_out_of_range_ids(toy_vocab):
    grammar = pse.compile({"type": "integer"}, toy_vocab, backend="dfa")
    tables = device_tables(grammar, width=14)
    assert tables.num_states == grammar.num_states + 2 and tables.token_class.shape == (15,)
    for bad in ([0], [10], [11], [12], [13], [-1], [10**6]):  # rejected, EOS too early, no token, past width
        state = tables.walk(bad)
        assert state == tables.dead, bad
        assert np.flatnonzero(tables.allowed_mask(state)).tolist() == [10]  # EOS only: scores stay finite
    assert tables.walk([1, 10]) == tables.done and tables.walk([1, 10, 13, 1, 10]) == tables.done
    assert not tables.allowed_mask(tables.walk([1]))[11:].any()  # ids past the tokenizer: never


def test_cached_per_grammar_and_width(toy_vocab):
    grammar = pse.compile(pse.Regex("1+"), toy_vocab)
    assert device_tables(grammar, 12) is device_tables(grammar, 12)
    assert device_tables(grammar, 16) is not device_tables(grammar, 12)
    assert device_tables(grammar).width == grammar.vocab_size


def test_size_limit_is_a_named_error(toy_vocab):
    grammar = pse.compile(pse.Regex("[12]{0,40}"), toy_vocab)
    need = table_bytes(grammar.num_states, grammar.dense_automaton.num_classes, 12)
    with pytest.raises(pse.CompileLimitError, match="max_table_bytes"):
        device_tables(grammar, 12, max_bytes=need - 1)
    assert device_tables(grammar, 12, max_bytes=need).nbytes == need
    with pytest.raises(pse.CompileLimitError, match="max_table_bytes"):  # also once cached
        device_tables(grammar, 12, max_bytes=need - 1)
    assert DEFAULT_MAX_TABLE_BYTES >= 1 << 20


def test_narrow_logits_are_refused(toy_vocab):
    grammar = pse.compile(pse.Regex("1"), toy_vocab)
    with pytest.raises(pse.VocabularyError, match="only 5 wide"):
        device_tables(grammar, 5)
    assert device_tables(grammar, 11).width == 11  # only an unusable id (None) past the width: fine


def test_prompt_boundary(toy_vocab):
    grammar = pse.compile(pse.Regex("1"), toy_vocab)
    with pytest.raises(ValueError, match="max_new_tokens"):
        InGraphConstraint(grammar)
    with pytest.raises(ValueError, match="non-negative"):
        InGraphConstraint(grammar, max_new_tokens=-1)
    assert InGraphConstraint(grammar, max_new_tokens=8).prompt_length_for(20) == 12
    assert InGraphConstraint(grammar, prompt_length=5).prompt_length_for(20) == 5
    with pytest.raises(pse.InvalidLogitsError, match="max_new_tokens"):
        InGraphConstraint(grammar, max_new_tokens=30).prompt_length_for(20)
