"""``not`` (folded through its positive negation) and ``if``/``then``/``else``.

A mixin of the compiler (``compiler._Compiler``): it uses the compiler's other methods."""

from __future__ import annotations

import logging
from typing import Any

from ..errors import SchemaError
from . import fragments as fx
from .fragments import Fragment
from .keywords import ALL_TYPES, ANNOTATIONS
from .keywords import NOT_PATTERNS
from .lexemes import literal_pattern
from .negation import not_in_pattern
from .schema_tools import (
    _pointer_join,
    _as_list,
    _json_equal,
)

logger = logging.getLogger(__name__)


class ConditionalsMixin:
    def _apply_not(self, schema: dict, pointer: str) -> Any:
        """Fold ``not`` into the schema where it has an exact positive form; else refuse."""
        rest = {k: v for k, v in schema.items() if k != "not"}
        negated = schema["not"]
        where = _pointer_join(pointer, "not")
        if negated is False:
            return rest or True
        if negated is True:
            return False
        if isinstance(negated, dict) and "$ref" in negated and set(negated) <= {"$ref"} | ANNOTATIONS:
            negated = self._resolve(negated["$ref"], where)
            if isinstance(negated, bool):
                return rest or True if negated is False else False
        if not isinstance(negated, dict):  # 1.5, "x", [...]: the folds below would read it as a schema
            raise SchemaError(f"not must be a schema (an object or a boolean), not {negated!r}", where)
        keys = {k for k in negated if k not in ANNOTATIONS}
        if keys == {"not"}:  # double negation
            return {"allOf": [rest or True, negated["not"]]}
        if keys == {"anyOf"} and isinstance(negated["anyOf"], list):  # not (A or B) = not A and not B
            folded: Any = rest
            for i, branch in enumerate(negated["anyOf"]):
                if folded is False:
                    return False
                folded = self._apply_not(dict(folded if isinstance(folded, dict) else {}, **{"not": branch}),
                                         _pointer_join(where, "anyOf", i))
            return folded
        if "enum" in rest or "const" in rest:  # decide each listed value against the negated schema
            values = [rest["const"]] if "const" in rest else list(rest["enum"])
            verdicts = [self._decide(v, negated, 0) for v in values]
            if all(verdict is not None for verdict in verdicts):
                kept_values = [v for v, verdict in zip(values, verdicts) if not verdict]
                out = {k: v for k, v in rest.items() if k not in ("enum", "const")}
                return dict(out, enum=kept_values) if kept_values else False
        if keys == {"type"}:
            excluded = set(_as_list(negated["type"]))
            types = self._types(rest, pointer) or list(ALL_TYPES)
            if "number" in excluded:
                excluded.add("integer")
            kept = [t for t in types if t not in excluded]
            if "integer" in excluded and "number" in kept:
                self.unsupported("not", where, "'not integer' while numbers are allowed")
            return dict(rest, type=kept) if kept else False
        if keys == {"required"} and isinstance(negated["required"], list) and len(negated["required"]) == 1:
            name = negated["required"][0]
            if name in rest.get("required", []):
                return False
            return dict(rest, properties=dict(rest.get("properties", {}), **{name: False}))
        if keys <= {"enum", "const"} and ("enum" in rest or "const" in rest):
            banned = list(negated.get("enum", [])) + ([negated["const"]] if "const" in negated else [])
            values = [rest["const"]] if "const" in rest else list(rest["enum"])
            kept_values = [v for v in values if not any(_json_equal(v, b) for b in banned)]
            out = {k: v for k, v in rest.items() if k not in ("enum", "const")}
            return dict(out, enum=kept_values) if kept_values else False
        if keys <= {"enum", "const"} and self._types(rest, pointer) == ["string"]:  # strings but these
            banned = [v for v in list(negated.get("enum", [])) + [negated.get("const")] if isinstance(v, str)]
            if not banned:
                return rest
            if "pattern" in rest or "format" in rest:  # two patterns do not intersect in a regex
                if self.rules is not None:  # llguidance: the strings minus the excluded ones (lexemes.py)
                    return dict(rest, **{NOT_PATTERNS: list(rest.get(NOT_PATTERNS, [])) + [literal_pattern(banned)]})
                self.unsupported("not", where, "excluded strings next to a pattern or format")
                return rest
            return dict(rest, pattern=not_in_pattern(banned))
        failed = self.negation(negated, where)
        if failed.exact:  # not S = the union of the positive forms of S's keywords' negations
            return {"allOf": [rest or True, {"anyOf": failed.terms}]} if failed.terms else False
        self.unsupported("not", where, "a keyword with no exact negation (pattern, format, multipleOf, "
                                       "uniqueItems, additionalProperties...)")
        return rest or True

    def _compile_conditional(self, schema: dict, pointer: str) -> Fragment:
        """(rest ∧ if ∧ then) ∨ (rest ∧ ¬if ∧ else), with ¬if written as positive schemas.

        Where ``if`` has no exact negation (a ``pattern``, a ``format``...), the ``else`` side
        covers the part of ¬if that has one: a subset, never a superset."""
        rest = {k: v for k, v in schema.items() if k not in ("if", "then", "else")}
        base = rest or True
        condition = schema.get("if")
        then, otherwise = schema.get("then", True), schema.get("else", True)
        if condition is None:  # then/else without if assert nothing
            return self.compile(base, pointer)
        if condition is True or condition is False:
            return self.compile({"allOf": [base, then if condition else otherwise]}, pointer)
        parts = [self.compile({"allOf": [base, condition, then]}, pointer)]
        if self._else_parts_left <= 0:  # many conditionals multiply: keep the if-and-then side only
            logger.debug("conditional at %s: else side left out (budget spent)", pointer or "#")
            return fx.alternation(parts)
        failed = self.negation(condition, _pointer_join(pointer, "if"))
        others = self.optional_parts(({"allOf": [base, term, otherwise]} for term in failed.terms), pointer)[0]
        self._else_parts_left -= sum(part is not None for part in others)
        return fx.alternation(parts + others)
