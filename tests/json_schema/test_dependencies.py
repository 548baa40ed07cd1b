"""``dependentSchemas`` and schema-valued ``dependencies`` (json_schema/dependencies.py): a
conditional on a key's presence, on both back ends, checked against jsonschema on every
combination of present and absent keys, and rejected at the exact token."""

from __future__ import annotations

import itertools
import json

import jsonschema
import pytest

import pse_processors as pse
from pse_processors.errors import UnsupportedSchemaError

BYTES = pse.Vocabulary([bytes([b]) for b in range(256)] + [None], eos_token_ids=[256])
EOS = 256

CARD = {
    "type": "object",
    "properties": {"name": {"type": "string", "maxLength": 4}, "card": {"type": "integer"},
                   "billing": {"type": "string", "maxLength": 5}},
    "dependentSchemas": {"card": {"required": ["billing"], "properties": {"billing": {"maxLength": 2}}}},
    "additionalProperties": False,
}
DRAFT7 = {
    "$schema": "http://json-schema.org/draft-07/schema#",
    "type": "object",
    "properties": {"a": {"type": "integer"}, "b": {"type": "integer"}, "c": {"type": "boolean"}},
    "dependencies": {"a": {"properties": {"b": {"minimum": 5}}, "required": ["b"]}, "c": ["a"], "b": True},
    "additionalProperties": False,
}
FORBIDDEN = {"type": "object", "properties": {"x": {"type": "null"}, "y": {"type": "null"}},
             "dependentSchemas": {"x": False, "y": {"not": {"required": ["x"]}}}}
NESTED = {"type": "array", "maxItems": 2,
          "items": {"type": "object", "properties": {"k": {"enum": [1, 2]}, "v": {"type": "string", "maxLength": 1}},
                    "dependentSchemas": {"k": {"properties": {"v": {"const": "x"}}, "required": ["v"]}},
                    "additionalProperties": False}}

INSTANCES = {
    "CARD": [dict(zip(keys, values)) for n in range(4) for keys in itertools.combinations(["name", "card", "billing"], n)
             for values in itertools.product(*[{"name": ["ab"], "card": [7], "billing": ["x", "xyz"]}[k] for k in keys])],
    "DRAFT7": [dict(zip(keys, values)) for n in range(4) for keys in itertools.combinations("abc", n)
               for values in itertools.product(*[{"a": [1], "b": [2, 9], "c": [True]}[k] for k in keys])],
    "FORBIDDEN": [{}, {"x": None}, {"y": None}, {"x": None, "y": None}],
    "NESTED": [[], [{}], [{"k": 1}], [{"k": 1, "v": "x"}], [{"v": "y"}], [{"k": 2, "v": "x"}, {"v": "z"}],
               [{"k": 2, "v": "y"}]],
}
SCHEMAS = {"CARD": CARD, "DRAFT7": DRAFT7, "FORBIDDEN": FORBIDDEN, "NESTED": NESTED}


@pytest.mark.parametrize("backend", ["dfa", "llguidance"])
@pytest.mark.parametrize("name", sorted(SCHEMAS))
def test_accepted_exactly_when_valid(name, backend):
    schema = SCHEMAS[name]
    matcher = pse.compile(schema, BYTES, backend=backend)
    validator = jsonschema.validators.validator_for(schema)(schema)
    kinds = set()
    for value in INSTANCES[name]:
        text = json.dumps(value)
        valid = validator.is_valid(value)
        assert matcher.accepts(list(text.encode()) + [EOS]) == valid, (text, valid)
        kinds.add(valid)
    assert kinds == {True, False}


@pytest.mark.parametrize("backend", ["dfa", "llguidance"])
@pytest.mark.parametrize("text, at", [
    ('{"card": 7}', len('{"card": 7')),  # "}" would leave out billing
    ('{"card": 7, "billing": "xyz"}', len('{"card": 7, "billing": "xy')),  # the dependent maxLength 2
    ('{"name": "ab", "card": 7}', len('{"name": "ab", "card": 7')),
])
def test_a_violation_is_rejected_at_its_exact_token(text, at, backend):
    matcher = pse.compile(CARD, BYTES, backend=backend)
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(json.loads(text), CARD)
    state = matcher.initial_state
    for i, token in enumerate(text.encode()):
        following = matcher.advance(state, token)
        if following is None:
            assert i == at, (text, i)
            return
        state = following
    raise AssertionError(f"{text} was not rejected")


def test_negated_dependency_is_exact():
    schema = {"type": "object", "properties": {"a": {"type": "integer"}, "b": {"type": "integer"}},
              "not": {"dependentSchemas": {"a": {"required": ["b"]}}}}
    matcher = pse.compile(schema, BYTES, backend="dfa")
    for value in [{}, {"a": 1}, {"b": 1}, {"a": 1, "b": 2}]:
        text = json.dumps(value)
        assert matcher.accepts(list(text.encode()) + [EOS]) == jsonschema.Draft202012Validator(schema).is_valid(value)


def test_too_many_triggers_are_refused_by_name():
    schema = {"type": "object", "dependentSchemas": {k: {"required": ["z"]} for k in "abcde"}}
    with pytest.raises(UnsupportedSchemaError) as info:
        pse.compile(schema, BYTES)
    assert info.value.keyword == "dependentSchemas" and info.value.pointer == "#"
