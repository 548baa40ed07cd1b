"""Negations as positive schemas: ``not``, the ``else`` side of ``if``, and exclusive ``oneOf``.

Every schema here is checked against jsonschema on a pool of JSON values: an accepted
instance must be valid (always), and for the forms the compiler claims exact, every valid
instance in the pool must be accepted too.
"""

from __future__ import annotations

import json
import re

import jsonschema
import pytest

import pse_processors as pse
from pse_processors import UnsupportedSchemaError
from pse_processors.json_schema.negation import negate, not_in_pattern

BYTES = pse.Vocabulary([bytes([b]) for b in range(256)] + [None], eos_token_ids=[256])

POOL = [
    None, True, False, 0, 1, 2, 3, -1, 1.5, 2.5, 7, 10, 100, "", "a", "b", "ab", "abc", "x", "flat", "noise", "debug",
    [], [1], [1, 2], ["a"], [None], [1, "a"], [5], [5, 6], [1, 7], [7, "a", 8], [True, 9.5], {}, {"a": 1}, {"a": "x"}, {"b": 2}, {"a": 1, "b": 2}, {"a": "flat"},
    {"type": "flat"}, {"type": "noise"}, {"type": "debug"}, {"type": "flat", "layers": 1}, {"type": "noise", "seed": 1},
    {"type": "noise", "layers": 1}, {"type": "debug", "seed": "s"}, {"type": "other"}, {"kind": "a", "x": 1},
    {"kind": "b", "y": 2}, {"kind": "a", "y": 2}, {"bar": 1}, {"foo": 1}, {"foo": 1, "bar": 2},
]


def accepted(schema, value) -> bool:
    grammar = pse.compile(schema, BYTES, additional_properties="spec")
    return grammar.accepts(list(json.dumps(value).encode()) + [256])


def check(schema, exact: bool) -> None:
    validator = jsonschema.Draft202012Validator(schema)
    for value in POOL:
        valid = validator.is_valid(value)
        got = accepted(schema, value)
        assert not got or valid, f"accepted the invalid {value!r}"
        if exact and valid:
            assert got, f"rejected the valid {value!r}"


EXACT_NOTS = [
    {"not": {"type": "string"}},
    {"not": {"const": "a"}},
    {"not": {"enum": ["a", "ab", 1, 2.5, None, True]}},
    {"not": {"minimum": 2}},
    {"type": "integer", "not": {"maximum": 2}},
    {"not": {"required": ["a"]}},
    {"type": "object", "not": {"properties": {"a": {"type": "string"}}, "required": ["a"]}},
    {"type": "array", "not": {"items": {"type": "string"}}},
    {"type": "array", "not": {"contains": {"type": "number"}}},
    {"type": "string", "not": {"minLength": 2}},
    {"not": {"anyOf": [{"type": "object"}, {"minimum": 2}]}},
    {"not": {"allOf": [{"type": "number"}, {"minimum": 2}]}},
]


@pytest.mark.parametrize("schema", EXACT_NOTS, ids=lambda s: json.dumps(s)[:60])
def test_exact_not_matches_jsonschema(schema):
    check(schema, exact=True)


DISCRIMINATED_IFS = {
    "type": "object",
    "properties": {"type": {"enum": ["flat", "noise", "debug"]}},
    "required": ["type"],
    "allOf": [
        {"if": {"properties": {"type": {"const": "flat"}}}, "then": {"properties": {"layers": {"type": "integer"}}}},
        {"if": {"properties": {"type": {"const": "noise"}}}, "then": {"properties": {"seed": {"type": "integer"}}}},
        {"if": {"properties": {"type": {"const": "debug"}}}, "then": {"properties": {"seed": {"type": "string"}}}},
    ],
}


@pytest.mark.parametrize(
    "schema",
    [
        {"if": {"type": "string"}, "then": {"minLength": 2}, "else": {"type": "integer"}},
        {"type": ["number", "boolean"], "if": {"minimum": 2}, "then": {"maximum": 7}, "else": {"maximum": 0}},
        {"type": "object", "if": {"properties": {"a": {"const": 1}}, "required": ["a"]}, "then": {"required": ["b"]}, "else": {"required": ["foo"]}},
        DISCRIMINATED_IFS,
    ],
    ids=["type", "minimum", "required", "discriminated-allOf"],
)
def test_if_then_else_both_sides(schema):
    check(schema, exact=True)


def test_else_side_is_generated():
    assert accepted({"if": {"type": "string"}, "then": {"minLength": 2}, "else": {"type": "integer"}}, 5)
    for value in ({"type": "flat", "layers": 1}, {"type": "noise", "seed": 1}, {"type": "debug", "seed": "s"}):
        assert accepted(DISCRIMINATED_IFS, value)
    assert not accepted(DISCRIMINATED_IFS, {"type": "debug", "seed": 1})


def test_else_side_without_exact_negation_is_a_subset():
    schema = {"if": {"type": "string", "pattern": "^a"}, "then": {"maxLength": 2}, "else": {"type": "integer"}}
    check(schema, exact=False)
    assert accepted(schema, "ab") and accepted(schema, 1) and not accepted(schema, "abc")


@pytest.mark.parametrize(
    "schema",
    [
        {"type": "number", "oneOf": [{"minimum": 2}, {"maximum": 5}]},
        {"type": "string", "oneOf": [{"minLength": 2}, {"maxLength": 1}]},
        {"oneOf": [{"properties": {"bar": True}, "required": ["bar"]}, {"properties": {"foo": True}, "required": ["foo"]}]},
        {"oneOf": [{"enum": [1, 2, 3]}, {"enum": [3, "a"]}]},
        {"oneOf": [{"type": "object", "properties": {"kind": {"const": "a"}}}, {"type": "object", "required": ["y"]}]},
        {"type": "number", "oneOf": [{"maximum": 2}, {"maximum": 5}]},
    ],
    ids=["minimum-maximum", "lengths", "required", "literals", "const-required", "maxima"],
)
def test_overlapping_one_of_is_made_exclusive(schema):
    check(schema, exact=False)


def test_overlapping_one_of_keeps_the_exclusive_part():
    schema = {"type": "number", "oneOf": [{"minimum": 2}, {"maximum": 5}]}
    assert accepted(schema, 1) and accepted(schema, 7) and not accepted(schema, 3)
    assert accepted({"oneOf": [{"enum": [1, 2, 3]}, {"enum": [3, "a"]}]}, "a")
    assert not accepted({"oneOf": [{"enum": [1, 2, 3]}, {"enum": [3, "a"]}]}, 3)


@pytest.mark.parametrize("schema", [
    {"type": "string", "oneOf": [{"pattern": "a"}, {"pattern": "b"}]},
    {"oneOf": [{"type": "integer"}, {"minimum": 2}]},  # numbers >= 2 with a fraction: no positive form
])
def test_one_of_without_a_negation_is_refused(schema):
    # A pattern's complement exists on llguidance only (json_schema/lexemes.py, tests/json_schema/test_lexemes.py)
    with pytest.raises(UnsupportedSchemaError) as info:
        pse.compile(schema, BYTES, backend="dfa")
    assert info.value.keyword == "oneOf"


def test_not_without_exact_negation_is_refused():
    with pytest.raises(UnsupportedSchemaError) as info:
        pse.compile({"type": "string", "not": {"pattern": "^a"}}, BYTES, backend="dfa")
    assert info.value.keyword == "not" and info.value.pointer == "#/not"
    with pytest.raises(UnsupportedSchemaError) as info:
        pse.compile({"type": "integer", "not": {"multipleOf": 3}}, BYTES)
    assert info.value.keyword == "not" and info.value.pointer == "#/not"


def test_lenient_mode_never_loosens_an_else_side():
    # The else term for "not a string matching ^a" cannot be exact; lenient mode must drop it, not widen it.
    schema = {"if": {"type": "string", "pattern": "^a"}, "then": {"maxLength": 1}, "else": {"const": 5}}
    grammar = pse.compile(schema, BYTES, strict=False)
    assert grammar.accepts(list(b"5") + [256]) and grammar.accepts(list(b'"a"') + [256])
    assert not grammar.accepts(list(b'"b"') + [256]) and not grammar.accepts(list(b'"ab"') + [256])


def test_const_conflict_in_all_of_is_unsatisfiable_not_refused():
    schema = {"type": "object", "properties": {"t": {"allOf": [{"const": "a"}, {"const": "b"}]}}}
    assert accepted(schema, {}) and not accepted(schema, {"t": "a"})


def test_universal_pattern_properties_cover_undeclared_keys():
    schema = {"type": "object", "properties": {"a": {"type": "integer"}}, "patternProperties": {".*": {"type": "integer"}}}
    check(schema, exact=False)
    assert accepted(schema, {"a": 1, "b": 2}) and not accepted(schema, {"a": 1, "b": "x"})


def test_not_in_pattern_is_exact():
    strings = ["", "a", "ab", "é", "😀", "a.b", "[x]", "a\\b"]
    pattern = not_in_pattern(strings[1:])
    for s in strings + ["b", "abc", "aa", "😀😀", "a.c"]:
        assert (re.search(pattern, s) is not None) == (s not in strings[1:]), s


def test_negation_terms_are_exact_only_when_claimed():
    assert not negate({"pattern": "a"}, resolve=lambda r: None).exact
    assert not negate({"type": "integer"}, resolve=lambda r: None).exact
    assert negate({"type": "number", "minimum": 1}, resolve=lambda r: None).exact


def test_not_next_to_an_empty_type_list_is_unsatisfiable_not_a_loop():
    schema = {"type": "object", "properties": {"t": {"allOf": [{"type": "string"}, {"type": "integer"}], "not": {"enum": ["car"]}}}}
    assert accepted(schema, {}) and not accepted(schema, {"t": "x"})


def test_one_of_branches_merged_from_all_of_show_their_discriminator():
    base = {"type": "object", "properties": {"id": {"type": "string"}, "n": {"type": "integer"}}}
    schema = {
        "$defs": {"base": base},
        "oneOf": [
            {"allOf": [{"$ref": "#/$defs/base"}, {"properties": {"kind": {"const": "a"}}, "required": ["kind"]}]},
            {"allOf": [{"$ref": "#/$defs/base"}, {"properties": {"kind": {"const": "b"}, "x": {}}, "required": ["kind"]}]},
        ],
    }
    check(schema, exact=False)
    for value in ({"id": "1", "n": 2, "kind": "a"}, {"kind": "b"}, {"id": "x", "kind": "b", "x": [1]}):
        assert accepted(schema, value), value
    assert not accepted(schema, {"kind": "c"}) and not accepted(schema, {"id": "1"})


def test_one_of_with_many_overlaps_keeps_a_subset():
    # Each branch may overlap each other one in several ways: the variants are trimmed, never loosened.
    branches = [{"type": "object", "properties": {k: {"type": "integer", "minimum": i}}, "required": [k]}
                for i, k in enumerate("abcdef")]
    schema = {"oneOf": branches}
    check(schema, exact=False)
    assert accepted(schema, {"a": 1})


@pytest.mark.parametrize(
    "schema",
    [
        {"type": "array", "contains": {"type": "number", "minimum": 5}, "maxContains": 1},
        {"type": "array", "contains": {"type": "number", "minimum": 5}, "minContains": 2, "maxContains": 2},
        {"type": "array", "contains": {"type": "string"}, "minContains": 0, "maxContains": 1},
        {"type": "array", "items": {"type": "number"}, "contains": {"minimum": 5}, "maxContains": 1},
    ],
    ids=["max1", "exactly2", "min0-max1", "with-items"],
)
def test_max_contains_writes_the_other_items_with_the_negation(schema):
    check(schema, exact=True)


def test_many_independent_conditionals_stay_fast_and_sound():
    # 16 independent conditionals would make 2^16 else combinations: past the budget only the
    # if-and-then side is kept (a subset), and compiling stays quick.
    import time

    props = {f"p{i}": {"type": "integer"} for i in range(16)}
    conditionals = [{"if": {"properties": {f"p{i}": {"const": 1}}, "required": [f"p{i}"]},
                     "then": {"required": [f"q{i}"]}} for i in range(16)]
    schema = {"type": "object", "properties": props, "allOf": conditionals}
    start = time.perf_counter()
    grammar = pse.compile(schema, BYTES, additional_properties="spec")
    assert time.perf_counter() - start < 20
    everything = dict({f"p{i}": 1 for i in range(16)}, **{f"q{i}": 0 for i in range(16)})
    validator = jsonschema.Draft202012Validator(schema)
    for value in [everything, {"p0": 2}, {}, {"p0": 1}, dict(everything, q3="x")]:
        if grammar.accepts(list(json.dumps(value).encode()) + [256]):
            assert validator.is_valid(value), value
    assert grammar.accepts(list(json.dumps(everything).encode()) + [256])


def test_one_of_over_self_referencing_all_of_terminates():
    schema = {"$defs": {"a": {"allOf": [{"$ref": "#/$defs/a"}, {"type": "object", "required": ["x"]}]}},
              "oneOf": [{"$ref": "#/$defs/a"}, {"type": "object", "required": ["y"]}]}
    try:
        grammar = pse.compile(schema, BYTES)
    except (UnsupportedSchemaError, pse.SchemaError):
        return  # refused by name is fine; hanging or recursing is not
    assert not grammar.accepts(list(b'{"x": 1, "y": 2}') + [256])
