"""Planted cache entries that every other check would accept (sealed with this cache's own key,
bound to the right inputs) are still refused when the file's permissions, owner or kind say that
someone else could have written it, and the constraint still holds (issue 22, item 5).

``test_trust.py`` shows each check on its own; here the planted content is hostile (an object
schema would accept ``"hello"``) and proven effective first: with the owner's permissions it is
used, so only the permission, link and owner checks stand between it and the matcher."""

from __future__ import annotations

import io
import json
import logging
import os

import pytest

import pse_processors as pse
from pse_processors.caching import store as store_module
from pse_processors.caching import trust
from tests.helpers import validate

BYTES = pse.Vocabulary([bytes([b]) for b in range(256)] + [None], eos_token_ids=[256])
EOS = 256
SCHEMA = {"type": "object", "properties": {"name": {"type": "string"}}, "required": ["name"], "additionalProperties": False}
VALID, HELLO = json.dumps({"name": "x"}), '"hello"'


def accepts(matcher, text: str) -> bool:
    return matcher.accepts(list(text.encode()) + [EOS])


def compile_fresh():
    pse.clear_memory_cache()
    return pse.compile(SCHEMA, BYTES, backend="dfa")


def holds(matcher) -> bool:
    """The object schema is enforced: a valid object passes (and validates), a bare string does not."""
    validate(SCHEMA, VALID)
    return accepts(matcher, VALID) and not accepts(matcher, HELLO)


def binding_of(path) -> str:
    return json.loads(path.read_bytes().split(b"\n", 1)[0][len(trust.MAGIC):])["binding"]


def hostile_automaton(path, key: bytes) -> bytes:
    """A sealed grammars/ entry for ``path``'s inputs that holds the automaton of ``"hello"``."""
    from pse_processors.compiler.compiler import _FORMAT
    from pse_processors.matchers.byte_automaton import ByteAutomaton

    binding = binding_of(path)
    payload = io.BytesIO()
    ByteAutomaton.build(HELLO).save(payload, {"format": _FORMAT, "binding": binding})
    return trust.seal("grammars", binding, payload.getvalue(), key) + payload.getvalue()


def hostile_regex(path, key: bytes) -> bytes:
    """A sealed regexes/ entry for ``path``'s inputs whose regex is the JSON string ``"hello"``."""
    payload = json.dumps({"regex": HELLO, "expanded": 7}).encode()
    return trust.seal("regexes", binding_of(path), payload, key) + payload


@pytest.mark.parametrize("kind, pattern, forge", [("grammars", "grammars/*.npz", hostile_automaton),
                                                  ("regexes", "regexes/*.json", hostile_regex)])
def test_a_sealed_hostile_entry_is_refused_when_others_could_have_written_it(disk_cache, caplog, kind, pattern, forge):
    assert holds(compile_fresh())
    (target,) = disk_cache.glob(pattern)
    planted = forge(target, (disk_cache / trust.KEY_FILE).read_bytes())

    # The plant works where only its owner could have written it: the trust model's stated limit.
    target.write_bytes(planted)
    target.chmod(0o600)
    assert not holds(compile_fresh()), "the planted entry should be used as the owner's own"

    # Writable by other users: refused, rebuilt, the schema enforced.
    target.write_bytes(planted)
    target.chmod(0o666)
    with caplog.at_level(logging.WARNING, logger="pse_processors"):
        assert holds(compile_fresh())
    assert "other users can write to it" in caplog.text
    assert target.stat().st_mode & 0o777 == 0o600 and target.read_bytes() != planted
    caplog.clear()

    # A link to the same content elsewhere: refused too.
    elsewhere = disk_cache.parent / f"planted-{kind}"
    elsewhere.write_bytes(planted)
    elsewhere.chmod(0o600)
    target.unlink()
    target.symlink_to(elsewhere)
    with caplog.at_level(logging.WARNING, logger="pse_processors"):
        assert holds(compile_fresh())
    assert "symbolic link" in caplog.text and not target.is_symlink()
    caplog.clear()

    if os.geteuid() != 0:
        return
    # Owned by someone else (needs root to plant): refused as well.
    target.write_bytes(planted)
    target.chmod(0o600)
    os.chown(target, 4242, 4242)
    store_module.reset()
    with caplog.at_level(logging.WARNING, logger="pse_processors"):
        assert holds(compile_fresh())
    assert "owned by uid 4242" in caplog.text and target.stat().st_uid == 0
