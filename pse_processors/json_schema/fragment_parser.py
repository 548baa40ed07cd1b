r"""A parser for the regex subset the compiler writes, into :class:`FragmentNode` trees.

The Lark output (:mod:`.lark_emitter`) reads fragments this way: atoms, whole JSON strings,
holes (rule references), groups (parsed lazily), alternations and sequences.

Example:
    >>> node = parse_fragment('\\[(?:"a"|1)?')
    >>> [(part.kind, part.text) for part in node.parts]
    [('atom', '\\['), ('group', '(?:"a"|1)?')]
"""

from __future__ import annotations

import re
from typing import Optional

from .fragments import STRING_CHAR
from .holes import HOLE_CLOSE, HOLE_OPEN

_QUANTIFIER = re.compile(r"\*\??|\+\??|\?\??|\{(\d+)(,(\d*))?\}\??")
_ATOM = re.compile(r"\[\^?\]?(?:\\.|[^\]\\])*\]|\\[xpPu]\{[^}]*\}|\\.|[^()|]", re.DOTALL)


class FragmentNode:
    """A parsed regex piece. A group's inside is parsed only when asked (``parts``): the
    groups inside JSON strings (key exclusions, escapes) are emitted as written, and they
    are most of a large schema's text."""

    __slots__ = ("kind", "text", "quantifier", "_parts", "_lazy")

    def __init__(self, kind: str, text: str = "", parts: Optional[list] = None, lazy: Optional[tuple] = None) -> None:
        self.kind = kind  # "atom", "string", "hole", "group", "alt", "seq"
        self.text = text  # atom: its regex text (quantifier included); group: the whole group's text; hole: the rule name
        self.quantifier = ""
        self._parts = parts
        self._lazy = lazy  # a group: (regex, start of its inside, its ")" position, the paren table)

    @property
    def parts(self) -> list:
        if self._parts is None:
            if self._lazy is None:
                self._parts = []
            else:
                regex, start, close, table = self._lazy
                inner, end = _alternation(regex, start, table)
                if end != close:
                    raise ValueError(f"unbalanced group at {start} in a compiled fragment")
                self._parts = [inner]
        return self._parts

    @property
    def has_hole(self) -> bool:
        return self.kind == "hole" or any(part.has_hole for part in self.parts)


# The JSON string tokens the compiler writes most (half of all terminal text on MaskBench):
# read whole at an opening quote, they are balanced and hold no hole.
_STRING_TOKENS = ('"' + STRING_CHAR + '*"', '"(?:' + STRING_CHAR + ')*"')
# A common string token, an escape or a class (skipped whole: their parentheses are literal),
# or one parenthesis; the scanner jumps over plain characters in C.
_PARENS = re.compile(
    "|".join(re.escape(token) for token in _STRING_TOKENS) + r"|\\.|\[\^?\]?(?:\\.|[^\]\\])*\]|([()])", re.DOTALL
)


def _paren_table(regex: str) -> dict:
    """Position of each group's "(" -> position of its ")"."""
    table: dict = {}
    stack: list = []
    for found in _PARENS.finditer(regex):
        paren = found.group(1)
        if paren == "(":
            stack.append(found.start())
        elif paren == ")":
            if not stack:
                raise ValueError(f"unbalanced ')' at {found.start()} in a compiled fragment")
            table[stack.pop()] = found.start()
    if stack:
        raise ValueError("unbalanced '(' in a compiled fragment")
    return table


def parse_fragment(regex: str) -> FragmentNode:
    """The tree of ``regex``, a fragment the compiler wrote (``ValueError`` if it is unbalanced)."""
    node, end = _alternation(regex, 0, _paren_table(regex))
    if end != len(regex):
        raise ValueError(f"unbalanced ')' at {end} in a compiled fragment")
    return node


def _alternation(regex: str, i: int, table: dict) -> tuple[FragmentNode, int]:
    branches = []
    while True:
        seq, i = _sequence(regex, i, table)
        branches.append(seq)
        if i < len(regex) and regex[i] == "|":
            i += 1
            continue
        return (branches[0] if len(branches) == 1 else FragmentNode("alt", parts=branches)), i


def _sequence(regex: str, i: int, table: dict) -> tuple[FragmentNode, int]:
    items: list[FragmentNode] = []
    n = len(regex)
    while i < n and regex[i] not in "|)":
        start = i
        ch = regex[i]
        if ch == '"' and not _QUANTIFIER.match(regex, i + 1):
            # A JSON string: one terminal up to its closing quote, read here in runs rather
            # than atom by atom (keys and string values are most of a schema's text).
            for token in _STRING_TOKENS:
                if regex.startswith(token, i):
                    i += len(token)
                    break
            else:
                i = _string_end(regex, i + 1, table)
            items.append(FragmentNode("string", regex[start:i]))
            continue
        if ch == HOLE_OPEN:
            j = regex.index(HOLE_CLOSE, i)
            atom = FragmentNode("hole", regex[i + 1 : j])
            i = j + 1
        elif ch == "(":
            close = table[i]
            inside = i + 3 if regex.startswith("(?:", i) else i + 1
            atom = FragmentNode("group", lazy=(regex, inside, close, table))
            i = close + 1
        else:  # a class, an escape or one character: one regex match, not a Python loop
            found = _ATOM.match(regex, i)
            if found is None:
                raise ValueError(f"cannot read the compiled fragment at {i}: {regex[i:i + 20]!r}")
            i = found.end()
            atom = FragmentNode("atom", found.group())
        found = _QUANTIFIER.match(regex, i)
        if found:
            atom.quantifier = _lark_quantifier(found.group())
            i = found.end()
        if atom.kind != "hole":
            atom.text = regex[start:i]  # the atom or group with its quantifier, as written
        items.append(atom)
    return (items[0] if len(items) == 1 else FragmentNode("seq", parts=items)), i


# Runs of string content that need no look: not a quote, backslash, class or parenthesis.
_STRING_RUN = re.compile(r'[^"\\\[()|]+')


def _string_end(regex: str, i: int, table: dict) -> int:
    """The end of the JSON string whose opening quote is just before ``i``: after its
    closing quote, or at the ``|``/``)``/end that ends the sequence first (a string left
    open). A quote closes it unless quantified or after a regex-escaped backslash (``\\\\``)."""
    n = len(regex)
    escaped = False
    while i < n:
        found = _STRING_RUN.match(regex, i)
        if found is not None:
            i, escaped = found.end(), False
            continue
        ch = regex[i]
        if ch in "|)":
            return i
        if ch == "(":
            i = table[i] + 1
            found = _QUANTIFIER.match(regex, i)
            if found:
                i = found.end()
            escaped = False
            continue
        found = _ATOM.match(regex, i)
        if found is None:
            raise ValueError(f"cannot read the compiled fragment at {i}: {regex[i:i + 20]!r}")
        end = found.end()
        quantified = _QUANTIFIER.match(regex, end)
        if quantified:
            end = quantified.end()
        text = regex[i:end]
        i = end
        if text == '"' and not escaped:
            return i
        escaped = text == "\\\\" and not escaped
    return i


def _lark_quantifier(quantifier: str) -> str:
    return quantifier[:-1] if len(quantifier) > 1 and quantifier.endswith("?") else quantifier  # lazy = greedy here
