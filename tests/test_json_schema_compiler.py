"""The JSON Schema compiler, keyword by keyword, on a byte-level vocabulary.

Each instance is serialized with ``json.dumps`` (and compactly), fed byte by byte through
the automaton, and must be accepted exactly when jsonschema says it is valid (for the
instances listed as valid) and rejected for the invalid ones.
"""

from __future__ import annotations

import json
import random

import jsonschema
import pytest

import pse_processors as pse
from fuzz_schemas import FUZZ_SCHEMAS
from pse_processors import SchemaError, UnsatisfiableConstraintError, UnsupportedSchemaError

BYTES = pse.Vocabulary([bytes([b]) for b in range(256)] + [b'{"', b'":', b'", "', b"true", b"  ", None], eos_token_ids=[261])
EOS = 261


def accepts(schema, text: str, **options) -> bool:
    grammar = pse.compile(schema, BYTES, **options)
    return grammar.accepts(list(text.encode("utf-8")) + [EOS])


def dumps_both(value):
    return {json.dumps(value, ensure_ascii=False), json.dumps(value, ensure_ascii=False, separators=(",", ":"))}


CASES = [
    ({"type": "string"}, ["", "a", "é", "😀", 'a"b', "a\\b", "\n\t", "\u2028"], [1, None, []]),
    ({"type": "string", "minLength": 2, "maxLength": 3}, ["ab", "abc", "😀😀", "é😀é"], ["a", "abcd", "😀", ""]),
    ({"type": "integer"}, [0, -1, 10**30, -(10**30), 7], [1.5, "1", True, None]),
    ({"type": "number"}, [0, -0.5, 1e100, 3.25, -7, 1e-7], ["1", None, False]),
    ({"type": "boolean"}, [True, False], [0, "true", None]),
    ({"type": "null"}, [None], [0, False, ""]),
    ({"type": ["integer", "string"]}, [1, "x"], [1.5, None]),
    ({"type": ["number", "integer"]}, [1, 1.5, -2e5], ["1"]),
    ({"enum": ["a", 1, None, [1, 2], {"k": "v"}]}, ["a", 1, None, [1, 2], {"k": "v"}], ["b", 2, [1], {"k": "w"}, False]),
    ({"const": "x y"}, ["x y"], ["x", "xy"]),
    ({"enum": [1, "a", True], "type": "integer"}, [1], ["a", True]),
    (
        {"type": "object", "properties": {"a": {"type": "integer"}, "b": {"type": "string"}}, "required": ["a"]},
        [{"a": 1}, {"a": 1, "b": "x"}],
        [{}, {"b": "x"}, {"a": "1"}, {"a": 1, "b": 2}],
    ),
    (
        {"type": "object", "properties": {"a": {"type": "integer"}, "b": {"type": "null"}, "c": {"type": "boolean"}}},
        [{}, {"a": 1}, {"b": None}, {"c": True}, {"a": 1, "c": False}, {"b": None, "c": True}, {"a": 1, "b": None, "c": True}],
        [{"a": None}, {"c": 1}],
    ),
    ({"type": "object", "additionalProperties": {"type": "integer"}}, [{}, {"x": 1, "y": 2}], [{"x": "1"}, []]),
    ({"type": "object", "properties": {}, "additionalProperties": False}, [{}], [{"a": 1}]),
    ({"type": "object", "required": ["z"]}, [{"z": 1}, {"z": [1, "a"]}], [{}]),
    ({"type": "array"}, [[], [1, "a", None]], [{}, 1]),
    ({"type": "array", "items": {"type": "integer"}, "minItems": 2, "maxItems": 3}, [[1, 2], [1, 2, 3]], [[], [1], [1, 2, 3, 4], [1, "2"]]),
    ({"type": "array", "items": {"type": "integer"}, "maxItems": 0}, [[]], [[1]]),
    ({"type": "array", "items": {"type": "integer"}, "minItems": 1}, [[1], [1, 2, 3, 4, 5]], [[]]),
    (
        {"type": "array", "prefixItems": [{"type": "integer"}, {"type": "string"}], "items": {"type": "boolean"}},
        [[], [1], [1, "a"], [1, "a", True, False]],
        [["a"], [1, 2], [1, "a", 3]],
    ),
    ({"type": "array", "prefixItems": [{"type": "integer"}], "items": False}, [[], [1]], [[1, 2]]),
    ({"type": "array", "prefixItems": [{"type": "integer"}, {"type": "integer"}], "minItems": 2, "maxItems": 2}, [[1, 2]], [[1], [1, 2, 3]]),
    ({"anyOf": [{"type": "integer"}, {"type": "string", "maxLength": 1}]}, [1, "a"], ["ab", None]),
    ({"oneOf": [{"type": "integer"}, {"type": "boolean"}]}, [1, True], ["a"]),
    ({"oneOf": [{"const": 1}, {"enum": [2, 3]}]}, [1, 2, 3], [4]),
    (
        {"allOf": [{"type": "object", "properties": {"a": {"type": "integer"}}, "required": ["a"]}, {"properties": {"b": {"type": "integer"}}, "required": ["b"]}]},
        [{"a": 1, "b": 2}],
        [{"a": 1}, {"b": 2}],
    ),
    (
        {"$defs": {"n": {"type": "integer"}}, "type": "object", "properties": {"x": {"$ref": "#/$defs/n"}}, "required": ["x"]},
        [{"x": 1}],
        [{"x": "1"}],
    ),
    (
        {"definitions": {"n": {"type": "integer"}}, "type": "array", "items": {"$ref": "#/definitions/n"}},
        [[1, 2]],
        [["1"]],
    ),
    ({"type": "object", "properties": {"é ü": {"type": "string"}, 'q"t': {"type": "integer"}}, "required": ["é ü", 'q"t']}, [{"é ü": "x", 'q"t': 1}], [{"é ü": "x"}]),
    (True, [1, "a", None, [1], {"a": {"b": 1}}, [[1], {"k": 1}]], []),
    ({}, [1, "a", None, [1], {"a": 1}], []),
    ({"type": "integer", "title": "t", "description": "d", "default": 1, "examples": [2], "x-custom": 1}, [1], ["1"]),
]


@pytest.mark.parametrize("schema,valid,invalid", CASES, ids=[json.dumps(c[0])[:60] for c in CASES])
def test_keyword_cases(schema, valid, invalid):
    validator = jsonschema.Draft202012Validator(schema)
    for value in valid:
        assert validator.is_valid(value), f"bad test: {value!r} is invalid"
        for text in dumps_both(value):
            assert accepts(schema, text), f"valid instance rejected: {text}"
    for value in invalid:
        assert not validator.is_valid(value), f"bad test: {value!r} is valid"
        for text in dumps_both(value):
            assert not accepts(schema, text), f"invalid instance accepted: {text}"


@pytest.mark.parametrize(
    "text,ok",
    [
        ('"\\u00e9"', True), ('"\\ud83d\\ude00"', True), ('"\\ud83d"', False), ('"\\ude00"', False),
        ('"a\\"b\\\\c\\/\\b\\f\\n\\r\\t"', True), ('"\\x"', False), ('"\x01"', False), ('"tab\there"', False),
        ('"😀"', True), ('"a', False),
    ],
)
def test_string_escapes(text, ok):
    assert accepts({"type": "string"}, text) is ok


def test_escaped_surrogate_pair_is_one_code_point():
    schema = {"type": "string", "maxLength": 1}
    assert accepts(schema, '"\\ud83d\\ude00"') and accepts(schema, '"😀"') and not accepts(schema, '"ab"')


@pytest.mark.parametrize(
    "text,integer,number",
    [
        ("0", True, True), ("-0", True, True), ("-0.0", False, True), ("1e5", False, True), ("1E+5", False, True),
        ("2.5e-3", False, True), ("01", False, False), ("+1", False, False), ("1.", False, False), (".5", False, False),
        ("1e", False, False), ("123456789012345678901234567890", True, True), ("NaN", False, False), ("-", False, False),
    ],
)
def test_numbers(text, integer, number):
    assert accepts({"type": "integer"}, text) is integer
    assert accepts({"type": "number"}, text) is number


def test_whitespace_policy():
    schema = {"type": "object", "properties": {"a": {"type": "array", "items": {"type": "integer"}}}, "required": ["a"]}
    assert accepts(schema, '{"a": [1, 2]}') and accepts(schema, '{"a":[1,2]}')
    assert not accepts(schema, '{ "a": [1, 2] }') and not accepts(schema, '{"a":  [1]}') and not accepts(schema, '{"a":\n[1]}')
    assert accepts(schema, '{"a":[1,2]}', whitespace="compact") and not accepts(schema, '{"a": [1]}', whitespace="compact")
    with pytest.raises(ValueError, match="whitespace"):
        pse.compile(schema, BYTES, whitespace="pretty")


def test_property_order_is_schema_order():
    schema = {"type": "object", "properties": {"a": {"type": "integer"}, "b": {"type": "integer"}}, "required": ["a", "b"]}
    assert accepts(schema, '{"a": 1, "b": 2}') and not accepts(schema, '{"b": 2, "a": 1}')


def test_recursion_is_unrolled_to_the_configured_depth():
    schema = {"$defs": {"n": {"type": "object", "properties": {"c": {"$ref": "#/$defs/n"}}}}, "$ref": "#/$defs/n"}
    assert accepts(schema, '{"c": {"c": {}}}')
    assert not accepts(schema, '{"c": {"c": {"c": {"c": {}}}}}')
    assert accepts(schema, '{"c": {"c": {"c": {"c": {}}}}}', max_recursion_depth=5)


def test_any_value_nesting_depth():
    deep = '{"a": {"b": 1}}'
    assert not accepts(True, deep, any_value_depth=1) and accepts(True, deep, any_value_depth=2)
    # {"type": "object"} nests exactly as deep as {} does
    assert accepts({"type": "object"}, '{"a": {"b": 1}}') and not accepts({"type": "object"}, '{"a": {"b": {"c": 1}}}')
    assert accepts({}, '{"a": {"b": 1}}') and not accepts({}, '{"a": {"b": {"c": 1}}}')


def test_nullable_adds_null():
    assert accepts({"type": "string", "nullable": True}, "null") and not accepts({"type": "string"}, "null")


@pytest.mark.parametrize(
    "schema,keyword,pointer",
    [
        ({"type": "integer", "minimum": 0}, "minimum", "#"),
        ({"type": "number", "multipleOf": 2}, "multipleOf", "#"),
        ({"type": "string", "pattern": "^a"}, "pattern", "#"),
        ({"type": "string", "format": "email"}, "format", "#"),
        ({"type": "array", "uniqueItems": True}, "uniqueItems", "#"),
        ({"type": "array", "contains": {"type": "integer"}}, "contains", "#"),
        ({"type": "object", "properties": {"a": {"not": {"type": "null"}}}}, "not", "#/properties/a"),
        ({"type": "object", "properties": {"a/b": {"type": "object", "minProperties": 1}}}, "minProperties", "#/properties/a~1b"),
        ({"type": "object", "patternProperties": {"^x": {}}}, "patternProperties", "#"),
        ({"if": {"type": "integer"}, "then": {"const": 1}}, "if", "#"),
        ({"type": "object", "dependentRequired": {"a": ["b"]}}, "dependentRequired", "#"),
        ({"oneOf": [{"type": "integer"}, {"type": "number"}]}, "oneOf", "#/oneOf/1"),
        ({"$ref": "https://example.com/s.json"}, "$ref", "#"),
        ({"items": [{"type": "integer"}], "type": "array", "prefixItems": []}, None, None),
    ],
)
def test_refusals_name_keyword_and_pointer(schema, keyword, pointer):
    if keyword is None:
        pse.compile(schema, BYTES)
        return
    with pytest.raises(UnsupportedSchemaError) as info:
        pse.compile(schema, BYTES)
    assert info.value.keyword == keyword and info.value.pointer == pointer
    assert repr(keyword) in str(info.value) and pointer in str(info.value)


@pytest.mark.parametrize(
    "schema,match",
    [
        ({"type": "strin"}, "unknown type 'strin'"),
        ({"type": "string", "minLength": -1}, "minLength must be a non-negative integer"),
        ({"properties": []}, "properties must be an object"),
        ({"type": "object", "required": "a"}, "required must be an array of strings"),
        ({"$ref": "#/$defs/missing"}, "points to nothing"),
        ("{not json", "not valid JSON"),
        ({"enum": 3}, "enum must be an array"),
        ({"anyOf": []}, "anyOf must be a non-empty array"),
    ],
)
def test_malformed_schemas(schema, match):
    with pytest.raises(SchemaError, match=match):
        pse.compile(schema, BYTES)


@pytest.mark.parametrize(
    "schema",
    [
        False,
        {"enum": []},
        {"type": "string", "minLength": 3, "maxLength": 2},
        {"type": "object", "properties": {"a": False}, "required": ["a"]},
        {"type": "array", "items": False, "minItems": 1},
        {"type": "object", "required": ["x"], "additionalProperties": False},
        {"anyOf": [False, {"not_a_keyword": 1, "enum": []}]},
        {"enum": ["a"], "type": "integer"},
    ],
)
def test_unsatisfiable(schema):
    with pytest.raises(UnsatisfiableConstraintError):
        pse.compile(schema, BYTES)


def test_regex_and_choice_constraints():
    grammar = pse.compile(pse.Regex(r"[0-9]{3}-[a-z]+"), BYTES)
    assert grammar.accepts(list(b"123-ab") + [EOS]) and not grammar.accepts(list(b"12-ab") + [EOS])
    choice = pse.compile(pse.Choice(["yes", "no", "a.b"]), BYTES)
    assert choice.accepts(list(b"a.b")) and not choice.accepts(list(b"axb"))
    with pytest.raises(SchemaError, match="regex cannot be compiled"):
        pse.compile(pse.Regex("(unclosed"), BYTES)
    with pytest.raises(SchemaError, match="Choice needs"):
        pse.Choice([])
    with pytest.raises(SchemaError, match="wrap regular expressions"):
        pse.compile("[0-9]+", BYTES)
    for bad in (3.5, [1, 2]):
        with pytest.raises(TypeError, match="constraint must be"):
            pse.compile(bad, BYTES)


def random_walk(grammar, rng, limit=400):
    """Choose any allowed token at each step; return the bytes, or None if cut off."""
    state, out = grammar.initial_state, []
    for _ in range(limit):
        allowed = grammar.allowed_token_ids(state)
        eos = [t for t in allowed.tolist() if t in grammar.vocabulary.eos_token_ids]
        if eos and rng.random() < 0.3:
            return grammar.vocabulary.decode(out)
        token = int(rng.choice(allowed.tolist()))
        if token in grammar.vocabulary.eos_token_ids:
            return grammar.vocabulary.decode(out)
        out.append(token)
        state = grammar.advance(state, token)
        assert state is not None
    return None


@pytest.mark.parametrize("schema_index", range(len(FUZZ_SCHEMAS)))
def test_random_walks_stay_valid(schema_index):
    schema = FUZZ_SCHEMAS[schema_index]
    grammar = pse.compile(schema, BYTES)
    validator = jsonschema.Draft202012Validator(schema)
    rng = random.Random(schema_index)
    done = 0
    for _ in range(40):
        text = random_walk(grammar, rng)
        if text is not None:
            value = json.loads(text.decode("utf-8"))
            assert validator.is_valid(value), text
            done += 1
    assert done >= 10


def test_huge_constraints_are_refused_before_they_exhaust_memory():
    from pse_processors import CompileLimitError

    nested = {"$defs": {"n": {"type": "object", "properties": {f"k{i}": {"$ref": "#/$defs/n"} for i in range(6)}}},
              "$ref": "#/$defs/n"}
    with pytest.raises(CompileLimitError, match="max_regex_length"):
        pse.compile(nested, BYTES, max_recursion_depth=6)
    with pytest.raises(CompileLimitError, match="more than 10 characters"):
        pse.compile({"type": "boolean"}, BYTES, max_regex_length=10)
    with pytest.raises(CompileLimitError, match="over the limit of 10"):
        pse.compile(pse.Regex("[0-9]{3}-[a-z]{4}"), BYTES, max_regex_length=10)
