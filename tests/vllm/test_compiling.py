"""The vLLM processor's compiles (no vLLM needed): a warm start's automaton keeps its masks lazy,
in the engine and in the front end's check, so a new schema costs a server the masks its requests
visit rather than every mask of the automaton."""

from __future__ import annotations

import uuid

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


@pytest.fixture
def no_disk_cache(monkeypatch):
    monkeypatch.setenv("PSE_PROCESSORS_CACHE_DIR", "off")
    pse.clear_memory_cache()
    yield
    handoff.wait_for_builds(120)
    pse.clear_memory_cache()


def test_engine_and_front_end_matchers_build_their_automaton_without_precomputing_masks(no_disk_cache, smol_tokenizer):
    vocab = pse.Vocabulary.from_tokenizer(smol_tokenizer)
    cache = MatcherCache(lambda: vocab)
    request = request_from_extra_args(extra_args(_schema()))
    try:
        engine = cache.submit(request).result(timeout=120)
    finally:
        cache.close()
    front = check_request(request)
    for matcher in (engine, front):
        assert isinstance(matcher, HandoffMatcher) and not matcher.precompute
        assert matcher.settled(timeout=120)._precomputed is None  # built, masks left for first use
    # a plain compile still precomputes (the eager processors want it)
    other = pse.compile(_schema(), vocab)
    assert isinstance(other, HandoffMatcher) and other.precompute
    assert other.settled(timeout=120)._precomputed is not None
