"""llguidance's own JSON Schema front end, for the schemas where its language is exactly ours.

llguidance compiles a JSON Schema without reading Lark text (its Lark front end builds a lexer
for every grammar it reads), and without our Python compiler. :func:`front_end` decides, from
the schema and the options alone, whether that front end enforces precisely the language our
compiler would write; :func:`wrapped` is the grammar handed to llguidance then. Anything the
decision does not know is refused (``None``): the schema then takes today's path.

What differs, measured on llguidance 1.9 (``tests/compiler/test_llg_json.py``), and so keeps a
schema on our compiler:

- **Free strings.** Ours accept every JSON spelling (``\\/``, raw U+007F, any ``\\u`` escape of a
  non-surrogate); llguidance's never accept ``\\/``, and either no printable ``\\u`` escape or no
  raw U+007F (``json_allow_general_unicode_escapes``). So no ``type: string``, no ``{}``/``true``
  (any value), no extra object members (their keys are strings), no ``format``/``pattern``.
- **Numbers with bounds or ``multipleOf``, numbers in ``enum``/``const``**: spelled differently
  (ours accept ``1.0`` for an enum's ``1``; llguidance writes serde_json's spelling only).
- ``oneOf``, ``allOf``, ``not``, ``if``, ``patternProperties``, ``dependencies``..., recursion,
  ``prefixItems``, ``uniqueItems``: not in the allow-list.
- Forcing: where a grammar forces bytes, llguidance allows only their canonical tokenization;
  ours allow every spelling. Only Lark carries ``no_forcing`` (which
  :func:`~pse_processors.matchers.llguidance.llguidance_matcher` adds), so the schema is embedded
  in a one-line Lark grammar (``%json``), whose lexer costs llguidance about 0.5 ms: still no
  Lark of ours to build, and llguidance reads no large Lark text.

Example:
    >>> from pse_processors.json_schema import SchemaOptions
    >>> schema = {"type": "object", "properties": {"n": {"type": "integer"}}, "required": ["n"]}
    >>> front_end(schema, SchemaOptions())["additionalProperties"]  # "closed": written out for llguidance
    False
    >>> front_end({"type": "string"}, SchemaOptions()) is None  # string spellings differ
    True
    >>> print(wrapped({"type": "boolean"}, SchemaOptions(whitespace="compact")))
    start: %json {"type": "boolean", "x-guidance": {"item_separator": ",", "key_separator": ":", "whitespace_flexible": false}}
    >>> is_wrapped(wrapped({"type": "null"}, SchemaOptions()))
    True
"""

from __future__ import annotations

import dataclasses
import json
from typing import Any, Optional

from ..json_schema import SchemaOptions

#: The SchemaOptions fields whose every value this module knows; any other field (a newer
#: compiler option) keeps every schema on our compiler until it is read here.
_KNOWN_OPTIONS = frozenset({
    "whitespace", "indent", "whitespace_pattern", "additional_properties", "property_order", "strict",
    "max_recursion_depth", "any_value_depth", "max_regex_length", "max_compile_seconds", "unknown_formats",
})
#: Keywords that assert nothing (llguidance and our compiler both skip them).
_ANNOTATIONS = frozenset({"title", "description", "default", "examples", "$comment", "deprecated", "readOnly", "writeOnly"})
_TYPES = frozenset({"integer", "number", "boolean", "null", "array", "object"})
#: Keywords allowed next to ``type``, by type (and the annotations anywhere).
_BY_TYPE = {
    "integer": frozenset(), "number": frozenset(), "boolean": frozenset(), "null": frozenset(),
    "array": frozenset({"items", "minItems", "maxItems"}),
    "object": frozenset({"properties", "required", "additionalProperties"}),
}
_MAX_ITEMS = 64  # counted repetitions both sides write out
_LARK = "start: %json "
_MAX_DEPTH = 64  # nesting of subschemas (ours refuses past 256; llguidance has its own limits)


class _Refused(Exception):
    """Inside the walk: this schema keeps today's path."""


def front_end(schema: Any, options: SchemaOptions) -> Optional[dict]:
    """The schema as llguidance's JSON Schema front end should read it (``x-guidance`` options
    included), when that front end enforces exactly the language our compiler writes for
    ``schema`` under ``options``; ``None`` otherwise. A pure function of its arguments."""
    x_guidance = _x_guidance(options)
    if x_guidance is None or not isinstance(schema, dict):
        return None
    try:
        out = _Walk(schema, options).root()
    except (_Refused, RecursionError):
        return None
    out["x-guidance"] = x_guidance
    return out


def wrapped(schema: Any, options: SchemaOptions) -> Optional[str]:
    """The Lark grammar that embeds :func:`front_end`'s schema, or ``None``."""
    found = front_end(schema, options)
    return None if found is None else _LARK + json.dumps(found)


def is_wrapped(lark: str) -> bool:
    """Whether ``lark`` is a grammar :func:`wrapped` wrote."""
    return lark.startswith(_LARK)


def _x_guidance(options: SchemaOptions) -> Optional[dict]:
    names = {f.name for f in dataclasses.fields(options)}
    if not names <= _KNOWN_OPTIONS or options.whitespace_pattern is not None:
        return None
    if options.whitespace == "default":  # at most one space after "," and ":", none elsewhere
        return {"item_separator": ",[ ]?", "key_separator": ":[ ]?", "whitespace_flexible": False}
    if options.whitespace == "compact":
        return {"item_separator": ",", "key_separator": ":", "whitespace_flexible": False}
    return None  # "pretty": indentation by depth


def _safe_text(text: Any) -> bool:
    """A property name or string constant spelled the same, and only one way, by both: no
    character that JSON escapes, no U+007F, no lone surrogate, nothing from plane 16."""
    return isinstance(text, str) and all(0x20 <= ord(c) < 0xD800 and c not in '"\\\x7f' or 0xE000 <= ord(c) < 0x100000
                                         for c in text)


def _constant(value: Any) -> bool:
    """Booleans, null and plain strings. Not numbers: ours accept other spellings of an equal number
    (``1`` and ``1.0``), llguidance's its serde_json spelling only."""
    return value is None or isinstance(value, bool) or _safe_text(value)


class _Walk:
    """One schema's check, and its copy for llguidance (``additionalProperties: false`` written
    out, only the definitions it reaches kept)."""

    def __init__(self, root: dict, options: SchemaOptions) -> None:
        self.root_schema = root
        self.options = options
        self.open_refs: list = []  # the $refs being walked (a cycle is refused)
        self.definitions: dict = {}  # (container, name) -> the definition's copy

    def root(self) -> dict:
        body = {k: v for k, v in self.root_schema.items() if k not in ("$schema", "definitions", "$defs")}
        out = self.schema(body, 0)
        if "$schema" in self.root_schema:
            out["$schema"] = self.root_schema["$schema"]
        for (container, name), copied in self.definitions.items():
            out.setdefault(container, {})[name] = copied
        return out

    def schema(self, schema: Any, depth: int) -> dict:
        if not isinstance(schema, dict) or depth > _MAX_DEPTH:
            raise _Refused  # true (any value), false; very deep schemas
        keys = set(schema) - _ANNOTATIONS
        depth += 1
        if "$ref" in schema:
            if keys != {"$ref"}:
                raise _Refused  # siblings: applied or ignored by draft
            return self.ref(schema["$ref"], depth)
        if "anyOf" in schema:
            branches = schema["anyOf"]
            if keys != {"anyOf"} or not isinstance(branches, list) or not branches:
                raise _Refused
            return {"anyOf": [self.schema(branch, depth) for branch in branches]}
        if "enum" in schema or "const" in schema:
            if len(keys) != 1:
                raise _Refused  # a type or other sibling filters the values
            values = schema["enum"] if "enum" in schema else [schema["const"]]
            if not isinstance(values, list) or not values or not all(_constant(v) for v in values):
                raise _Refused
            return {"enum": list(values)}
        types = schema.get("type")
        types = [types] if isinstance(types, str) else types
        if not isinstance(types, list) or not types or len(set(types)) != len(types) or not set(types) <= _TYPES:
            raise _Refused
        if not keys <= frozenset({"type"}).union(*(_BY_TYPE[t] for t in types)):
            raise _Refused
        out: dict = {"type": schema["type"]}
        if "array" in types:
            out.update(self.array(schema, depth))
        if "object" in types:
            out.update(self.object(schema, depth))
        return out

    def array(self, schema: dict, depth: int) -> dict:
        if "items" not in schema:
            raise _Refused  # any items
        out = {"items": self.schema(schema["items"], depth)}
        for key in ("minItems", "maxItems"):
            if key in schema:
                value = schema[key]
                if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= _MAX_ITEMS:
                    raise _Refused
                out[key] = value
        if out.get("minItems", 0) > out.get("maxItems", _MAX_ITEMS):
            raise _Refused  # unsatisfiable: ours names it
        return out

    def object(self, schema: dict, depth: int) -> dict:
        properties = schema.get("properties", {})
        required = schema.get("required", [])
        if not isinstance(properties, dict) or not isinstance(required, list):
            raise _Refused
        additional = schema.get("additionalProperties", None if properties else True)
        if additional is None:  # properties listed, nothing said of others: the option decides
            additional = self.options.additional_properties != "closed"
        if additional is not False:
            raise _Refused  # extra members: their keys are free strings
        names = list(properties)
        if not all(_safe_text(name) for name in names) or len(set(map(str, required))) != len(required):
            raise _Refused
        if not all(isinstance(name, str) and name in properties for name in required):
            raise _Refused  # a required name no member may carry: unsatisfiable, ours names it
        if not self.one_order(names, required):
            raise _Refused
        return {
            "properties": {name: self.schema(sub, depth) for name, sub in properties.items()},
            "required": list(required), "additionalProperties": False,
        }

    def one_order(self, names: list, required: list) -> bool:
        """Whether ``property_order`` accepts only the order of ``properties`` here (llguidance's)."""
        policy = getattr(self.options, "property_order", "properties")
        if policy == "properties":
            return True
        if policy == "any" and 1 < len(names) <= 4:  # every order (see json_schema/orders.py)
            return False
        if policy not in ("required", "any"):
            return False
        # "required": also required's names first, unless they already come first in that order
        position = {name: i for i, name in enumerate(names)}
        first = [position[name] for name in dict.fromkeys(required)]
        return first == list(range(len(first)))

    def ref(self, ref: Any, depth: int) -> dict:
        """A ``$ref`` to ``#/definitions/name`` or ``#/$defs/name`` (no recursion)."""
        container = next((c for c in ("definitions", "$defs") if isinstance(ref, str) and ref.startswith(f"#/{c}/")), None)
        if container is None:
            raise _Refused
        name = ref[len(container) + 3:]
        definitions = self.root_schema.get(container)
        if any(c in name for c in "/~%") or not isinstance(definitions, dict) or name not in definitions:
            raise _Refused  # nested pointers, escaped names; a missing definition (ours names it)
        key = (container, name)
        if key in self.open_refs:
            raise _Refused  # recursion: backend="auto" runs it on llguidance through our grammar
        if key not in self.definitions:
            self.open_refs.append(key)
            self.definitions[key] = self.schema(definitions[name], depth)
            self.open_refs.pop()
        return {"$ref": ref}
