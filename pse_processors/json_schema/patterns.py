"""ECMA-262 ``pattern`` → a regex over the JSON spelling of a string's contents.

JSON Schema's ``pattern`` is an ECMA-262 regex *search* over the decoded string. We parse the
pattern ourselves (:mod:`.pattern_parser`: no lookaround, backreferences or word boundaries,
those are refused by name), then emit a regex over JSON text where every character class
matches the characters' ``json.dumps(..., ensure_ascii=False)`` spelling: raw characters, and
the escapes json.dumps writes for ``"``, ``\\`` and control characters. Other ``\\u`` escapes
are not produced (a documented subset). An unanchored side becomes "any string characters".
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

from ..errors import SchemaError, UnsupportedSchemaError
from .char_ranges import SURROGATES, Ranges, complement, normalize, subtract
from .fragments import SENTINELS, STRING_CHAR, Fragment, alternation, json_text
from .pattern_parser import Alt, Anchor, Chars, Node, PatternParser, Repeat, Seq

__all__ = ["Node", "Ranges", "StringPattern", "translate", "translate_bounded"]

_JSON_ESCAPES = {0x22: '\\\\"', 0x5C: "\\\\\\\\", 0x08: "\\\\b", 0x0C: "\\\\f", 0x0A: "\\\\n", 0x0D: "\\\\r", 0x09: "\\\\t"}


def _chars_regex(ranges: Ranges) -> Fragment:
    """The JSON spellings of the code points in ``ranges`` (raw, or escaped as json.dumps writes them)."""
    if len(ranges) == 1 and ranges[0][0] == ranges[0][1]:  # one literal character: most of a pattern
        code = ranges[0][0]
        if code <= 0x1F or code in (0x22, 0x5C):
            return _JSON_ESCAPES.get(code, f"\\\\u00{code:02x}")
        if SENTINELS[0] <= code <= SENTINELS[1]:
            return _sentinel_spelling(code)
        if not SURROGATES[0] <= code <= SURROGATES[1]:
            return f"[\\x{{{code:x}}}]"
    specials = [(0x00, 0x1F), (0x22, 0x22), (0x5C, 0x5C), SURROGATES, SENTINELS]
    raw = subtract(ranges, specials)
    parts: list[Fragment] = []
    if raw:
        body = "".join(f"\\x{{{a:x}}}" if a == b else f"\\x{{{a:x}}}-\\x{{{b:x}}}" for a, b in raw)
        parts.append(f"[{body}]")
    for low, high in normalize(ranges):
        for code in range(low, min(high, 0x5C) + 1):
            if code <= 0x1F or code in (0x22, 0x5C):
                parts.append(_JSON_ESCAPES.get(code, f"\\\\u00{code:02x}"))
        for code in range(max(low, SENTINELS[0]), min(high, SENTINELS[1]) + 1):
            parts.append(_sentinel_spelling(code))
    return alternation(parts)


def _sentinel_spelling(code: int) -> str:
    """The regex of a SENTINELS code point's JSON spelling, the ``\\u`` surrogate pair that
    :func:`~.fragments.json_text` writes (JSON text never spells them raw)."""
    return json_text(chr(code))[1:-1].replace("\\", "\\\\")


def _emit(node: Node) -> Fragment:
    if isinstance(node, Chars):
        return _chars_regex(node.ranges)
    if isinstance(node, Seq):
        out = ""
        for item in node.items:
            part = _emit(item)
            if part is None:
                return None
            out += part
        return out
    if isinstance(node, Alt):
        return alternation(_emit(option) for option in node.options)
    if isinstance(node, Repeat):
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
    if isinstance(node, Chars):
        return (1, 1) if node.ranges else (1, 1)
    if isinstance(node, Anchor):
        return 0, 0
    if isinstance(node, Seq):
        low, high = 0, 0
        for item in node.items:
            a, b = _length(item)
            low += a
            high = None if high is None or b is None else high + b
        return low, high
    if isinstance(node, Alt):
        spans = [_length(option) for option in node.options]
        highs = [b for _, b in spans]
        return min(a for a, _ in spans), None if any(b is None for b in highs) else max(highs)  # type: ignore[type-var]
    a, b = _length(node.node)
    return a * node.low, None if node.high is None or b is None else b * node.high


def _top_options(tree: Node) -> list:
    """The pattern's top-level alternatives, with the unquantified groups around them lifted
    (a group without a quantifier matches what its contents match): ``(^a$)`` anchors like
    ``^a$``, ``(?:^a|b$)|c`` has the alternatives ``^a``, ``b$`` and ``c``."""
    while isinstance(tree, Seq) and len(tree.items) == 1 and isinstance(tree.items[0], (Seq, Alt)):
        tree = tree.items[0]
    if not isinstance(tree, Alt):
        return [tree]
    return [option for branch in tree.options for option in _top_options(branch)]


def _has_anchor(node: Node) -> bool:
    if isinstance(node, Anchor):
        return True
    if isinstance(node, Seq):
        return any(_has_anchor(i) for i in node.items)
    if isinstance(node, Alt):
        return any(_has_anchor(o) for o in node.options)
    if isinstance(node, Repeat):
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
    options = _top_options(PatternParser(pattern, pointer).parse())
    # The options' bodies, grouped by their anchoring: options anchored alike share their
    # "any characters" sides, ``.*(?:a|b).*`` rather than ``.*a.*|.*b.*`` (same language; long
    # unanchored alternations of literals were tens of kilobytes of regex otherwise).
    by_anchoring: dict = {}
    universal = False
    spans = []
    singles = []
    for option in options:
        items = list(option.items) if isinstance(option, Seq) else [option]
        anchored_start = bool(items) and isinstance(items[0], Anchor) and items[0].start
        if anchored_start:
            items = items[1:]
        anchored_end = bool(items) and isinstance(items[-1], Anchor) and not items[-1].start
        if anchored_end:
            items = items[:-1]
        body = Seq(items)
        if _has_anchor(body):
            raise UnsupportedSchemaError("pattern", pointer, f"an anchor inside {pattern!r} (only at the start or end)")
        emitted = _emit(body)
        if emitted is None:
            continue
        by_anchoring.setdefault((anchored_start, anchored_end), []).append(emitted)
        low, high = _length(body)
        universal = universal or (low == 0 and not (anchored_start and anchored_end))  # an empty match
        spans.append((low, high if anchored_start and anchored_end else None))
        if anchored_start and anchored_end and len(items) == 1 and isinstance(items[0], Repeat) and isinstance(items[0].node, Chars):
            singles.append((_chars_regex(items[0].node.ranges), items[0].low, items[0].high))
        elif anchored_start and anchored_end and len(items) == 1 and isinstance(items[0], Chars):
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
    if isinstance(node, Repeat):
        out.append(node)
        _repeats(node.node, out)
    elif isinstance(node, Seq):
        for item in node.items:
            _repeats(item, out)
    elif isinstance(node, Alt):
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
    options = _top_options(PatternParser(pattern, pointer).parse())
    regexes: list[Fragment] = []
    for option in options:
        items = list(option.items) if isinstance(option, Seq) else [option]
        if items and isinstance(items[0], Anchor) and items[0].start:
            items = items[1:]
        else:
            items = [Repeat(Chars(complement([])), 0, None)] + items
        if items and isinstance(items[-1], Anchor) and not items[-1].start:
            items = items[:-1]
        else:
            items = items + [Repeat(Chars(complement([])), 0, None)]
        body = Seq(items)
        if _has_anchor(body):
            raise UnsupportedSchemaError("pattern", pointer, f"an anchor inside {pattern!r} (only at the start or end)")
        if _fit(body, low, high):
            regexes.append(_emit(body))
    return alternation(regexes)
