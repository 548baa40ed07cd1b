"""llguidance's own JSON Schema front end where its language is exactly ours (issue 25).

``compiler/llg_json.py`` decides, from the schema and the options, whether llguidance's JSON
Schema front end enforces precisely the language our compiler writes. Here: the decision keyword
by keyword, identical masks (fast path, our Lark on llguidance, the byte automaton) along random
valid token paths with invalid tokens tried at every step, and the fall-back when llguidance
refuses what the front end was given.
"""

from __future__ import annotations

import copy
import dataclasses
import json
import random

import jsonschema
import numpy as np
import pytest

import pse_processors as pse
from pse_processors.assets import load_tokenizer
from pse_processors.compiler import backends, llg_json
from pse_processors.json_schema import SchemaOptions

DEFAULT = SchemaOptions()
SPEC = SchemaOptions(additional_properties="spec")
INT, BOOL = {"type": "integer"}, {"type": "boolean"}
POINT = {"type": "object", "properties": {"x": INT, "y": {"type": "number"}}, "required": ["x", "y"]}

# (schema, options, takes llguidance's front end), keyword by keyword.
TABLE = [
    (INT, DEFAULT, True),
    ({"type": "number"}, DEFAULT, True),
    (BOOL, DEFAULT, True),
    ({"type": "null"}, DEFAULT, True),
    ({"type": ["integer", "null"]}, DEFAULT, True),
    ({"enum": [True, None, "a b", "é/ü"]}, DEFAULT, True),
    ({"const": "x"}, DEFAULT, True),
    ({"type": "array", "items": INT}, DEFAULT, True),
    ({"type": "array", "items": INT, "minItems": 1, "maxItems": 3}, DEFAULT, True),
    (POINT, DEFAULT, True),  # "closed": no other member
    ({**POINT, "additionalProperties": False}, SPEC, True),
    ({"type": "object", "properties": {}, "additionalProperties": False}, SPEC, True),
    ({"anyOf": [INT, BOOL]}, DEFAULT, True),
    ({"$defs": {"p": POINT}, "type": "array", "items": {"$ref": "#/$defs/p"}}, DEFAULT, True),
    ({"definitions": {"p": POINT}, "$ref": "#/definitions/p"}, DEFAULT, True),
    ({"$schema": "http://json-schema.org/draft-07/schema#", "title": "t", "description": "d", **INT}, DEFAULT, True),
    (INT, SchemaOptions(whitespace="compact"), True),
    (INT, SchemaOptions(strict=False), True),
    # strings: ours accept \/ and raw U+007F, llguidance's front end not
    ({"type": "string"}, DEFAULT, False),
    ({"type": "string", "maxLength": 3}, DEFAULT, False),
    ({"type": "string", "pattern": "^a"}, DEFAULT, False),
    ({"type": "string", "format": "date"}, DEFAULT, False),
    ({"enum": ["a\\b"]}, DEFAULT, False),
    ({"enum": ['"']}, DEFAULT, False),
    ({"enum": ["\n"]}, DEFAULT, False),
    ({"enum": ["\x7f"]}, DEFAULT, False),
    ({"enum": ["\U00100000"]}, DEFAULT, False),
    ({"enum": [1.5]}, DEFAULT, False),  # numbers: ours accept 1 and 1.0 for 1, llguidance one spelling
    ({"enum": [1, "a"]}, DEFAULT, False),
    ({"const": 0}, DEFAULT, False),
    ({"enum": []}, DEFAULT, False),
    ({"type": "integer", "enum": [1, 2]}, DEFAULT, False),
    (True, DEFAULT, False),  # any value
    ({}, DEFAULT, False),
    ({"type": "array"}, DEFAULT, False),
    # numbers: bounds and multipleOf are spelled differently
    ({"type": "integer", "minimum": 0}, DEFAULT, False),
    ({"type": "number", "maximum": 1}, DEFAULT, False),
    ({"type": "integer", "exclusiveMinimum": 0}, DEFAULT, False),
    ({"type": "integer", "multipleOf": 2}, DEFAULT, False),
    ({"type": "integer", "format": "int32"}, DEFAULT, False),
    # arrays
    ({"type": "array", "items": [INT]}, DEFAULT, False),
    ({"type": "array", "prefixItems": [INT], "items": INT}, DEFAULT, False),
    ({"type": "array", "items": INT, "uniqueItems": True}, DEFAULT, False),
    ({"type": "array", "items": INT, "contains": INT}, DEFAULT, False),
    ({"type": "array", "items": INT, "maxItems": 1000}, DEFAULT, False),
    ({"type": "array", "items": INT, "minItems": 3, "maxItems": 2}, DEFAULT, False),
    # objects: extra members have free-string keys
    (POINT, SPEC, False),
    ({**POINT, "additionalProperties": True}, DEFAULT, False),
    ({**POINT, "additionalProperties": INT}, DEFAULT, False),
    ({"type": "object"}, DEFAULT, False),
    ({**POINT, "patternProperties": {"^z": INT}}, DEFAULT, False),
    ({**POINT, "minProperties": 1}, DEFAULT, False),
    ({**POINT, "dependentRequired": {"x": ["y"]}}, DEFAULT, False),
    ({**POINT, "required": ["x", "z"]}, DEFAULT, False),
    ({"type": "object", "properties": {"a\\b": INT}}, DEFAULT, False),
    ({"type": "object", "properties": {"a\nb": INT}}, DEFAULT, False),
    ({**POINT, "required": ["x"]}, DEFAULT, True),
    # combinators, conditionals, references
    ({"oneOf": [INT, BOOL]}, DEFAULT, False),
    ({"allOf": [INT]}, DEFAULT, False),
    ({"not": INT}, DEFAULT, False),
    ({"if": INT, "then": INT}, DEFAULT, False),
    ({"anyOf": [INT], "type": "integer"}, DEFAULT, False),
    ({"type": "integer", "nullable": True}, DEFAULT, False),
    ({"$defs": {"p": POINT}, "$ref": "#/$defs/p", "required": ["x"]}, DEFAULT, False),  # siblings
    ({"$defs": {"l": {"type": "array", "items": {"$ref": "#/$defs/l"}}}, "$ref": "#/$defs/l"}, DEFAULT, False),
    ({"$ref": "https://example.com/s.json"}, DEFAULT, False),
    ({"$ref": "#/$defs/missing"}, DEFAULT, False),
    ({"$id": "https://example.com/s", **INT}, DEFAULT, False),
    ({"type": "integer", "x-unknown": 1}, DEFAULT, False),
    # layouts ours write that llguidance's separators cannot
    (INT, SchemaOptions(whitespace="pretty"), False),
    (INT, SchemaOptions(whitespace_pattern="[ ]{0,2}"), False),
]
if "property_order" in {f.name for f in dataclasses.fields(SchemaOptions)}:
    TABLE += [  # "required" (default) also accepts required's names first; llguidance one order only
        ({**POINT, "required": ["y", "x"]}, SchemaOptions(property_order="required"), False),
        ({**POINT, "required": ["y"]}, SchemaOptions(property_order="required"), False),
        ({**POINT, "required": ["y", "x"]}, SchemaOptions(property_order="properties"), True),
        (POINT, SchemaOptions(property_order="any"), False),
    ]


@pytest.mark.parametrize("schema, options, expected", TABLE, ids=lambda v: json.dumps(v)[:60] if not isinstance(v, SchemaOptions) else "")
def test_decision_keyword_by_keyword(schema, options, expected):
    before = copy.deepcopy(schema)
    found = llg_json.front_end(schema, options)
    assert (found is not None) is expected
    assert schema == before  # a pure function: the input is left as it was
    assert llg_json.front_end(schema, options) == found
    if found is not None:  # what llguidance reads: our whitespace and a closed object written out
        assert found["x-guidance"]["whitespace_flexible"] is False
        assert ("additionalProperties" in json.dumps(found)) is ("object" in json.dumps(schema))


def test_deep_schemas_take_todays_path():
    schema: dict = INT
    for _ in range(70):
        schema = {"type": "array", "items": schema}
    assert llg_json.front_end(schema, DEFAULT) is None


# Schemas on the front end whose masks are compared along random paths.
AGREEING = [
    {"type": "object", "properties": {"id": INT, "score": {"type": "number"}, "ok": BOOL, "tag": {"enum": ["a", "bb", "abc"]},
                                      "none": {"type": "null"}}, "required": ["id"], "additionalProperties": False},
    {"type": "array", "items": {"anyOf": [INT, {"type": "array", "items": BOOL, "maxItems": 2}]}, "minItems": 1, "maxItems": 4},
    {"$defs": {"p": {**POINT, "additionalProperties": False}}, "type": "object", "properties": {"from": {"$ref": "#/$defs/p"}, "to": {"$ref": "#/$defs/p"},
                                                              "path": {"type": "array", "items": {"$ref": "#/$defs/p"}}},
     "required": ["from", "to"], "additionalProperties": False},
    {"type": ["array", "object", "null"], "items": {"const": "é"}, "properties": {"k": {"enum": [False, None, "kk"]}, "n": INT},
     "additionalProperties": False},
]
OPTIONS = [DEFAULT, SchemaOptions(whitespace="compact", additional_properties="spec")]


def _byte_vocabulary() -> pse.Vocabulary:
    """Every byte, plus multi-byte tokens across JSON token boundaries: where llguidance would
    force bytes, only the canonical tokenization of them would be allowed (no_forcing keeps all)."""
    extra = [b'{"', b'":', b'": ', b'",', b', "', b'"}', b"[{", b"}]", b"},{", b"12", b"-1", b".5", b"e+", b"true", b"null",
             b"false", b'"id', b'score":', b'"ok":true', b'"tag":"', b"ab", b"bc", b'"from":{"x":', b'"y":', b"\xc3\xa9"]
    tokens = [bytes([i]) for i in range(256)] + extra + [None]
    return pse.Vocabulary(tokens, eos_token_ids=[len(tokens) - 1])


@pytest.fixture(scope="module", params=["bytes", "llama3_1"])
def vocabulary(request):
    return _byte_vocabulary() if request.param == "bytes" else pse.Vocabulary.from_tokenizer(load_tokenizer("llama3_1"))


def _matchers(schema, options, vocabulary):
    """(front end, our Lark on llguidance, byte automaton) matchers of ``schema``."""
    backends.clear()
    fast_spec, recursive = backends.grammar_spec(schema, options)
    assert llg_json.is_wrapped(fast_spec.lark) and not recursive  # the construct under test occurs
    fast = backends.llguidance_matcher(fast_spec, vocabulary)
    ours_spec, _ = backends.grammar_spec(schema, options, use_front_end=False)
    assert not llg_json.is_wrapped(ours_spec.lark)
    lark = backends.llguidance_matcher(ours_spec, vocabulary)
    dfa = pse.compile(schema, vocabulary, backend="dfa", **dataclasses.asdict(options))
    return fast, lark, dfa


@pytest.mark.parametrize("options", OPTIONS, ids=["default", "compact-spec"])
@pytest.mark.parametrize("schema", AGREEING, ids=lambda s: json.dumps(s)[:40])
def test_masks_agree_along_random_paths(schema, options, vocabulary):
    _agree(schema, options, vocabulary, walks=6)


@pytest.mark.parametrize("schema, options", [(s, o) for s, o, taken in TABLE if taken],
                         ids=lambda v: json.dumps(v)[:50] if not isinstance(v, SchemaOptions) else "")
def test_every_allowed_form_agrees(schema, options):
    """Each form the decision table lets through, against our compiler as it is now (its language
    may change: then this fails, and the allow-list must follow)."""
    _agree(schema, options, _byte_vocabulary(), walks=3)


def _agree(schema, options, vocabulary, walks: int) -> None:
    fast, lark, dfa = _matchers(schema, options, vocabulary)
    rng = random.Random(25)
    eos = set(vocabulary.eos_token_ids)
    finished = 0
    for _ in range(walks):
        states = [m.initial_state for m in (fast, lark, dfa)]
        text = b""
        for _ in range(60):
            masks = [m.bitmask(s).view(np.uint32) for m, s in zip((fast, lark, dfa), states)]
            assert np.array_equal(masks[0], masks[1]) and np.array_equal(masks[0], masks[2]), text
            allowed = fast.allowed_token_ids(states[0]).tolist()
            for token in rng.sample(range(vocabulary.size), 8):  # invalid tokens: refused by every one
                if token not in allowed:
                    assert all(m.step(s, token) is None for m, s in zip((fast, lark, dfa), states))
            if eos & set(allowed) and (rng.random() < 0.3 or not set(allowed) - eos):
                jsonschema.validate(json.loads(text), schema)  # a complete instance, valid
                finished += 1
                break
            text_tokens = [t for t in allowed if t not in eos]
            closing = [t for t in text_tokens if set(vocabulary.token_bytes[t]) & set(b'}]",')]
            token = rng.choice(closing if closing and rng.random() < 0.5 else text_tokens)  # numbers end too
            states = [m.step(s, token) for m, s in zip((fast, lark, dfa), states)]
            assert None not in states
            text += vocabulary.token_bytes[token]
    assert finished  # some walks reached EOS (short instances exist for every schema here)


def test_compile_uses_the_front_end_and_auto_hands_off():
    vocab = _byte_vocabulary()
    pse.clear_memory_cache()
    grammar = pse.compile(POINT, vocab, backend="llguidance")
    assert llg_json.is_wrapped(grammar.lark)
    tokens = list(b'{"x":1, "y":2.5}')
    assert grammar.accepts(tokens + [vocab.size - 1]) and not grammar.accepts(list(b'{"x":1}') + [vocab.size - 1])
    auto = pse.compile(POINT, vocab, additional_properties="closed")
    if type(auto).__name__ == "HandoffMatcher":  # no automaton cached yet: llguidance answers first
        assert llg_json.is_wrapped(auto.pushdown.lark)
    assert auto.accepts(tokens + [vocab.size - 1])


def test_dummy_prefix_vocabulary():
    tokens = [bytes([i]) for i in range(256)] + [None]
    vocab = pse.Vocabulary(tokens, eos_token_ids=[256], dummy_prefix=True)
    grammar = pse.compile(INT, vocab, backend="llguidance")
    assert grammar.accepts(list(b" 12") + [256]) and grammar.accepts(list(b"12") + [256])
    assert not grammar.accepts(list(b"  12") + [256])


def test_llguidance_refusing_the_front_end_falls_back_to_our_grammar(monkeypatch):
    vocab = _byte_vocabulary()
    schema = {"anyOf": [INT, BOOL]}
    real = llg_json.front_end
    # llguidance refuses oneOf unless coerced: stands for any schema its front end cannot take
    monkeypatch.setattr(llg_json, "front_end", lambda s, o: {**real(s, o), "anyOf": None, "oneOf": [INT, BOOL]})
    pse.clear_memory_cache()
    grammar = pse.compile(schema, vocab, backend="llguidance")
    assert not llg_json.is_wrapped(grammar.lark)
    assert grammar.accepts(list(b"true") + [vocab.size - 1]) and not grammar.accepts(list(b"1.5") + [vocab.size - 1])
    assert not llg_json.is_wrapped(backends.grammar_spec(schema, DEFAULT)[0].lark)  # remembered


def test_grammar_cache_keeps_property_order():
    """Two schemas that differ only in the order of ``properties`` generate in their own order
    (the grammar cache was keyed by the schema with sorted keys)."""
    vocab = _byte_vocabulary()
    a = {"type": "object", "properties": {"a": {"type": "string"}, "b": {"type": "string"}}}
    b = {"type": "object", "properties": {"b": {"type": "string"}, "a": {"type": "string"}}}
    pse.clear_memory_cache()
    first, second = (pse.compile(s, vocab, backend="llguidance", additional_properties="closed") for s in (a, b))
    eos = vocab.size - 1
    assert first.accepts(list(b'{"a":"1","b":"2"}') + [eos]) and not first.accepts(list(b'{"b":"2","a":"1"}') + [eos])
    assert second.accepts(list(b'{"b":"2","a":"1"}') + [eos]) and not second.accepts(list(b'{"a":"1","b":"2"}') + [eos])


def test_inside_a_structure_on_llguidance():
    """A Delimited span whose schema takes the front end: its sub-grammar is the ``%json`` one."""
    vocab = _byte_vocabulary()
    eos = vocab.size - 1
    pse.clear_memory_cache()
    matcher = pse.compile(pse.Delimited(POINT, min_count=1), vocab, backend="llguidance")
    assert "%json" in matcher.lark
    ok, bad = (f'It is ```json\n{{"x": 4, "y": {y}}}\n``` ok.'.encode() for y in ("0.5", '"a"'))
    assert matcher.accepts(list(ok) + [eos]) and not matcher.accepts(list(bad) + [eos])
