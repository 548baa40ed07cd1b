"""Regex building blocks for JSON text, in the syntax outlines-core's regex engine accepts.

A fragment is a ``str`` regex, or ``None`` for the empty language (nothing matches). The
combinators below propagate ``None`` so that ``false`` schemas, exhausted recursion and
unsatisfiable branches drop out of alternations instead of breaking the whole regex.
"""

from __future__ import annotations

import json
import re
from typing import Any, Iterable, Optional

Fragment = Optional[str]

_META = set("\\.+*?()|[]{}^$#&-~")

# The byte automaton's internal characters (its sentinels U+10FFFE/U+10FFFF around the regex, the
# object mark U+10FFFD: see matchers/byte_automaton.py). JSON text never spells them raw, on either
# back end, so the mark is never read inside a string; a string may still hold them as \u escapes
# (json_text writes them so).
SENTINELS = (0x10FFFD, 0x10FFFF)
_RAW_CLASS = r'[^"\\\x00-\x1f\x{10FFFD}-\x{10FFFF}]'
# One JSON string character = one code point: a raw character other than '"', '\', controls and
# SENTINELS; a simple escape; a \u escape of a non-surrogate; or an escaped surrogate pair.
# Lone surrogate escapes are excluded: they decode to strings that cannot be re-encoded.
_HEX = "[0-9a-fA-F]"
STRING_CHAR = (
    rf"(?:{_RAW_CLASS}"
    r'|\\["\\/bfnrt]'
    rf"|\\u(?:[0-9a-cA-CefEF]{_HEX}{{3}}|[dD][0-7]{_HEX}{{2}})"
    rf"|\\u[dD][89abAB]{_HEX}{{2}}\\u[dD][c-fC-F]{_HEX}{{2}})"
)
# Inside a length-bounded string every character position is its own set of automaton states,
# so bounded strings use a cheaper character: raw characters, the simple escapes, and \u00XX
# (what json.dumps writes for control characters). Other \u escapes are left out there: about
# 3x fewer states per position (measured in BENCHMARKS.md), a documented subset.
BOUNDED_STRING_CHAR = rf'(?:{_RAW_CLASS}|\\["\\/bfnrt]|\\u00[0-9a-fA-F]{{2}})'
# Written right after an object's "{": the byte automaton turns "{" MARK "," into "{"
# (see byte_automaton.py), so every member can carry its separator in front.
FIRST_MEMBER_MARK = r"\x{10FFFD}"
INTEGER = r"-?(?:0|[1-9][0-9]*)"
NUMBER = INTEGER + r"(?:\.[0-9]+)?(?:[eE][+-]?[0-9]+)?"
BOOLEAN = r"(?:true|false)"
NULL = "null"


def escape(text: str) -> str:
    """Escape ``text`` so that the regex matches it literally."""
    out = []
    for ch in text:
        if ch in _META:
            out.append("\\" + ch)
        elif ord(ch) < 0x20 or ord(ch) == 0x7F:
            out.append(f"\\x{{{ord(ch):x}}}")
        else:
            out.append(ch)
    return "".join(out)


def group(fragment: str) -> str:
    """Wrap a fragment in a non-capturing group."""
    return f"(?:{fragment})"


def alternation(fragments: Iterable[Fragment]) -> Fragment:
    """Any of the fragments; ``None`` branches are dropped, duplicates removed."""
    kept = list(dict.fromkeys(fragment for fragment in fragments if fragment is not None))  # in order, once each
    if not kept:
        return None
    if len(kept) == 1:
        return kept[0]
    return group("|".join(kept))


def sequence(*fragments: Fragment) -> Fragment:
    """The fragments one after another; ``None`` if any of them is ``None``."""
    if any(fragment is None for fragment in fragments):
        return None
    return "".join(fragments)  # type: ignore[arg-type]


def optional(fragment: Fragment) -> str:
    """The fragment or nothing."""
    return "" if fragment is None or fragment == "" else group(fragment) + "?"


def repeat(fragment: str, low: int, high: Optional[int]) -> str:
    """``fragment`` repeated between ``low`` and ``high`` (``None``: unbounded) times."""
    if high is not None and high == 0:
        return ""
    if low == high == 1:
        return fragment
    upper = "" if high is None else str(high)
    if low == 0 and high is None:
        return group(fragment) + "*"
    if low == 1 and high is None:
        return group(fragment) + "+"
    if low == high:
        return group(fragment) + f"{{{low}}}"
    return group(fragment) + f"{{{low},{upper}}}"


def json_literal(value: Any, item_sep: str, key_sep: str) -> str:
    """A regex matching ``value`` serialized as JSON under the whitespace policy.

    Strings use the :func:`json_text` spelling; numbers their ``json.dumps`` spelling.
    """
    if isinstance(value, dict):
        members = [
            escape(json_text(key)) + key_sep + json_literal(val, item_sep, key_sep)
            for key, val in value.items()
        ]
        return r"\{" + item_sep.join(members) + r"\}"
    if isinstance(value, list):
        return r"\[" + item_sep.join(json_literal(v, item_sep, key_sep) for v in value) + r"\]"
    return escape(json_text(value))


_SENTINEL_ESCAPES = {code: json.dumps(chr(code))[1:-1] for code in range(SENTINELS[0], SENTINELS[1] + 1)}


def json_text(value: Any) -> str:
    r"""``json.dumps(value, ensure_ascii=False)``, the SENTINELS written as ``\u`` escapes.

    Example:
        >>> json_text(["\U0010FFFF", "\U00100000"]) == '["\\udbff\\udfff", "\U00100000"]'
        True
    """
    return json.dumps(value, ensure_ascii=False).translate(_SENTINEL_ESCAPES)


# A counted repetition {n}, {n,} or {n,m} (Rust allows spaces inside); any other "{" is a character
# here (in an x-mode comment, say: what is not a repetition the regex parser has already refused).
_COUNTED = re.compile(r"\{\s*(\d+)\s*(?:,\s*(\d*)\s*)?\}")


def expanded_length(regex: str) -> int:
    """Length of ``regex`` with every counted repetition ``{n,m}`` written out ``max(n, m)`` times.

    This is roughly the size of the automaton outlines-core builds (it expands counted
    repetitions), so it bounds compile time and memory before anything is built.

    Example:
        >>> expanded_length("a{3}(?:bc){2,4}")  # aaa + 4 x (?:bc)
        19
    """
    totals = [0]  # running length per open group
    last = 0  # length of the last atom (what a quantifier applies to)
    i, n = 0, len(regex)
    while i < n:
        ch = regex[i]
        if ch == "\\":
            j = i + 2
            if regex[i + 1 : i + 3] in ("x{", "u{", "U{", "p{", "P{"):
                j = regex.find("}", i) + 1 or n
            last = j - i
            totals[-1] += last
            i = j
        elif ch == "[":
            j = i + 1
            if j < n and regex[j] == "^":
                j += 1
            if j < n and regex[j] == "]":
                j += 1
            while j < n and regex[j] != "]":
                j += 2 if regex[j] == "\\" else 1
            last = j + 1 - i
            totals[-1] += last
            i = j + 1
        elif ch == "(":
            totals.append(0)
            i += 3 if regex.startswith("(?:", i) else 1
        elif ch == ")" and len(totals) > 1:  # an unmatched one (in an x-mode comment) is a character
            inner = totals.pop() + 2
            totals[-1] += inner
            last = inner
            i += 1
        elif ch == "{" and last and _COUNTED.match(regex, i):
            counted = _COUNTED.match(regex, i)
            low, high = counted.group(1), counted.group(2)  # type: ignore[union-attr]
            count = max(int(low), int(high) if high else int(low), 1)
            totals[-1] += last * (count - 1)
            last = 0
            i = counted.end()  # type: ignore[union-attr]
        else:
            last = 1 if ch not in "*+?|" else 0
            totals[-1] += 1
            i += 1
    return totals[0]
