"""The disk cache's trust model, attacked as the issue describes: entries planted with wrong
permissions or owners, moved from another key, edited without the folder's key. Each planted
entry must be refused (with a warning) and the constraint must still hold, checked with
jsonschema on what the matcher accepts."""

from __future__ import annotations

import io
import json
import logging
import os

import numpy as np
import pytest

import pse_processors as pse
from pse_processors.caching import store as store_module
from pse_processors.caching import trust
from tests.helpers import validate

BYTES = pse.Vocabulary([bytes([b]) for b in range(256)] + [None], eos_token_ids=[256])
EOS = 256
SCHEMA = {"type": "object", "properties": {"name": {"type": "string"}}, "required": ["name"], "additionalProperties": False}
VALID = json.dumps({"name": "x"})
HELLO = '"hello"'


def accepts(matcher, text: str) -> bool:
    return matcher.accepts(list(text.encode()) + [EOS])


def check_constraint_holds(matcher) -> None:
    """The object schema is enforced: a valid object passes (and validates), a bare string does not."""
    assert accepts(matcher, VALID)
    validate(SCHEMA, VALID)
    assert not accepts(matcher, HELLO)
    with pytest.raises(Exception):
        validate(SCHEMA, HELLO)


def compile_fresh(**options):
    pse.clear_memory_cache()
    return pse.compile(SCHEMA, BYTES, **options)


def only(folder, pattern: str):
    (found,) = folder.glob(pattern)
    return found


def key_of(root) -> bytes:
    return (root / trust.KEY_FILE).read_bytes()


def sealed(kind: str, binding: str, payload: bytes, key: bytes) -> bytes:
    return trust.seal(kind, binding, payload, key) + payload


def header(path) -> dict:
    line = path.read_bytes().split(b"\n", 1)[0]
    return json.loads(line[len(trust.MAGIC):])


def test_a_planted_regex_cannot_make_an_object_schema_accept_hello(disk_cache, caplog):
    check_constraint_holds(compile_fresh(backend="dfa"))
    target, grammar = only(disk_cache, "regexes/*.json"), only(disk_cache, "grammars/*.npz")
    binding = header(target)["binding"]
    forged = json.dumps({"regex": '"hello"', "expanded": 7}).encode()
    # A real entry of another schema, sealed by this cache's key, moved under this schema's name.
    pse.clear_memory_cache()
    pse.compile({"const": "hello"}, BYTES, backend="dfa")
    other = next(path for path in disk_cache.glob("regexes/*.json") if path != target)
    plants = {
        "plain JSON, as the old format": (forged, "not a cache file"),
        "a header for this key, no MAC key": (sealed("regexes", binding, forged, b"\0" * 32), "not what this cache wrote"),
        "another schema's entry, moved": (other.read_bytes(), "made for other inputs"),
        "a grammar entry in regexes/": (grammar.read_bytes(), "made for other inputs"),
    }
    for name, (content, reason) in plants.items():
        target.write_bytes(content)
        with caplog.at_level(logging.WARNING, logger="pse_processors"):
            matcher = compile_fresh(backend="dfa")
        assert reason in caplog.text, name
        check_constraint_holds(matcher)
        assert header(target)["binding"] == binding, name  # rebuilt over
        caplog.clear()


def test_a_swapped_automaton_with_matching_metadata_is_refused(disk_cache, caplog):
    from pse_processors.compiler.compiler import _FORMAT
    from pse_processors.matchers.byte_automaton import ByteAutomaton

    check_constraint_holds(compile_fresh(backend="dfa"))
    target = only(disk_cache, "grammars/*.npz")
    binding = header(target)["binding"]
    hello = ByteAutomaton.build(HELLO)  # the regex of the JSON string "hello"
    payload = io.BytesIO()
    hello.save(payload, {"format": _FORMAT, "binding": binding})  # the metadata the loader expects
    for key, reason in ((b"\0" * 32, "not what this cache wrote"), (None, None)):
        if key is None:  # what only the cache's owner (who can read its key) could write: accepted
            key = key_of(disk_cache)
        target.write_bytes(sealed("grammars", binding, payload.getvalue(), key))
        with caplog.at_level(logging.WARNING, logger="pse_processors"):
            matcher = compile_fresh(backend="dfa")
        if reason is None:
            assert accepts(matcher, HELLO) and not caplog.text  # the model's limit: the owner's writing is trusted
        else:
            assert reason in caplog.text
            check_constraint_holds(matcher)
        caplog.clear()


def test_a_stamped_entry_skips_the_mac_until_it_changes_even_with_its_times_put_back(disk_cache, monkeypatch, caplog):
    import time

    monkeypatch.setattr(trust, "SETTLED_SECONDS", 0.05)  # 2 s in use: a test would wait
    monkeypatch.setattr(store_module, "_STAMP_BYTES", 0)  # in use, files under 256 KB get no stamp
    compile_fresh(backend="dfa")
    target = only(disk_cache, "grammars/*.npz")
    stamp = target.with_name(target.name + ".stamp")
    compile_fresh(backend="dfa")
    assert not stamp.exists()  # just written: its change time is too fresh to vouch for it
    time.sleep(0.1)
    compile_fresh(backend="dfa")  # checked in full, then stamped
    assert stamp.exists() and stamp.stat().st_mode & 0o777 == 0o600
    macs = []
    real_mac = trust._mac
    monkeypatch.setattr(trust, "_mac", lambda *args: macs.append(args[0]) or real_mac(*args))
    check_constraint_holds(compile_fresh(backend="dfa"))
    assert "grammars" not in macs
    # Edited in place, same size, its modification time put back: only the change time tells.
    time.sleep(0.1)
    before = target.stat()
    data = bytearray(target.read_bytes())
    data[-200] ^= 1
    target.write_bytes(bytes(data))
    os.utime(target, ns=(before.st_atime_ns, before.st_mtime_ns))
    assert target.stat().st_size == before.st_size and target.stat().st_mtime_ns == before.st_mtime_ns
    time.sleep(0.1)
    with caplog.at_level(logging.WARNING, logger="pse_processors"):
        check_constraint_holds(compile_fresh(backend="dfa"))
    assert "not what this cache wrote" in caplog.text
    stamp.write_text("0" * 64)  # a forged stamp (no key): the contents are checked in full
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="pse_processors"):
        check_constraint_holds(compile_fresh(backend="dfa"))
    assert "grammars" in macs[-3:] and not caplog.text


def test_swapped_tries_and_dense_tables_are_refused(disk_cache, caplog):
    from pse_processors.vocabulary import token_trie

    matcher = compile_fresh(backend="dfa")
    tables = matcher.dense_automaton
    trie_file = token_trie.cache_entry(BYTES, store_module.DiskStore(disk_cache)).path
    tables_file = matcher.dense_file[0].path
    other_vocab = pse.Vocabulary([bytes([b]) for b in range(256)] + [b"ab", None], eos_token_ids=[257])
    pse.compile({"const": "hello"}, other_vocab, backend="dfa").dense_automaton  # noqa: B018 - written
    other_trie = next(path for path in disk_cache.glob("tries/*.npz") if path != trie_file)
    other_tables = next(path for path in disk_cache.glob("tables/*.npz") if path != tables_file)
    trie_file.write_bytes(other_trie.read_bytes())
    tables_file.write_bytes(other_tables.read_bytes())
    token_trie._tries.clear()  # the trie is kept in memory per vocabulary
    with caplog.at_level(logging.WARNING, logger="pse_processors"):
        again = compile_fresh(backend="dfa")
        dense = again.dense_automaton
    assert caplog.text.count("made for other inputs") == 2, caplog.text
    check_constraint_holds(again)
    assert np.array_equal(dense.transitions, tables.transitions) and np.array_equal(dense.token_class, tables.token_class)


def test_a_file_others_can_write_or_that_is_a_link_is_ignored_and_rewritten_private(disk_cache, caplog):
    compile_fresh(backend="dfa")
    target = only(disk_cache, "grammars/*.npz")
    good = target.read_bytes()
    target.chmod(0o666)
    with caplog.at_level(logging.WARNING, logger="pse_processors"):
        check_constraint_holds(compile_fresh(backend="dfa"))
    assert "other users can write to it" in caplog.text
    assert target.stat().st_mode & 0o777 == 0o600 and target.read_bytes() != b""
    caplog.clear()
    elsewhere = disk_cache.parent / "elsewhere.npz"
    elsewhere.write_bytes(good)
    target.unlink()
    target.symlink_to(elsewhere)
    with caplog.at_level(logging.WARNING, logger="pse_processors"):
        check_constraint_holds(compile_fresh(backend="dfa"))
    assert "symbolic link" in caplog.text and not target.is_symlink()


@pytest.mark.parametrize("mode", [0o777, 0o770, 0o1777])
def test_a_folder_others_can_write_is_refused_with_one_warning(tmp_path, monkeypatch, caplog, mode):
    folder = tmp_path / "cache"
    folder.mkdir()
    folder.chmod(mode)
    monkeypatch.setattr(trust, "_private_group", lambda gid, uid: False)  # a group shared with others
    monkeypatch.setenv("PSE_PROCESSORS_CACHE_DIR", str(folder))
    store_module.reset()
    with caplog.at_level(logging.WARNING, logger="pse_processors"):
        for _ in range(3):
            check_constraint_holds(compile_fresh(backend="dfa"))
    assert caplog.text.count("not using the compile cache") == 1, caplog.text
    assert "can write to it" in caplog.text and "chmod 700" in caplog.text
    assert sorted(path.name for path in folder.iterdir()) == []  # nothing read or written: in memory
    assert pse.cache_dir() == folder  # still the configured folder


def test_a_group_writable_folder_of_a_private_group_is_used(tmp_path, monkeypatch):
    folder = tmp_path / "cache"
    folder.mkdir()
    folder.chmod(0o770)
    monkeypatch.setattr(trust, "_private_group", lambda gid, uid: True)  # Debian-style user group
    monkeypatch.setenv("PSE_PROCESSORS_CACHE_DIR", str(folder))
    store_module.reset()
    check_constraint_holds(compile_fresh(backend="dfa"))
    assert list(folder.glob("grammars/*.npz"))


def test_a_folder_or_file_owned_by_someone_else_is_refused(disk_cache, monkeypatch, caplog):
    compile_fresh(backend="dfa")
    if os.geteuid() == 0:  # really someone else's
        os.chown(disk_cache, 4242, 4242)
    else:
        monkeypatch.setattr(trust, "euid", lambda: os.geteuid() + 1)
    store_module.reset()
    with caplog.at_level(logging.WARNING, logger="pse_processors"):
        check_constraint_holds(compile_fresh(backend="dfa"))
        check_constraint_holds(compile_fresh(backend="dfa"))
    assert caplog.text.count("is owned by uid") == 1, caplog.text
    if os.geteuid() != 0:
        return
    os.chown(disk_cache, 0, 0)  # the folder is ours again, but one file is not
    target = only(disk_cache, "grammars/*.npz")
    os.chown(target, 4242, 4242)
    store_module.reset()
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="pse_processors"):
        check_constraint_holds(compile_fresh(backend="dfa"))
    assert "owned by uid 4242" in caplog.text and target.stat().st_uid == 0  # rewritten as ours


def test_a_kind_folder_others_can_write_is_refused(disk_cache, caplog):
    compile_fresh(backend="dfa")
    (disk_cache / "grammars").chmod(0o777)
    store_module.reset()
    with caplog.at_level(logging.WARNING, logger="pse_processors"):
        check_constraint_holds(compile_fresh(backend="dfa"))
    assert "not using the cache folder" in caplog.text and "grammars" in caplog.text


def test_the_key_is_private_and_a_new_key_refuses_old_entries(disk_cache, caplog):
    compile_fresh(backend="dfa")
    key = disk_cache / trust.KEY_FILE
    assert key.stat().st_mode & 0o777 == 0o600 and len(key.read_bytes()) == 32
    key.chmod(0o644)  # readable by others: anyone could have forged entries with it
    store_module.reset()
    with caplog.at_level(logging.WARNING, logger="pse_processors"):
        check_constraint_holds(compile_fresh(backend="dfa"))
    assert "replacing the cache key" in caplog.text and "not what this cache wrote" in caplog.text
    assert key.stat().st_mode & 0o777 == 0o600
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="pse_processors"):
        check_constraint_holds(compile_fresh(backend="dfa"))
    assert not caplog.text  # rebuilt under the new key


def test_entries_are_bound_to_their_inputs():
    binding = trust.entry_binding
    assert binding("regexes", 2, "a", "bc") != binding("regexes", 2, "ab", "c")  # length-prefixed
    assert binding("regexes", "x") != binding("tables", "x")
    assert len(binding("tries", "fingerprint")) == 64
