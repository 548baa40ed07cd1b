"""The compiler's caches: the shared memory cache and the disk cache (matchers, regexes, dense
automata), corruption and memory-mapped tables."""

from __future__ import annotations

import io
import os
import json
import logging

import numpy as np
import pytest

import pse_processors as pse
import pse_processors.compiler.compiler as cache_module

VOCAB = pse.Vocabulary([b"{", b"}", b'"a"', b":", b" ", b"1", b"2", b",", b"-", None, b"x"], eos_token_ids=[9])
SCHEMA = {"type": "object", "properties": {"a": {"type": "integer"}}, "required": ["a"]}


def test_memory_cache_shares_one_grammar(disk_cache):
    a = pse.compile(SCHEMA, VOCAB, backend="dfa")
    b = pse.compile(dict(SCHEMA), VOCAB, backend="dfa")
    assert a is b
    assert pse.compile(SCHEMA, VOCAB, backend="dfa", whitespace="compact") is not a


def test_disk_cache_round_trip_and_corruption(disk_cache, monkeypatch, caplog):
    from pse_processors.caching import trust

    grammar = pse.compile(SCHEMA, VOCAB, backend="dfa")
    files = list(disk_cache.glob("grammars/*.npz"))
    assert len(files) == 1
    pse.clear_memory_cache()

    def no_build(*args, **kwargs):
        raise AssertionError("should have been loaded from disk")

    monkeypatch.setattr(cache_module.ByteAutomaton, "build", no_build)
    loaded = pse.compile(SCHEMA, VOCAB, backend="dfa")
    assert loaded is not grammar and loaded.accepts([0, 2, 3, 5, 1])
    monkeypatch.undo()

    monkeypatch.setenv(cache_module.CACHE_ENV, str(disk_cache))
    sealed = files[0].read_bytes()
    header, payload = sealed.split(b"\n", 1)
    binding = json.loads(header[len(trust.MAGIC):])["binding"]
    key = (disk_cache / trust.KEY_FILE).read_bytes()

    def resealed(automaton, meta):  # what this cache's owner would write: only validation can tell
        buffer = io.BytesIO()
        automaton.save(buffer, meta)
        return trust.seal("grammars", binding, buffer.getvalue(), key) + buffer.getvalue()

    meta = json.loads(bytes(np.load(io.BytesIO(payload))["meta"]))
    bad_states = type(grammar.automaton)(grammar.automaton.next_state + 1000, grammar.automaton.accepting)
    for corrupt, reason in (
        (b"not an npz file", "not a cache file"),
        (sealed[:100], "not a cache file"),  # the header cut
        (sealed[:-100], "truncated"),
        (sealed[:-1] + bytes([sealed[-1] ^ 1]), "not what this cache wrote"),
        (resealed(grammar.automaton, {"format": 6, "key": "another grammar"}), "belongs to another constraint"),
        (resealed(bad_states, meta), "out of range"),  # right meta, bad contents
    ):
        files[0].write_bytes(corrupt)
        pse.clear_memory_cache()
        with caplog.at_level(logging.WARNING, logger="pse_processors"):
            again = pse.compile(SCHEMA, VOCAB, backend="dfa")
        assert reason in caplog.text, caplog.text
        assert again.accepts([0, 2, 3, 5, 1]) and not again.accepts([0, 2, 3, 1])
        caplog.clear()
        assert files[0].read_bytes() == sealed  # rewritten


def test_warm_compile_reads_the_regex_from_disk(disk_cache, monkeypatch):
    import pse_processors.compiler.regexes as regex_cache

    grammar = pse.compile(SCHEMA, VOCAB, backend="dfa")
    assert len(list(disk_cache.glob("regexes/*.json"))) == 1
    pse.clear_memory_cache()

    def no_compiler(*args, **kwargs):
        raise AssertionError("the schema should not be compiled again")

    with monkeypatch.context() as patch:
        patch.setattr(regex_cache, "json_schema_to_regex", no_compiler)
        again = pse.compile(SCHEMA, VOCAB, backend="dfa")
    assert again.spec.regex == grammar.spec.regex and again.accepts([0, 2, 3, 5, 1])
    # Property order is part of the key: the same properties in another order compile anew.
    reordered = {"required": ["a"], "properties": {"a": {"type": "integer"}}, "type": "object"}
    assert pse.compile(reordered, VOCAB, backend="dfa").spec.regex == grammar.spec.regex
    assert len(list(disk_cache.glob("regexes/*.json"))) == 2
    # A damaged regex file is recompiled, with a warning.
    for path in disk_cache.glob("regexes/*.json"):
        path.write_text("{not json")
    pse.clear_memory_cache()
    assert pse.compile(SCHEMA, VOCAB, backend="dfa").accepts([0, 2, 3, 5, 1])


def test_large_tables_are_memory_mapped(tmp_path, monkeypatch):
    import pse_processors.matchers.byte_automaton as byte_automaton

    monkeypatch.setattr(byte_automaton, "_INLINE_BYTES", 0)
    automaton = byte_automaton.ByteAutomaton.build('"[a-z]{2,5}"')
    meta = {"format": 7, "key": "k"}
    path = tmp_path / "g.npz"
    with open(path, "wb") as handle:
        automaton.save(handle, meta, sidecar=path.with_suffix(".npy"))
    loaded = byte_automaton.ByteAutomaton.load(path, meta)
    assert isinstance(loaded.next_state, np.memmap)
    assert np.array_equal(loaded.next_state, automaton.next_state)
    assert loaded.walk(b'"abc"') is not None and loaded.walk(b'"abcdef') is None
    other = byte_automaton.ByteAutomaton.build('"[a-z]{2,6}"')
    np.save(path.with_suffix(".npy"), other.next_state)  # a sidecar that is not this table's
    with pytest.raises(ValueError):
        byte_automaton.ByteAutomaton.load(path, meta)


def test_disk_cache_can_be_disabled(tmp_path, monkeypatch):
    monkeypatch.setenv(cache_module.CACHE_ENV, "off")
    pse.clear_memory_cache()
    assert pse.cache_dir() is None
    pse.compile(SCHEMA, VOCAB, backend="dfa")
    assert not list(tmp_path.iterdir())
    monkeypatch.delenv(cache_module.CACHE_ENV)
    assert pse.cache_dir() == cache_module.user_cache_dir()


def test_device_masks_are_shared_between_processors(smol_tokenizer):
    torch = pytest.importorskip("torch")
    a = pse.PSELogitsProcessor(SCHEMA, smol_tokenizer)
    b = pse.PSELogitsProcessor(SCHEMA, smol_tokenizer)
    assert a.matcher is b.matcher
    a(torch.tensor([[5]]), torch.zeros(1, len(smol_tokenizer)))
    assert b._contexts is a._contexts and len(b._contexts) == 1
    assert len(next(iter(b._contexts.values()))) == 1


def test_materialized_tables_are_cached_on_disk(disk_cache):
    grammar = pse.compile(SCHEMA, VOCAB, backend="dfa")
    tables = grammar.dense_automaton
    assert list(disk_cache.glob("tables/*.npz"))
    pse.clear_memory_cache()
    again = pse.compile(SCHEMA, VOCAB, backend="dfa")
    assert again is not grammar
    loaded = again.dense_automaton
    assert np.array_equal(loaded.transitions, tables.transitions) and np.array_equal(loaded.token_class, tables.token_class)


def test_regex_text_is_the_same_in_every_process():
    """The regex keys the disk cache: it must not depend on hash randomization."""
    import subprocess
    import sys

    code = (
        "from pse_processors.json_schema import json_schema_to_regex, SchemaOptions;"
        "print(json_schema_to_regex({'type': 'object', 'properties': {k: {} for k in 'abcdefgh'}}, "
        "SchemaOptions(additional_properties='spec')))"
    )
    outputs = {
        subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                       env={**os.environ, "PYTHONHASHSEED": str(seed)}).stdout
        for seed in (1, 2, 3)
    }
    assert len(outputs) == 1
