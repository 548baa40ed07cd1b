"""Both back ends agree on every UTF-8 lead byte and every Unicode plane (issue 26's plane-16 bug).

The byte automaton used to drop the whole 0xF4 column (its sentinels U+10FFFE/U+10FFFF live
there), so a JSON string could not hold U+100000-U+10FFFF on it while the grammar engine
accepted them, and ``backend="auto"``'s mask changed when its automaton arrived. Now only the
sentinels' own encodings are cut (``matchers/byte_sentinels.py``), and JSON string classes leave
U+10FFFD-U+10FFFF out on both back ends. The vocabulary here holds every single byte (so every
lead and continuation byte is a token), a character from each of the 17 planes, the sentinels
themselves and tokens that close a string after a plane-16 character; masks are compared at
the start of a string and after every token from there, and one token further from the states
partway into a four-byte character.
"""

from __future__ import annotations

import json

import numpy as np
import pytest

import pse_processors as pse

PLANE_CHARS = [chr(plane * 0x10000 + offset) for plane in range(17) for offset in (0x100, 0xFFFB)]
PLANE_CHARS += ["\u00e9", "\u0800", "\uffff", "\U0010ffbf", "\U0010fffc"]
SENTINEL_CHARS = ["\U0010fffd", "\U0010fffe", "\U0010ffff"]
EXTRA = [c.encode() for c in PLANE_CHARS + SENTINEL_CHARS]
EXTRA += [b'"', b'{"k": "', b'["', b'\xf4\x80', b'\xf4\x8f\xbf', "\U00100100\"".encode(), "\U0010ffff\"".encode(),
          "a\U0010fffd".encode(), b"\\udbff\\udfff", b'"]', b'"}']
TOKENS = [bytes([b]) for b in range(256)] + EXTRA + [None]
EOS = len(TOKENS) - 1
F4 = 0xF4  # the token that is the lone byte 0xF4

SCHEMAS = [
    {"type": "object", "properties": {"k": {"type": "string", "maxLength": 20}}, "required": ["k"],
     "additionalProperties": False},
    {"type": "object", "properties": {"k": {"type": "string"}}, "required": ["k"], "additionalProperties": False},
    {"type": "object", "properties": {"k": {"type": "string", "pattern": "^.{0,3}$"}}, "required": ["k"],
     "additionalProperties": False},
    {"type": "object", "properties": {"k": {"type": "string", "pattern": "^[^a]*$", "minLength": 1}},
     "required": ["k"], "additionalProperties": False},
    {"type": "object", "properties": {"k": {"enum": ["\U00100100", "\U0010ffff", "x\U0010fffd"]}}, "required": ["k"],
     "additionalProperties": False},
    {"type": "object", "additionalProperties": {"type": "integer"}, "maxProperties": 2},
    {"type": "array", "items": {"type": "string", "maxLength": 3}, "maxItems": 2},
]


@pytest.fixture(scope="module")
def vocab():
    return pse.Vocabulary(TOKENS, [EOS])


def _compare(dfa, grammar, a, b, where):
    mask_a, mask_b = dfa.allowed_mask(a), grammar.allowed_mask(b)
    if not (mask_a == mask_b).all():
        only_a = [TOKENS[i] for i in np.flatnonzero(mask_a & ~mask_b)[:6]]
        only_b = [TOKENS[i] for i in np.flatnonzero(mask_b & ~mask_a)[:6]]
        raise AssertionError(f"masks differ {where}: byte automaton only {only_a}, grammar engine only {only_b}")
    assert dfa.is_accepting(a) == grammar.is_accepting(b), where
    return mask_a


def _string_start(constraint, vocab):
    """The token ids that open the constraint's first string (for an object: up to its first value's quote)."""
    schema = constraint
    if schema.get("type") == "array":
        return [TOKENS.index(b'["')]
    if "additionalProperties" in schema and "properties" not in schema:
        return [ord("{"), ord('"')]  # inside a free key
    return [TOKENS.index(b'{"k": "')]


@pytest.mark.parametrize("schema", SCHEMAS, ids=lambda s: json.dumps(s)[:50])
def test_masks_agree_on_every_lead_byte_and_plane(schema, vocab):
    dfa = pse.compile(schema, vocab, backend="dfa")
    grammar = pse.compile(schema, vocab, backend="llguidance")
    a, b = dfa.walk(_string_start(schema, vocab)), grammar.walk(_string_start(schema, vocab))
    assert a is not None and b is not None
    mask = _compare(dfa, grammar, a, b, "at the string's start")
    for token in np.flatnonzero(mask).tolist():
        if token == EOS:
            continue
        a1, b1 = dfa.step(a, token), grammar.step(b, token)
        assert (a1 is None) == (b1 is None)
        if a1 is None:
            continue
        inner = _compare(dfa, grammar, a1, b1, f"after {TOKENS[token]!r}")
        if TOKENS[token][-1] >= 0xC0 or TOKENS[token] in (b"\xf4\x80", b"\xf4\x8f\xbf"):  # partway into a character
            for follow in np.flatnonzero(inner).tolist():
                if follow != EOS:
                    _compare(dfa, grammar, dfa.step(a1, follow), grammar.step(b1, follow),
                             f"after {TOKENS[token]!r} {TOKENS[follow]!r}")


@pytest.mark.parametrize("backend", ["dfa", "llguidance"])
def test_plane16_characters_are_generated_and_sentinels_never(backend, vocab):
    schema = SCHEMAS[0]
    matcher = pse.compile(schema, vocab, backend=backend)
    inside = matcher.walk(_string_start(schema, vocab))
    allowed = matcher.allowed_mask(inside)
    assert allowed[F4], "the lone byte 0xF4 (a plane-16 lead byte) must be allowed inside a string"
    for char in PLANE_CHARS:
        assert allowed[TOKENS.index(char.encode())], f"U+{ord(char):06X} refused inside a string"
        text = json.dumps({"k": "a" + char}, ensure_ascii=False).encode()
        assert matcher.accepts(list(text) + [EOS]), f"U+{ord(char):06X} refused"
    for char in SENTINEL_CHARS:
        assert not allowed[TOKENS.index(char.encode())]
        assert not matcher.accepts(list(json.dumps({"k": char}, ensure_ascii=False).encode()) + [EOS])
        # ... but a string may still hold one as its \u escape, on the unbounded string
    unbounded = pse.compile(SCHEMAS[1], vocab, backend=backend)
    assert unbounded.accepts(list(b'{"k": "\\udbff\\udfff"}') + [EOS])


def test_issue_reproduction_under_auto(vocab):
    """The issue's schema: accepted on both back ends, and ``auto``'s mask is the same before and
    after its automaton arrives."""
    schema = {"type": "object", "properties": {"city": {"type": "string", "maxLength": 20}}, "required": ["city"],
              "additionalProperties": False}
    text = list(json.dumps({"city": "a\U00100000"}, ensure_ascii=False).encode()) + [EOS]
    assert pse.compile(schema, vocab, backend="dfa").accepts(text)
    assert pse.compile(schema, vocab, backend="llguidance").accepts(text)
    prefix = list(b'{"city": "')
    grammar = pse.compile(schema, vocab, backend="llguidance")
    dfa = pse.compile(schema, vocab, backend="dfa")
    assert grammar.allowed_mask(grammar.walk(prefix))[F4] and dfa.allowed_mask(dfa.walk(prefix))[F4]


@pytest.mark.parametrize("regex", [".*", "[^a]{0,3}b", "a\\x{10FFFF}?", "(?:x|\\x{10FFFD})y"])
def test_regex_constraints_agree_on_plane16(regex, vocab):
    """A user's regex may allow the sentinels through ``.`` or a class: both back ends leave
    exactly them out, and keep the rest of plane 16."""
    dfa = pse.compile(pse.Regex(regex), vocab, backend="dfa")
    grammar = pse.compile(pse.Regex(regex), vocab, backend="llguidance")
    texts = ["", "a", "b", "xy", "\U0010fffc", "\U00100100b", "\U0010ffbfb"] + SENTINEL_CHARS + [c + "y" for c in SENTINEL_CHARS]
    for text in texts:
        ids = list(text.encode()) + [EOS]
        assert dfa.accepts(ids) == grammar.accepts(ids), (regex, text)
        assert not any(s in text for s in SENTINEL_CHARS) or not dfa.accepts(ids)
    mask = _compare(dfa, grammar, dfa.initial_state, grammar.initial_state, "at the start")
    for token in np.flatnonzero(mask).tolist():
        if token != EOS:
            _compare(dfa, grammar, dfa.step(dfa.initial_state, token), grammar.step(grammar.initial_state, token),
                     f"after {TOKENS[token]!r}")
