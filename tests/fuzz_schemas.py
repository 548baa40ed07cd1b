"""Schemas for generation fuzzing: strings are short so that random-weight models finish."""

from __future__ import annotations

S = {"type": "string", "maxLength": 6}

FUZZ_SCHEMAS: list[dict] = [
    {"type": "boolean"},
    {"type": "integer"},
    {"type": "number"},
    {"type": "null"},
    {"enum": ["red", "green", "blue", 1, None, True]},
    {"const": {"a": [1, 2], "b": "x"}},
    S,
    {"type": "string", "minLength": 2, "maxLength": 3},
    {"type": "object", "properties": {"name": S, "age": {"type": "integer"}}, "required": ["name", "age"]},
    {"type": "object", "properties": {"a": S, "b": {"type": "boolean"}, "c": {"type": "null"}}, "required": ["b"]},
    {"type": "object", "properties": {"x": {"type": "number"}, "y": {"type": "number"}}, "additionalProperties": False},
    {"type": "array", "items": {"type": "integer"}, "minItems": 1, "maxItems": 4},
    {"type": "array", "items": S, "maxItems": 3},
    {"type": "array", "prefixItems": [{"type": "boolean"}, S], "items": False, "minItems": 1},
    {"type": ["integer", "null"]},
    {"anyOf": [{"type": "integer"}, S, {"type": "array", "items": {"type": "boolean"}, "maxItems": 2}]},
    {"oneOf": [{"type": "object", "properties": {"k": {"const": "a"}}, "required": ["k"]}, {"type": "string", "maxLength": 4}]},
    {
        "type": "object",
        "properties": {"user": {"$ref": "#/$defs/user"}, "tags": {"type": "array", "items": {"enum": ["x", "y"]}, "maxItems": 3}},
        "required": ["user"],
        "$defs": {"user": {"type": "object", "properties": {"id": {"type": "integer"}, "nick": S}, "required": ["id"]}},
    },
    {
        "$defs": {"node": {"type": "object", "properties": {"v": {"type": "integer"}, "next": {"$ref": "#/$defs/node"}}, "required": ["v"]}},
        "$ref": "#/$defs/node",
    },
    {"allOf": [{"type": "object", "properties": {"a": {"type": "integer"}}, "required": ["a"]}, {"properties": {"b": S}, "required": ["b"]}]},
    {"type": "object", "properties": {"name": {"type": "string", "maxLength": 4}, "emoji": {"type": "string", "minLength": 1, "maxLength": 2}}, "required": ["name", "emoji"]},
    {"type": "object", "properties": {"items": {"type": "array", "items": {"type": "object", "properties": {"q": {"type": "integer"}}, "required": ["q"]}, "maxItems": 2}}, "required": ["items"]},
    {"type": ["object", "null"], "properties": {"ok": {"type": "boolean"}}, "required": ["ok"]},
]
