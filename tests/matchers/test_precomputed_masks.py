"""No first-visit walk on the decode path: once ``backend="auto"`` hands a schema to its byte
automaton, every mask of that automaton was computed on the background thread that built it.

The token trie's walk is instrumented with the thread that runs it: a walk on the caller's
thread after the hand-off fails the test. The precomputed masks must be the ones a lazy walk
gives, state by state, and the mask ids must group states exactly as before.
"""

from __future__ import annotations

import random
import threading
import uuid

import numpy as np
import pytest

import pse_processors as pse
from pse_processors import defaults
from pse_processors.caching.lru import SizedLRU
from pse_processors.matchers import automaton as automaton_module
from pse_processors.matchers import handoff
from pse_processors.matchers.automaton import AutomatonMatcher
from pse_processors.matchers.handoff import HandoffMatcher
from pse_processors.runtime.eager import EagerProcessor
from pse_processors.vocabulary.token_trie import TokenTrie


def _schema() -> dict:
    """A schema no cache holds yet (a fresh constant), with strings, numbers, enums and arrays."""
    return {
        "type": "object",
        "properties": {
            "id": {"const": str(uuid.uuid4())[:8]},
            "name": {"type": "string", "maxLength": 12},
            "age": {"type": "integer", "minimum": 0},
            "role": {"enum": ["admin", "guest"]},
            "tags": {"type": "array", "items": {"type": "string", "maxLength": 6}, "maxItems": 2},
        },
        "required": ["id", "name", "role"],
        "additionalProperties": False,
    }


@pytest.fixture
def disk_cache(monkeypatch, tmp_path):
    folder = tmp_path / "cache"
    monkeypatch.setenv("PSE_PROCESSORS_CACHE_DIR", str(folder))
    pse.clear_memory_cache()
    yield folder
    handoff.wait_for_builds(120)
    pse.clear_memory_cache()


@pytest.fixture(scope="module")
def vocab(smol_tokenizer):
    return pse.Vocabulary.from_tokenizer(smol_tokenizer)


@pytest.fixture
def trie_walks(monkeypatch):
    """The thread idents of every trie walk from now on (a list that grows)."""
    seen: list[int] = []
    original = TokenTrie.node_states

    def recorded(self, next_state, state):
        seen.append(threading.get_ident())
        return original(self, next_state, state)

    monkeypatch.setattr(TokenTrie, "node_states", recorded)
    return seen


def _random_walks(matcher, vocab, seeds, steps=60):
    """Masks along random paths of allowed tokens (EOS only at the end): ``[(state, mask, bitmask)]``."""
    seen = []
    eos = vocab.eos_token_ids
    for seed in seeds:
        rng = random.Random(seed)
        state = matcher.initial_state
        for _ in range(steps):
            mask = matcher.allowed_mask(state)
            seen.append((state, mask, matcher.bitmask(state)))
            choices = [t for t in np.flatnonzero(mask).tolist() if t not in eos]
            if not choices:
                break
            state = matcher.advance(state, rng.choice(choices))
            assert state is not None
    return seen


def _lazy_twin(matcher: AutomatonMatcher, vocab) -> AutomatonMatcher:
    """The same automaton with nothing precomputed: every mask walks the trie."""
    return AutomatonMatcher(matcher.automaton, matcher.trie, vocab, matcher.spec)


def test_no_mask_of_a_handed_off_automaton_walks_the_trie_on_the_callers_thread(no_disk_cache, vocab, trie_walks):
    grammar = pse.compile(_schema(), vocab)
    assert isinstance(grammar, HandoffMatcher)
    automaton = grammar.settled(timeout=120)
    builder = [ident for ident in trie_walks if ident != threading.get_ident()]
    assert len(builder) > 10, "the background thread walked no state: nothing was precomputed"
    assert automaton._precomputed is not None
    del trie_walks[:]
    walked = _random_walks(grammar, vocab, seeds=range(6))
    walked += _random_walks(automaton, vocab, seeds=range(6, 9))
    assert len(walked) > 100
    assert trie_walks == [], f"{len(trie_walks)} masks walked the trie on the caller's thread after the hand-off"
    # the same masks as a lazy walk of the same automaton gives (the hand-off is invisible)
    lazy = _lazy_twin(automaton, vocab)
    for state, mask, bitmask in walked:
        inner = state - handoff.AUTOMATON_OFFSET if state >= handoff.AUTOMATON_OFFSET else state
        assert (mask == lazy.allowed_mask(inner)).all()
        assert (bitmask == lazy.bitmask(inner)).all()


def test_over_the_state_limit_masks_stay_lazy(no_disk_cache, vocab, trie_walks, monkeypatch):
    """The bound: an automaton over PRECOMPUTE_MAX_STATES is handed over with lazy masks, which then
    walk the trie on the caller's thread (so the instrumented walk does see such walks)."""
    monkeypatch.setattr(defaults, "PRECOMPUTE_MAX_STATES", 5)
    grammar = pse.compile(_schema(), vocab)
    automaton = grammar.settled(timeout=120)
    assert automaton._precomputed is None
    del trie_walks[:]
    _random_walks(grammar, vocab, seeds=[0])
    assert threading.get_ident() in trie_walks


def test_precomputed_masks_and_ids_agree_with_lazy_walks_on_every_reachable_state(no_disk_cache, vocab, trie_walks):
    matcher = pse.compile(_schema(), vocab, backend="dfa")
    lazy = _lazy_twin(matcher, vocab)
    cost = matcher.precompute_masks()
    assert cost["states"] > 50 and 1 < cost["masks"] <= cost["states"] and cost["bytes"] > 0
    del trie_walks[:]
    states = sorted(s for s in matcher._mask_of_state if matcher._precomputed[s])
    assert len(states) == cost["states"]
    groups: dict[int, int] = {}
    for state in states:
        assert (matcher.allowed_mask(state) == lazy.allowed_mask(state)).all()
        assert (matcher.bitmask(state) == lazy.bitmask(state)).all()
        # equal ids exactly where the lazy matcher gives equal ids
        assert groups.setdefault(lazy.mask_id(state), matcher.mask_id(state)) == matcher.mask_id(state)
    assert len(set(groups.values())) == len(groups) == cost["masks"]
    reads = len(trie_walks)
    assert reads == len(states)  # the lazy twin's walks only: the precomputed matcher walked none


def test_an_evicted_mask_is_read_from_the_token_classes_not_the_trie(no_disk_cache, vocab, trie_walks):
    matcher = pse.compile(_schema(), vocab, backend="dfa")
    matcher.precompute_masks()
    matcher._packed = SizedLRU(1, lambda mask: mask.nbytes)  # keeps only the newest mask
    matcher._masks = SizedLRU(1, lambda mask: mask.nbytes)
    del trie_walks[:]
    walked = _random_walks(matcher, vocab, seeds=[1, 2])
    assert len(walked) > 20 and trie_walks == []
    lazy = _lazy_twin(matcher, vocab)
    assert all((bitmask == lazy.bitmask(state)).all() for state, _, bitmask in walked)


def test_a_caller_that_wants_few_masks_turns_the_precomputation_off(no_disk_cache, vocab, trie_walks):
    """``HandoffMatcher.precompute = False`` (the vLLM processor): the builder thread builds the
    automaton but computes none of its masks; each is computed on first use, and equals a lazy walk's."""
    grammar = pse.compile(_schema(), vocab)
    assert isinstance(grammar, HandoffMatcher) and grammar.precompute
    grammar.precompute = False
    automaton = grammar.settled(timeout=120)
    handoff.wait_for_builds(120)
    assert automaton._precomputed is None
    # the builder computes the initial state's mask only (the compiler's check that the tokenizer can start)
    assert len([ident for ident in trie_walks if ident != threading.get_ident()]) <= 1, "the builder walked the trie"
    del trie_walks[:]
    walked = _random_walks(grammar, vocab, seeds=[0, 1])
    assert len(walked) > 20 and threading.get_ident() in trie_walks  # masks walked on first use, here
    lazy = _lazy_twin(automaton, vocab)
    for state, mask, _ in walked:
        inner = state - handoff.AUTOMATON_OFFSET if state >= handoff.AUTOMATON_OFFSET else state
        assert (mask == lazy.allowed_mask(inner)).all()


@pytest.mark.parametrize("tables_on_disk", [True, False])
def test_no_mask_of_an_automaton_loaded_from_disk_walks_the_trie_on_the_callers_thread(
    disk_cache, vocab, trie_walks, monkeypatch, tables_on_disk
):
    """The warm case: a later compile loads the automaton from the disk cache (no hand-off). Building
    an eager processor over it queues the same precomputation on the builder thread, which reads the
    dense automaton the first precomputation wrote (or, when it is gone, builds and writes it again)."""
    schema = _schema()
    pse.compile(schema, vocab).settled(timeout=120)
    handoff.wait_for_builds(120)
    tables = [path for path in disk_cache.rglob("*.npz") if path.parent.name == "tables"]
    assert len(tables) == 1, "the hand-off's precomputation did not write the dense automaton"
    if tables_on_disk:
        def built(*args, **kwargs):
            raise AssertionError("the dense automaton was built again, not read from the disk cache")

        monkeypatch.setattr(automaton_module, "materialize", built)
    else:
        tables[0].unlink()
    pse.clear_memory_cache()
    matcher = pse.compile(schema, vocab)
    assert type(matcher) is AutomatonMatcher and matcher._precomputed is None  # loaded, not handed off
    del trie_walks[:]  # the compiler's own check of the first mask
    processor = EagerProcessor("EagerProcessor", matcher)
    assert handoff.wait_for_builds(120) and matcher.mask_precompute is not None
    caller = threading.get_ident()
    builder = [ident for ident in trie_walks if ident != caller]
    assert caller not in trie_walks
    if tables_on_disk:
        assert builder == []  # every mask read from the stored token classes
    else:
        assert len(builder) > 10 and tables[0].is_file()  # walked once more, and written again
    del trie_walks[:]
    walked = _random_walks(processor.matcher, vocab, seeds=range(4))
    assert len(walked) > 60
    assert trie_walks == [], f"{len(trie_walks)} masks of the loaded automaton walked the trie on the caller's thread"
    lazy = _lazy_twin(matcher, vocab)
    for state, mask, bitmask in walked:
        assert (mask == lazy.allowed_mask(state)).all() and (bitmask == lazy.bitmask(state)).all()
