"""Grammars, processors and engines pickle as their recipe and behave identically in a fresh process."""

from __future__ import annotations

import multiprocessing
import pickle

import pytest

import pse_processors as pse
from pse_processors.matchers import AutomatonMatcher

from tests import helpers

DFA_SCHEMA = {
    "type": "object",
    "properties": {
        "name": {"type": "string", "maxLength": 12},
        "age": {"type": "integer", "minimum": 0},
        "tags": {"type": "array", "items": {"enum": ["a", "b", "c"]}, "maxItems": 3},
    },
    "required": ["name", "age"],
}
RECURSIVE_SCHEMA = {
    "$defs": {
        "node": {
            "type": "object",
            "properties": {"v": {"type": "integer"}, "kids": {"type": "array", "items": {"$ref": "#/$defs/node"}}},
            "required": ["v"],
        }
    },
    "$ref": "#/$defs/node",
}


@pytest.fixture(scope="module")
def objects(smol_tokenizer):
    dfa = pse.compile(DFA_SCHEMA, smol_tokenizer, backend="dfa")  # auto would start it on the grammar engine
    recursive = pse.compile(RECURSIVE_SCHEMA, smol_tokenizer)
    assert (dfa.backend, recursive.backend) == ("dfa", "llguidance")
    found = {
        "vocabulary": dfa.vocabulary,
        "dfa": dfa,
        "recursive": recursive,
        "regex": pse.compile(pse.Regex(r"[a-z]{2,6}@[a-z]{3}\.(com|org)"), smol_tokenizer, backend="llguidance"),
        "torch_dfa": pse.PSELogitsProcessor(DFA_SCHEMA, smol_tokenizer, inplace=True),
        "torch_recursive": pse.PSELogitsProcessor(recursive),
        "engine": pse.StructuringEngine(RECURSIVE_SCHEMA, tokenizer=smol_tokenizer, whitespace="compact"),
    }
    try:
        from pse_processors.mlx import MLXPSELogitsProcessor

        found["mlx"] = MLXPSELogitsProcessor(DFA_SCHEMA, smol_tokenizer)
    except ImportError:
        pass
    return found


def test_round_trip_in_a_fresh_process_gives_identical_masks_and_scores(objects):
    paths = {
        name: helpers.random_paths(helpers.matcher_of(obj), 3, 10, seed=i)
        for i, (name, obj) in enumerate(objects.items())
        if name != "vocabulary"
    }
    assert any(len(p) > 5 for p in paths["recursive"])
    here = helpers.observe(objects, paths)
    there = helpers.observe_in_fresh_process(objects, paths)
    assert there.keys() == here.keys()
    for name in here:
        assert there[name] == here[name], name
    assert "scores" in here["torch_dfa"] and here["recursive"]["backend"] == "llguidance"
    assert "mlx" not in objects or "scores" in here["mlx"]


def test_pickles_are_small_and_hold_no_tables(objects):
    vocabulary = pickle.dumps(objects["vocabulary"])
    assert len(vocabulary) < 700_000  # 49k tokens: bytes blob + int32 lengths
    for name in ("dfa", "recursive", "torch_dfa"):
        assert len(pickle.dumps(objects[name])) < len(vocabulary) + 20_000, name
    assert len(pickle.dumps(objects["engine"])) < 3_000_000  # carries the HF tokenizer


def test_unpickled_processor_starts_fresh_and_shares_the_cached_grammar(objects):
    processor = objects["torch_dfa"]
    import torch

    processor.reset()
    processor(torch.tensor([helpers.PICKLE_PROMPT]), torch.zeros(1, processor.matcher.vocab_size))
    assert processor._prefix._states
    clone = pickle.loads(pickle.dumps(processor))
    assert clone.matcher is processor.matcher  # this process: the memory cache's grammar
    assert not clone._prefix._states and clone.inplace is True


def test_fingerprint_mismatch_is_a_clear_error(objects):
    grammar = objects["dfa"]
    data = pickle.dumps(grammar)
    fingerprint = grammar.vocabulary.fingerprint.encode()
    assert data.count(fingerprint) >= 1
    tampered = data.replace(fingerprint, b"0" * len(fingerprint))
    with pytest.raises(pse.VocabularyError, match="fingerprint"):
        pickle.loads(tampered)
    vocabulary = pickle.dumps(objects["vocabulary"])
    with pytest.raises(pse.VocabularyError, match="fingerprint .* altered"):
        pickle.loads(vocabulary.replace(fingerprint, b"f" * len(fingerprint)))


def test_a_grammar_not_built_by_compile_refuses_to_pickle(objects):
    grammar = objects["dfa"]
    bare = AutomatonMatcher(grammar.automaton, grammar.trie, grammar.vocabulary, grammar.spec)
    with pytest.raises(pickle.PicklingError, match="pse_processors.compile"):
        pickle.dumps(bare)


def test_spawned_worker_uses_an_unpickled_processor(objects):
    processor = objects["torch_recursive"]
    path = helpers.random_paths(processor.matcher, 1, 6, seed=11)[0]
    expected = helpers.spawn_worker(processor, path)
    with multiprocessing.get_context("spawn").Pool(1) as pool:
        assert pool.apply(helpers.spawn_worker, (processor, path)) == expected


def test_engine_adapters_pickle_without_their_caches(smol_tokenizer):
    import torch

    from pse_processors.adapters import PyTorchAdapter

    adapters = [PyTorchAdapter(device="cpu", dtype=torch.float32)]
    try:
        import mlx.core as mx

        from pse_processors.adapters import MLXAdapter

        adapters.append(MLXAdapter(dtype=mx.bfloat16))
        adapters[-1]._cast[1] = object()  # a per-process cache (unpicklable here): must not travel
    except ImportError:
        pass
    for adapter in adapters:
        engine = pse.StructuringEngine({"type": "boolean"}, adapter=adapter)
        clone = pickle.loads(pickle.dumps(engine))
        assert type(clone.adapter) is type(adapter) and clone.adapter.dtype == adapter.dtype
        assert clone.matcher(smol_tokenizer) is engine.matcher(smol_tokenizer)
    if len(adapters) > 1:
        assert clone.adapter._cast == {} and clone.adapter.device == adapters[1].device


def test_a_schema_edited_after_compile_is_refused(smol_tokenizer):
    schema = {"type": "object", "properties": {"a": {"type": "integer"}}, "required": ["a"]}
    grammar = pse.compile(schema, smol_tokenizer)
    schema["properties"]["a"] = {"type": "string"}  # the recipe holds the caller's dict
    with pytest.raises(pickle.UnpicklingError, match="changed after compile"):
        pickle.loads(pickle.dumps(grammar))
