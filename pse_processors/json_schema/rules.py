"""The compiler's grammar output: named rules whose bodies are regex fragments with holes.

In grammar mode the compiler writes the same regex fragments as for the byte automaton,
except where the language recurses: a recursive ``$ref``, "any JSON value", and the suffix
shared by an object's optional members. There it writes a *hole*, a reference to a named
rule, and the rule's body is compiled once. :func:`to_lark` turns the root fragment and the
rule bodies into a Lark grammar for llguidance: every hole-free stretch of a fragment becomes
one ``/regex/`` terminal (so terminals meet only at value boundaries, where llguidance's
greedy lexer cannot run one into the next) and the groups, alternations and quantifiers
around holes become Lark syntax.

Holes are written with two plane-16 private-use characters that fragments never contain
(:func:`check_no_markers` refuses a schema that does).
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from typing import Any

from ..errors import UnsupportedSchemaError

HOLE_OPEN = "\U0010fff0"
HOLE_CLOSE = "\U0010fff1"
ANY_VALUE = "any_value"
_QUANTIFIER = re.compile(r"\*\??|\+\??|\?\??|\{(\d+)(,(\d*))?\}\??")


@dataclass
class RuleSet:
    """Rule bodies (fragments that may hold holes), by name, in definition order.

    Example:
        >>> rules = RuleSet()
        >>> item = rules.hole("item")
        >>> rules.define("item", r"x|\\[" + item + r"\\]")
        >>> print(to_lark(item, rules))
        start: item
        item: /x/ | /\\[/ item /\\]/
    """

    bodies: dict = field(default_factory=dict)
    _by_body: dict = field(default_factory=dict)

    @staticmethod
    def hole(name: str) -> str:
        return HOLE_OPEN + name + HOLE_CLOSE

    def define(self, name: str, body: str) -> None:
        self.bodies[name] = body
        self._by_body.setdefault(body, name)

    def shared(self, body: str, prefix: str) -> str:
        """A hole for ``body``, one rule per distinct body (named ``prefix`` + a number)."""
        name = self._by_body.get(body)
        if name is None:
            name = f"{prefix}_{len(self.bodies)}"
            self.define(name, body)
        return self.hole(name)


def check_no_markers(schema: Any) -> None:
    """Refuse a schema whose text holds the hole markers (plane-16 private use, never real text)."""
    text = json.dumps(schema, ensure_ascii=False)
    if HOLE_OPEN in text or HOLE_CLOSE in text:
        raise UnsupportedSchemaError("const", "#", "U+10FFF0/U+10FFF1 are reserved by the grammar engine")


def to_lark(root: str, rules: RuleSet) -> str:
    """The Lark grammar: ``start`` is ``root``, then every rule that ``root`` reaches."""
    lines = [f"start: {_expression(_parse(root))}"]
    done: set = set()
    pending = _holes(root)
    while pending:
        name = pending.pop(0)
        if name in done:
            continue
        done.add(name)
        body = rules.bodies[name]
        lines.append(f"{name}: {_expression(_parse(body))}")
        pending.extend(_holes(body))
    return "\n".join(lines)


def _holes(fragment: str) -> list:
    return re.findall(f"{HOLE_OPEN}([a-z0-9_]+){HOLE_CLOSE}", fragment)


# -- a parser for the regex subset the compiler writes, just enough to find holes ----------
@dataclass
class _Node:
    kind: str  # "raw", "hole", "group", "alt", "seq"
    text: str = ""  # raw: the regex text (quantifier included); hole: the rule name
    parts: list = field(default_factory=list)
    quantifier: str = ""

    @property
    def has_hole(self) -> bool:
        return self.kind == "hole" or any(part.has_hole for part in self.parts)


def _parse(regex: str) -> _Node:
    node, end = _alternation(regex, 0)
    if end != len(regex):
        raise ValueError(f"unbalanced ')' at {end} in a compiled fragment")
    return node


def _alternation(regex: str, i: int) -> tuple[_Node, int]:
    branches = []
    while True:
        seq, i = _sequence(regex, i)
        branches.append(seq)
        if i < len(regex) and regex[i] == "|":
            i += 1
            continue
        return (branches[0] if len(branches) == 1 else _Node("alt", parts=branches)), i


def _sequence(regex: str, i: int) -> tuple[_Node, int]:
    items: list[_Node] = []
    n = len(regex)
    while i < n and regex[i] not in "|)":
        start = i
        ch = regex[i]
        if ch == HOLE_OPEN:
            j = regex.index(HOLE_CLOSE, i)
            atom = _Node("hole", regex[i + 1 : j])
            i = j + 1
        elif ch == "(":
            i += 3 if regex.startswith("(?:", i) else 1
            inner, i = _alternation(regex, i)
            if i >= n or regex[i] != ")":
                raise ValueError("unbalanced '(' in a compiled fragment")
            i += 1
            atom = _Node("group", parts=[inner]) if inner.has_hole else _Node("raw", regex[start:i])
        elif ch == "[":
            i += 1
            if i < n and regex[i] == "^":
                i += 1
            if i < n and regex[i] == "]":
                i += 1
            while regex[i] != "]":
                i += 2 if regex[i] == "\\" else 1
            i += 1
            atom = _Node("raw", regex[start:i])
        elif ch == "\\":
            if regex[i + 1 : i + 3] in ("x{", "p{", "P{", "u{"):
                i = regex.index("}", i) + 1
            else:
                i += 2
            atom = _Node("raw", regex[start:i])
        else:
            i += 1
            atom = _Node("raw", ch)
        found = _QUANTIFIER.match(regex, i)
        if found:
            if atom.kind == "raw":
                atom = _Node("raw", atom.text + found.group())
            else:
                atom.quantifier = found.group()
            i = found.end()
        items.append(atom)
    return _joined(items), i


def _joined(items: list) -> _Node:
    """The sequence of ``items``, hole-free neighbours merged into one terminal, and a terminal
    in front of a group with holes distributed into it (see :func:`_distributed`)."""
    merged: list[_Node] = []
    for item in items:
        if item.kind == "raw" and merged and merged[-1].kind == "raw":
            merged[-1] = _Node("raw", merged[-1].text + item.text)
        else:
            merged.append(item)
    out: list[_Node] = []
    k = 0
    while k < len(merged):
        item = merged[k]
        follower = merged[k + 1] if k + 1 < len(merged) else None
        if item.kind == "raw" and follower is not None and follower.kind == "group" and follower.quantifier in _SPREAD:
            after = merged[k + 2] if k + 2 < len(merged) and merged[k + 2].kind == "raw" else None
            out.append(_distributed(item.text, follower, after.text if after is not None else ""))
            k += 3 if after is not None else 2
            continue
        out.append(item)
        k += 1
    return out[0] if len(out) == 1 else _Node("seq", parts=out)


_SPREAD = ("", "?")


def _distributed(head: str, group: _Node, tail: str) -> _Node:
    """``head (group)? tail`` (or without ``?``) with ``head`` and ``tail`` merged into the group's
    first and last terminals: ``{ (members)? }`` becomes ``{} | {"key": ... }``.

    llguidance's lexer is greedy and does not backtrack: a lone ``{`` lexeme next to a
    ``{"bar":`` lexeme would make ``{"foo"`` fail once ``{"`` was read as the longer one.
    Terminals that start where the alternatives start avoid that. (Unrolling ``*`` groups
    the same way was measured on the JSON-Schema-Test-Suite: it rejected more valid
    instances than it rescued, so repeated groups keep their own first terminal.)"""
    body = _appended(_prepended(head, group.parts[0]), tail)
    if group.quantifier == "?":
        return _Node("alt", parts=[body, _Node("raw", head + tail)])
    return body


def _prepended(head: str, node: _Node) -> _Node:
    if not head:
        return node
    if node.kind == "raw":
        return _Node("raw", head + node.text)
    if node.kind == "alt":
        return _Node("alt", parts=[_prepended(head, part) for part in node.parts])
    if node.kind == "seq":
        return _Node("seq", parts=[_prepended(head, node.parts[0]), *node.parts[1:]])
    if node.kind == "group" and not node.quantifier:
        return _prepended(head, node.parts[0])
    return _Node("seq", parts=[_Node("raw", head), node])


def _appended(node: _Node, tail: str) -> _Node:
    if not tail:
        return node
    if node.kind == "raw":
        return _Node("raw", node.text + tail)
    if node.kind == "alt":
        return _Node("alt", parts=[_appended(part, tail) for part in node.parts])
    if node.kind == "seq":
        return _Node("seq", parts=[*node.parts[:-1], _appended(node.parts[-1], tail)])
    if node.kind == "group" and not node.quantifier:
        return _appended(node.parts[0], tail)
    return _Node("seq", parts=[node, _Node("raw", tail)])


def _expression(node: _Node) -> str:
    if node.kind == "raw":
        return _terminal(node.text) if node.text else '""'
    if node.kind == "hole":
        return node.text + _lark_quantifier(node.quantifier)
    if node.kind == "alt":
        return " | ".join(_expression(part) for part in node.parts)
    if node.kind == "seq":
        return " ".join(_wrap(part) for part in node.parts)
    inner = _expression(node.parts[0])  # a group around a hole
    return f"({inner})" + _lark_quantifier(node.quantifier)


def _wrap(node: _Node) -> str:
    text = _expression(node)
    return f"({text})" if node.kind == "alt" else text


def _lark_quantifier(quantifier: str) -> str:
    return quantifier[:-1] if len(quantifier) > 1 and quantifier.endswith("?") else quantifier  # lazy = greedy here


def _terminal(regex: str) -> str:
    """``regex`` as a Lark ``/.../`` terminal: every unescaped ``/`` escaped."""
    out = []
    i = 0
    while i < len(regex):
        ch = regex[i]
        if ch == "\\":
            out.append(regex[i : i + 2])
            i += 2
            continue
        out.append("\\/" if ch == "/" else ch)
        i += 1
    return "/" + "".join(out) + "/"


def terminal_only(regex: str) -> str:
    """A Lark grammar whose only sentence set is ``regex`` (a Regex or Choice constraint).

    Example:
        >>> terminal_only("a/b")
        'start: /a\\\\/b/'
    """
    return f"start: {_terminal(regex)}"

