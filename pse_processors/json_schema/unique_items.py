"""``uniqueItems`` on the grammar engine: where in an instance it applies, and JSON equality.

The grammar cannot say "no two items are equal", so the compiler leaves it to a value-level
check beside the grammar (:mod:`pse_processors.matchers.unique_items`). That check follows the
instance as it is generated and asks this module, container by container, which schemas may
apply there: every schema that could (all branches of ``anyOf``/``oneOf``, ``then`` and
``else``, dependent schemas, ``$ref`` targets). An array is kept unique if any of them says
``uniqueItems: true``; uniqueness never makes a valid array invalid under the others, so
the output stays valid.

Example:
    >>> plan = UniquePlan({"type": "object", "properties": {"tags": {"type": "array", "uniqueItems": True,
    ...                    "items": {"enum": ["a", "b"]}}}})
    >>> tags = plan.child(plan.root, key="tags")
    >>> plan.is_unique(tags), sorted(v for _, v in plan.item_values(tags, 0))
    (True, ['a', 'b'])
    >>> canonical([1, {"b": 1.0, "a": True}]) == canonical([1.0, {"a": True, "b": 1}])
    True
"""

from __future__ import annotations

import itertools
import json
import re
import urllib.parse
from decimal import Decimal
from typing import Any, Optional

_BRANCHES = ("allOf", "anyOf", "oneOf")
_MAX_VALUES = 256  # finite item sets larger than this are not tracked value by value


def canonical(value: Any) -> Any:
    """A hashable key equal for JSON-equal values: ``1 == 1.0``, objects in any key order, ``true != 1``.

    Numbers compare as doubles, as validators read them: values that are equal compare equal,
    and so do values a double cannot tell apart (``1e999`` and ``2e999``, ``1e-400`` and ``0``), which a
    check that keeps items unique must then keep apart too."""
    if isinstance(value, bool) or value is None:
        return ("literal", value)
    if isinstance(value, (int, float, Decimal)):
        return ("number", float(value))
    if isinstance(value, str):
        return ("string", value)
    if isinstance(value, list):
        return ("array", tuple(canonical(v) for v in value))
    if isinstance(value, dict):
        return ("object", frozenset((k, canonical(v)) for k, v in value.items()))
    raise TypeError(f"not a JSON value: {type(value).__name__}")


def canonical_text(text: bytes) -> Any:
    """:func:`canonical` of a JSON text (integers read as doubles: none is too large for one)."""
    return canonical(json.loads(text, parse_int=float))


def has_unique_items(schema: Any) -> bool:
    """Whether ``uniqueItems: true`` appears anywhere in ``schema`` (as a keyword, not as data)."""
    return unique_items_pointer(schema) is not None


def unique_items_pointer(schema: Any, pointer: str = "#") -> Optional[str]:
    """The JSON pointer of the first schema in ``schema`` that says ``uniqueItems: true``, else ``None``.

    Example:
        >>> unique_items_pointer({"properties": {"a/b": {"uniqueItems": True}}, "enum": [{"uniqueItems": True}]})
        '#/properties/a~1b'
    """
    if isinstance(schema, dict):
        if schema.get("uniqueItems") is True:
            return pointer
        found = (unique_items_pointer(v, f"{pointer}/{_escaped(k)}") for k, v in schema.items() if k not in _DATA_KEYS)
    elif isinstance(schema, list):
        found = (unique_items_pointer(v, f"{pointer}/{i}") for i, v in enumerate(schema))
    else:
        return None
    return next((p for p in found if p is not None), None)


_DATA_KEYS = frozenset({"enum", "const", "default", "examples"})


def _escaped(key: str) -> str:
    return str(key).replace("~", "~0").replace("/", "~1")


class UniquePlan:
    """Which schemas apply at each container of an instance of ``root``; see the module docstring.

    A location is a tuple of schema dicts (``root`` for the top-level value); :meth:`child`
    moves to a member or an item. Only local ``$ref`` s (``#/...``) are followed, as the
    compiler follows them."""

    def __init__(self, root: Any) -> None:
        self.root_schema = root
        self.root: tuple = self._expand([root])
        self._children: dict = {}

    def _resolve(self, ref: Any) -> Any:
        if not isinstance(ref, str) or not ref.startswith("#"):
            return True  # the compiler refuses other references before any instance exists
        node = self.root_schema
        for raw in ref[1:].split("/")[1:]:
            part = urllib.parse.unquote(raw).replace("~1", "/").replace("~0", "~")
            if isinstance(node, dict) and part in node:
                node = node[part]
            elif isinstance(node, list) and part.isdigit() and int(part) < len(node):
                node = node[int(part)]
            else:
                return True
        return node

    def _expand(self, schemas: list) -> tuple:
        """Every schema that applies along with ``schemas``: their combinators' branches and refs."""
        out: dict = {}
        pending = list(schemas)
        while pending:
            schema = pending.pop()
            if not isinstance(schema, dict) or id(schema) in out:
                continue
            out[id(schema)] = schema
            if "$ref" in schema:
                pending.append(self._resolve(schema["$ref"]))
            for keyword in _BRANCHES:
                if isinstance(schema.get(keyword), list):
                    pending.extend(schema[keyword])
            pending.extend(schema[k] for k in ("then", "else") if k in schema)
            for keyword in ("dependentSchemas", "dependencies"):
                if isinstance(schema.get(keyword), dict):
                    pending.extend(v for v in schema[keyword].values() if isinstance(v, dict))
        return tuple(out.values())

    def child(self, location: tuple, key: Optional[str] = None, index: Optional[int] = None) -> tuple:
        """The location of member ``key`` (an object's) or item ``index`` (an array's)."""
        cache_key = (id(location), key, index if index is None or index < 64 else 64)
        found = self._children.get(cache_key)
        if found is not None and found[0] is location:
            return found[1]
        subs: list = []
        for schema in location:
            subs.extend(self._member(schema, key) if key is not None else self._item(schema, index or 0))
        result = self._expand(subs)
        self._children[cache_key] = (location, result)
        return result

    @staticmethod
    def _member(schema: dict, key: str) -> list:
        properties = schema.get("properties") if isinstance(schema.get("properties"), dict) else {}
        patterns = schema.get("patternProperties") if isinstance(schema.get("patternProperties"), dict) else {}
        out = [properties[key]] if key in properties else []
        matched = False
        for pattern, sub in patterns.items():
            try:
                hit = re.search(pattern, key) is not None
            except re.error:
                hit = True  # unsure: it may apply
            if hit:
                out.append(sub)
                matched = True
        if key not in properties and not matched and "additionalProperties" in schema:
            out.append(schema["additionalProperties"])
        return out

    @staticmethod
    def _item(schema: dict, index: int) -> list:
        items, prefix = schema.get("items"), schema.get("prefixItems")
        out = []
        if isinstance(items, list):  # draft 4-7 tuple form
            out.append(items[index] if index < len(items) else schema.get("additionalItems", True))
        elif isinstance(prefix, list) and index < len(prefix):
            out.append(prefix[index])
        elif items is not None:
            out.append(items)
        if "contains" in schema:
            out.append(schema["contains"])
        return out

    @staticmethod
    def is_unique(location: tuple) -> bool:
        """Whether an array here must have unique items."""
        return any(schema.get("uniqueItems") is True for schema in location)

    def item_values(self, array: tuple, index: int) -> Optional[frozenset]:
        """``(canonical, value)`` pairs of every value an item of the array at ``array`` can take,
        when every schema there that asserts anything is an ``enum``, a ``const`` or a
        ``boolean``/``null`` type of few scalars (their union is then a superset), else ``None``."""
        values: set = set()
        for schema in self.child(array, index=index):
            own = _own_values(schema)
            if own is None:
                if set(schema) <= _WRAPPER_KEYS:
                    continue  # asserts nothing itself: its branches are in the location too
                return None
            values |= own
        return frozenset(values) if values and len(values) <= _MAX_VALUES else None


_WRAPPER_KEYS = frozenset({"$ref", "allOf", "anyOf", "oneOf", "title", "description", "$comment", "default", "examples",
                           "$defs", "definitions", "$id", "$schema", "$anchor"})


def _own_values(schema: dict) -> Optional[frozenset]:
    """The scalar values a schema allows by itself (``enum``, ``const``, ``type: boolean/null``), or ``None``."""
    if "const" in schema:
        values = [schema["const"]]
    elif isinstance(schema.get("enum"), list):
        values = schema["enum"]
    elif schema.get("type") == "boolean":
        values = [True, False]
    elif schema.get("type") == "null":
        values = [None]
    else:
        return None
    if any(isinstance(v, (dict, list)) for v in values):
        return None  # their spelling depends on the whitespace policy
    return frozenset((canonical(v), v) for v in values)


MAX_UNROLLED = 512  # sequences of distinct items written out for an automaton


def unrolled_sequences(schema: dict, low: int, high: Optional[int]) -> Optional[list]:
    """Every array of distinct items ``schema`` allows, when its ``items`` are a plain ``enum``,
    ``const`` or ``boolean`` and there are at most :data:`MAX_UNROLLED` of them; else ``None``.
    An automaton holds them as an ``enum`` of arrays, exactly.

    Example:
        >>> unrolled_sequences({"items": {"enum": ["a", "b"]}, "uniqueItems": True}, 1, None)
        [['a'], ['b'], ['a', 'b'], ['b', 'a']]
    """
    if set(schema) - {"type", "items", "uniqueItems", "minItems", "maxItems"} - _WRAPPER_KEYS:
        return None  # prefixItems, contains...: not unrolled
    items = schema.get("items")
    if not isinstance(items, dict) or set(items) - {"enum", "const", "type", "title", "description"}:
        return None
    if "enum" in items or "const" in items:
        if "type" in items:
            return None  # the values would need filtering by type
        values = items["enum"] if "enum" in items else [items["const"]]
        if not isinstance(values, list):
            return None
    elif items.get("type") == "boolean":
        values = [True, False]
    else:
        return None
    distinct: dict = {}
    for value in values:
        distinct.setdefault(canonical(value), value)
    choices = list(distinct.values())
    top = len(choices) if high is None else min(high, len(choices))
    total = sum(_permutations(len(choices), k) for k in range(low, top + 1))
    if total > MAX_UNROLLED:
        return None
    return [list(seq) for k in range(low, top + 1) for seq in itertools.permutations(choices, k)]


def _permutations(n: int, k: int) -> int:
    out = 1
    for i in range(k):
        out *= n - i
    return out
