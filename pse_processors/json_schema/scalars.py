"""Types, numbers (bounds, ``multipleOf``) and strings (lengths, ``pattern``, ``format``).

A mixin of the compiler (``compiler._Compiler``): it uses the compiler's other methods."""

from __future__ import annotations

import logging
from typing import Any, Optional
from decimal import Decimal

from ..errors import CompileLimitError, SchemaError
from . import fragments as fx
from .formats import ANY_STRING_FORMATS, NUMERIC_FORMATS, STANDARD_FORMATS, STRING_FORMATS
from .fragments import Fragment
from .keywords import ALL_TYPES
from .lark_emitter import bounded_string
from .numbers import MAX_NESTING, integer_range, nesting, number_range
from .document import check_text as _check_text
from .patterns import translate, translate_bounded
from .schema_tools import (
    _NUMERIC_KEYWORDS,
    _TYPE_KEYWORDS,
    _ENUMERATE_LIMIT,
    _pointer_join,
    _decimal,
    _ceil,
    _floor,
    _bounds,
)


logger = logging.getLogger(__name__)


# Keywords that assert nothing with these (empty) values: they imply no type.
_VACUOUS = {"properties": {}, "required": [], "patternProperties": {}, "dependentRequired": {}, "dependencies": {},
            "prefixItems": []}


class ScalarsMixin:
    def _is_annotation(self, fmt: Any) -> bool:
        """Whether ``format: fmt`` is an annotation: a format no draft or OpenAPI defines, under
        ``unknown_formats="annotation"`` (validators ignore such formats, so it asserts nothing)."""
        # Not a string: not an annotation, so _asserted_format names the error (a list is unhashable).
        return isinstance(fmt, str) and fmt not in STANDARD_FORMATS and self.options.unknown_formats == "annotation"

    def _asserted_format(self, schema: dict, pointer: str) -> Optional[str]:
        """``schema``'s ``format``, or ``None`` where there is none or it is an annotation."""
        fmt = schema.get("format")
        if fmt is None:
            return None
        if not isinstance(fmt, str):
            raise SchemaError(f"format must be a string, not {fmt!r}", _pointer_join(pointer, "format"))
        if self._is_annotation(fmt):
            logger.info("format %r at %s is not a standard format: an annotation, not enforced", fmt, pointer or "#")
            return None
        return fmt

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
        present = {k for k, v in schema.items() if not (k in _VACUOUS and v == _VACUOUS[k])}  # "required": [] implies no type
        if "format" in present and self._is_annotation(schema["format"]):
            present.discard("format")  # an unknown format implies no type
        implied = [t for t in ("object", "array", "string") if any(k in present for k in _TYPE_KEYWORDS[t])]
        if any(k in schema for k in _NUMERIC_KEYWORDS):
            implied.append("number")
        return implied  # empty: any value

    def _compile_type(self, type_name: str, schema: dict, pointer: str) -> Fragment:
        if type_name == "null":
            return fx.NULL
        if type_name == "boolean":
            return fx.BOOLEAN
        if type_name in ("integer", "number"):
            return self._compile_number(type_name, schema, pointer)
        if type_name == "string":
            return self._compile_string_of(schema, pointer)  # lexemes.py: several patterns at once
        if type_name == "array":
            return self._compile_array(schema, pointer)
        return self._compile_object(schema, pointer)

    def _compile_number(self, type_name: str, schema: dict, pointer: str) -> Fragment:
        fragment = self._number_fragment(type_name, schema, pointer)
        if fragment is not None and len(fragment) > 4 * MAX_NESTING and nesting(fragment) > MAX_NESTING:
            shown = [(k, repr(schema[k])) for k in _NUMERIC_KEYWORDS if k in schema]
            bounds = ", ".join(f"{k} {v if len(v) <= 30 else f'of {len(v)} characters'}" for k, v in shown)
            raise CompileLimitError(
                f"the bounds at {pointer or '#'} ({bounds}) need a regex nested {nesting(fragment)} groups deep, over "
                f"{MAX_NESTING}: bounds with that many significant digits cannot be compiled"
            )
        return fragment

    def _number_fragment(self, type_name: str, schema: dict, pointer: str) -> Fragment:
        low, low_strict = _decimal(schema, "minimum", pointer), False
        high, high_strict = _decimal(schema, "maximum", pointer), False
        for keyword, is_low in (("exclusiveMinimum", True), ("exclusiveMaximum", False)):
            if keyword not in schema:
                continue
            value = schema[keyword]
            if isinstance(value, bool):  # draft 4: a flag on minimum/maximum
                if value:
                    if is_low:
                        low_strict = low is not None
                    else:
                        high_strict = high is not None
                continue
            bound = _decimal(schema, keyword, pointer)
            if is_low and (low is None or bound >= low):  # type: ignore[operator]
                low, low_strict = bound, True
            elif not is_low and (high is None or bound <= high):  # type: ignore[operator]
                high, high_strict = bound, True
        integer = type_name == "integer"
        fmt = self._asserted_format(schema, pointer)
        # Only int32/int64 constrain numbers; the other formats describe strings (validators pass
        # every number through them) or hold for every number (float, double, utc-millisec).
        if fmt is not None and NUMERIC_FORMATS.get(fmt) is not None:
            f_low, f_high = NUMERIC_FORMATS[fmt]  # type: ignore[misc]
            integer = True  # int32/int64 hold only for integers
            low, low_strict = (Decimal(f_low), False) if low is None or low < f_low else (low, low_strict)
            high, high_strict = (Decimal(f_high), False) if high is None or high > f_high else (high, high_strict)
        step = None
        if "multipleOf" in schema:
            step = _decimal(schema, "multipleOf", pointer)
            if step is None or step <= 0:
                raise SchemaError("multipleOf must be a number > 0", pointer)
            if step != step.to_integral_value():
                self.unsupported("multipleOf", pointer, "a fractional multipleOf (validators disagree on float rounding)")
                step = None
            else:
                integer = True  # integer multiples only: a subset for type number
        if low is None and high is None and step is None:
            return fx.INTEGER if integer else fx.NUMBER
        if integer or step is not None:
            i_low = None if low is None else _ceil(low) + (1 if low_strict and low == _ceil(low) else 0)
            i_high = None if high is None else _floor(high) - (1 if high_strict and high == _floor(high) else 0)
            if step is None or step == 1:
                return integer_range(i_low, i_high)
            return self._multiples(int(step), i_low, i_high, pointer)
        return number_range(low, high, low_strict, high_strict)

    def _multiples(self, step: int, low: Optional[int], high: Optional[int], pointer: str) -> Fragment:
        if low is not None and high is not None:
            if high < low:
                return None
            first = -(-low // step) * step
            if (high - first) // step + 1 <= _ENUMERATE_LIMIT:
                return fx.alternation(str(v) for v in range(first, high + 1, step)) if first <= high else None
        power = len(str(step)) - 1
        if step == 10**power and low is None and high is None:
            return f"(?:0|-?[1-9][0-9]*{'0' * power})"
        if step in (2, 5) and low is None and high is None:
            last = "[02468]" if step == 2 else "[05]"
            return f"(?:{last}|-?[1-9][0-9]*{last})" if step == 2 else "(?:0|5|-?[1-9][0-9]*[05])"
        self.unsupported("multipleOf", pointer, f"multipleOf {step} over an unbounded or large range")
        return integer_range(low, high)

    def _compile_string(self, schema: dict, pointer: str) -> Fragment:
        low, high = _bounds(schema, "minLength", "maxLength", pointer)
        if high is not None and high < low:
            return None
        fmt = self._asserted_format(schema, pointer)
        pattern = schema.get("pattern")
        if fmt is not None and fmt not in STRING_FORMATS:
            if fmt in NUMERIC_FORMATS or fmt in ANY_STRING_FORMATS:
                fmt = None  # numeric formats say nothing about strings; these accept any string
            else:
                self.unsupported("format", pointer, f"the format {fmt!r} is not enforced")
                fmt = None
        if fmt is not None and pattern is not None:
            self.unsupported("pattern", pointer, "pattern together with format")
            pattern = None
        if fmt is not None:
            if low > 0 or high is not None:  # narrow the format's own repetitions to the bounds
                narrowed = translate_bounded(f"^(?:{STRING_FORMATS[fmt]})$", pointer, low, high)
                if narrowed is not None and self.rules is not None:  # llguidance: the exact intersection
                    return self.rules.terminal(bounded_string(STRING_FORMATS[fmt], low, high), "STR")
                return None if narrowed is None else '"' + narrowed + '"'
            return '"' + STRING_FORMATS[fmt] + '"'
        if pattern is not None:
            _check_text(pattern, "the pattern", _pointer_join(pointer, "pattern"))
            translated = translate(pattern, _pointer_join(pointer, "pattern"))
            if translated.regex is None:
                return None
            if low == 0 and high is None:
                return '"' + translated.regex + '"'
            if translated.single_class is not None:  # ^[set]{a,b}$: intersect the counts
                chars, a, b = translated.single_class
                lo = max(a, low)
                hi = high if b is None else b if high is None else min(b, high)
                if hi is not None and hi < lo or chars is None:
                    return None
                return '"' + fx.repeat(chars, lo, hi) + '"'
            if translated.min_length >= low and translated.max_length is not None and (high is None or translated.max_length <= high):
                return '"' + translated.regex + '"'
            narrowed = translate_bounded(pattern, _pointer_join(pointer, "pattern"), low, high)
            if narrowed is None:
                self.unsupported("pattern", pointer, "a pattern that cannot be narrowed to minLength/maxLength")
                return '"' + translated.regex + '"'
            if self.rules is not None:  # llguidance: the exact intersection (narrowed, too ambiguous for its lexer)
                return self.rules.terminal(bounded_string(translated.regex, low, high), "STR")
            return '"' + narrowed + '"'
        char = fx.STRING_CHAR if high is None and low <= 1 else fx.BOUNDED_STRING_CHAR
        return '"' + fx.repeat(char, low, high) + '"'
