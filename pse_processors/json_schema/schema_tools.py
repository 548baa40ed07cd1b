"""Schema-level helpers of the compiler: merging, literals, bounds, pointers."""

from __future__ import annotations

import json
import re
from typing import Any, Optional
from decimal import Decimal, InvalidOperation

from ..errors import CompileLimitError, SchemaError, UnsupportedSchemaError
from . import fragments as fx
from .formats import STRING_FORMATS
from .fragments import Fragment
from .keywords import ALSO_PATTERNS, ANNOTATIONS, ASSERTIONS, NOT_PATTERNS
from .lark_emitter import lark_terminal


# Assertion keywords that this version refuses wherever they would constrain the output.
_REFUSED_ANYWHERE = ("unevaluatedProperties", "unevaluatedItems", "$dynamicRef",
                     "$recursiveRef", "$dynamicAnchor")


_NUMERIC_KEYWORDS = ("minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum", "multipleOf")


_TYPE_KEYWORDS = {
    "string": ("minLength", "maxLength", "pattern", "format"),
    "integer": _NUMERIC_KEYWORDS,
    "number": _NUMERIC_KEYWORDS,
    "array": ("items", "prefixItems", "minItems", "maxItems", "additionalItems", "uniqueItems", "contains",
              "minContains", "maxContains"),
    "object": ("properties", "required", "additionalProperties", "patternProperties", "propertyNames",
               "minProperties", "maxProperties", "dependentRequired", "dependentSchemas", "dependencies"),
}


# At most this many else-side parts per schema: each conditional in an allOf doubles the work.
_MAX_ELSE_PARTS = 64


# At most this many alternatives per oneOf branch made exclusive by negations.
_MAX_ONE_OF_VARIANTS = 64


# Enumerate bounded integer ranges up to this size when multipleOf cannot be written otherwise.
_ENUMERATE_LIMIT = 2000


# An absent items/additionalProperties: any value, one nesting level shallower than a top-level
# `true`, so that {"type": "object"} nests no deeper than {}.
_ANY_NESTED = object()


def _pointer_join(pointer: str, *parts: Any) -> str:
    for part in parts:
        pointer += "/" + str(part).replace("~", "~0").replace("/", "~1")
    return pointer


def _as_list(value: Any) -> list:
    return value if isinstance(value, list) else [] if value is None else [value]


def _decimal(schema: dict, keyword: str, pointer: str) -> Optional[Decimal]:
    if keyword not in schema:
        return None
    value = schema[keyword]
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise SchemaError(f"{keyword} must be a number, not {value!r}", pointer)
    try:
        number = Decimal(value) if isinstance(value, int) else Decimal(repr(value))
    except InvalidOperation:
        number = Decimal("NaN")
    if not number.is_finite():  # json.loads reads NaN, Infinity and 1e999 (as inf): JSON has none of them
        raise SchemaError(f"{keyword} must be a finite number, not {value!r}: JSON has no NaN or Infinity",
                          _pointer_join(pointer, keyword))
    return number


def _ceil(value: Decimal) -> int:
    return int(value.to_integral_value(rounding="ROUND_CEILING"))


def _floor(value: Decimal) -> int:
    return int(value.to_integral_value(rounding="ROUND_FLOOR"))


def _search(pattern: str, name: str) -> bool:
    """Python's ``re.search`` as a stand-in for ECMA-262 on a property name (simple patterns agree)."""
    try:
        return re.search(pattern, name) is not None
    except re.error as exc:
        raise UnsupportedSchemaError("patternProperties", "#", f"the pattern {pattern!r} ({exc})") from exc


_RAW_EXCLUDED = "\\\\\\x00-\\x1f\\x{10FFFD}-\\x{10FFFF}"  # a backslash, the control characters and fx.SENTINELS, in a regex class


def _raw(ch: str) -> bool:
    """Whether JSON text spells ``ch`` raw in a key (not a control, quote, backslash or sentinel)."""
    return ord(ch) >= 0x20 and ch not in '"\\' and not fx.SENTINELS[0] <= ord(ch) <= fx.SENTINELS[1]


def _key_not_in(names: set) -> str:
    """Keys (JSON string contents, raw characters only) equal to none of ``names``."""
    trie: dict = {}
    for name in sorted(names):  # deterministic regex text: it keys the disk cache
        node = trie
        for ch in name:
            node = node.setdefault(ch, {})
        node[None] = {}
    plain = '"' + _RAW_EXCLUDED

    def walk(node: dict) -> str:
        parts: list[Fragment] = [] if None in node else [""]
        chars = [c for c in node if c is not None]
        excluded = "".join(f"\\x{{{ord(c):x}}}" for c in chars)
        parts.append(f"[^{plain}{excluded}][^{plain}]*")
        for ch in chars:
            if _raw(ch):
                parts.append(fx.escape(ch) + walk(node[ch]))
        return fx.alternation(parts) or ""

    return walk(trie)


def _key_not_in_terminal(names: set) -> str:
    r""":func:`_key_not_in`, quoted, as an llguidance terminal: ``key & ~(names)``.

    Example:
        >>> print(_key_not_in_terminal({"a/b", "c"}))
        /"[^"\\\x00-\x1f\x{10FFFD}-\x{10FFFF}]*"/ & ~/"(?:a\/b|c)"/
    """
    # Names with a character that must be escaped in JSON text never equal a raw-character key.
    names = sorted(name for name in names if all(_raw(ch) for ch in name))
    key = lark_terminal('"[^"' + _RAW_EXCLUDED + ']*"')
    if not names:
        return key
    return key + " & ~" + lark_terminal('"' + fx.alternation([fx.escape(name) for name in names]) + '"')


def _bounds(schema: dict, low_keyword: str, high_keyword: str, pointer: str) -> tuple[int, Optional[int]]:
    low = _non_negative_int(schema, low_keyword, pointer, 0)
    return low, _non_negative_int(schema, high_keyword, pointer, None)  # type: ignore[return-value]


#: The largest count (``maxLength``, ``minItems``...) a regex repetition can hold: llguidance reads
#: counts as 32-bit numbers, and the byte automaton writes repetitions out far below that.
MAX_COUNT = 2**32 - 1


def _non_negative_int(schema: dict, keyword: str, pointer: str, default: Optional[int]) -> Optional[int]:
    if keyword not in schema:
        return default
    value = schema[keyword]
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    if not isinstance(value, int) or isinstance(value, bool) or value < 0:
        raise SchemaError(f"{keyword} must be a non-negative integer, not {value!r}", pointer)
    if value > MAX_COUNT:
        shown = f"{value:,}" if value < 10**30 else f"a {len(str(value))}-digit number"
        raise CompileLimitError(
            f"{keyword} is {shown}, over the largest count a regex repetition can hold ({MAX_COUNT:,}) "
            f"(at {_pointer_join(pointer, keyword)})"
        )
    return value


_LITERAL_CHECKS = ("minLength", "maxLength", "pattern", "minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum",
                   "minItems", "maxItems", "minProperties", "maxProperties", "required", "format")


def _all3(verdicts: Any) -> Optional[bool]:
    """Three-valued AND: False if any is False, else None if any is None, else True."""
    unknown = False
    for verdict in verdicts:
        if verdict is False:
            return False
        unknown = unknown or verdict is None
    return None if unknown else True


def _literal_ok(value: Any, rest: dict) -> bool:
    """Whether an enum/const value satisfies the simple sibling keywords in ``rest``."""
    if isinstance(value, str):
        if len(value) < rest.get("minLength", 0) or len(value) > rest.get("maxLength", len(value)):
            return False
        if "pattern" in rest and re.search(rest["pattern"], value) is None:
            return False
        if "format" in rest:
            regex = STRING_FORMATS.get(rest["format"])
            if regex is None or re.fullmatch(regex, json.dumps(value, ensure_ascii=False)[1:-1]) is None:
                return False
    if _is_number(value):
        if "minimum" in rest and value < rest["minimum"] or "maximum" in rest and value > rest["maximum"]:
            return False
        low, high = rest.get("exclusiveMinimum"), rest.get("exclusiveMaximum")
        if _is_number(low) and value <= low or _is_number(high) and value >= high:
            return False
    if isinstance(value, list) and not rest.get("minItems", 0) <= len(value) <= rest.get("maxItems", len(value)):
        return False
    if isinstance(value, dict):
        if not rest.get("minProperties", 0) <= len(value) <= rest.get("maxProperties", len(value)):
            return False
        if any(r not in value for r in rest.get("required", [])):
            return False
    return True


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


def _literals(schema: Any) -> Optional[list]:
    """The values of a schema that is only an enum or a const, else None."""
    if not isinstance(schema, dict) or any(k not in ("enum", "const") and k not in ANNOTATIONS for k in schema):
        return None
    if "enum" in schema and "const" in schema or not isinstance(schema.get("enum", []), list):
        return None
    return [schema["const"]] if "const" in schema else list(schema.get("enum", [])) or None


def _may_share_type(term: Any, generated: set) -> bool:
    """False when the negation term's types and the branch's cannot meet (a cheap pruning)."""
    if not generated or not isinstance(term, dict) or "type" not in term:
        return True
    types = set(_as_list(term["type"]))
    if "number" in types:
        types.add("integer")
    return bool(types & generated) or ("integer" in types and "number" in generated)


def _json_equal(a: Any, b: Any) -> bool:
    if isinstance(a, bool) or isinstance(b, bool):
        return type(a) is type(b) and a == b
    return bool(a == b) if type(a) is type(b) or (isinstance(a, (int, float)) and isinstance(b, (int, float))) else False


def _merge(a: dict, b: dict, pointer: str) -> dict:
    """Merge two schemas that must both hold (allOf); refuse what cannot be merged exactly."""
    a, b = _scope_siblings(a, b, pointer), _scope_siblings(b, a, pointer)
    if "if" in a and "if" in b:  # one conditional per schema: the second waits in allOf
        conditional = {k: b[k] for k in ("if", "then", "else") if k in b}
        b = {k: v for k, v in b.items() if k not in conditional}
        b["allOf"] = list(b.get("allOf", [])) + [conditional]
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
        elif key in _TIGHTER_LOW and _is_number(merged[key]) and _is_number(value):
            merged[key] = max(merged[key], value)
        elif key in _TIGHTER_HIGH and _is_number(merged[key]) and _is_number(value):
            merged[key] = min(merged[key], value)
        elif key == "enum" and isinstance(value, list) and isinstance(merged[key], list):
            merged[key] = [v for v in merged[key] if any(_json_equal(v, w) for w in value)]
        elif key in ("additionalProperties", "items") and not isinstance(value, list) and not isinstance(merged[key], list):
            merged[key] = {"allOf": [merged[key], value]}  # each still sees only its own siblings (scoped above)
        elif key == "patternProperties" and isinstance(value, dict) and isinstance(merged[key], dict):
            patterns = dict(merged[key])
            for pattern, sub in value.items():
                patterns[pattern] = {"allOf": [patterns[pattern], sub]} if pattern in patterns else sub
            merged[key] = patterns
        elif key == "not" and _literals(merged[key]) is not None and _literals(value) is not None:
            merged[key] = {"enum": _literals(merged[key]) + _literals(value)}  # not in A, not in B
        elif key == "not":
            merged[key] = {"anyOf": [merged[key], value]}  # not A and not B = not (A or B)
        elif key in ("allOf", "anyOf", "oneOf") and isinstance(value, list):
            merged[key] = list(merged[key]) + list(value) if key == "allOf" else merged[key]
            if key != "allOf":
                merged.setdefault("allOf", [])
                merged["allOf"] = list(merged["allOf"]) + [{key: value}]
        elif key == "const" and not _json_equal(merged[key], value):
            merged["enum"] = []  # two different constants: nothing validates
        elif key in (ALSO_PATTERNS, NOT_PATTERNS):
            merged[key] = list(merged[key]) + [p for p in value if p not in merged[key]]
        elif key == "pattern" and isinstance(value, str):  # both must match: llguidance intersects them (lexemes.py)
            merged[ALSO_PATTERNS] = list(merged.get(ALSO_PATTERNS, [])) + [value]
        elif merged[key] != value and not _json_equal(merged[key], value):
            raise UnsupportedSchemaError("allOf", pointer, f"both branches constrain {key!r} differently")
    return merged


def _scope_siblings(a: dict, b: dict, pointer: str) -> dict:
    """Rewrite ``a`` so that keywords which only see their siblings keep their meaning next to ``b``.

    ``additionalProperties`` of ``b`` applies to the properties ``a`` declares and ``b`` does not;
    ``items`` of ``b`` (without prefixItems) applies to ``a``'s prefixItems too."""
    out = dict(a)
    b_extra = b.get("additionalProperties")
    if b_extra is not None and isinstance(a.get("properties"), dict):
        if a.get("patternProperties") or b.get("patternProperties"):
            raise UnsupportedSchemaError("allOf", pointer, "additionalProperties next to patternProperties across allOf")
        b_names = b.get("properties", {}) if isinstance(b.get("properties"), dict) else {}
        out["properties"] = {
            name: sub if name in b_names else (False if b_extra is False else {"allOf": [sub, b_extra]})
            for name, sub in a["properties"].items()
        }
    if "items" in b and "prefixItems" not in b and isinstance(a.get("prefixItems"), list) and not isinstance(b["items"], list):
        out["prefixItems"] = [{"allOf": [sub, b["items"]]} for sub in a["prefixItems"]]
    if "prefixItems" in a and "prefixItems" in b and len(a["prefixItems"]) != len(b["prefixItems"]):
        raise UnsupportedSchemaError("allOf", pointer, "prefixItems of different lengths")
    if isinstance(a.get("items"), list) or isinstance(b.get("items"), list):
        if "items" in a and "items" in b:
            raise UnsupportedSchemaError("allOf", pointer, "tuple-form items in both branches")
    return out


_TIGHTER_LOW = ("minimum", "exclusiveMinimum", "minLength", "minItems", "minProperties", "minContains")


_TIGHTER_HIGH = ("maximum", "exclusiveMaximum", "maxLength", "maxItems", "maxProperties", "maxContains")


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)
