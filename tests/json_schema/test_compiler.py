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
from pse_processors import SchemaError, UnsatisfiableConstraintError, UnsupportedSchemaError
from tests.helpers import FUZZ_SCHEMAS

BYTES = pse.Vocabulary([bytes([b]) for b in range(256)] + [b'{"', b'":', b'", "', b"true", b"  ", None], eos_token_ids=[261])
EOS = 261


def accepts(schema, text: str, **options) -> bool:
    # The regex output on the byte automaton; the grammar engine has its own tests
    # (tests/matchers/test_llguidance.py, tests/matchers/test_backend_agreement.py).
    options.setdefault("backend", "dfa")
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
    # numeric bounds, exact on digit strings (huge bounds included)
    ({"type": "integer", "minimum": -5, "maximum": 12}, [-5, 0, 7, 12], [-6, 13, 100, -50, 1.5]),
    ({"type": "integer", "exclusiveMinimum": 0}, [1, 99, 10**30], [0, -1]),
    ({"type": "integer", "minimum": 10**20, "maximum": 10**20 + 5}, [10**20, 10**20 + 5], [10**20 - 1, 10**20 + 6, 0]),
    ({"type": "integer", "maximum": -(10**19)}, [-(10**19), -(10**25)], [-(10**19) + 1, 0]),
    ({"type": "number", "minimum": 0, "maximum": 1}, [0, 0.5, 1, 1.0, 0.999, 0.0001], [-0.5, 1.0001, 2, -1]),
    ({"type": "number", "exclusiveMinimum": 0.5, "exclusiveMaximum": 2.25}, [0.51, 1, 2, 2.249], [0.5, 2.25, 0, 3, -1]),
    ({"type": "number", "minimum": -1.5, "exclusiveMaximum": -0.25}, [-1.5, -1, -0.3], [-0.25, -1.51, 0, 1]),
    ({"type": "number", "maximum": 0}, [0, -3.5, -0.001], [0.001, 1]),
    ({"type": "integer", "multipleOf": 10}, [0, 10, -120, 10**20], [5, 11, -3]),
    ({"type": "integer", "multipleOf": 3, "minimum": 0, "maximum": 20}, [0, 3, 18], [1, 21, 24, -3]),
    ({"type": "number", "multipleOf": 2, "maximum": 6, "minimum": -4}, [-4, 0, 6], [1, 8, 0.5]),
    # patterns: ECMA search semantics, anchors, classes, escapes
    ({"type": "string", "pattern": "^[a-z]{2,3}$"}, ["ab", "xyz"], ["a", "abcd", "aB", "a1"]),
    ({"type": "string", "pattern": "abc"}, ["abc", "xxabcxx", "abc\n"], ["ab", "acb", ""]),
    ({"type": "string", "pattern": "^\\d+(\\.\\d+)?$"}, ["1", "12.5"], ["1.", "a", ""]),
    ({"type": "string", "pattern": "^(foo|bar)-\\w*$"}, ["foo-", "bar-x_1"], ["baz-", "foo"]),
    ({"type": "string", "pattern": "^[^\\s]+$"}, ["a\"b", "x\\y", "é"], ["a b", "", "a\tb"]),
    ({"type": "string", "pattern": "^a.c$"}, ["abc", "a\"c", "a😀c"], ["ac", "a\nc"]),
    ({"type": "string", "pattern": "^[A-Z]+$", "maxLength": 3}, ["A", "ABC"], ["ABCD", "", "a"]),
    ({"type": "string", "pattern": "x$"}, ["x", "abx"], ["xa"]),
    # pattern and length bounds: unbounded repetitions are narrowed to fit (a subset)
    ({"type": "string", "pattern": "^[a-z]+:[0-9]+$", "maxLength": 9}, ["ab:12", "abcd:1234"], ["abcde:12345", "ab12", ""]),
    ({"type": "string", "pattern": "[0-9a-f]+", "minLength": 4, "maxLength": 4}, ["abcd", "xyz1"], ["abc", "abcde", "wxyz"]),
    # arrays
    ({"type": "array", "contains": {"type": "integer"}}, [[1], ["a", 2, "b"]], [[], ["a"]]),
    ({"type": "array", "items": {"type": "number"}, "contains": {"minimum": 5}, "minContains": 2}, [[5, 6], [1, 7, 2, 9]], [[5], [1, 2], []]),
    ({"type": "array", "uniqueItems": True, "maxItems": 1}, [[], [1]], [[1, 2]]),
    ({"type": "array", "uniqueItems": False}, [[1, 1]], [{}]),
    # objects
    ({"type": "object", "properties": {"a": {"type": "integer"}, "b": {"type": "integer"}}, "minProperties": 1},
     [{"a": 1}, {"b": 1}, {"a": 1, "b": 2}], [{}]),
    ({"type": "object", "patternProperties": {"^x-": {"type": "integer"}}, "additionalProperties": False},
     [{}, {"x-a": 1, "x-b": 2}], [{"x-a": "1"}, {"y": 1}]),
    ({"type": "object", "properties": {"x-a": {"type": "integer"}}, "patternProperties": {"^x-": {"minimum": 3}}},
     [{"x-a": 3}], [{"x-a": 1}]),
    ({"type": "object", "additionalProperties": {"type": "integer"}, "propertyNames": {"pattern": "^[a-c]+$"}},
     [{}, {"ab": 1}], [{"ad": 1}, {"a": "x"}]),
    ({"type": "object", "additionalProperties": True, "maxProperties": 1}, [{}, {"a": 1}], [{"a": 1, "b": 2}]),
    ({"type": "object", "properties": {"a": {"type": "integer"}, "b": {"type": "integer"}, "c": {"type": "integer"}},
      "dependentRequired": {"a": ["b"]}}, [{}, {"a": 1, "b": 2}, {"b": 1}, {"c": 1}], [{"a": 1}, {"a": 1, "c": 2}]),
    ({"type": "object", "properties": {"a": {"type": "integer"}}, "additionalProperties": {"type": "string"}},
     [{"a": 1}, {"a": 1, "z": "x"}, {"z": "y", "w": "v"}], [{"a": 1, "z": 2}, {"a": "1"}]),
    # not, if/then/else, enum with siblings, discriminated oneOf
    ({"not": {"type": "string"}, "type": ["string", "integer"]}, [1], ["a", None]),
    ({"type": "object", "properties": {"a": {"type": "integer"}, "b": {"type": "integer"}}, "not": {"required": ["b"]}},
     [{}, {"a": 1}], [{"b": 1}, {"a": 1, "b": 2}]),
    ({"type": "object", "properties": {"k": {"enum": ["a", "b"]}, "v": {"type": "integer"}}, "required": ["k"],
      "if": {"properties": {"k": {"const": "a"}}}, "then": {"required": ["v"]}}, [{"k": "a", "v": 1}], [{"k": "a"}]),
    ({"enum": ["ab", "abcd", "x"], "maxLength": 2}, ["ab", "x"], ["abcd"]),
    # allOf merges: two not's, two items/additionalProperties schemas, two conditionals
    ({"allOf": [{"type": "object", "properties": {"a": {"type": "integer"}, "b": {}, "c": {}}, "not": {"required": ["b"]}},
                {"not": {"required": ["c"]}}]}, [{"a": 1}, {}], [{"b": 1}, {"c": 1}]),
    ({"allOf": [{"type": "array", "items": {"type": "number"}}, {"items": {"minimum": 0}}]}, [[1, 2], [0.5]], [[-1], ["a"]]),
    ({"allOf": [{"type": "object", "additionalProperties": {"type": "integer"}}, {"additionalProperties": {"minimum": 3}}]},
     [{"x": 3}], [{"x": 1}, {"x": "a"}]),
    # not: double negation, and enum values decided one by one against the negated schema
    ({"allOf": [{"enum": [1, 2, "a"]}, {"not": {"not": {"type": "number"}}}]}, [1, 2], ["a", 3]),
    ({"enum": ["a", "bb", 3, [1, 1]], "not": {"anyOf": [{"maxLength": 1, "type": "string"}, {"uniqueItems": True, "type": "array"}]}},
     ["bb", 3, [1, 1]], ["a"]),
    ({"oneOf": [{"type": "object", "properties": {"t": {"const": "a"}, "x": {"type": "integer"}}, "required": ["t"]},
                {"type": "object", "properties": {"t": {"const": "b"}, "y": {"type": "string"}}, "required": ["t"]}]},
     [{"t": "a", "x": 1}, {"t": "b", "y": "s"}], [{"t": "c"}, {"t": "a", "x": "1"}]),
    # two unions in one allOf (the second waits in allOf; distributing the first terminates)
    ({"allOf": [{"anyOf": [{"type": "integer"}, {"type": "string"}]}, {"anyOf": [{"type": "number", "minimum": 2}, {"type": "string", "minLength": 2}]}]},
     [3, "ab"], [1, "a", None, 2.5]),
    # anyOf and oneOf side by side: both hold
    ({"anyOf": [{"type": "integer"}, {"type": "string"}], "oneOf": [{"type": "string"}, {"type": "boolean"}]},
     ["a"], [1, True, None]),
    # $ref fragments are URI-encoded JSON pointers
    ({"$defs": {"a b%": {"type": "integer"}}, "$ref": "#/$defs/a%20b%25"}, [1], ["x"]),
    # oneOf made exclusive: each branch forbids a property another branch requires
    ({"type": "object", "properties": {"l": {"type": "number"}, "w": {"type": "number"}, "r": {"type": "number"}},
      "oneOf": [{"required": ["l", "w"]}, {"required": ["r"]}]},
     [{"r": 1}, {"l": 1, "w": 2}, {"w": 1, "r": 2}], [{}, {"l": 1}, {"l": 1, "w": 1, "r": 1}]),
    # oneOf made exclusive: a branch requires a property that the other, closed one forbids
    ({"oneOf": [{"type": "object", "additionalProperties": False, "required": ["p", "app"],
                 "properties": {"p": {"type": "string"}, "app": {"type": "string"}}},
                {"type": "object", "additionalProperties": False, "required": ["p"],
                 "properties": {"p": {"type": "string"}, "mode": {"enum": ["a", "b"]}}}]},
     [{"p": "x", "app": "y"}, {"p": "x"}, {"p": "x", "mode": "a"}], [{}, {"p": "x", "app": "y", "mode": "a"}, {"app": "y"}]),
    ({"oneOf": [{"type": "object", "required": ["a"]}, {"type": "object", "properties": {"a": False}}]},
     [{"a": 1}, {}], [1]),
    # a required name that a pattern matches takes the pattern's schema, not additionalProperties
    ({"type": "object", "patternProperties": {"^[^$]": {"type": "string"}}, "additionalProperties": False, "required": ["_id"]},
     [{"_id": "a"}], [{}, {"_id": 1}, {"_id": "a", "$b": "c"}]),
    ({"type": "object", "patternProperties": {"^_": {"type": "string"}}, "additionalProperties": {"type": "integer"},
      "required": ["_id"]}, [{"_id": "a"}], [{"_id": 1}, {"_id": "a", "n": "x"}]),
    # unquantified groups around anchored alternatives anchor them
    ({"type": "string", "pattern": "(^[a-z]+$)"}, ["abc"], ["ab1", "", "1"]),
    ({"type": "string", "pattern": "(?:^a|b$)|c"}, ["ax", "xb", "xcx"], ["xa", "bx", ""]),
    # unanchored alternatives share their "any characters" sides; anchored ones keep theirs
    ({"type": "string", "pattern": "foo|ba[rz]|^q|z$"}, ["foo", "xfoox", "abaz", "bar!", "qx", "xz"], ["fo", "xq", "zx", "ba", ""]),
    # a format that no draft defines is an annotation (validators ignore it); next to a pattern too
    ({"type": "string", "format": "topic"}, ["", "any text"], [1, None]),
    ({"format": "topic"}, ["a", 1, None, {"a": [1]}], []),
    ({"type": "string", "format": "x-custom", "pattern": "^a"}, ["a", "ab"], ["b", ""]),
    ({"type": "object", "properties": {"n": {"type": "integer", "format": "uint"}}, "required": ["n"]}, [{"n": -1}], [{"n": 1.5}]),
    # string formats assert nothing about numbers; utc-millisec (draft 3) holds for every number
    ({"type": "integer", "format": "date-time"}, [1, -3], ["2024-01-31T23:59:59Z", 1.5]),
    ({"type": "number", "format": "utc-millisec"}, [1.5, 1700000000000], ["1"]),
]


# Formats: subsets of the RFCs. jsonschema checks few formats without optional packages, so
# the expectations are explicit (valid ones are still checked where jsonschema can).
FORMAT_CASES = [
    ({"type": "string", "format": "date"}, ["2024-01-31", "1999-12-28"], ["2024-13-01", "2024-02-30", "24-01-01", "2024-1-1"]),
    ({"type": "string", "format": "byte"}, ["", "YQ==", "YWI=", "YWJj", "AB+/"], ["YQ", "YQ=", "a b=", "YWJjZ"]),
    ({"type": "string", "format": "binary"}, ["", "any\u0000text", "é"], [1]),
    ({"type": "string", "format": "date-time"}, ["2024-01-31T23:59:59Z", "2024-06-01T00:00:00.5+02:00"], ["2024-01-31 23:59:59Z", "2024-01-31T24:00:00Z"]),
    ({"type": "string", "format": "time"}, ["12:30:00Z", "23:59:59.999-08:00"], ["12:30", "25:00:00Z"]),
    ({"type": "string", "format": "duration"}, ["P1D", "PT5M", "P1Y2M3DT4H5M6S", "P2W"], ["P", "PT", "1D", "P1H"]),
    ({"type": "string", "format": "email"}, ["a@b.co", "first.last+x@mail.example.org"], ["a@", "@b.co", "a b@c.d"]),
    ({"type": "string", "format": "ipv4"}, ["0.0.0.0", "192.168.1.255"], ["256.1.1.1", "1.2.3", "01.2.3.4"]),
    ({"type": "string", "format": "ipv6"}, ["::", "::1", "fe80::1:2", "2001:db8:0:0:0:0:2:1"], ["1:2:3", ":::", "g::1"]),
    ({"type": "string", "format": "uuid"}, ["123e4567-e89b-12d3-a456-426614174000"], ["123e4567e89b12d3a456426614174000", "x"]),
    ({"type": "string", "format": "hostname"}, ["example.com", "a-b.c"], ["-a.com", "a..b", "a_b"]),
    ({"type": "string", "format": "uri"}, ["https://example.com/a?b=c#d", "urn:isbn:123", "mailto:a@b.c"], ["//x", "a b:c", ""]),
    ({"type": "string", "format": "uri-reference"}, ["/a/b", "https://x.y", "", "a?b"], ["a b", "\\x"]),
    ({"type": "integer", "format": "int32"}, [0, 2**31 - 1, -(2**31)], [2**31, -(2**31) - 1]),
    ({"type": "string", "format": "email", "maxLength": 20}, ["a@b.co"], ["a@b", "averyveryverylong@b.com"]),
    ({"type": "string", "format": "date", "minLength": 10, "maxLength": 10}, ["2024-01-31"], ["2024-1-31"]),
    # draft 3's names for hostname and ipv4
    ({"type": "string", "format": "host-name"}, ["example.com"], ["-a.com", "a_b"]),
    ({"type": "string", "format": "ip-address"}, ["10.0.0.1"], ["256.1.1.1", "::1"]),
]


@pytest.mark.parametrize("schema,valid,invalid", FORMAT_CASES, ids=[json.dumps(c[0]) for c in FORMAT_CASES])
def test_format_cases(schema, valid, invalid):
    validator = jsonschema.Draft202012Validator(schema, format_checker=jsonschema.Draft202012Validator.FORMAT_CHECKER)
    for value in valid:
        assert validator.is_valid(value)
        assert accepts(schema, json.dumps(value, ensure_ascii=False)), value
    for value in invalid:
        assert not accepts(schema, json.dumps(value, ensure_ascii=False)), value


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
    assert accepts({"type": "string", "minLength": 1}, '"\\ud83d\\ude00"')
    # Length-bounded strings take raw characters, simple escapes and \u00XX only (fewer states).
    schema = {"type": "string", "maxLength": 1}
    assert accepts(schema, '"😀"') and accepts(schema, '"\\u001f"') and not accepts(schema, '"ab"')
    assert not accepts(schema, '"\\ud83d\\ude00"')


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
        pse.compile(schema, BYTES, whitespace="loose")
    nested = {"a": [1, 2], "b": {"c": [], "d": {}}, "e": [{"f": None}]}
    pretty = {"type": "object", "properties": {"a": {"type": "array", "items": {"type": "integer"}},
              "b": {"type": "object", "properties": {"c": {"type": "array"}, "d": {"type": "object"}}},
              "e": {"type": "array", "items": {"type": "object", "properties": {"f": {"type": "null"}}}}}}
    for indent in (2, 4):
        assert accepts(pretty, json.dumps(nested, indent=indent), whitespace="pretty", indent=indent)
        assert not accepts(pretty, json.dumps(nested), whitespace="pretty", indent=indent)
        shallow = {"a": [1, 2], "b": {"c": "x"}, "d": [], "e": {}}
        assert accepts({}, json.dumps(shallow, indent=indent), whitespace="pretty", indent=indent)
    custom = dict(whitespace_pattern="[ \n]{0,2}")
    assert accepts(schema, '{ "a": [ 1,\n2 ] }', **custom) and not accepts(schema, '{"a":   [1]}', **custom)


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
        ({"type": "number", "multipleOf": 0.01}, "multipleOf", "#"),
        ({"type": "integer", "multipleOf": 7}, "multipleOf", "#"),
        ({"type": "string", "pattern": "^(?=a)"}, "pattern", "#/pattern"),
        ({"type": "string", "pattern": "\\bword"}, "pattern", "#/pattern"),
        ({"type": "string", "pattern": "(a)\\1"}, "pattern", "#/pattern"),
        ({"type": "string", "format": "iri"}, "format", "#"),
        ({"type": "string", "format": "regex"}, "format", "#"),
        ({"type": "object", "properties": {"n": {"format": "relative-json-pointer"}}}, "format", "#/properties/n"),
        ({"type": "array", "uniqueItems": True}, "uniqueItems", "#"),
        ({"type": "array", "contains": {"pattern": "^a"}, "maxContains": 2}, "maxContains", "#/maxContains"),
        ({"type": "object", "properties": {"a": {"not": {"pattern": "^x"}}}}, "not", "#/properties/a/not"),
        ({"type": "object", "properties": {"a/b": {"type": "object", "properties": {"x": {}, "y": {}}, "minProperties": 2}}},
         "minProperties", "#/properties/a~1b"),
        ({"type": "object", "dependentSchemas": {k: {"required": ["z"]} for k in "abcde"}}, "dependentSchemas", "#"),
        ({"type": "object", "unevaluatedProperties": False}, "unevaluatedProperties", "#"),
        ({"oneOf": [{"type": "integer"}, {"type": "number"}]}, "oneOf", "#/oneOf/1"),
        ({"$ref": "https://example.com/s.json"}, "$ref", "#"),
        ({"items": [{"type": "integer"}], "type": "array", "prefixItems": []}, None, None),
    ],
)
def test_refusals_name_keyword_and_pointer(schema, keyword, pointer):
    if keyword is None:
        pse.compile(schema, BYTES)
        return
    # A pattern's complement exists on llguidance only (json_schema/lexemes.py): refused on the automaton
    backend = "dfa" if keyword in ("maxContains", "not", "uniqueItems") else "auto"  # uniqueItems: enforced on llguidance
    with pytest.raises(UnsupportedSchemaError) as info:
        pse.compile(schema, BYTES, backend=backend)
    assert info.value.keyword == keyword and info.value.pointer == pointer
    assert repr(keyword) in str(info.value) and pointer in str(info.value)


@pytest.mark.parametrize("backend", ["dfa", "llguidance"])
def test_unknown_formats_are_annotations_unless_refused(backend):
    schema = {"type": "object", "properties": {"t": {"type": "string", "format": "topic"}}, "required": ["t"]}
    assert accepts(schema, '{"t": "any text"}', backend=backend) and not accepts(schema, '{"t": 1}', backend=backend)
    with pytest.raises(UnsupportedSchemaError, match="'topic'") as info:
        pse.compile(schema, BYTES, backend=backend, unknown_formats="refuse")
    assert info.value.keyword == "format" and info.value.pointer == "#/properties/t"
    with pytest.raises(ValueError, match="unknown_formats"):
        pse.SchemaOptions(unknown_formats="ignore")


@pytest.mark.parametrize("backend", ["dfa", "llguidance"])
@pytest.mark.parametrize("refs", [False, True])
def test_one_of_with_closed_branches_keeps_both(backend, refs):
    # Each branch's objects fail the other: one requires "app", which the other (closed) forbids.
    branches = [
        {"type": "object", "additionalProperties": False, "required": ["p", "app"],
         "properties": {"p": {"type": "string"}, "app": {"type": "string"}}},
        {"type": "object", "additionalProperties": False, "required": ["p"],
         "properties": {"p": {"type": "string"}, "mode": {"const": "a"}}}]
    schema = {"oneOf": branches}
    if refs:
        schema = {"$defs": {"x": branches[0], "y": branches[1]}, "oneOf": [{"$ref": "#/$defs/x"}, {"$ref": "#/$defs/y"}]}
    assert accepts(schema, '{"p": "x", "app": "y"}', backend=backend)
    assert accepts(schema, '{"p": "x", "mode": "a"}', backend=backend)
    assert not accepts(schema, '{"p": "x", "app": "y", "mode": "a"}', backend=backend)


@pytest.mark.parametrize("backend", ["dfa", "llguidance"])
@pytest.mark.parametrize("draft", ["http://json-schema.org/draft-04/schema#", "http://json-schema.org/draft-07/schema#", None])
def test_ref_siblings_follow_the_draft(backend, draft):
    # Drafts 3-7 ignore the keywords next to a $ref; 2019-09 and later apply them too.
    schema = {"definitions": {"o": {"type": "object", "properties": {"a": {"type": "integer"}}, "required": ["a"]}},
              "type": "object", "properties": {"x": {"$ref": "#/definitions/o", "type": "string"}}}
    if draft:
        schema["$schema"] = draft
    validator = jsonschema.validators.validator_for(schema, default=jsonschema.Draft202012Validator)(schema)
    for value in [{"x": {"a": 1}}, {"x": "s"}, {"x": {}}, {"x": {"a": "1"}}]:
        text = json.dumps(value)
        assert accepts(schema, text, backend=backend) is validator.is_valid(value) is (draft is not None and value == {"x": {"a": 1}}), text


def test_lenient_mode_warns_and_drops_the_keyword(caplog):
    schema = {"type": "array", "items": {"type": "integer"}, "uniqueItems": True}
    with caplog.at_level("WARNING", logger="pse_processors.json_schema.compiler"):
        assert accepts(schema, "[1, 2]", strict=False) and accepts(schema, "[1, 1]", strict=False)
    assert "uniqueItems" in caplog.text


def test_additional_properties_closed_by_default_spec_on_request():
    schema = {"type": "object", "properties": {"a": {"type": "integer"}}}
    assert accepts(schema, '{"a": 1}') and not accepts(schema, '{"a": 1, "b": [2]}')
    spec = dict(additional_properties="spec")
    assert accepts(schema, '{"a": 1, "b": [2]}', **spec) and accepts(schema, '{"b": 2}', **spec)
    assert not accepts(schema, '{"a": 1, "a": "x"}', **spec)  # a declared key is never an "additional" one
    assert accepts(schema, '{"ab": 1}', **spec) and accepts(schema, '{"": 1}', **spec)


def test_compile_deadline():
    from pse_processors import CompileLimitError

    with pytest.raises(CompileLimitError, match="max_compile_seconds"):
        pse.compile({"type": "array", "items": {"type": "integer", "minimum": 3}}, BYTES, max_compile_seconds=0)


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
    with pytest.raises(SchemaError, match=r"invalid regex '\(unclosed': unclosed group \(at position 0\)"):
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
        pse.compile(nested, BYTES, max_recursion_depth=6, max_regex_length=100_000, backend="dfa")
    with pytest.raises(CompileLimitError, match="more than 10 characters"):
        pse.compile({"type": "boolean"}, BYTES, max_regex_length=10, backend="dfa")
    with pytest.raises(CompileLimitError, match="over the limit of 10"):
        pse.compile(pse.Regex("[0-9]-[a-z]-[0-9]"), BYTES, max_regex_length=10, backend="dfa")
    # Counted repetitions are measured written out: a short regex can hide a huge automaton.
    with pytest.raises(CompileLimitError, match="counted repetitions written out"):
        pse.compile({"type": "string", "maxLength": 32767}, BYTES, backend="dfa")


def test_nested_all_of_keeps_text_order_of_properties():
    schema = {
        "$defs": {"base": {"type": "object", "properties": {"properties": {"allOf": [
            {"type": "object"}, {"properties": {"id": {"type": "string"}}, "required": ["id"]}]}}}},
        "allOf": [{"$ref": "#/$defs/base"}, {"properties": {"properties": {"properties": {"make": {"type": "string"}}}}}],
    }
    assert accepts(schema, '{"properties": {"id": "1", "make": "x"}}', additional_properties="spec")


def test_grammar_of_many_optional_properties_is_linear():
    # Each optional member's suffix is a rule naming the next one: n members, not n²/2.
    from pse_processors.json_schema import json_schema_to_grammar

    def size(n):
        schema = {"type": "object", "properties": {f"p{i}": {"type": "boolean"} for i in range(n)}}
        return len(json_schema_to_grammar(schema).lark)

    assert size(200) < 2.3 * size(100), (size(100), size(200))
    schema = {"type": "object", "properties": {"a": {"type": "integer"}, "b": {"type": "string"}, "c": {"type": "boolean"}},
              "required": ["b"]}
    for backend in ("dfa", "llguidance"):
        for text, ok in [('{"b": "x"}', True), ('{"a": 1, "b": "x", "c": true}', True), ('{"b": "x", "c": false}', True),
                         ('{"a": 1}', False), ('{"c": true, "b": "x"}', False), ("{}", False)]:
            assert accepts(schema, text, backend=backend) is ok, (backend, text)


def test_unanchored_alternatives_share_their_sides():
    # 40 unanchored literals: one "any characters" on each side, not one pair per literal
    # (JsonSchemaStore's config_schema wrote 45 kB of regex for such a pattern).
    from pse_processors.json_schema.fragments import STRING_CHAR
    from pse_processors.json_schema.patterns import translate

    regex = translate("|".join(f"name{i}" for i in range(40)), "#").regex
    assert regex.count(STRING_CHAR) == 2
    assert accepts({"type": "string", "pattern": "|".join(f"name{i}" for i in range(40))}, '"xname39y"')
