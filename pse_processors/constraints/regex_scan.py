"""The scanner behind :mod:`~pse_processors.constraints.regex_check`: one pass over a pattern in
Rust ``regex`` syntax that builds its tree of groups and alternatives, finds the anchors, and
refuses by name what no back end can enforce exactly.

Example:
    >>> scanner = Scanner("(^a|b)$")
    >>> scanner.scan()
    >>> [(item.text, item.pos) for item in removable_anchors(scanner)]
    [('^', 1), ('$', 6)]
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Optional

from ..errors import UnsupportedRegexError

__all__ = ["NOTEWORTHY", "Scanner", "excerpt", "removable_anchors"]

# A run of characters with no meaning to the scanner (outside classes, not in x mode).
_PLAIN = re.compile(r"[^\\\[\](){}|*+?^$#\s]+")
# A counted repetition as Rust reads it (spaces allowed inside the braces).
_COUNTED = re.compile(r"\{\s*\d+\s*(?:,\s*\d*\s*)?\}")
_FLAGS = re.compile(r"[A-Za-z-]*")
# Whatever the scanner may refuse, remove or fix starts with one of these (a superset: "\\\\b" too).
NOTEWORTHY = re.compile(r"[$^]|\\[AzZbB<>1-9kg]|\(\?(?:[=!>&(#]|<[=!]|P[=>]|[a-zA-Z-]*x)|[*+?}]\+")
_WHITESPACE = frozenset(" \t\n\r\x0b\x0c")
_HEX_DIGITS = {"x": 2, "u": 4, "U": 8}
# What an inline group opener refuses, longest first.
_REFUSED_GROUPS = (
    ("(?<=", "a look-behind"), ("(?<!", "a look-behind"), ("(?=", "a look-ahead"), ("(?!", "a look-ahead"),
    ("(?>", "an atomic group"), ("(?P=", "a back-reference"), ("(?P>", "a subroutine call"),
    ("(?&", "a subroutine call"), ("(?(", "a conditional group"), ("(?#", "an inline comment"),
)
_EXCERPT = 60  # characters of a long pattern shown around a position
#: Groups nested deeper than this are refused by the Rust parser (and not walked here).
NEST_LIMIT = 250


@dataclass
class _Item:
    """One element of a branch: an anchor (``start``/``end``), inline ``flags``, an ``atom``, a ``group``."""

    kind: str
    pos: int
    text: str = ""
    quantified: bool = False
    group: Optional["_Group"] = None

    def zero_width(self) -> bool:
        if self.kind in ("start", "end", "flags"):
            return True
        return self.kind == "group" and all(item.zero_width() for branch in self.group.branches for item in branch)  # type: ignore[union-attr]


@dataclass
class _Group:
    pos: int
    verbose: bool  # x mode when the group opened (restored when it closes)
    branches: list = field(default_factory=lambda: [[]])


class Scanner:
    """One pass over the pattern: the group tree and its anchors; refuses unsupported constructs.

    ``broken`` is set where the structure does not parse (unbalanced groups, an unterminated
    class, groups nested past ``NEST_LIMIT``): the Rust parser then says what is wrong."""

    def __init__(self, pattern: str) -> None:
        self.pattern = pattern
        self.root = _Group(0, False)
        self.stack = [self.root]
        self.verbose = False
        self.broken = False
        self.anchors: list = []

    def refuse(self, construct: str, pos: int, text: str, why: str = "") -> UnsupportedRegexError:
        detail = why or "no back end can enforce it exactly"
        return UnsupportedRegexError(
            construct.split(" ", 1)[-1], pos, self.pattern,
            f"the regex {excerpt(self.pattern, pos)} has {construct} {text!r} at position {pos}: {detail}",
        )

    def add(self, item: _Item) -> None:
        self.stack[-1].branches[-1].append(item)

    def scan(self) -> None:
        p, n, i = self.pattern, len(self.pattern), 0
        while i < n:
            ch = p[i]
            if ch in _WHITESPACE and self.verbose:
                i += 1
            elif ch == "#" and self.verbose:
                i = _line_end(p, i)
            elif ch == "\\":
                i = self._escape(i)
            elif ch == "[":
                self.add(_Item("atom", i))
                i = self._class(i)
            elif ch == "(":
                i = self._open(i)
            elif ch == ")":
                i = self._close(i)
            elif ch == "|":
                self.stack[-1].branches.append([])
                i += 1
            elif ch in "*+?":
                i = self._quantifier(i, i + 1)
            elif ch == "{":
                counted = _COUNTED.match(p, i)
                if counted is None:  # Rust reads every "{" as a repetition: its parser says what is wrong
                    self.add(_Item("atom", i))
                    i += 1
                else:
                    i = self._quantifier(i, counted.end())
            elif ch in "^$":
                self._anchor("start" if ch == "^" else "end", i, ch)
                i += 1
            else:
                plain = None if self.verbose else _PLAIN.match(p, i)
                self.add(_Item("atom", i))
                i = plain.end() if plain is not None else i + 1
        if len(self.stack) > 1:
            self.broken = True  # an unclosed group

    def _anchor(self, kind: str, pos: int, text: str) -> None:
        item = _Item(kind, pos, text)
        self.anchors.append(item)
        self.add(item)

    def _quantifier(self, pos: int, end: int) -> int:
        branch = self.stack[-1].branches[-1]
        if branch:  # nothing to repeat: the Rust parser reports it
            branch[-1].quantified = True
        p = self.pattern
        if end < len(p) and p[end] == "+":
            raise self.refuse("a possessive quantifier", pos, p[pos : end + 1],
                              "possessive in Python and PCRE, a repetition of a repetition in Rust: write (?:...)+ for the latter")
        return end + 1 if end < len(p) and p[end] == "?" else end  # a lazy quantifier: same language

    def _escape(self, i: int) -> int:
        p = self.pattern
        end = _escape_end(p, i)
        c = p[i + 1 : i + 2]
        if c == "A":
            self._anchor("start", i, p[i:end])
        elif c in ("z", "Z"):  # Python's \Z is Rust's \z
            self._anchor("end", i, p[i:end])
        elif c in ("b", "B", "<", ">"):
            raise self.refuse("a word boundary", i, p[i:end])
        elif c.isdigit() and c != "0" or c in ("k", "g") and p[i + 2 : i + 3] in ("<", "{", "'"):
            raise self.refuse("a back-reference", i, p[i:end])
        else:
            self.add(_Item("atom", i))
        return end

    def _class(self, i: int) -> int:
        """The end of the class opened at ``i`` (Rust: nested classes, ``[:name:]``, a leading ``]``)."""
        p, n = self.pattern, len(self.pattern)
        depth, i = 1, _class_body_start(p, i)
        while i < n:
            ch = p[i]
            if ch == "\\":
                i = _escape_end(p, i)
            elif self.verbose and ch in _WHITESPACE:
                i += 1
            elif self.verbose and ch == "#":
                i = _line_end(p, i)
            elif ch == "[":
                close = p.find(":]", i + 2) if p.startswith("[:", i) else -1
                if close >= 0 and re.fullmatch(r"\^?[a-z]+", p[i + 2 : close]):
                    i = close + 2  # an ASCII class [:alpha:]
                else:
                    depth, i = depth + 1, _class_body_start(p, i)
            elif ch == "]":
                depth, i = depth - 1, i + 1
                if depth == 0:
                    return i
            else:
                i += 1
        self.broken = True  # unterminated
        return n

    def _open(self, i: int) -> int:
        p = self.pattern
        verbose = self.verbose
        if p.startswith("(?", i):
            for opener, construct in _REFUSED_GROUPS:
                if p.startswith(opener, i):
                    raise self.refuse(construct, i, opener)
            if p.startswith("(?P<", i) or p.startswith("(?<", i):  # a named group
                close = p.find(">", i)
                end = len(p) if close < 0 else close + 1
            else:
                flags = _FLAGS.match(p, i + 2)
                end = flags.end()  # type: ignore[union-attr]
                verbose = _verbose_after(flags.group(), verbose)  # type: ignore[union-attr]
                if p.startswith(")", end):  # (?flags): the rest of the enclosing group
                    self.verbose = verbose
                    self.add(_Item("flags", i))
                    return end + 1
                end += 1  # past ":" (anything else: the Rust parser reports it)
        else:
            end = i + 1
        self.stack.append(_Group(i, self.verbose))
        self.verbose = verbose
        if len(self.stack) > NEST_LIMIT:  # past the Rust parser's limit: it says so
            self.broken = True
        return end

    def _close(self, i: int) -> int:
        if len(self.stack) == 1:
            self.broken = True  # an unopened group
            self.add(_Item("atom", i))
            return i + 1
        group = self.stack.pop()
        self.verbose = group.verbose
        self.add(_Item("group", group.pos, group=group))
        return i + 1


def _class_body_start(p: str, i: int) -> int:
    """Past ``[``, ``[^`` and a leading ``]`` (a literal there)."""
    i += 1
    if p.startswith("^", i):
        i += 1
    if p.startswith("]", i):
        i += 1
    return i


def _line_end(p: str, i: int) -> int:
    end = p.find("\n", i)
    return len(p) if end < 0 else end + 1


def _escape_end(p: str, i: int) -> int:
    """The end of the escape sequence that starts with the backslash at ``i``."""
    c = p[i + 1 : i + 2]
    if c in _HEX_DIGITS or c in ("p", "P") or (c == "b" and p.startswith("{", i + 2)):
        if p.startswith("{", i + 2):
            close = p.find("}", i + 3)
            return len(p) if close < 0 else close + 1
        if c in ("p", "P"):
            return min(i + 3, len(p))
        end = i + 2
        while end < min(i + 2 + _HEX_DIGITS.get(c, 0), len(p)) and p[end] in "0123456789abcdefABCDEF":
            end += 1
        return end
    return min(i + 2, len(p))


def _verbose_after(flags: str, verbose: bool) -> bool:
    """x mode after the inline flags ``flags`` (``i-x``, ``x``...)."""
    on, _, off = flags.partition("-")
    return (verbose or "x" in on) and "x" not in off


def removable_anchors(scanner: Scanner) -> list:
    """The anchors that hold wherever they are (the rules: :mod:`~pse_processors.constraints.regex_check`);
    refuses any other. Recursive: only for a scan that is not ``broken`` (nor nested past ``NEST_LIMIT``)."""
    removable: list = []

    def visit(group: _Group, at_start: bool, at_end: bool, repeated: bool) -> None:
        for branch in group.branches:
            real = [i for i, item in enumerate(branch) if not item.zero_width()]
            first, last = (real[0], real[-1]) if real else (len(branch), -1)
            for i, item in enumerate(branch):
                if item.kind == "group":
                    inner_repeated = repeated or item.quantified
                    visit(item.group, at_start and i <= first and not inner_repeated,  # type: ignore[arg-type]
                          at_end and i >= last and not inner_repeated, inner_repeated)
                elif item.kind in ("start", "end"):
                    start = item.kind == "start"
                    if item.quantified:
                        raise scanner.refuse("the anchor", item.pos, item.text, "a repeated anchor cannot be enforced exactly")
                    if repeated:
                        raise scanner.refuse("the anchor", item.pos, item.text,
                                             "an anchor inside a repeated group cannot be enforced exactly")
                    if not ((at_start and i < first) if start else (at_end and i > last)):
                        where = "start" if start else "end"
                        raise scanner.refuse(
                            "the anchor", item.pos, item.text,
                            f"it is not at the {where} of the pattern (or of a top-level alternative), "
                            "the only place where a full match lets it hold",
                        )
                    removable.append(item)

    visit(scanner.root, True, True, False)
    return removable


def excerpt(pattern: str, position: Optional[int]) -> str:
    """``pattern`` quoted, or the part around ``position`` when it is long."""
    if len(pattern) <= _EXCERPT:
        return repr(pattern)
    start = max(0, min(position or 0, len(pattern)) - _EXCERPT // 2)
    part = pattern[start : start + _EXCERPT]
    return f"{'…' if start else ''}{part!r}{'…' if start + _EXCERPT < len(pattern) else ''} ({len(pattern):,} characters)"
