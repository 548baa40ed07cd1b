"""``enum``/``const``: each value decided exactly against its sibling keywords.

A mixin of the compiler (``compiler._Compiler``): it uses the compiler's other methods."""

from __future__ import annotations

import json
import re
from typing import Any, Optional

from ..errors import SchemaError, UnsupportedSchemaError
from . import fragments as fx
from .fragments import Fragment
from .document import json_text_problem
from .keywords import ANNOTATIONS, ASSERTIONS
from .schema_tools import (
    _as_list,
    _LITERAL_CHECKS,
    _all3,
    _literal_ok,
    _has_assertions,
    _json_type,
    _json_equal,
    _pointer_join,
)


class ValuesMixin:
    def _compile_enum(self, schema: dict, pointer: str) -> Fragment:
        if "const" in schema:
            values = [schema["const"]]
            keyword = "const"
        else:
            values = schema["enum"]
            keyword = "enum"
            if not isinstance(values, list):
                raise SchemaError("enum must be an array", pointer)
        for index, value in enumerate(values):  # NaN, Infinity, lone surrogates: no JSON text holds them
            problem = json_text_problem(value)
            if problem is not None:
                where = _pointer_join(pointer, keyword) if keyword == "const" else _pointer_join(pointer, keyword, index)
                raise SchemaError(f"{keyword} value: {problem[1]}", where + problem[0])
        if "const" in schema and "enum" in schema:
            values = [v for v in values if any(_json_equal(v, e) for e in schema["enum"])]
        rest = {k: v for k, v in schema.items() if k not in ("enum", "const", "type", "nullable")}
        if _has_assertions(rest):
            values = [v for v in values if self._value_passes(v, rest, pointer, keyword)]
        if "type" in schema:
            types = self._types(schema, pointer)
            if schema.get("nullable") is True:
                types.append("null")
            values = [v for v in values if _json_type(v) in types or (_json_type(v) == "integer" and "number" in types)]
        return fx.alternation(spelling for v in values for spelling in self._literals_of(v))

    def _literals_of(self, value: Any) -> list:
        r"""The regexes of ``value``'s JSON text: an integral number in both its spellings
        (``2`` and ``2.0`` are one JSON Schema value); anything else as ``json.dumps`` writes it.

        Example:
            >>> from pse_processors.json_schema import json_schema_to_regex
            >>> print(json_schema_to_regex({"enum": [2.0, 3]}))
            (?:2\.0|2|3|3\.0)
        """
        literal = fx.json_literal(value, self.item_sep, self.key_sep)  # type: ignore[attr-defined]
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not abs(value) < 2**53:
            return [literal]
        if isinstance(value, float):
            return [literal, fx.escape(str(int(value)))] if value.is_integer() else [literal]
        return [literal, fx.escape(json.dumps(float(value)))]

    def _value_passes(self, value: Any, rest: dict, pointer: str, keyword: str) -> bool:
        """Check an enum/const value against its sibling keywords; refuse what cannot be decided."""
        verdict = self._decide(value, rest, 0)
        if verdict is not None:
            return verdict
        if all(k in _LITERAL_CHECKS or k not in ASSERTIONS for k in rest):
            try:
                return _literal_ok(value, rest)
            except re.error:
                pass
        other = sorted(k for k in rest if k in ASSERTIONS and k not in _LITERAL_CHECKS) or sorted(k for k in rest if k in ASSERTIONS)
        self.unsupported(other[0], pointer, f"combined with {keyword}")
        return True

    def _decide(self, value: Any, schema: Any, depth: int) -> Optional[bool]:
        """Whether the JSON ``value`` is valid under ``schema``: True, False, or None (not decided).

        Exact for the keywords it knows; any other assertion makes the answer None unless some
        known keyword already fails (then the whole schema fails)."""
        if schema is True or schema is False:
            return schema
        if not isinstance(schema, dict) or depth > 20:
            return None
        verdicts: list[Optional[bool]] = []
        for key, arg in schema.items():
            if key in ANNOTATIONS or key not in ASSERTIONS:
                continue
            verdicts.append(self._decide_keyword(value, key, arg, schema, depth))
            if verdicts[-1] is False:
                return False
        return None if None in verdicts else True

    def _decide_keyword(self, value: Any, key: str, arg: Any, schema: dict, depth: int) -> Optional[bool]:
        kind = _json_type(value)
        number = kind in ("integer", "number")
        if key == "type":
            types = _as_list(arg)
            return kind in types or (kind == "integer" and "number" in types)
        if key == "nullable":
            return None if arg is True else True
        if key == "enum":
            return isinstance(arg, list) and any(_json_equal(value, v) for v in arg)
        if key == "const":
            return _json_equal(value, arg)
        if key in ("minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum"):
            if not number or isinstance(arg, bool):
                return True if not number else None
            return {"minimum": value >= arg, "maximum": value <= arg,
                    "exclusiveMinimum": value > arg, "exclusiveMaximum": value < arg}[key]
        if key == "multipleOf":
            if not number:
                return True
            return value % arg == 0 if isinstance(value, int) and isinstance(arg, int) else None
        if key in ("minLength", "maxLength"):
            if kind != "string":
                return True
            return len(value) >= arg if key == "minLength" else len(value) <= arg
        if key in ("minItems", "maxItems"):
            if kind != "array":
                return True
            return len(value) >= arg if key == "minItems" else len(value) <= arg
        if key in ("minProperties", "maxProperties"):
            if kind != "object":
                return True
            return len(value) >= arg if key == "minProperties" else len(value) <= arg
        if key == "required":
            return True if kind != "object" else all(name in value for name in arg)
        if key == "properties":
            if kind != "object":
                return True
            return _all3(self._decide(value[name], sub, depth + 1) for name, sub in arg.items() if name in value)
        if key == "additionalProperties":
            if kind != "object":
                return True
            declared = schema.get("properties", {})
            patterns = schema.get("patternProperties", {})
            if not isinstance(declared, dict) or not isinstance(patterns, dict):
                return None
            verdicts = []
            for name, member in value.items():
                hits = [_surely_searches(pattern, name) for pattern in patterns]
                if None in hits:
                    return None
                if name not in declared and not any(hits):
                    verdicts.append(self._decide(member, arg, depth + 1))
            return _all3(verdicts)
        if key == "patternProperties":
            if kind != "object" or not isinstance(arg, dict):
                return True if kind != "object" else None
            verdicts = []
            for name, member in value.items():
                for pattern, sub in arg.items():
                    hit = _surely_searches(pattern, name)
                    if hit is None:
                        return None
                    if hit:
                        verdicts.append(self._decide(member, sub, depth + 1))
            return _all3(verdicts)
        if key == "items":
            if kind != "array":
                return True
            if isinstance(arg, list):
                return _all3(self._decide(v, sub, depth + 1) for v, sub in zip(value, arg))
            start = len(schema.get("prefixItems", [])) if isinstance(schema.get("prefixItems"), list) else 0
            return _all3(self._decide(v, arg, depth + 1) for v in value[start:])
        if key == "prefixItems":
            if kind != "array":
                return True
            return _all3(self._decide(v, sub, depth + 1) for v, sub in zip(value, arg))
        if key == "uniqueItems":
            if kind != "array" or arg is not True:
                return True
            return not any(_json_equal(a, b) for i, a in enumerate(value) for b in value[i + 1:])
        if key in ("allOf", "anyOf", "oneOf"):
            results = [self._decide(value, sub, depth + 1) for sub in arg]
            if key == "allOf":
                return _all3(results)
            if None in results:
                return None
            hits = sum(bool(r) for r in results)
            return hits >= 1 if key == "anyOf" else hits == 1
        if key == "not":
            inner = self._decide(value, arg, depth + 1)
            return None if inner is None else not inner
        if key == "$ref":
            try:
                return self._decide(value, self._resolve(arg, "#"), depth + 1)
            except (SchemaError, UnsupportedSchemaError):
                return None
        if key == "dependentRequired":
            if kind != "object":
                return True
            return all(all(n in value for n in needed) for trigger, needed in arg.items() if trigger in value)
        return None


_PYTHON_ONLY = re.compile(r"\\[AZzpPbB]|\(\?")


def _surely_searches(pattern: Any, name: str) -> Optional[bool]:
    """Whether the ECMA-262 ``pattern`` matches somewhere in ``name``, where Python's ``re`` surely
    agrees (a printable ASCII name, no construct whose meaning differs); None where in doubt.

    Example:
        >>> _surely_searches("^x-", "x-a"), _surely_searches("^[0-9]+$", "a1"), _surely_searches("(?i)a", "A")
        (True, False, None)
    """
    if not isinstance(pattern, str) or not all(" " <= c <= "~" for c in name) or _PYTHON_ONLY.search(pattern):
        return None
    try:
        return re.search(pattern, name, re.ASCII) is not None
    except re.error:
        return None
