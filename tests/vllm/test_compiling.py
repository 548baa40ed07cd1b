"""The vLLM processor's compiles (no vLLM needed): a new JSON Schema runs on llguidance, and its byte
automaton is built only once llguidance has computed ``handoff_after`` of its masks, in the engine; the
front end's check never builds it. A built automaton keeps its masks lazy, so a new schema costs a
server the masks its requests visit rather than every mask of the automaton."""

from __future__ import annotations

import json
import uuid

import jsonschema
import pytest

import pse_processors as pse
from pse_processors.matchers import handoff
from pse_processors.matchers.handoff import HandoffMatcher
from pse_processors.vllm import extra_args, request_from_extra_args
from pse_processors.vllm.compiling import MatcherCache
from pse_processors.vllm.requests import check_request


def _schema() -> dict:
    return {"type": "object", "properties": {"id": {"const": str(uuid.uuid4())[:8]}, "n": {"type": "integer"}},
            "required": ["id", "n"]}


def _walk_masks(matcher, token_ids):
    """Each state's mask along ``token_ids``, as the processor's ``apply`` asks for them; the final state."""
    state = matcher.initial_state
    for token in token_ids:
        allowed = matcher.allowed_mask(state)
        assert allowed[token], f"token {token} refused"
        state = matcher.step(state, token)
        assert state is not None
    return state


def test_a_new_schema_builds_its_automaton_only_after_enough_llguidance_masks(no_disk_cache, smol_tokenizer):
    vocab = pse.Vocabulary.from_tokenizer(smol_tokenizer)
    schema = _schema()
    cache = MatcherCache(lambda: vocab, handoff_after=6)
    request = request_from_extra_args(extra_args(schema))
    text = json.dumps({"id": schema["properties"]["id"]["const"], "n": 123456})
    ids = smol_tokenizer.encode(text, add_special_tokens=False)
    assert len(ids) > 6
    try:
        engine = cache.submit(request).result(timeout=120)
    finally:
        cache.close()
    front = check_request(request)
    for matcher in (engine, front):
        assert isinstance(matcher, HandoffMatcher) and not matcher.precompute
        assert not matcher.building and not matcher.ready  # llguidance answers, nothing is built yet
    final = _walk_masks(engine, ids[:5])  # the first mask (the compile's) and 4 more: under 6
    assert not engine.building
    final = _walk_masks(engine, ids)  # new llguidance states past the sixth mask: the build is queued
    assert engine.building
    automaton = engine.settled(timeout=120)
    assert automaton._precomputed is None  # built, masks left for first use
    assert engine.is_accepting(final) and engine.accepts(ids + [min(vocab.eos_token_ids)])
    # after the hand-off a new request runs on the automaton, and allows what llguidance did
    state = _walk_masks(engine, ids)
    assert state >= handoff.AUTOMATON_OFFSET and engine.is_accepting(state)
    jsonschema.validate(json.loads(text), schema)
    # the front end's check computed one mask: still on llguidance, no automaton built for it
    assert not front.building and front.accepts(list(text.encode()) + [256])


def test_a_plain_compile_of_a_deferred_schema_starts_its_build(no_disk_cache, smol_tokenizer):
    vocab = pse.Vocabulary.from_tokenizer(smol_tokenizer)
    schema = _schema()
    cache = MatcherCache(lambda: vocab)
    try:
        deferred = cache.submit(request_from_extra_args(extra_args(schema))).result(timeout=120)
    finally:
        cache.close()
    assert not deferred.building
    other = pse.compile(schema, vocab)  # the same matcher from memory: the caller wants the automaton now
    assert isinstance(other, HandoffMatcher) and other.building and deferred.building
    assert other.settled(timeout=120).backend == "dfa"


def test_a_plain_compile_still_precomputes_masks(no_disk_cache, smol_tokenizer):
    vocab = pse.Vocabulary.from_tokenizer(smol_tokenizer)
    other = pse.compile(_schema(), vocab)  # the eager processors' path: built at once, every mask computed
    assert isinstance(other, HandoffMatcher) and other.precompute and other.building
    assert other.settled(timeout=120)._precomputed is not None


def test_preload_reads_the_vocabulary_on_the_compile_thread(smol_tokenizer):
    calls = []

    def source():
        calls.append(1)
        return pse.Vocabulary.from_tokenizer(smol_tokenizer)

    cache = MatcherCache(source)
    try:
        cache.preload().result(timeout=120)
        cache.submit(request_from_extra_args(extra_args({"type": "boolean"}))).result(timeout=120)
    finally:
        cache.close()
    assert calls == [1]
