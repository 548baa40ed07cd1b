"""backend="auto"'s warm start: the grammar engine answers until the byte automaton is built.

The masks must be the automaton's own before, across and after the hand-off, states handed
out before it must keep working after it, and a failed or abandoned build must leave a
working grammar.
"""

from __future__ import annotations

import gc
import os
import pickle
import random
import threading

import numpy as np
import pytest

import pse_processors as pse
from pse_processors.compiler import backends as engine_choice
from pse_processors.matchers import handoff
from pse_processors.runtime.device_tables import in_graph_constraint
from pse_processors.errors import CompileLimitError
from pse_processors.matchers.handoff import AUTOMATON_OFFSET, HandoffMatcher

SCHEMA = {
    "type": "object",
    "properties": {"name": {"type": "string", "maxLength": 8}, "age": {"type": "integer", "minimum": 0},
                   "tags": {"type": "array", "items": {"enum": ["a", "b"]}, "maxItems": 3}},
    "required": ["name"],
    "additionalProperties": {"type": "boolean"},
}


@pytest.fixture(scope="module")
def vocab(smol_tokenizer):
    return pse.Vocabulary.from_tokenizer(smol_tokenizer)


def _gated(vocab, schema=SCHEMA):
    """A HandoffMatcher whose automaton build waits for the returned event, and the automaton grammar."""
    dfa = pse.compile(schema, vocab, backend="dfa")
    spec, _ = engine_choice.grammar_spec(schema, pse.json_schema.SchemaOptions())
    pushdown = engine_choice.pushdown_grammar(spec, vocab)
    gate = threading.Event()

    def build():
        assert gate.wait(60)
        return dfa

    return HandoffMatcher(pushdown, dfa.spec, build), dfa, gate


def _compare(grammar, dfa, state, dfa_state, vocab):
    mask = grammar.allowed_mask(state)
    expected = dfa.allowed_mask(dfa_state)
    assert (mask == expected).all()  # plane 16 included (tests/matchers/test_plane16.py)
    assert grammar.is_accepting(state) == dfa.is_accepting(dfa_state)
    bits = np.unpackbits(grammar.bitmask(state).view(np.uint8), bitorder="little")[: vocab.size].astype(bool)
    assert (bits == mask).all()
    return expected


def test_compile_auto_warm_starts_when_no_cache_holds_the_automaton(no_disk_cache, vocab, smol_tokenizer):
    grammar = pse.compile(SCHEMA, vocab)
    assert isinstance(grammar, HandoffMatcher) and grammar.backend == "dfa"
    assert pse.compile(SCHEMA, vocab) is grammar  # one grammar per constraint, as before
    automaton = grammar.settled(timeout=60)
    assert grammar.ready and automaton.backend == "dfa" and not isinstance(automaton, HandoffMatcher)
    assert grammar.initial_state >= AUTOMATON_OFFSET  # new generations start on the automaton
    text = '{"name":"ab","age":3,"x":true}'
    tokens = smol_tokenizer.encode(text, add_special_tokens=False)
    eos = min(vocab.eos_token_ids)
    assert grammar.accepts(tokens + [eos]) and not grammar.accepts(tokens[:-1] + [eos])
    # explicit engines are untouched
    assert not isinstance(pse.compile(SCHEMA, vocab, backend="dfa"), HandoffMatcher)
    assert pse.compile(SCHEMA, vocab, backend="llguidance").backend == "llguidance"


def test_recursive_schemas_and_regexes_do_not_warm_start(no_disk_cache, vocab):
    assert pse.compile({"type": "array", "items": {"$ref": "#"}}, vocab).backend == "llguidance"
    assert not isinstance(pse.compile(pse.Regex("[a-z]{3}"), vocab), HandoffMatcher)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_masks_are_the_automatons_before_across_and_after_the_handoff(vocab, seed):
    grammar, dfa, gate = _gated(vocab)
    rng = random.Random(seed)
    state, dfa_state = grammar.initial_state, dfa.initial_state
    assert state == 0  # on the grammar engine
    kept = []  # (grammar-engine state, automaton state) pairs to continue after the hand-off
    handed_off = False
    for step in range(80):
        if step == 4:
            gate.set()
            grammar.settled(timeout=60)
            handed_off = True
        allowed = _compare(grammar, dfa, state, dfa_state, vocab)
        choices = np.flatnonzero(allowed).tolist()
        if not handed_off:  # keep going until the hand-off
            kept.append((state, dfa_state))
            choices = [t for t in choices if t not in vocab.eos_token_ids] or choices
        token = rng.choice(choices)
        if token in vocab.eos_token_ids:
            assert grammar.advance(state, token) == pse.matchers.automaton.DONE
            break
        state, dfa_state = grammar.advance(state, token), dfa.advance(dfa_state, token)
        assert state is not None and dfa_state is not None
        assert (state >= AUTOMATON_OFFSET) == handed_off
    assert handed_off
    # states from before the hand-off still answer, now on the automaton
    for old, old_dfa in kept:
        allowed = _compare(grammar, dfa, old, old_dfa, vocab)
        token = rng.choice(np.flatnonzero(allowed).tolist())
        nxt = grammar.advance(old, token)
        if token not in vocab.eos_token_ids:
            assert nxt >= AUTOMATON_OFFSET and nxt - AUTOMATON_OFFSET == dfa.advance(old_dfa, token)
    # a rejected token is rejected on both sides of the hand-off
    bad = int(np.flatnonzero(~dfa.allowed_mask(dfa.initial_state))[0])
    assert grammar.advance(0, bad) is None and grammar.advance(grammar.initial_state, bad) is None


def test_mask_ids_are_shared_across_engines(vocab):
    grammar, dfa, gate = _gated(vocab)
    before = grammar.mask_id(0)
    gate.set()
    grammar.settled(timeout=60)
    assert grammar.mask_id(grammar.initial_state) == before  # one id per allowed set, whichever engine computed it


def test_a_failed_build_stays_on_the_grammar_engine(vocab, smol_tokenizer):
    dfa = pse.compile(SCHEMA, vocab, backend="dfa")
    spec, _ = engine_choice.grammar_spec(SCHEMA, pse.json_schema.SchemaOptions())
    pushdown = engine_choice.pushdown_grammar(spec, vocab)

    def build():
        raise CompileLimitError("too large, for the test")

    grammar = HandoffMatcher(pushdown, dfa.spec, build)
    with pytest.raises(CompileLimitError, match="for the test"):
        grammar.settled(timeout=60)
    assert grammar.backend == "llguidance" and not grammar.ready and grammar.initial_state == 0
    tokens = smol_tokenizer.encode('{"name":"x"}', add_special_tokens=False)
    state = grammar.walk(tokens)
    assert 0 < state < AUTOMATON_OFFSET and grammar.is_accepting(state)
    assert grammar.accepts(tokens + [min(vocab.eos_token_ids)])


def test_an_abandoned_grammar_skips_its_build(vocab):
    first, _, gate = _gated(vocab)  # holds the builder thread
    built = []
    dfa = pse.compile(SCHEMA, vocab, backend="dfa")
    second = HandoffMatcher(first._shared.pushdown, dfa.spec, lambda: built.append(1) or dfa)
    del second
    gc.collect()
    gate.set()
    assert handoff.wait_for_builds(60)
    assert first.ready and built == []


def test_in_graph_processors_get_the_automaton_and_pickles_rebuild_it(no_disk_cache, vocab):
    grammar = pse.compile(SCHEMA, vocab)
    assert isinstance(grammar, HandoffMatcher)
    constraint = in_graph_constraint(
        "TFLogitsProcessor", grammar, None, max_new_tokens=8, prompt_length=None, generation_config=None,
        eos_token_ids=None, max_table_bytes=1 << 30, compile_options={},
    )
    assert constraint.matcher is grammar.settled()
    clone = pickle.loads(pickle.dumps(grammar))
    assert clone.backend == "dfa"
    assert (clone.allowed_mask(clone.initial_state) == grammar.allowed_mask(grammar.initial_state)).all()


@pytest.mark.skipif(not hasattr(os, "fork"), reason="no fork on this platform")
def test_a_forked_child_builds_what_the_parent_was_building(vocab):
    grammar, dfa, gate = _gated(vocab)  # its build is running (held by the gate) at the fork
    pid = os.fork()
    if pid == 0:  # the child: no builder thread was copied; the build must start again here
        code = 1
        try:
            gate.set()
            code = 0 if grammar.settled(timeout=60) is dfa and grammar.ready else 2
        finally:
            os._exit(code)
    _, status = os.waitpid(pid, 0)
    gate.set()
    assert grammar.settled(timeout=60) is dfa
    assert os.WIFEXITED(status) and os.WEXITSTATUS(status) == 0
