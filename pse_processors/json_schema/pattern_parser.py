"""A parser for ECMA-262 ``pattern`` s into a tree of code point sets, sequences and repeats.

Lookaround, backreferences, word boundaries and Unicode property escapes are refused by name
(``UnsupportedSchemaError``); a malformed pattern is a ``SchemaError``.

Example:
    >>> PatternParser("^a{2}$", "#").parse()
    Seq(items=[Anchor(start=True), Repeat(node=Chars(ranges=[(97, 97)]), low=2, high=2), Anchor(start=False)])
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional, Union

from ..errors import SchemaError, UnsupportedSchemaError
from .char_ranges import DIGIT, LINE_TERMINATORS, SPACE, WORD, Ranges, complement, normalize

_SIMPLE_ESCAPES = {"t": 0x09, "n": 0x0A, "v": 0x0B, "f": 0x0C, "r": 0x0D, "0": 0x00}


@dataclass
class Chars:
    """One character from a set of code points."""

    ranges: Ranges


@dataclass
class Seq:
    items: list


@dataclass
class Alt:
    options: list


@dataclass
class Repeat:
    node: "Node"
    low: int
    high: Optional[int]


@dataclass
class Anchor:
    start: bool


Node = Union[Chars, Seq, Alt, Repeat, Anchor]


class PatternParser:
    """Recursive descent over one pattern; ``pointer`` names the schema location in errors."""

    def __init__(self, pattern: str, pointer: str) -> None:
        self.text = pattern
        self.pos = 0
        self.pointer = pointer

    def refuse(self, what: str) -> UnsupportedSchemaError:
        return UnsupportedSchemaError("pattern", self.pointer, f"{what} in {self.text!r} cannot be compiled to an automaton")

    def error(self, what: str) -> SchemaError:
        return SchemaError(f"invalid pattern {self.text!r}: {what}", self.pointer)

    def peek(self, offset: int = 0) -> str:
        i = self.pos + offset
        return self.text[i] if i < len(self.text) else ""

    def parse(self) -> Node:
        node = self.alternation()
        if self.pos != len(self.text):
            raise self.error(f"unexpected {self.peek()!r} at {self.pos}")
        return node

    def alternation(self) -> Node:
        options = [self.sequence()]
        while self.peek() == "|":
            self.pos += 1
            options.append(self.sequence())
        return options[0] if len(options) == 1 else Alt(options)

    def sequence(self) -> Node:
        items: list = []
        while self.peek() and self.peek() not in "|)":
            items.append(self.quantified())
        return Seq(items)

    def quantified(self) -> Node:
        atom = self.atom()
        while True:
            ch = self.peek()
            if ch in ("*", "+", "?"):
                self.pos += 1
                low, high = {"*": (0, None), "+": (1, None), "?": (0, 1)}[ch]
            elif ch == "{" and self._braces() is not None:
                low, high, length = self._braces()  # type: ignore[misc]
                self.pos += length
            else:
                return atom
            if isinstance(atom, Anchor):
                raise self.refuse("a quantified anchor")
            if self.peek() == "?":  # lazy: same language
                self.pos += 1
            if high is not None and high < low:
                raise self.error("a quantifier {n,m} with m < n")
            atom = Repeat(atom, low, high)

    def _braces(self) -> Optional[tuple]:
        end = self.text.find("}", self.pos)
        if end < 0:
            return None
        body = self.text[self.pos + 1 : end]
        low_text, comma, high_text = body.partition(",")
        if not low_text.isdigit() or (high_text and not high_text.isdigit()):
            return None
        low = int(low_text)
        high = low if not comma else (int(high_text) if high_text else None)
        return low, high, end - self.pos + 1

    def atom(self) -> Node:
        ch = self.peek()
        if ch == "(":
            return self.group()
        if ch == "[":
            return Chars(self.char_class())
        if ch == ".":
            self.pos += 1
            return Chars(complement(LINE_TERMINATORS))
        if ch == "^" or ch == "$":
            self.pos += 1
            return Anchor(ch == "^")
        if ch == "\\":
            return self.escape_atom()
        if ch in ("*", "+", "?"):
            raise self.error(f"nothing to repeat at {self.pos}")
        if ch == "{" and self._braces() is not None:
            raise self.error(f"nothing to repeat at {self.pos}")
        self.pos += 1
        return Chars([(ord(ch), ord(ch))])

    def group(self) -> Node:
        self.pos += 1
        if self.peek() == "?":
            if self.text.startswith("?:", self.pos):
                self.pos += 2
            elif self.text.startswith("?<", self.pos) and self.peek(2) not in ("=", "!"):
                end = self.text.find(">", self.pos)
                if end < 0:
                    raise self.error("an unterminated group name")
                self.pos = end + 1
            else:
                raise self.refuse("a lookaround or inline flag group")
        node = self.alternation()
        if self.peek() != ")":
            raise self.error("an unbalanced parenthesis")
        self.pos += 1
        return node

    def escape_atom(self) -> Node:
        ch = self.peek(1)
        if ch in ("b", "B"):
            raise self.refuse("a word boundary")
        if ch.isdigit() and ch != "0" or ch == "k":
            raise self.refuse("a backreference")
        return Chars(self.escape(in_class=False))

    def escape(self, in_class: bool) -> Ranges:
        """Parse ``\\x`` at pos; return its code point ranges."""
        ch = self.peek(1)
        if not ch:
            raise self.error("a trailing backslash")
        self.pos += 2
        classes = {"d": DIGIT, "w": WORD, "s": SPACE}
        if ch in classes:
            return list(classes[ch])
        if ch.lower() in classes:
            return complement(classes[ch.lower()])
        if ch in ("p", "P"):
            raise self.refuse("a Unicode property escape")
        if ch == "c":
            raise self.refuse("a control-letter escape")
        if ch == "b" and in_class:
            return [(0x08, 0x08)]
        if ch in _SIMPLE_ESCAPES and not (ch == "0" and self.peek().isdigit()):
            return [(_SIMPLE_ESCAPES[ch],) * 2]
        if ch == "x":
            return [(self._hex(2),) * 2]
        if ch == "u":
            if self.peek() == "{":
                raise self.refuse("a \\u{...} escape (needs the u flag)")
            code = self._hex(4)
            if 0xD800 <= code <= 0xDBFF and self.text.startswith("\\u", self.pos):
                self.pos += 2
                low = self._hex(4)
                code = 0x10000 + ((code - 0xD800) << 10) + (low - 0xDC00)
            return [(code, code)]
        if ch.isalnum():
            raise self.error(f"an unknown escape \\{ch}")
        return [(ord(ch), ord(ch))]

    def _hex(self, count: int) -> int:
        digits = self.text[self.pos : self.pos + count]
        if len(digits) != count or any(c not in "0123456789abcdefABCDEF" for c in digits):
            raise self.error("a bad hex escape")
        self.pos += count
        return int(digits, 16)

    def char_class(self) -> Ranges:
        self.pos += 1
        negate = self.peek() == "^"
        if negate:
            self.pos += 1
        ranges: Ranges = []
        first = True
        while True:
            ch = self.peek()
            if not ch:
                raise self.error("an unterminated character class")
            if ch == "]" and not first:
                self.pos += 1
                break
            if ch == "]":  # ECMA: [] is empty, []...] is not special
                self.pos += 1
                break
            first = False
            low = self._class_atom()
            if self.peek() == "-" and self.peek(1) not in ("]", ""):
                self.pos += 1
                high = self._class_atom()
                if len(low) != 1 or len(high) != 1 or low[0][0] != low[0][1] or high[0][0] != high[0][1]:
                    raise self.error("a range with a class escape as an end")
                if high[0][0] < low[0][0]:
                    raise self.error("a range out of order")
                ranges.append((low[0][0], high[0][0]))
            else:
                ranges.extend(low)
        ranges = normalize(ranges)
        return complement(ranges) if negate else ranges

    def _class_atom(self) -> Ranges:
        if self.peek() == "\\":
            return self.escape(in_class=True)
        ch = self.peek()
        self.pos += 1
        return [(ord(ch), ord(ch))]
