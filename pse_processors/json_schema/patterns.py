"""ECMA-262 ``pattern`` → a regex over the JSON spelling of a string's contents.

JSON Schema's ``pattern`` is an ECMA-262 regex *search* over the decoded string. We parse the
pattern ourselves (no lookaround, backreferences or word boundaries: those are refused by
name), then emit a regex over JSON text where every character class matches the characters'
``json.dumps(..., ensure_ascii=False)`` spelling: raw characters, and the escapes json.dumps
writes for ``"``, ``\\`` and control characters. Other ``\\u`` escapes are not produced
(a documented subset). An unanchored side becomes "any string characters".
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional, Union

from ..errors import SchemaError, UnsupportedSchemaError
from .fragments import STRING_CHAR, Fragment, alternation

_MAX = 0x10FFFF
_SURROGATES = (0xD800, 0xDFFF)
Ranges = list  # sorted, disjoint [(low, high)]

_DIGIT: Ranges = [(0x30, 0x39)]
_WORD: Ranges = [(0x30, 0x39), (0x41, 0x5A), (0x5F, 0x5F), (0x61, 0x7A)]
_SPACE: Ranges = [(0x09, 0x0D), (0x20, 0x20), (0xA0, 0xA0), (0x1680, 0x1680), (0x2000, 0x200A),
                  (0x2028, 0x2029), (0x202F, 0x202F), (0x205F, 0x205F), (0x3000, 0x3000), (0xFEFF, 0xFEFF)]
_LINE_TERMINATORS: Ranges = [(0x0A, 0x0A), (0x0D, 0x0D), (0x2028, 0x2029)]
_SIMPLE_ESCAPES = {"t": 0x09, "n": 0x0A, "v": 0x0B, "f": 0x0C, "r": 0x0D, "0": 0x00}
_JSON_ESCAPES = {0x22: '\\\\"', 0x5C: "\\\\\\\\", 0x08: "\\\\b", 0x0C: "\\\\f", 0x0A: "\\\\n", 0x0D: "\\\\r", 0x09: "\\\\t"}


def _normalize(ranges: Ranges) -> Ranges:
    out: Ranges = []
    for low, high in sorted(ranges):
        if out and low <= out[-1][1] + 1:
            out[-1] = (out[-1][0], max(out[-1][1], high))
        else:
            out.append((low, high))
    return out


def _complement(ranges: Ranges) -> Ranges:
    out: Ranges = []
    start = 0
    for low, high in _normalize(ranges):
        if low > start:
            out.append((start, low - 1))
        start = high + 1
    if start <= _MAX:
        out.append((start, _MAX))
    return out


def _subtract(ranges: Ranges, removed: Ranges) -> Ranges:
    keep = _complement(removed)
    out: Ranges = []
    for low, high in _normalize(ranges):
        for k_low, k_high in keep:
            a, b = max(low, k_low), min(high, k_high)
            if a <= b:
                out.append((a, b))
    return out


@dataclass
class _Chars:
    ranges: Ranges


@dataclass
class _Seq:
    items: list


@dataclass
class _Alt:
    options: list


@dataclass
class _Repeat:
    node: "Node"
    low: int
    high: Optional[int]


@dataclass
class _Anchor:
    start: bool


Node = Union[_Chars, _Seq, _Alt, _Repeat, _Anchor]


class _Parser:
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
        return options[0] if len(options) == 1 else _Alt(options)

    def sequence(self) -> Node:
        items: list = []
        while self.peek() and self.peek() not in "|)":
            items.append(self.quantified())
        return _Seq(items)

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
            if isinstance(atom, _Anchor):
                raise self.refuse("a quantified anchor")
            if self.peek() == "?":  # lazy: same language
                self.pos += 1
            if high is not None and high < low:
                raise self.error("a quantifier {n,m} with m < n")
            atom = _Repeat(atom, low, high)

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
            return _Chars(self.char_class())
        if ch == ".":
            self.pos += 1
            return _Chars(_complement(_LINE_TERMINATORS))
        if ch == "^" or ch == "$":
            self.pos += 1
            return _Anchor(ch == "^")
        if ch == "\\":
            return self.escape_atom()
        if ch in ("*", "+", "?"):
            raise self.error(f"nothing to repeat at {self.pos}")
        if ch == "{" and self._braces() is not None:
            raise self.error(f"nothing to repeat at {self.pos}")
        self.pos += 1
        return _Chars([(ord(ch), ord(ch))])

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
        return _Chars(self.escape(in_class=False))

    def escape(self, in_class: bool) -> Ranges:
        """Parse ``\\x`` at pos; return its code point ranges."""
        ch = self.peek(1)
        if not ch:
            raise self.error("a trailing backslash")
        self.pos += 2
        classes = {"d": _DIGIT, "w": _WORD, "s": _SPACE}
        if ch in classes:
            return list(classes[ch])
        if ch.lower() in classes:
            return _complement(classes[ch.lower()])
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
        ranges = _normalize(ranges)
        return _complement(ranges) if negate else ranges

    def _class_atom(self) -> Ranges:
        if self.peek() == "\\":
            return self.escape(in_class=True)
        ch = self.peek()
        self.pos += 1
        return [(ord(ch), ord(ch))]


def _chars_regex(ranges: Ranges) -> Fragment:
    """The JSON spellings of the code points in ``ranges`` (raw, or escaped as json.dumps writes them)."""
    if len(ranges) == 1 and ranges[0][0] == ranges[0][1]:  # one literal character: most of a pattern
        code = ranges[0][0]
        if code <= 0x1F or code in (0x22, 0x5C):
            return _JSON_ESCAPES.get(code, f"\\\\u00{code:02x}")
        if not _SURROGATES[0] <= code <= _SURROGATES[1]:
            return f"[\\x{{{code:x}}}]"
    specials = [(0x00, 0x1F), (0x22, 0x22), (0x5C, 0x5C), _SURROGATES]
    raw = _subtract(ranges, specials)
    parts: list[Fragment] = []
    if raw:
        body = "".join(f"\\x{{{a:x}}}" if a == b else f"\\x{{{a:x}}}-\\x{{{b:x}}}" for a, b in raw)
        parts.append(f"[{body}]")
    for low, high in _normalize(ranges):
        for code in range(low, min(high, 0x5C) + 1):
            if code <= 0x1F or code in (0x22, 0x5C):
                parts.append(_JSON_ESCAPES.get(code, f"\\\\u00{code:02x}"))
    return alternation(parts)


def _emit(node: Node) -> Fragment:
    if isinstance(node, _Chars):
        return _chars_regex(node.ranges)
    if isinstance(node, _Seq):
        out = ""
        for item in node.items:
            part = _emit(item)
            if part is None:
                return None
            out += part
        return out
    if isinstance(node, _Alt):
        return alternation(_emit(option) for option in node.options)
    if isinstance(node, _Repeat):
        inner = _emit(node.node)
        if inner is None:
            return "" if node.low == 0 else None
        if node.high == 0 or inner == "":
            return ""
        upper = "" if node.high is None else str(node.high)
        quant = {(0, None): "*", (1, None): "+", (0, 1): "?"}.get((node.low, node.high))
        if quant is None:
            quant = f"{{{node.low}}}" if node.low == node.high else f"{{{node.low},{upper}}}"
        return f"(?:{inner}){quant}"
    raise AssertionError("anchors are handled by translate()")


def _length(node: Node) -> tuple[int, Optional[int]]:
    """(min, max) code points matched by ``node`` (max None: unbounded)."""
    if isinstance(node, _Chars):
        return (1, 1) if node.ranges else (1, 1)
    if isinstance(node, _Anchor):
        return 0, 0
    if isinstance(node, _Seq):
        low, high = 0, 0
        for item in node.items:
            a, b = _length(item)
            low += a
            high = None if high is None or b is None else high + b
        return low, high
    if isinstance(node, _Alt):
        spans = [_length(option) for option in node.options]
        highs = [b for _, b in spans]
        return min(a for a, _ in spans), None if any(b is None for b in highs) else max(highs)  # type: ignore[type-var]
    a, b = _length(node.node)
    return a * node.low, None if node.high is None or b is None else b * node.high


def _top_options(tree: Node) -> list:
    """The pattern's top-level alternatives, with the unquantified groups around them lifted
    (a group without a quantifier matches what its contents match): ``(^a$)`` anchors like
    ``^a$``, ``(?:^a|b$)|c`` has the alternatives ``^a``, ``b$`` and ``c``."""
    while isinstance(tree, _Seq) and len(tree.items) == 1 and isinstance(tree.items[0], (_Seq, _Alt)):
        tree = tree.items[0]
    if not isinstance(tree, _Alt):
        return [tree]
    return [option for branch in tree.options for option in _top_options(branch)]


def _has_anchor(node: Node) -> bool:
    if isinstance(node, _Anchor):
        return True
    if isinstance(node, _Seq):
        return any(_has_anchor(i) for i in node.items)
    if isinstance(node, _Alt):
        return any(_has_anchor(o) for o in node.options)
    if isinstance(node, _Repeat):
        return _has_anchor(node.node)
    return False


@dataclass
class StringPattern:
    """A translated pattern: ``regex`` matches the JSON spelling of every matching string's contents."""

    regex: Fragment
    min_length: int
    max_length: Optional[int]
    single_class: Optional[tuple]  # (char regex, low, high) when the whole pattern is ^[set]{low,high}$
    universal: bool = False  # every string contains a match (e.g. ".*", "^a*", "")


def translate(pattern: str, pointer: str) -> StringPattern:
    """Translate an ECMA-262 pattern (search semantics) for string contents.

    Example:
        >>> translate("^[a-z]{2,3}$", "#").regex
        '(?:[\\\\x{61}-\\\\x{7a}]){2,3}'
    """
    if not isinstance(pattern, str):
        raise SchemaError("pattern must be a string", pointer)
    options = _top_options(_Parser(pattern, pointer).parse())
    # The options' bodies, grouped by their anchoring: options anchored alike share their
    # "any characters" sides, ``.*(?:a|b).*`` rather than ``.*a.*|.*b.*`` (same language; long
    # unanchored alternations of literals were tens of kilobytes of regex otherwise).
    by_anchoring: dict = {}
    universal = False
    spans = []
    singles = []
    for option in options:
        items = list(option.items) if isinstance(option, _Seq) else [option]
        anchored_start = bool(items) and isinstance(items[0], _Anchor) and items[0].start
        if anchored_start:
            items = items[1:]
        anchored_end = bool(items) and isinstance(items[-1], _Anchor) and not items[-1].start
        if anchored_end:
            items = items[:-1]
        body = _Seq(items)
        if _has_anchor(body):
            raise UnsupportedSchemaError("pattern", pointer, f"an anchor inside {pattern!r} (only at the start or end)")
        emitted = _emit(body)
        if emitted is None:
            continue
        by_anchoring.setdefault((anchored_start, anchored_end), []).append(emitted)
        low, high = _length(body)
        universal = universal or (low == 0 and not (anchored_start and anchored_end))  # an empty match
        spans.append((low, high if anchored_start and anchored_end else None))
        if anchored_start and anchored_end and len(items) == 1 and isinstance(items[0], _Repeat) and isinstance(items[0].node, _Chars):
            singles.append((_chars_regex(items[0].node.ranges), items[0].low, items[0].high))
        elif anchored_start and anchored_end and len(items) == 1 and isinstance(items[0], _Chars):
            singles.append((_chars_regex(items[0].ranges), 1, 1))
        else:
            singles.append(None)
    if not spans:
        return StringPattern(None, 0, 0, None)
    highs = [h for _, h in spans]
    any_text = f"{STRING_CHAR}*"
    regexes = [
        ("" if start else any_text) + alternation(bodies) + ("" if end else any_text)
        for (start, end), bodies in by_anchoring.items()
    ]
    return StringPattern(
        alternation(regexes), min(a for a, _ in spans),
        None if any(h is None for h in highs) else max(highs),  # type: ignore[type-var]
        singles[0] if len(singles) == 1 else None,
        universal,
    )


def _repeats(node: Node, out: list) -> list:
    """Every repetition, in pattern order."""
    if isinstance(node, _Repeat):
        out.append(node)
        _repeats(node.node, out)
    elif isinstance(node, _Seq):
        for item in node.items:
            _repeats(item, out)
    elif isinstance(node, _Alt):
        for option in node.options:
            _repeats(option, out)
    return out


def _unbounded(node: Node) -> list:
    """The repetitions without an upper bound, in pattern order."""
    return [r for r in _repeats(node, []) if r.high is None]


def _fit(body: Node, low: int, high: Optional[int]) -> bool:
    """Narrow ``body`` in place so that every match has ``low..high`` characters (a subset).

    First the earliest unbounded repetition is lengthened until matches are long enough; then
    every unbounded repetition is capped at max(its minimum, c) for the largest common c that
    keeps the longest match within ``high``."""
    free = _unbounded(body)
    shortest = _length(body)[0]
    for r in free:
        per = _length(r.node)[0]
        if shortest < low and per > 0:
            r.low += -(-(low - shortest) // per)
            shortest = _length(body)[0]
    ranged = [r for r in _repeats(body, []) if r.high is None or r.high > r.low]
    if high is not None and ranged:
        limits = [r.high for r in ranged]
        best = None
        lo, hi = 0, high
        while lo <= hi:
            cap = (lo + hi) // 2
            for r, limit in zip(ranged, limits):
                r.high = max(r.low, cap if limit is None else min(limit, cap))
            longest = _length(body)[1]
            if longest is not None and longest <= high:
                best, lo = cap, cap + 1
            else:
                hi = cap - 1
        if best is None:
            return False
        for r, limit in zip(ranged, limits):
            r.high = max(r.low, best if limit is None else min(limit, best))
    longest = _length(body)[1]
    return shortest >= low and (high is None or (longest is not None and longest <= high))


def translate_bounded(pattern: str, pointer: str, low: int, high: Optional[int]) -> Fragment:
    """Like :func:`translate`, narrowed so that matches have between ``low`` and ``high`` characters.

    Unbounded repetitions (including the "any characters" of an unanchored side) get a common
    cap, and the first one is lengthened when matches would be too short: a subset of the
    strings that satisfy the pattern and the bounds. ``None`` when no branch can be narrowed.

    Example:
        >>> translate_bounded("^[a-z]+:[0-9]+$", "#", 0, 9)
        '(?:[\\\\x{61}-\\\\x{7a}]){1,4}[\\\\x{3a}](?:[\\\\x{30}-\\\\x{39}]){1,4}'
    """
    options = _top_options(_Parser(pattern, pointer).parse())
    regexes: list[Fragment] = []
    for option in options:
        items = list(option.items) if isinstance(option, _Seq) else [option]
        if items and isinstance(items[0], _Anchor) and items[0].start:
            items = items[1:]
        else:
            items = [_Repeat(_Chars(_complement([])), 0, None)] + items
        if items and isinstance(items[-1], _Anchor) and not items[-1].start:
            items = items[:-1]
        else:
            items = items + [_Repeat(_Chars(_complement([])), 0, None)]
        body = _Seq(items)
        if _has_anchor(body):
            raise UnsupportedSchemaError("pattern", pointer, f"an anchor inside {pattern!r} (only at the start or end)")
        if _fit(body, low, high):
            regexes.append(_emit(body))
    return alternation(regexes)
