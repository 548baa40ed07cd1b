"""Arrays: ``items``/``prefixItems``, item counts, ``contains``.

A mixin of the compiler (``compiler._Compiler``): it uses the compiler's other methods."""

from __future__ import annotations

from typing import Optional

from ..errors import SchemaError
from . import fragments as fx
from .fragments import Fragment
from .unique_items import unrolled_sequences
from .schema_tools import (
    _ANY_NESTED,
    _pointer_join,
    _bounds,
    _non_negative_int,
)


class ArraysMixin:
    def _compile_array(self, schema: dict, pointer: str) -> Fragment:
        low, high = _bounds(schema, "minItems", "maxItems", pointer)
        if schema.get("uniqueItems") is True and (high is None or high > 1):
            sequences = unrolled_sequences(schema, low, high)
            if sequences is not None:  # few item values: every sequence of distinct ones, exactly (TF/Flax too)
                return self.compile({"enum": sequences}, pointer)
            if self.rules is not None:  # the grammar engine checks it beside the grammar (matchers/unique_items.py)
                self.rules.unique_items = self.rules.beyond_regex = True
            else:
                self.unsupported("uniqueItems", pointer, "uniqueness of items cannot be tracked by an automaton")
        if "contains" in schema:
            return self._compile_contains(schema, pointer, low, high)
        for keyword in ("minContains", "maxContains"):
            if keyword in schema:
                _non_negative_int(schema, keyword, pointer, 0)  # no contains: they assert nothing
        prefix_schemas = schema.get("prefixItems", [])
        if not isinstance(prefix_schemas, list):
            raise SchemaError("prefixItems must be an array", pointer)
        items = schema.get("items", _ANY_NESTED)
        if isinstance(items, list):  # draft 4-7 tuple form
            prefix_schemas, items = items, schema.get("additionalItems", True)
        self.depth += 1
        try:
            prefix = [self.compile(s, _pointer_join(pointer, "prefixItems", i)) for i, s in enumerate(prefix_schemas)]
            rest = self.compile(items, _pointer_join(pointer, "items"))
            opening, closing = self.opening(), self.closing()
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
            if high == 0 or (rest is None and not prefix):
                return r"\[\]" if low == 0 else None
            body = opening + self._elements(prefix, rest, 0, max(low, 1), high) + closing  # at least one item
        finally:
            self.depth -= 1
        return r"\[" + (fx.optional(body) if low == 0 else body) + r"\]"

    def _compile_contains(self, schema: dict, pointer: str, low: int, high: Optional[int]) -> Fragment:
        need = _non_negative_int(schema, "minContains", pointer, 1)
        most = _non_negative_int(schema, "maxContains", pointer, None)
        if "prefixItems" in schema or isinstance(schema.get("items"), list):
            self.unsupported("contains", pointer, "contains together with prefixItems")
        if high is not None or low > need:  # type: ignore[operator]
            self.unsupported("contains", pointer, "contains together with minItems/maxItems")
        if most is not None and most < need:  # type: ignore[operator]
            return None
        if need == 0 and most is None:
            return self._compile_array({k: v for k, v in schema.items() if k not in ("contains", "minContains", "maxContains")}, pointer)
        items = schema.get("items", True)
        contains = schema["contains"]
        self.depth += 1
        try:
            match = self.compile({"allOf": [items, contains]} if items is not True else contains,
                                 _pointer_join(pointer, "contains"))
            miss = self._contains_misses(schema, pointer, most)
            opening, closing, sep = self.opening(), self.closing(), self.sep()
        finally:
            self.depth -= 1
        others = "" if miss is None else fx.repeat(miss + sep, 0, None)
        between = "" if miss is None else fx.repeat(sep + miss, 0, None)
        bodies = []  # non-empty arrays: only misses, or need..most matches among misses
        if need == 0 and miss is not None:
            bodies.append(miss + between)
        if match is not None and most != 0:
            more = fx.repeat(between + sep + match, max(need - 1, 0), None if most is None else most - 1)  # type: ignore[operator]
            bodies.append(others + match + more + between)
        body = fx.alternation(bodies)
        return fx.alternation([r"\[\]" if need == 0 else None,
                               None if body is None else r"\[" + opening + body + closing + r"\]"])

    def _contains_misses(self, schema: dict, pointer: str, most: Optional[int]) -> Fragment:
        """The items besides the counted matches: any item; with ``maxContains``, items that fail
        ``contains``, written with its negation (a subset where that is partial)."""
        items = schema.get("items", True)
        any_item = items if "items" in schema else _ANY_NESTED
        if most is None:
            return self.compile(any_item, _pointer_join(pointer, "items"))
        failed = self.negation(schema["contains"], _pointer_join(pointer, "contains"))
        if not failed.terms and not failed.exact:
            self.unsupported("maxContains", _pointer_join(pointer, "maxContains"),
                             "the contains schema has no negation to write the other items with")
            return self.compile(any_item, _pointer_join(pointer, "items"))  # lenient: maxContains dropped
        misses = self.optional_parts(({"allOf": [items, term]} for term in failed.terms), _pointer_join(pointer, "items"))[0]
        return fx.alternation(misses)

    def _elements(self, prefix: list, rest: Fragment, i: int, low: int, high: Optional[int]) -> str:
        """Elements from position ``i`` on, given ``i`` were already written."""
        sep = self.sep() if i > 0 else ""
        if high is not None and i >= high:
            return ""
        if i < len(prefix):
            part = sep + prefix[i] + self._elements(prefix, rest, i + 1, low, high)
            return part if i < low else fx.optional(part)
        assert rest is not None
        need = max(low - i, 0)
        most = None if high is None else high - i
        if i == 0:
            tail = fx.repeat(self.sep() + rest, max(need - 1, 0), None if most is None else most - 1)
            return rest + tail if need > 0 else fx.optional(rest + tail)
        return fx.repeat(sep + rest, need, most)
