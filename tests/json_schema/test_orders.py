"""Property order (``json_schema/orders.py``), extra members between declared ones
(``json_schema/members.py``), and the valid instances issue 26 found rejected: each policy
accepts the same texts on both back ends, and nothing invalid."""

from __future__ import annotations

import json

import pytest

import pse_processors as pse
from pse_processors.json_schema import SchemaOptions, json_schema_to_grammar, json_schema_to_regex
from tests.helpers import validate

ORDERED = {"type": "object", "properties": {"a": {"type": "integer"}, "b": {"type": "integer"}, "c": {"type": "integer"}},
           "required": ["c", "a"], "additionalProperties": False}
# Texts ORDERED never accepts: out of every policy's orders, a required name missing, a repeated key.
NEVER = ['{"a": 1, "b": 2}', '{"a": 1, "a": 1, "c": 3}', '{"c": 3, "a": 1, "c": 3}']


@pytest.fixture(scope="module")
def vocabulary(smol_tokenizer):
    return pse.Vocabulary.from_tokenizer(smol_tokenizer)


def _accepts(grammar, tokenizer, text: str) -> bool:
    return grammar.accepts(tokenizer.encode(text, add_special_tokens=False))


@pytest.mark.parametrize("backend", ["dfa", "llguidance"])
@pytest.mark.parametrize("policy, accepted, rejected", [
    ("properties", ['{"a": 1, "b": 2, "c": 3}', '{"a": 1, "c": 3}'], ['{"c": 3, "a": 1}']),
    ("required", ['{"a": 1, "b": 2, "c": 3}', '{"c": 3, "a": 1, "b": 2}', '{"c": 3, "a": 1}'],
     ['{"b": 2, "c": 3, "a": 1}', '{"c": 3, "b": 2, "a": 1}']),
    ("any", ['{"b": 2, "c": 3, "a": 1}', '{"c": 3, "b": 2, "a": 1}', '{"a": 1, "c": 3}'], []),
])
def test_property_order_policies(backend, policy, accepted, rejected, smol_tokenizer, vocabulary):
    grammar = pse.compile(ORDERED, vocabulary, backend=backend, property_order=policy)
    for text in accepted:
        validate(ORDERED, text)
        assert _accepts(grammar, smol_tokenizer, text), (policy, text)
    for text in rejected + NEVER:
        assert not _accepts(grammar, smol_tokenizer, text), (policy, text)


@pytest.mark.parametrize("backend", ["dfa", "llguidance"])
def test_required_names_first_then_properties_order(backend, smol_tokenizer, vocabulary):
    schema = {"type": "object", "properties": {k: {"type": "integer"} for k in "abcd"}, "required": ["d", "b"]}
    grammar = pse.compile(schema, vocabulary, backend=backend, additional_properties="closed")
    for order in ("abcd", "bd", "dbac", "dbc", "db"):  # properties; required first; optional ones left out
        assert _accepts(grammar, smol_tokenizer, json.dumps({k: 1 for k in order})), order
    for order in ("bdac", "dabc", "dbca", "adbc"):  # b before d; d alone first; c before a; a first, then d
        assert not _accepts(grammar, smol_tokenizer, json.dumps({k: 1 for k in order})), order
    nested = pse.compile({"type": "array", "items": schema}, vocabulary, backend=backend, additional_properties="closed")
    assert _accepts(nested, smol_tokenizer, '[{"a": 1, "b": 1, "d": 1}]')
    # every depth in the grammar output, the root object only in the regex output (orders.py)
    assert _accepts(nested, smol_tokenizer, '[{"d": 1, "b": 1}]') == (backend == "llguidance")
    assert not _accepts(nested, smol_tokenizer, '[{"b": 1, "d": 1, "a": 1}]')


def test_nested_required_order_keeps_auto_on_llguidance(smol_tokenizer, vocabulary):
    """A nested object with a second order is beyond the regex output: ``auto`` never hands it to
    the automaton (whose mask would then change), and the root-only case still may."""
    inner = {"type": "object", "properties": {k: {"type": "integer"} for k in "ab"}, "required": ["b", "a"]}
    nested = json_schema_to_grammar({"type": "object", "properties": {"o": inner}, "required": ["o"]})
    assert nested.recursive  # "recursive": runs on llguidance under auto (compiler.py)
    assert not json_schema_to_grammar(inner).recursive
    matcher = pse.compile({"type": "array", "items": inner}, vocabulary, additional_properties="closed")
    assert matcher.backend == "llguidance" and _accepts(matcher, smol_tokenizer, '[{"b": 1, "a": 2}]')


@pytest.mark.parametrize("backend", ["dfa", "llguidance"])
def test_extra_members_anywhere_under_any(backend, smol_tokenizer, vocabulary):
    schema = {"type": "object", "properties": {"a": {"type": "integer"}, "b": {"type": "integer"}},
              "required": ["a"], "additionalProperties": {"type": "boolean"}}
    first = ['{"x": true, "a": 1, "b": 2}', '{"x": true, "a": 1, "y": false}', '{"x": true, "y": false, "a": 1}']
    between = ['{"a": 1, "x": true, "b": 2}']
    for policy in ("any", "required", "properties"):
        grammar = pse.compile(schema, vocabulary, backend=backend, property_order=policy)
        assert _accepts(grammar, smol_tokenizer, '{"a": 1, "b": 2, "x": true}')
        for text in first + between:  # extras first under "required" (members.py), anywhere under "any"
            validate(schema, text)
            expected = policy == "any" or (policy == "required" and text in first)
            assert _accepts(grammar, smol_tokenizer, text) == expected, (policy, text)
        for text in ['{"x": 1, "a": 1}', '{"x": true, "b": 2}', '{"a": 1, "x": true, "a": 1}', '{"x": true}']:
            assert not _accepts(grammar, smol_tokenizer, text), (policy, text)


def test_property_order_is_a_validated_option():
    with pytest.raises(ValueError, match="property_order"):
        SchemaOptions(property_order="sorted")
    assert pse.CompileOptions().property_order == pse.defaults.PROPERTY_ORDER == "required"


# -- valid instances that were rejected (issue 26, MaskBench-dev) ------------------------------

@pytest.mark.parametrize("backend", ["dfa", "llguidance"])
def test_integral_enum_values_in_both_spellings(backend, smol_tokenizer, vocabulary):
    grammar = pse.compile({"enum": [2.0, 3, "x"]}, vocabulary, backend=backend)
    for text in ["2", "2.0", "3", "3.0", '"x"']:
        assert _accepts(grammar, smol_tokenizer, text), text
    for text in ["2.5", "4", "30", "2.00"]:
        assert not _accepts(grammar, smol_tokenizer, text), text


@pytest.mark.parametrize("backend", ["dfa", "llguidance"])
def test_vacuous_object_keywords_imply_no_type(backend, smol_tokenizer, vocabulary):
    schema = {"type": "array", "items": {"required": [], "properties": {}}}
    grammar = pse.compile(schema, vocabulary, backend=backend)
    for text in ['["a", 1, {"k": null}]', "[]"]:
        validate(schema, text)
        assert _accepts(grammar, smol_tokenizer, text), text
    assert not _accepts(pse.compile({"properties": {"a": {"type": "string"}}}, vocabulary, backend=backend),
                        smol_tokenizer, '{"a": 1}')


@pytest.mark.parametrize("backend", ["dfa", "llguidance"])
def test_keywords_after_all_of_merge_after_it(backend, smol_tokenizer, vocabulary):
    shared = {"properties": {"name": {"type": "string"}, "size": {"type": "integer"}}}
    schema = {"required": ["mode"], "allOf": [shared], "properties": {"mode": {"enum": ["on", "off"]}}}
    grammar = pse.compile(schema, vocabulary, backend=backend, property_order="properties")
    text = '{"name": "n", "size": 1, "mode": "on"}'  # the text's order: allOf's properties first
    validate(schema, text)
    assert _accepts(grammar, smol_tokenizer, text)


@pytest.mark.parametrize("backend", ["dfa", "llguidance"])
def test_one_of_excludes_by_a_property_the_branch_already_forbids(backend, smol_tokenizer, vocabulary):
    first = {"type": "object", "properties": {"version": {"type": "integer"}, "kind": {"const": "a"}},
             "additionalProperties": False}
    second = {"type": "object", "properties": {"version": {"type": "integer"}, "strings": {"type": "object"}},
              "required": ["version", "strings"], "additionalProperties": False}
    schema = {"oneOf": [first, second]}
    grammar = pse.compile(schema, vocabulary, backend=backend)
    for text in ['{"version": 1, "kind": "a"}', '{"version": 1, "strings": {}}']:
        validate(schema, text)
        assert _accepts(grammar, smol_tokenizer, text), text  # the first branch forbade "version" before
    assert not _accepts(grammar, smol_tokenizer, '{"version": 1, "kind": "a", "strings": {}}')


@pytest.mark.parametrize("backend", ["dfa", "llguidance"])
def test_enum_filtered_by_pattern_properties(backend, smol_tokenizer, vocabulary):
    # Refused before ("patternProperties: combined with enum"): each value is now decided.
    schema = {"enum": [{"x-1": 1}, {"y": 1}, {"x-2": "s"}], "patternProperties": {"^x-": {"type": "string"}},
              "additionalProperties": {"type": "integer"}}
    grammar = pse.compile(schema, vocabulary, backend=backend)
    for text, valid in (('{"y": 1}', True), ('{"x-2": "s"}', True), ('{"x-1": 1}', False)):
        assert _accepts(grammar, smol_tokenizer, text) == valid, text
    negated = {"allOf": [{"enum": [{"a": "bar"}, {"a": 1}]}, {"not": {"patternProperties": {"a*": {"type": "integer"}}}}]}
    grammar = pse.compile(negated, vocabulary, backend=backend)
    assert _accepts(grammar, smol_tokenizer, '{"a": "bar"}') and not _accepts(grammar, smol_tokenizer, '{"a": 1}')
    with pytest.raises(pse.UnsupportedSchemaError):  # a pattern Python's re may read otherwise: undecided
        pse.compile({"enum": [{"a": 1}], "patternProperties": {"\\p{L}": {"type": "string"}}}, vocabulary, backend=backend)


@pytest.mark.parametrize("backend", ["dfa", "llguidance"])
def test_keywords_after_all_of_still_see_their_siblings(backend, smol_tokenizer, vocabulary):
    # additionalProperties before allOf, properties after it: still siblings (MaskBench-dev o6247)
    schema = {"additionalProperties": False, "allOf": [{"required": ["a"]}], "properties": {"a": {"type": "integer"}},
              "type": "object"}
    grammar = pse.compile(schema, vocabulary, backend=backend)
    assert _accepts(grammar, smol_tokenizer, '{"a": 1}')
    assert not _accepts(grammar, smol_tokenizer, '{"a": 1, "b": 2}') and not _accepts(grammar, smol_tokenizer, "{}")


@pytest.mark.parametrize("backend", ["dfa", "llguidance"])
def test_extra_members_first_then_declared_ones(backend, smol_tokenizer, vocabulary):
    # A document's "$schema" written before its declared members (MaskBench-dev modernizrrc, o68694)
    schema = {"type": "object", "properties": {"name": {"type": "string"}, "n": {"type": "integer"}},
              "required": ["name"]}
    grammar = pse.compile(schema, vocabulary, backend=backend, additional_properties="spec")
    for text in ['{"$schema": "s", "id": "i", "name": "x", "n": 1}', '{"$schema": "s", "name": "x", "extra": 2}']:
        validate(schema, text)
        assert _accepts(grammar, smol_tokenizer, text), text
    for text in ['{"$schema": "s"}', '{"$schema": "s", "n": 1}', '{"name": "x", "name": "y"}', '{"$schema": "s", "name": 1}',
                 '{"name": "x", "$schema": "s", "n": 1}']:  # required missing; a key twice; between declared ones
        assert not _accepts(grammar, smol_tokenizer, text), text
    closed = pse.compile(schema, vocabulary, backend=backend)  # additional_properties="closed": no extras at all
    assert not _accepts(closed, smol_tokenizer, '{"$schema": "s", "name": "x"}')


@pytest.mark.parametrize("backend", ["dfa", "llguidance"])
def test_one_of_branch_requiring_a_key_the_other_patterns_forbid(backend, smol_tokenizer, vocabulary):
    # MaskBench-dev o10566: {"$oid": ...} next to a document whose keys may not start with "$"
    oid = {"type": "object", "properties": {"$oid": {"type": "string"}}, "required": ["$oid"], "additionalProperties": False}
    document = {"type": "object", "patternProperties": {"^[^$]": {"type": "integer"}}, "additionalProperties": False}
    schema = {"oneOf": [oid, document]}
    grammar = pse.compile(schema, vocabulary, backend=backend)
    for text in ['{"$oid": "x"}', '{"a": 1}', "{}"]:
        validate(schema, text)
        assert _accepts(grammar, smol_tokenizer, text), text
    for text in ['{"$oid": 1}', '{"a": "x"}', '{"$oid": "x", "a": 1}']:
        assert not _accepts(grammar, smol_tokenizer, text), text


def test_a_large_string_enum_is_one_terminal(smol_tokenizer, vocabulary):
    # MaskBench-dev cryproj.53: 2,450 names, one alternative each, passed llguidance's 2,000 items a row
    names = [f"cvar_{i}" for i in range(2500)]
    schema = {"type": "array", "items": {"type": "object", "properties": {"name": {"enum": names}}, "required": ["name"]}}
    lines = [line for line in json_schema_to_grammar(schema).lark.split("\n") if "cvar_" in line]
    assert len(lines) == 1 and '"cvar_0"' in lines[0] and '"cvar_2499"' in lines[0]  # one terminal
    grammar = pse.compile(schema, vocabulary, backend="llguidance", additional_properties="closed")
    assert _accepts(grammar, smol_tokenizer, '[{"name": "cvar_7"}, {"name": "cvar_2499"}]')
    assert not _accepts(grammar, smol_tokenizer, '[{"name": "cvar_2500"}]')


@pytest.mark.parametrize("backend", ["dfa", "llguidance"])
def test_one_of_closed_objects_told_apart_by_their_keys(backend, smol_tokenizer, vocabulary):
    # MaskBench-dev vtestunit: each branch one optional key, every other key closed off; only {}
    # passes more than one branch. Was compiled as "no instance" (the items of an array dropped).
    def branch(key):
        return {"type": "object", "properties": {key: {"type": "string"}}, "additionalProperties": False}
    schema = {"type": "array", "items": {"oneOf": [branch("a"), branch("b"), branch("c")]}}
    grammar = pse.compile(schema, vocabulary, backend=backend)
    for text in ['[{"a": "x"}, {"c": "y"}]', "[]"]:
        validate(schema, text)
        assert _accepts(grammar, smol_tokenizer, text), text
    for text in ["[{}]", '[{"a": "x", "b": "y"}]', '[{"a": 1}]', '[{"d": "x"}]']:
        assert not _accepts(grammar, smol_tokenizer, text), text


@pytest.mark.parametrize("backend", ["dfa", "llguidance"])
def test_all_of_a_single_recursive_ref_is_the_ref(backend, smol_tokenizer, vocabulary):
    # MaskBench-dev o13136: "items": {"allOf": [{"$ref": "#/definitions/item"}]} inside item itself
    # was inlined into itself until Python's stack ran out ("nests too deeply to compile")
    item = {"type": "object", "properties": {"label": {"type": "string"},
                                             "children": {"type": "array", "items": {"allOf": [{"$ref": "#/definitions/item"}]}}},
            "required": ["label"], "additionalProperties": False}
    schema = {"definitions": {"item": item}, "type": "array", "items": {"allOf": [{"$ref": "#/definitions/item"}]}}
    grammar = pse.compile(schema, vocabulary, backend=backend)
    for text in ['[{"label": "a", "children": [{"label": "b", "children": []}]}]', "[]"]:
        validate(schema, text)
        assert _accepts(grammar, smol_tokenizer, text), text
    for text in ['[{"label": "a", "children": [{"children": []}]}]', '[{"label": 1}]']:
        assert not _accepts(grammar, smol_tokenizer, text), text


def test_an_empty_fallback_without_else_sides_names_the_limit():
    # MaskBench-dev github-issue-forms: past a compile limit the compiler keeps the if-and-then
    # sides of conditionals only; disjoint "if"s then leave nothing, which is the limit's doing:
    # it said "no JSON value satisfies this schema" of a schema with valid instances
    kinds = ["a", "b", "c", "d"]
    schema = {"type": "object", "properties": {"type": {"enum": kinds}, "v": {"type": "string"}}, "required": ["type"],
              "allOf": [{"if": {"properties": {"type": {"const": k}}}, "then": {"properties": {"v": {"maxLength": 30 + i}}}}
                        for i, k in enumerate(kinds)]}
    json_schema_to_grammar(schema)  # within the default limits: fine
    for compile_it in (json_schema_to_grammar, json_schema_to_regex):
        with pytest.raises(pse.CompileLimitError, match="else sides"):
            compile_it(schema, SchemaOptions(max_regex_length=3_000))
