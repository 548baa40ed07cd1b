"""¬S written as positive schemas: the compiler has no complement, so a negation is a union.

``negate(S)`` returns schemas whose union is a subset of the instances that fail ``S`` (every
keyword asserts one thing, so ¬S is the union of the keywords' negations). ``exact`` says
whether the union is all of ¬S: keywords whose negation has no positive form (``pattern``,
``format``, ``multipleOf``, ``uniqueItems``...) are left out and make it inexact.

Callers that must be exact (``not``) use the terms only when ``exact``; callers that generate
a subset of a union anyway (the ``else`` side of ``if``, exclusive ``oneOf`` branches) may use
inexact terms: the output stays a subset of the valid instances.
"""

from __future__ import annotations

import itertools
import json
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any, Callable

from .dependencies import KEYWORDS as DEPENDENCY_KEYWORDS
from .dependencies import negate_dependency
from .keywords import ALSO_PATTERNS, ANNOTATIONS, ASSERTIONS, NOT_PATTERNS

MAX_TERMS = 32
MAX_NODES = 2000
MAX_DEPTH = 8


@dataclass
class Negation:
    """Schemas whose union is a subset of ¬S (all of it when ``exact``)."""

    terms: list = field(default_factory=list)
    exact: bool = True

    def add(self, other: "Negation") -> None:
        self.terms.extend(other.terms)
        self.exact = self.exact and other.exact


def negate(schema: Any, resolve: Callable[[str], Any], max_terms: int = MAX_TERMS, max_nodes: int = MAX_NODES,
           patterns: bool = False) -> Negation:
    """Positive schemas for the instances that fail ``schema``.

    ``resolve`` maps a ``$ref`` to its target schema. At most ``max_terms`` terms per schema
    and ``max_nodes`` schemas visited in all (recursive and very large schemas): past either
    limit the result is inexact. ``patterns`` (the grammar output): a ``pattern`` is negated
    exactly, as strings under the internal keyword ``NOT_PATTERNS`` (``lexemes.py``).

    Example:
        >>> negate({"type": "object", "required": ["a"]}, resolve=lambda ref: None).terms
        [{'type': ['null', 'boolean', 'array', 'string', 'number']}, {'type': 'object', 'properties': {'a': False}}]
    """
    return _Negator(resolve, max_terms, max_nodes, patterns).negate(schema, 0)


class _Negator:
    def __init__(self, resolve: Callable[[str], Any], max_terms: int, max_nodes: int, patterns: bool = False) -> None:
        self.resolve, self.max_terms, self.nodes_left = resolve, max_terms, max_nodes
        self.patterns = patterns

    def negate(self, schema: Any, depth: int) -> Negation:
        if schema is True:
            return Negation([], True)
        if schema is False:
            return Negation([True], True)
        self.nodes_left -= 1
        if not isinstance(schema, dict) or depth > MAX_DEPTH or self.nodes_left < 0:
            return Negation([], False)
        out = Negation()
        for key, value in schema.items():
            if key in ANNOTATIONS or key not in ASSERTIONS:
                continue
            out.add(self.keyword(key, value, schema, depth))
        return _capped(out, self.max_terms)

    def keyword(self, key: str, value: Any, schema: dict, depth: int) -> Negation:
        sub = lambda s: self.negate(s, depth + 1)  # noqa: E731
        if key == "$ref":
            try:
                return sub(self.resolve(value))
            except Exception:  # noqa: BLE001 - the positive side reports a bad $ref
                return Negation([], False)
        if key == "type":
            return _not_types(value, schema.get("nullable") is True)
        if key in ("enum", "const"):
            values = [value] if key == "const" else value
            return _not_values(values) if isinstance(values, list) else Negation([], False)
        if key == "not":
            return Negation([value], True)
        if key == "required" and isinstance(value, list):
            return Negation([{"type": "object", "properties": {name: False}} for name in value if isinstance(name, str)])
        if key == "properties" and isinstance(value, dict):
            out = Negation()
            for name, sub_schema in value.items():
                inner = sub(sub_schema)
                out.add(Negation([{"type": "object", "required": [name], "properties": {name: t}} for t in inner.terms],
                                 inner.exact))
            return out
        if key in DEPENDENCY_KEYWORDS and isinstance(value, dict):
            return Negation(*negate_dependency(key, value, sub))
        if self.patterns and key == "pattern" and isinstance(value, str):  # the strings it does not match
            return Negation([{"type": "string", NOT_PATTERNS: [value]}])
        if self.patterns and key == ALSO_PATTERNS and isinstance(value, list):
            return Negation([{"type": "string", NOT_PATTERNS: [p]} for p in value])
        if key == NOT_PATTERNS and isinstance(value, list):
            return Negation([{"type": "string", "pattern": p} for p in value])
        if key in _BOUND_NEGATIONS:
            return _not_bound(key, value, schema)
        if key == "items" and isinstance(value, (dict, bool)) and "prefixItems" not in schema:
            inner = sub(value)
            return Negation([{"type": "array", "contains": t} for t in inner.terms], inner.exact)
        if key == "contains" and "minContains" not in schema and "maxContains" not in schema:
            inner = sub(value)
            items = {"anyOf": inner.terms} if inner.terms else False
            return Negation([{"type": "array", "items": items}], inner.exact)
        if key == "allOf" and isinstance(value, list):
            out = Negation()
            for branch in value:
                out.add(sub(branch))
            return out
        if key in ("anyOf", "oneOf") and isinstance(value, list):  # ¬(A ∨ B) = ¬A ∧ ¬B
            parts = [sub(branch) for branch in value]
            combos = list(itertools.islice(itertools.product(*(p.terms for p in parts)), self.max_terms + 1))
            terms = [{"allOf": list(combo)} if len(combo) > 1 else combo[0] for combo in combos]
            # ¬oneOf also holds where two branches match: left out, so inexact
            return Negation(terms, key == "anyOf" and all(p.exact for p in parts))
        if key == "if":  # ¬(if → then, ¬if → else) = (if ∧ ¬then) ∨ (¬if ∧ ¬else)
            condition, then, otherwise = value, schema.get("then", True), schema.get("else", True)
            failed_then, failed_if, failed_else = sub(then), sub(condition), sub(otherwise)
            terms = [{"allOf": [condition, t]} for t in failed_then.terms]
            terms += [{"allOf": [a, b]} for a in failed_if.terms for b in failed_else.terms]
            return Negation(terms, failed_then.exact and failed_if.exact and failed_else.exact)
        if key in ("then", "else", "nullable"):  # read with if / type
            return Negation([], True)
        if key in ("minContains", "maxContains"):  # alone they assert nothing; with contains, left out
            return Negation([], "contains" not in schema)
        return Negation([], False)


_OTHER_TYPES = ("null", "boolean", "object", "array", "string")


def _not_types(value: Any, nullable: bool) -> Negation:
    types = set(value if isinstance(value, list) else [value])
    if nullable:
        types.add("null")
    kept = [t for t in _OTHER_TYPES if t not in types]
    exact = True
    if "number" not in types:
        if "integer" in types:
            exact = False  # numbers with a fraction have no positive form
        else:
            kept.append("number")
    return Negation([{"type": kept}] if kept else [], exact)


def _not_values(values: list) -> Negation:
    """Every JSON value that equals none of ``values``."""
    out = Negation()
    if not any(v is None for v in values):
        out.terms.append({"type": "null"})
    booleans = [b for b in (True, False) if not any(v is b for v in values)]
    if len(booleans) == 2:
        out.terms.append({"type": "boolean"})
    elif booleans:
        out.terms.append({"const": booleans[0]})
    strings = sorted({v for v in values if isinstance(v, str)})
    # "not enum" stays a keyword here: next to an enum it folds value by value, and two of them
    # merge into one; alone it becomes a pattern (``not_in_pattern``).
    out.terms.append({"type": "string", "not": {"enum": strings}} if strings else {"type": "string"})
    numbers = sorted({_decimal(v): v for v in values if isinstance(v, (int, float)) and not isinstance(v, bool)}.items())
    if not numbers:
        out.terms.append({"type": "number"})
    else:
        bounds = [v for _, v in numbers]
        out.terms.append({"type": "number", "exclusiveMaximum": bounds[0]})
        out.terms.extend({"type": "number", "exclusiveMinimum": a, "exclusiveMaximum": b} for a, b in zip(bounds, bounds[1:]))
        out.terms.append({"type": "number", "exclusiveMinimum": bounds[-1]})
    for kind, name in ((dict, "object"), (list, "array")):
        if any(isinstance(v, kind) for v in values):
            out.exact = False  # "any object but these" has no positive form
        else:
            out.terms.append({"type": name})
    return out


def _decimal(value: Any) -> Decimal:
    return Decimal(value) if isinstance(value, int) else Decimal(repr(value))


# keyword → (type, keyword of the negation, offset); ``None`` offset: the same bound, other side.
_BOUND_NEGATIONS = {
    "minimum": ("number", "exclusiveMaximum", None),
    "maximum": ("number", "exclusiveMinimum", None),
    "exclusiveMinimum": ("number", "maximum", None),
    "exclusiveMaximum": ("number", "minimum", None),
    "minLength": ("string", "maxLength", -1),
    "maxLength": ("string", "minLength", 1),
    "minItems": ("array", "maxItems", -1),
    "maxItems": ("array", "minItems", 1),
    "minProperties": ("object", "maxProperties", -1),
    "maxProperties": ("object", "minProperties", 1),
}


def _not_bound(key: str, value: Any, schema: dict) -> Negation:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return Negation([], key in ("exclusiveMinimum", "exclusiveMaximum") and isinstance(value, bool))
    kind, other, offset = _BOUND_NEGATIONS[key]
    if offset is None:
        flag = schema.get("exclusiveMinimum" if key == "minimum" else "exclusiveMaximum")
        if key in ("minimum", "maximum") and flag is True:  # draft 4: minimum + exclusiveMinimum: true
            other = "maximum" if key == "minimum" else "minimum"
        return Negation([{"type": kind, other: value}])
    if not isinstance(value, int):
        return Negation([], False)
    bound = value + offset
    if bound < 0:
        return Negation([])  # minLength 0 and the like: nothing fails them
    return Negation([{"type": kind, other: bound}])


def _capped(out: Negation, max_terms: int) -> Negation:
    seen: dict = {}
    for term in out.terms:
        seen.setdefault(json.dumps(term, sort_keys=True, default=str), term)
    terms = list(seen.values())
    if len(terms) > max_terms:
        return Negation(terms[:max_terms], False)
    return Negation(terms, out.exact)


def not_in_pattern(strings: list) -> str:
    """An ECMA-262 pattern (searched, anchored) matching exactly the strings not in ``strings``.

    Example:
        >>> import re
        >>> p = not_in_pattern(["ab", "b"])
        >>> [bool(re.search(p, s)) for s in ["", "a", "ab", "abc", "b", "c"]]
        [True, True, False, True, False, True]
    """
    trie: dict = {}
    for text in sorted(set(strings)):
        node = trie
        for ch in text:
            node = node.setdefault(ch, {})
        node[None] = {}

    def walk(node: dict) -> str:
        chars = sorted(c for c in node if c is not None)
        parts = [] if None in node else [""]
        parts.append(f"[^{''.join(_escape(c) for c in chars)}][\\s\\S]*" if chars else "[\\s\\S]+")
        parts.extend(_escape(c) + walk(node[c]) for c in chars)
        return "(?:" + "|".join(parts) + ")"

    return "^" + walk(trie) + "$"


def _escape(ch: str) -> str:
    if ch.isascii() and ch.isalnum():
        return ch
    code = ord(ch)
    return f"\\u{code:04x}" if code <= 0xFFFF else ch
