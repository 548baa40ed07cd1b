"""A JSON Schema checked as data before anything walks it recursively.

Python's ``json`` module and the compiler's own walkers recurse once per level, so a schema
nested thousands of levels deep would end in a raw ``RecursionError`` wherever the stack runs
out. :func:`check_depth` walks it without recursion first and refuses it by name. The values
that reach the output (``enum``/``const`` values, property names, patterns) must be JSON text:
:func:`json_text_problem` finds NaN, ±Infinity and lone surrogates, which Python's ``json``
accepts or produces but no JSON text (or UTF-8 text) can hold.

Example:
    >>> check_depth({"type": "array", "items": {"type": "integer"}})
    >>> deep = {"type": "integer"}
    >>> for _ in range(MAX_DEPTH):
    ...     deep = {"not": deep}
    >>> check_depth(deep)
    Traceback (most recent call last):
    ...
    pse_processors.errors.SchemaError: the schema nests deeper than 256 levels (at #/not/not/not/not/not/not/not/not/not/not/not/not/…, 256 levels down)
"""

from __future__ import annotations

import math
import re
from typing import Any, Optional

from ..errors import SchemaError
from .keywords import (
    COUNT_KEYWORDS, NUMBER_KEYWORDS, SCHEMA_KEYWORDS, SCHEMA_LIST_KEYWORDS, SCHEMA_MAP_KEYWORDS,
)

#: How deep a schema document may nest (objects and arrays, the root counting as level 1). Real
#: schemas stay far below; the compiler's recursion (about one Python frame per level for each
#: of several walkers) stays within Python's default recursion limit of 1,000.
MAX_DEPTH = 256
_SHOWN = 12  # pointer segments shown in a message
_SURROGATE = re.compile("[\ud800-\udfff]")


def _pointer(path: Any, shown: int = _SHOWN) -> str:
    """``#/a/0/b`` from a linked path ``(key, (key, ... None))``, its first ``shown`` segments."""
    parts = []
    while path is not None:
        key, path = path
        parts.append(str(key).replace("~", "~0").replace("/", "~1"))
    parts.reverse()
    if len(parts) > shown:
        return "#/" + "/".join(parts[:shown]) + f"/…, {len(parts)} levels down"
    return "#" + "".join("/" + part for part in parts)


def check_depth(document: Any) -> None:
    """Raise ``SchemaError`` when ``document`` nests deeper than :data:`MAX_DEPTH` levels.

    Iterative, so any depth is refused with the same message, never a ``RecursionError``."""
    if not isinstance(document, (dict, list)):
        return
    stack: list = [(document, 1, None)]
    while stack:
        node, depth, path = stack.pop()
        items = node.items() if isinstance(node, dict) else enumerate(node)
        for key, value in items:
            if isinstance(value, (dict, list)):
                if depth >= MAX_DEPTH:
                    raise SchemaError(f"the schema nests deeper than {MAX_DEPTH} levels", _pointer((key, path)))
                stack.append((value, depth + 1, (key, path)))


def check_values(schema: Any) -> None:
    """Raise ``SchemaError`` for a keyword value no JSON Schema may hold, in every subschema (also
    under ``not``, ``if`` and ``$defs``, which are compiled through negation and merging): a
    numeric bound that is not a finite number, a count that is not a non-negative integer, an
    ``enum``/``const`` value that JSON text cannot hold. Call :func:`check_depth` first.

    Example:
        >>> check_values({"type": "number", "not": {"enum": [1, float("nan")]}})
        Traceback (most recent call last):
        ...
        pse_processors.errors.SchemaError: enum value: NaN is not a JSON number (at #/not/enum/1)
    """
    stack: list = [(schema, None)]
    while stack:
        node, path = stack.pop()
        if not isinstance(node, dict):
            continue
        for key, value in node.items():
            at = (key, path)
            if key in SCHEMA_KEYWORDS or key in SCHEMA_LIST_KEYWORDS:
                subschemas = enumerate(value) if isinstance(value, list) else [(None, value)]
                stack.extend((sub, at if index is None else (index, at)) for index, sub in subschemas)
            elif key in SCHEMA_MAP_KEYWORDS or key == "dependencies":
                if isinstance(value, dict):
                    stack.extend((sub, (name, at)) for name, sub in value.items() if isinstance(sub, dict))
            elif key in ("enum", "const"):
                for index, item in enumerate(value) if key == "enum" and isinstance(value, list) else [(None, value)]:
                    problem = json_text_problem(item)
                    if problem is not None:
                        where = _pointer(at if index is None else (index, at), 1 << 30)
                        raise SchemaError(f"{key} value: {problem[1]}", where + problem[0])
            elif key in NUMBER_KEYWORDS and not (isinstance(value, bool) and key.startswith("exclusive")):
                if isinstance(value, bool) or not isinstance(value, (int, float)):
                    raise SchemaError(f"{key} must be a number, not {value!r}", _pointer(at, 1 << 30))
                if isinstance(value, float) and not math.isfinite(value):  # json.loads reads NaN, Infinity, 1e999
                    raise SchemaError(f"{key} must be a finite number, not {value!r}: JSON has no NaN or "
                                      "Infinity", _pointer(at, 1 << 30))
            elif key in COUNT_KEYWORDS:
                if isinstance(value, bool) or not isinstance(value, (int, float)) or value < 0 or (
                    isinstance(value, float) and not value.is_integer()
                ):
                    raise SchemaError(f"{key} must be a non-negative integer, not {value!r}", _pointer(at, 1 << 30))


def lone_surrogate(text: str) -> Optional[int]:
    """The index of the first lone surrogate (U+D800-U+DFFF) in ``text``, or ``None``.

    Example:
        >>> lone_surrogate("ok"), lone_surrogate("a" + chr(0xDC00))
        (None, 1)
    """
    found = _SURROGATE.search(text)
    return None if found is None else found.start()


def json_text_problem(value: Any) -> Optional[tuple]:
    """``(pointer relative to value, what is wrong)`` for the first part of ``value`` that JSON
    text cannot hold (NaN, ±Infinity, a string or key with a lone surrogate), or ``None``.

    Example:
        >>> json_text_problem({"a": [1, float("nan")]})
        ('/a/1', 'NaN is not a JSON number')
        >>> json_text_problem(["x", "y" + chr(0xD800)])
        ('/1', "the string 'y\\\\ud800' holds a lone surrogate U+D800, which no UTF-8 text can contain")
        >>> json_text_problem({"a": 1e308, "b": 10**400}) is None
        True
    """
    stack: list = [(value, None)]
    while stack:
        node, path = stack.pop()
        if isinstance(node, float) and not math.isfinite(node):
            return _pointer(path, 1 << 30)[1:], f"{node!r} is not a JSON number".replace("nan", "NaN").replace("inf", "Infinity")
        if isinstance(node, str):
            where = lone_surrogate(node)
            if where is not None:
                return _pointer(path, 1 << 30)[1:], _surrogate_message("the string", node, where)
        elif isinstance(node, dict):
            for key in node:
                where = lone_surrogate(key) if isinstance(key, str) else None
                if where is not None:
                    return _pointer(path, 1 << 30)[1:], _surrogate_message("the key", key, where)
            stack.extend((item, (key, path)) for key, item in reversed(list(node.items())))
        elif isinstance(node, list):
            stack.extend((item, (index, path)) for index, item in reversed(list(enumerate(node))))
    return None


def _surrogate_message(what: str, text: str, where: int) -> str:
    return f"{what} {text!r} holds a lone surrogate U+{ord(text[where]):04X}, which no UTF-8 text can contain"


def check_text(text: Any, what: str, pointer: str) -> None:
    """Raise ``SchemaError`` when the string ``text`` (a pattern, a property name) holds a lone surrogate.

    Example:
        >>> check_text("a" + chr(0xD800), "the pattern", "#/pattern")
        Traceback (most recent call last):
        ...
        pse_processors.errors.SchemaError: the pattern 'a\\ud800' holds a lone surrogate U+D800, which no UTF-8 text can contain (at #/pattern)
    """
    where = lone_surrogate(text) if isinstance(text, str) else None
    if where is not None:
        raise SchemaError(_surrogate_message(what, text, where), pointer)
