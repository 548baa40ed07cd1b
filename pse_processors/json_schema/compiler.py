"""Our own JSON Schema → regex compiler.

Strict by design: every assertion keyword is either enforced exactly or refused with an
:class:`~pse_processors.errors.UnsupportedSchemaError` that names it and its JSON pointer.
Annotations (``title``, ``description``, ``default``...) and keywords outside the JSON
Schema vocabularies carry no assertion and are skipped.

Where JSON Schema allows more than one spelling of a valid instance, the compiler picks a
subset; every choice is listed in README.md ("What the automaton accepts"). The generated
language is always a subset of the valid instances: never a superset.
"""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import dataclass
from typing import Any, Optional

from ..errors import CompileLimitError, SchemaError, UnsatisfiableConstraintError, UnsupportedSchemaError
from . import fragments as fx
from .fragments import Fragment

ANNOTATIONS = frozenset(
    {
        "$schema", "$id", "$comment", "$vocabulary", "title", "description", "default", "examples",
        "deprecated", "readOnly", "writeOnly", "contentEncoding", "contentMediaType",
        "contentSchema", "$defs", "definitions", "discriminator", "xml", "externalDocs", "example",
    }
)
# Every keyword that asserts something; anything else is an annotation or unknown (ignored).
ASSERTIONS = frozenset(
    {
        "type", "enum", "const", "nullable", "properties", "required", "additionalProperties",
        "patternProperties", "propertyNames", "minProperties", "maxProperties", "items", "prefixItems",
        "additionalItems", "minItems", "maxItems", "uniqueItems", "contains", "minContains", "maxContains",
        "minLength", "maxLength", "pattern", "format", "minimum", "maximum", "exclusiveMinimum",
        "exclusiveMaximum", "multipleOf", "allOf", "anyOf", "oneOf", "not", "if", "then", "else",
        "dependentRequired", "dependentSchemas", "dependencies", "unevaluatedProperties",
        "unevaluatedItems", "$ref", "$dynamicRef", "$recursiveRef",
    }
)
# Assertion keywords that this version refuses wherever they would constrain the output.
_REFUSED_ANYWHERE = ("not", "if", "then", "else", "dependentRequired", "dependentSchemas",
                     "dependencies", "unevaluatedProperties", "unevaluatedItems", "$dynamicRef",
                     "$recursiveRef", "$anchor", "$dynamicAnchor")
_NUMERIC_REFUSED = ("minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum", "multipleOf")
_STRING_REFUSED = ("pattern", "format")
_ARRAY_REFUSED = ("uniqueItems", "contains", "minContains", "maxContains")
_OBJECT_REFUSED = ("patternProperties", "propertyNames", "minProperties", "maxProperties")

_TYPE_KEYWORDS = {
    "string": ("minLength", "maxLength") + _STRING_REFUSED,
    "integer": _NUMERIC_REFUSED,
    "number": _NUMERIC_REFUSED,
    "array": ("items", "prefixItems", "minItems", "maxItems", "additionalItems") + _ARRAY_REFUSED,
    "object": ("properties", "required", "additionalProperties") + _OBJECT_REFUSED,
}
ALL_TYPES = ("object", "array", "string", "number", "integer", "boolean", "null")
# An absent items/additionalProperties: any value, one nesting level shallower than a top-level
# `true`, so that {"type": "object"} nests no deeper than {}.
_ANY_NESTED = object()


@dataclass(frozen=True)
class SchemaOptions:
    """Options of the JSON Schema compiler.

    Args:
        whitespace: ``"default"`` accepts compact JSON and ``json.dumps``' default separators
            (``", "`` and ``": "``: at most one space after ``,`` and ``:``); ``"compact"``
            accepts no whitespace at all.
        max_recursion_depth: how many times a recursive ``$ref`` is unrolled.
        any_value_depth: nesting depth of objects/arrays allowed where a schema allows any value.
        max_regex_length: refuse (``CompileLimitError``) a schema whose regex, or whose expansion
            work, grows past this many characters (20x for the work): outlines-core aborts the
            whole process when an automaton outgrows memory, and unrolled ``$ref`` trees can
            grow exponentially.
    """

    whitespace: str = "default"
    max_recursion_depth: int = 3
    any_value_depth: int = 2
    max_regex_length: int = 200_000

    def __post_init__(self) -> None:
        if self.whitespace not in ("default", "compact"):
            raise ValueError(f"whitespace must be 'default' or 'compact', not {self.whitespace!r}")
        if self.max_recursion_depth < 0 or self.any_value_depth < 0:
            raise ValueError("max_recursion_depth and any_value_depth must be >= 0")


def _pointer_join(pointer: str, *parts: Any) -> str:
    for part in parts:
        pointer += "/" + str(part).replace("~", "~0").replace("/", "~1")
    return pointer


class _Compiler:
    def __init__(self, root: Any, options: SchemaOptions) -> None:
        self.root = root
        self.options = options
        space = "[ ]?" if options.whitespace == "default" else ""
        self.item_sep = "," + space
        self.key_sep = ":" + space
        self._ref_stack: list[str] = []
        self._ref_memo: dict = {}
        self._produced = 0

    # -- entry -----------------------------------------------------------------
    def compile(self, schema: Any, pointer: str) -> Fragment:
        fragment = self._compile(schema, pointer)
        if fragment is not None:
            limit = self.options.max_regex_length
            self._produced += len(fragment)
            if len(fragment) > limit or self._produced > 20 * limit:
                raise CompileLimitError(
                    f"the schema at {pointer or '#'} expands to a regex of more than {limit:,} characters "
                    "(max_regex_length): its automaton could exhaust memory. Lower max_recursion_depth or "
                    "any_value_depth, bound fewer repetitions, or raise max_regex_length."
                )
        return fragment

    def _compile(self, schema: Any, pointer: str) -> Fragment:
        if schema is _ANY_NESTED:
            return self.any_value(max(self.options.any_value_depth - 1, 0))
        if schema is True:
            return self.any_value(self.options.any_value_depth)
        if schema is False:
            return None
        if not isinstance(schema, dict):
            raise SchemaError(f"a schema must be an object or a boolean, not {type(schema).__name__}", pointer)
        _refuse(schema, _REFUSED_ANYWHERE, pointer)
        if "$ref" in schema:
            return self._compile_ref(schema, pointer)
        if "allOf" in schema:
            return self._compile_all_of(schema, pointer)
        if "anyOf" in schema or "oneOf" in schema:
            return self._compile_union(schema, pointer)
        if "enum" in schema or "const" in schema:
            return self._compile_enum(schema, pointer)
        types = self._types(schema, pointer)
        if not types:
            return self.any_value(self.options.any_value_depth)
        if schema.get("nullable") is True and "null" not in types:
            types.append("null")
        return fx.alternation(self._compile_type(t, schema, pointer) for t in types)

    # -- references and combinators ---------------------------------------------
    def _resolve(self, ref: str, pointer: str) -> Any:
        if not isinstance(ref, str):
            raise SchemaError("$ref must be a string", pointer)
        if not ref.startswith("#"):
            raise UnsupportedSchemaError("$ref", pointer, f"only local references ('#/...') are supported, not {ref!r}")
        node = self.root
        path = ref[1:]
        if path and not path.startswith("/"):
            raise UnsupportedSchemaError("$ref", pointer, f"anchor references are not supported: {ref!r}")
        for raw in path.split("/")[1:]:
            part = raw.replace("~1", "/").replace("~0", "~")
            if isinstance(node, dict) and part in node:
                node = node[part]
            elif isinstance(node, list) and part.isdigit() and int(part) < len(node):
                node = node[int(part)]
            else:
                raise SchemaError(f"$ref {ref!r} points to nothing", pointer)
        return node

    def _compile_ref(self, schema: dict, pointer: str) -> Fragment:
        ref = schema["$ref"]
        target = self._resolve(ref, pointer)
        siblings = {k: v for k, v in schema.items() if k != "$ref"}
        if self._ref_stack.count(ref) >= self.options.max_recursion_depth:
            return None  # recursion unrolled as deep as allowed: this branch drops out
        # A plain $ref's regex depends only on how often each ref is already being unrolled.
        memo_key = None if _has_assertions(siblings) else (ref, frozenset(Counter(self._ref_stack).items()))
        if memo_key in self._ref_memo:
            return self._ref_memo[memo_key]
        self._ref_stack.append(ref)
        try:
            if memo_key is None:
                merged = _merge(target, siblings, pointer) if isinstance(target, dict) else None
                if merged is None:
                    raise UnsupportedSchemaError("$ref", pointer, "a boolean target with sibling keywords")
                return self.compile(merged, pointer)
            fragment = self._ref_memo[memo_key] = self.compile(target, ref)
            return fragment
        finally:
            self._ref_stack.pop()

    def _compile_all_of(self, schema: dict, pointer: str) -> Fragment:
        branches = schema["allOf"]
        if not isinstance(branches, list) or not branches:
            raise SchemaError("allOf must be a non-empty array", pointer)
        merged: Any = {k: v for k, v in schema.items() if k != "allOf"}
        for i, branch in enumerate(branches):
            where = _pointer_join(pointer, "allOf", i)
            if branch is False:
                return None
            if branch is True:
                continue
            if isinstance(branch, dict) and "$ref" in branch and not _has_assertions(
                {k: v for k, v in branch.items() if k != "$ref"}
            ):
                ref = branch["$ref"]
                if ref in self._ref_stack:
                    raise UnsupportedSchemaError("allOf", where, "a recursive $ref inside allOf")
                branch = self._resolve(ref, where)
            if not isinstance(branch, dict):
                raise SchemaError("allOf entries must be schemas", where)
            merged = _merge(merged, branch, where)
        return self.compile(merged, pointer)

    def _compile_union(self, schema: dict, pointer: str) -> Fragment:
        keyword = "anyOf" if "anyOf" in schema else "oneOf"
        if "anyOf" in schema and "oneOf" in schema:
            raise UnsupportedSchemaError("oneOf", pointer, "anyOf and oneOf in the same schema")
        branches = schema[keyword]
        if not isinstance(branches, list) or not branches:
            raise SchemaError(f"{keyword} must be a non-empty array", pointer)
        siblings = {k: v for k, v in schema.items() if k != keyword}
        resolved = []
        for i, branch in enumerate(branches):
            where = _pointer_join(pointer, keyword, i)
            if _has_assertions(siblings):
                if branch is False:
                    continue
                branch = siblings if branch is True else _merge(siblings, self._inline_ref(branch, where), where)
            resolved.append((branch, where))
        if keyword == "oneOf":
            self._check_disjoint([b for b, _ in resolved], pointer)
        return fx.alternation(self.compile(branch, where) for branch, where in resolved)

    def _inline_ref(self, branch: Any, where: str) -> dict:
        if not isinstance(branch, dict):
            raise SchemaError("a schema must be an object or a boolean", where)
        if "$ref" in branch and not _has_assertions({k: v for k, v in branch.items() if k != "$ref"}):
            if branch["$ref"] in self._ref_stack:
                raise UnsupportedSchemaError("$ref", where, "a recursive $ref merged with sibling keywords")
            target = self._resolve(branch["$ref"], where)
            if isinstance(target, dict):
                return target
        return branch

    def _check_disjoint(self, branches: list, pointer: str) -> None:
        """oneOf is exact only when no instance can match two branches: prove it or refuse."""
        seen_types: set[str] = set()
        seen_values: list[Any] = []
        all_literal = all(isinstance(b, dict) and ("const" in b or "enum" in b) for b in branches)
        if all_literal:
            for branch in branches:
                values = [branch["const"]] if "const" in branch else list(branch["enum"])
                for value in values:
                    if any(_json_equal(value, other) for other in seen_values):
                        raise UnsupportedSchemaError("oneOf", pointer, f"the value {json.dumps(value)} is in two branches")
                    seen_values.append(value)
            return
        for i, branch in enumerate(branches):
            types = self._branch_types(branch)
            if types is None or types & seen_types:
                raise UnsupportedSchemaError(
                    "oneOf", _pointer_join(pointer, "oneOf", i),
                    "branches that may overlap (only branches of distinct types or distinct constants are exact)",
                )
            seen_types |= types
        return

    def _branch_types(self, branch: Any) -> Optional[set]:
        if not isinstance(branch, dict):
            return None
        if "$ref" in branch:
            target = self._resolve(branch["$ref"], "#")
            return self._branch_types(target) if set(branch) <= {"$ref"} | ANNOTATIONS else None
        if "type" not in branch:
            return None
        types = set(branch["type"] if isinstance(branch["type"], list) else [branch["type"]])
        if "integer" in types or "number" in types:
            types |= {"integer", "number"}  # 1 is both
        if branch.get("nullable") is True:
            types.add("null")
        return types

    def _compile_enum(self, schema: dict, pointer: str) -> Fragment:
        if "const" in schema:
            values = [schema["const"]]
            keyword = "const"
        else:
            values = schema["enum"]
            keyword = "enum"
            if not isinstance(values, list):
                raise SchemaError("enum must be an array", pointer)
        if "const" in schema and "enum" in schema:
            values = [v for v in values if any(_json_equal(v, e) for e in schema["enum"])]
        rest = {k: v for k, v in schema.items() if k not in ("enum", "const", "type", "nullable")}
        if _has_assertions(rest):
            other = sorted(k for k in rest if k in ASSERTIONS)[0]
            raise UnsupportedSchemaError(other, pointer, f"combined with {keyword}")
        if "type" in schema:
            types = self._types(schema, pointer)
            if schema.get("nullable") is True:
                types.append("null")
            values = [v for v in values if _json_type(v) in types or (_json_type(v) == "integer" and "number" in types)]
        return fx.alternation(fx.json_literal(v, self.item_sep, self.key_sep) for v in values)

    # -- types -------------------------------------------------------------------
    def _types(self, schema: dict, pointer: str) -> list:
        if "type" in schema:
            declared = schema["type"]
            types = declared if isinstance(declared, list) else [declared]
            for t in types:
                if t not in ALL_TYPES:
                    raise SchemaError(f"unknown type {t!r}", _pointer_join(pointer, "type"))
            return list(dict.fromkeys(types))
        # No "type": generate the types that the present keywords describe (a subset of
        # what validates, which also allows every other type).
        implied = [t for t in ("object", "array", "string") if any(k in schema for k in _TYPE_KEYWORDS[t])]
        if any(k in schema for k in _NUMERIC_REFUSED):
            implied.append("number")
        return implied  # empty: any value

    def _compile_type(self, type_name: str, schema: dict, pointer: str) -> Fragment:
        if type_name == "null":
            return fx.NULL
        if type_name == "boolean":
            return fx.BOOLEAN
        if type_name in ("integer", "number"):
            _refuse(schema, _NUMERIC_REFUSED, pointer)
            return fx.INTEGER if type_name == "integer" else fx.NUMBER
        if type_name == "string":
            return self._compile_string(schema, pointer)
        if type_name == "array":
            return self._compile_array(schema, pointer)
        return self._compile_object(schema, pointer)

    def _compile_string(self, schema: dict, pointer: str) -> Fragment:
        _refuse(schema, _STRING_REFUSED, pointer)
        low, high = _bounds(schema, "minLength", "maxLength", pointer)
        if high is not None and high < low:
            return None
        return '"' + fx.repeat(fx.STRING_CHAR, low, high) + '"'

    def _compile_array(self, schema: dict, pointer: str) -> Fragment:
        _refuse(schema, _ARRAY_REFUSED, pointer)
        low, high = _bounds(schema, "minItems", "maxItems", pointer)
        prefix_schemas = schema.get("prefixItems", [])
        if not isinstance(prefix_schemas, list):
            raise SchemaError("prefixItems must be an array", pointer)
        items = schema.get("items", _ANY_NESTED)
        if isinstance(items, list):  # draft 4-7 tuple form
            prefix_schemas, items = items, schema.get("additionalItems", True)
        prefix = [self.compile(s, _pointer_join(pointer, "prefixItems", i)) for i, s in enumerate(prefix_schemas)]
        rest = self.compile(items, _pointer_join(pointer, "items"))
        # A None prefix element caps the length before it.
        for i, element in enumerate(prefix):
            if element is None:
                prefix, rest = prefix[:i], None
                break
        cap = len(prefix) if rest is None else None
        if cap is not None:
            high = cap if high is None else min(high, cap)
        if high is not None and high < low:
            return None
        return r"\[" + self._elements(prefix, rest, 0, low, high) + r"\]"

    def _elements(self, prefix: list, rest: Fragment, i: int, low: int, high: Optional[int]) -> str:
        """Elements from position ``i`` on, given ``i`` were already written."""
        sep = self.item_sep if i > 0 else ""
        if high is not None and i >= high:
            return ""
        if i < len(prefix):
            part = sep + prefix[i] + self._elements(prefix, rest, i + 1, low, high)
            return part if i < low else fx.optional(part)
        assert rest is not None
        need = max(low - i, 0)
        most = None if high is None else high - i
        if i == 0:
            tail = fx.repeat(self.item_sep + rest, max(need - 1, 0), None if most is None else most - 1)
            return rest + tail if need > 0 else fx.optional(rest + tail)
        return fx.repeat(sep + rest, need, most)

    def _compile_object(self, schema: dict, pointer: str) -> Fragment:
        _refuse(schema, _OBJECT_REFUSED, pointer)
        properties = schema.get("properties", {})
        if not isinstance(properties, dict):
            raise SchemaError("properties must be an object", pointer)
        required = schema.get("required", [])
        if not isinstance(required, list) or not all(isinstance(r, str) for r in required):
            raise SchemaError("required must be an array of strings", pointer)
        additional = schema.get("additionalProperties", _ANY_NESTED)
        entries: list[tuple[str, Fragment, bool]] = []
        for name, sub in properties.items():
            value = self.compile(sub, _pointer_join(pointer, "properties", name))
            entries.append((name, value, name in required))
        for name in required:
            if name not in properties:
                if additional is False:
                    return None
                entries.append((name, self.compile(additional, _pointer_join(pointer, "additionalProperties")), True))
        if any(value is None and is_required for _, value, is_required in entries):
            return None
        entries = [(n, v, r) for n, v, r in entries if v is not None]
        if "properties" in schema or entries or additional is False:
            # Declared properties only, in schema order (README: "Property order").
            members = [(self._key(name) + self.key_sep + value, req) for name, value, req in entries]
            return r"\{" + self._members(members, 0, True) + r"\}"
        value = self.compile(additional, _pointer_join(pointer, "additionalProperties"))
        if value is None:
            return r"\{\}"
        member = '"' + fx.STRING_CHAR + '*"' + self.key_sep + value
        return r"\{" + fx.optional(member + fx.repeat(self.item_sep + member, 0, None)) + r"\}"

    def _members(self, members: list, i: int, first: bool) -> str:
        if i == len(members):
            return ""
        member, is_required = members[i]
        sep = "" if first else self.item_sep
        taken = sep + member + self._members(members, i + 1, False)
        if is_required:
            return taken
        skipped = self._members(members, i + 1, first)
        if first:
            return fx.alternation([taken, skipped]) if skipped else fx.optional(taken)
        return fx.optional(sep + member) + skipped

    def _key(self, name: str) -> str:
        return fx.escape(json.dumps(name, ensure_ascii=False))

    def any_value(self, depth: int) -> str:
        scalars = [r'"' + fx.STRING_CHAR + '*"', fx.NUMBER, fx.BOOLEAN, fx.NULL]
        if depth > 0:
            inner = self.any_value(depth - 1)
            member = '"' + fx.STRING_CHAR + '*"' + self.key_sep + inner
            scalars.append(r"\{" + fx.optional(member + fx.repeat(self.item_sep + member, 0, None)) + r"\}")
            scalars.append(r"\[" + fx.optional(inner + fx.repeat(self.item_sep + inner, 0, None)) + r"\]")
        return fx.alternation(scalars)  # type: ignore[return-value]


def _as_list(value: Any) -> list:
    return value if isinstance(value, list) else [] if value is None else [value]


def _refuse(schema: dict, keywords: tuple, pointer: str) -> None:
    for keyword in keywords:
        if keyword in schema:
            raise UnsupportedSchemaError(keyword, pointer)


def _bounds(schema: dict, low_keyword: str, high_keyword: str, pointer: str) -> tuple[int, Optional[int]]:
    low = _non_negative_int(schema, low_keyword, pointer, 0)
    return low, _non_negative_int(schema, high_keyword, pointer, None)  # type: ignore[return-value]


def _non_negative_int(schema: dict, keyword: str, pointer: str, default: Optional[int]) -> Optional[int]:
    if keyword not in schema:
        return default
    value = schema[keyword]
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    if not isinstance(value, int) or isinstance(value, bool) or value < 0:
        raise SchemaError(f"{keyword} must be a non-negative integer, not {value!r}", pointer)
    return value


def _has_assertions(schema: dict) -> bool:
    return any(k in ASSERTIONS for k in schema)


def _json_type(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int) or (isinstance(value, float) and value.is_integer()):
        return "integer"
    if isinstance(value, float):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "array"
    return "object"


def _json_equal(a: Any, b: Any) -> bool:
    if isinstance(a, bool) or isinstance(b, bool):
        return type(a) is type(b) and a == b
    return bool(a == b) if type(a) is type(b) or (isinstance(a, (int, float)) and isinstance(b, (int, float))) else False


def _merge(a: dict, b: dict, pointer: str) -> dict:
    """Merge two schemas that must both hold (allOf); refuse what cannot be merged exactly."""
    merged = dict(a)
    for key, value in b.items():
        if key not in merged or key in ANNOTATIONS:
            merged.setdefault(key, value)
        elif key == "required":
            merged[key] = list(dict.fromkeys(list(merged[key]) + list(value)))
        elif key == "properties" and isinstance(value, dict):
            props = dict(merged[key])
            for name, sub in value.items():
                props[name] = {"allOf": [props[name], sub]} if name in props and props[name] != sub else sub
            merged[key] = props
        elif key == "type":
            left, right = _as_list(merged[key]), _as_list(value)
            both = [t for t in left if t in right or (t == "integer" and "number" in right)]
            both += [t for t in right if t == "integer" and "number" in left and t not in both]
            merged[key] = both
        elif merged[key] != value:
            raise UnsupportedSchemaError("allOf", pointer, f"both branches constrain {key!r} differently")
    return merged


def json_schema_to_regex(schema: Any, options: Optional[SchemaOptions] = None) -> str:
    """Compile a JSON Schema (dict, bool or JSON string) to a regex over JSON text.

    Raises:
        SchemaError: the schema is malformed.
        UnsupportedSchemaError: the schema uses a keyword that cannot be enforced exactly.
        UnsatisfiableConstraintError: no JSON value satisfies the schema.

    Example:
        >>> from pse_processors.json_schema import json_schema_to_regex
        >>> json_schema_to_regex({"type": "boolean"})
        '(?:true|false)'
    """
    options = options or SchemaOptions()
    if isinstance(schema, (str, bytes)):
        try:
            schema = json.loads(schema)
        except json.JSONDecodeError as exc:
            raise SchemaError(f"the schema is not valid JSON: {exc}", "#") from exc
    compiler = _Compiler(schema, options)
    try:
        regex = compiler.compile(schema, "#")
    except RecursionError as exc:
        raise SchemaError("the schema nests too deeply to compile", "#") from exc
    if regex is None:
        raise UnsatisfiableConstraintError("no JSON value satisfies this schema")
    return regex
