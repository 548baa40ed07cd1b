"""Regexes for integers and decimals inside numeric bounds (minimum/maximum/exclusive*, multipleOf).

The regexes compare digit strings, so bounds of any size are exact (no float rounding).
Bounded numbers are written without an exponent (``1e3`` is left out: a documented subset);
``-0`` and ``-0.0`` are never produced (``0`` is). Fractions may have trailing zeros.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Optional

from .fragments import Fragment, alternation

_D = "[0-9]"
#: The deepest group nesting a bounded number's regex may have. Long bounds nest about one group per
#: digit; the regex parsers of both back ends stop between 80 and 125 levels (together with the
#: groups around the number), and the Lark writer recurses once per level.
MAX_NESTING = 64


def nesting(fragment: str) -> int:
    """How deeply the groups of ``fragment`` nest.

    Example:
        >>> nesting("1(?:2(?:[3-9]|4))?"), nesting(r"\\((?:[(])")
        (2, 1)
    """
    depth = deepest = 0
    i, n = 0, len(fragment)
    while i < n:
        ch = fragment[i]
        if ch == "\\":
            i += 1
        elif ch == "[":  # a class: its parentheses are characters
            i += 1
            while i < n and fragment[i] != "]":
                i += 2 if fragment[i] == "\\" else 1
        elif ch == "(":
            depth += 1
            deepest = max(deepest, depth)
        elif ch == ")":
            depth -= 1
        i += 1
    return deepest


def _digit_class(low: int, high: int) -> Optional[str]:
    if low > high:
        return None
    if low == high:
        return str(low)
    if low == 0 and high == 9:
        return _D
    return f"[{low}-{high}]"


def _same_length(x: str, y: str) -> Fragment:
    """Digit strings of len(x) between x and y inclusive (x <= y, same length, any leading digits)."""
    if not x:
        return ""
    if x[0] == y[0]:
        rest = _same_length(x[1:], y[1:])
        return None if rest is None else x[0] + rest
    n = len(x) - 1
    if x[1:] == "0" * n and y[1:] == "9" * n:
        return _digit_class(int(x[0]), int(y[0])) + (f"{_D}{{{n}}}" if n > 1 else _D if n else "")  # type: ignore[operator]
    parts = [x[0] + (_same_length(x[1:], "9" * n) or "")]
    middle = _digit_class(int(x[0]) + 1, int(y[0]) - 1)
    if middle is not None:
        parts.append(middle + (f"{_D}{{{n}}}" if n > 1 else _D if n else ""))
    parts.append(y[0] + (_same_length("0" * n, y[1:]) or ""))
    return alternation(parts)


def natural_range(low: int, high: Optional[int]) -> Fragment:
    """Integers ``low <= n <= high`` (``high=None``: unbounded) without leading zeros; ``0 <= low``."""
    if high is not None and high < low:
        return None
    parts = []
    length = len(str(low))
    top = None if high is None else len(str(high))
    while top is None or length <= top:
        first = max(low, 10 ** (length - 1) if length > 1 else 0)
        if top is None and first == 10 ** (length - 1) and length > 1:
            parts.append(f"[1-9]{_D}{{{length - 1},}}")  # every longer number
            break
        last = 10**length - 1 if high is None or length < top else high  # type: ignore[operator]
        if first <= last:
            parts.append(_same_length(str(first), str(last)))
        length += 1
        if top is None and length > len(str(low)) + 1:
            parts.append(f"[1-9]{_D}{{{length - 1},}}")
            break
    return alternation(parts)


def integer_range(low: Optional[int], high: Optional[int]) -> Fragment:
    """JSON integers ``low <= n <= high`` (``None``: unbounded on that side)."""
    if low is not None and high is not None and high < low:
        return None
    parts = []
    if low is None or low < 0:  # negatives: -m for m in [max(1, -high), -low]
        m_low = 1 if high is None or high >= 0 else -high
        m_high = None if low is None else -low
        magnitude = natural_range(m_low, m_high)
        if magnitude is not None:
            parts.append("-" + _wrap(magnitude))
    if high is None or high >= 0:
        parts.append(natural_range(max(low or 0, 0), high))
    return alternation(parts)


def _wrap(fragment: str) -> str:
    return fragment if fragment.startswith("(?:") and fragment.endswith(")") and _balanced(fragment[3:-1]) else f"(?:{fragment})"


def _balanced(inner: str) -> bool:
    depth = 0
    escaped = False
    for ch in inner:
        if escaped:
            escaped = False
        elif ch == "\\":
            escaped = True
        elif ch == "(":
            depth += 1
        elif ch == ")":
            depth -= 1
            if depth < 0:
                return False
    return depth == 0


# ---- fractions: digit strings F after the point, compared as the value 0.F


def _frac_ge(d: str, strict: bool) -> Fragment:
    """Non-empty digit strings F with 0.F >= 0.d (> when strict); d has no trailing zeros."""
    if not d:
        return f"0*[1-9]{_D}*" if strict else f"{_D}+"
    head, rest = int(d[0]), d[1:]
    parts = []
    above = _digit_class(head + 1, 9)
    if above is not None:
        parts.append(above + f"{_D}*")
    if rest:
        tail = _frac_ge(rest, strict)
        parts.append(d[0] + tail)  # type: ignore[operator]
    else:
        parts.append(d[0] + (f"0*[1-9]{_D}*" if strict else f"{_D}*"))
    return alternation(parts)


def _frac_le(d: str, strict: bool) -> Fragment:
    """Non-empty digit strings F with 0.F <= 0.d (< when strict); d has no trailing zeros."""
    if not d:
        return None if strict else "0+"
    head, rest = int(d[0]), d[1:]
    parts = []
    below = _digit_class(0, head - 1)
    if below is not None:
        parts.append(below + f"{_D}*")
    if rest:
        tail = _frac_le(rest, strict)
        parts.append(d[0] + ("" if tail is None else f"(?:{tail})?"))
    elif not strict:
        parts.append(d[0] + "0*")
    return alternation(parts)


def _head_le(digit: str, rest: str, strict: bool) -> Fragment:
    """F starting with ``digit`` (the bound's first digit) and 0.F <= 0.(digit rest) (< when strict)."""
    if rest:
        tail = _frac_le(rest, strict)
        return digit + ("" if tail is None else f"(?:{tail})?")
    return None if strict else digit + "0*"


def _frac_between(lo: str, hi: str, lo_strict: bool, hi_strict: bool) -> Fragment:
    """Non-empty F with 0.lo <= 0.F <= 0.hi (strictness per side); 0.lo <= 0.hi; no trailing zeros."""
    if not lo:
        return _frac_positive_le(hi, hi_strict) if lo_strict else _frac_le(hi, hi_strict)
    if not hi:
        return None
    l0, h0 = int(lo[0]), int(hi[0])
    if l0 == h0:
        tail = _frac_between(lo[1:], hi[1:], lo_strict, hi_strict)
        alone = not lo[1:] and not lo_strict and (bool(hi[1:]) or not hi_strict)
        if tail is None:
            return lo[0] if alone else None
        return lo[0] + (f"(?:{tail})?" if alone else tail)
    if lo[1:]:
        first = lo[0] + _frac_ge(lo[1:], lo_strict)  # type: ignore[operator]
    else:
        first = lo[0] + (f"0*[1-9]{_D}*" if lo_strict else f"{_D}*")
    parts: list[Fragment] = [first]
    middle = _digit_class(l0 + 1, h0 - 1)
    if middle is not None:
        parts.append(middle + f"{_D}*")
    parts.append(_head_le(hi[0], hi[1:], hi_strict))
    return alternation(parts)


def _frac_positive_le(hi: str, strict: bool) -> Fragment:
    """Non-empty F with 0 < 0.F <= 0.hi (< when strict); hi non-empty without trailing zeros."""
    h0 = int(hi[0])
    if h0 == 0:
        inner = _frac_positive_le(hi[1:], strict)
        return None if inner is None else "0" + inner
    parts: list[Fragment] = [f"0+[1-9]{_D}*"]  # below 0.1 <= 0.hi, and positive
    middle = _digit_class(1, h0 - 1)
    if middle is not None:
        parts.append(middle + f"{_D}*")
    parts.append(_head_le(hi[0], hi[1:], strict))
    return alternation(parts)


def _split(value: Decimal) -> tuple[int, str]:
    """A non-negative decimal as (integer part, fraction digits without trailing zeros)."""
    text = format(value, "f")
    whole, _, frac = text.partition(".")
    return int(whole), frac.rstrip("0")


def _fraction_part(body: Fragment, empty_ok: bool) -> Fragment:
    """The optional ``.F`` part: ``body`` is the F language (None: no F allowed)."""
    if body is None:
        return "" if empty_ok else None
    return f"(?:\\.{body})?" if empty_ok else f"\\.(?:{body})"


def nonnegative_decimal_range(low: Decimal, high: Optional[Decimal], low_strict: bool, high_strict: bool) -> Fragment:
    """Decimals ``I(.F)?`` with ``low <= x <= high`` (strictness per side); ``0 <= low``."""
    li, lf = _split(low)
    parts: list[Fragment] = []
    if high is not None:
        if high < low or (high == low and (low_strict or high_strict)):
            return None
        hi_i, hf = _split(high)
    else:
        hi_i, hf = None, ""
    if hi_i is not None and li == hi_i:
        # Same integer part: the fraction lies between lf and hf.
        body = _frac_between(lf, hf, low_strict, high_strict)
        empty_ok = not lf and not low_strict  # x == li exactly
        parts.append(_sequence(str(li), _fraction_part(body, empty_ok)))
        return alternation(parts)
    # Integer part == li: fraction >= lf.
    body = _frac_ge(lf, low_strict) if (lf or low_strict) else f"{_D}+"
    parts.append(_sequence(str(li), _fraction_part(body, not lf and not low_strict)))
    # li < integer part < hi_i: any fraction.
    middle = natural_range(li + 1, None if hi_i is None else hi_i - 1)
    if middle is not None:
        parts.append(_sequence(_wrap(middle), f"(?:\\.{_D}+)?"))
    if hi_i is not None:
        body = _frac_le(hf, high_strict)
        empty_ok = bool(hf) or not high_strict  # x == hi_i: allowed unless hi == hi_i and strict
        parts.append(_sequence(str(hi_i), _fraction_part(body, empty_ok)))
    return alternation(parts)


def _sequence(a: Fragment, b: Fragment) -> Fragment:
    if a is None or b is None:
        return None
    return a + b


def number_range(low: Optional[Decimal], high: Optional[Decimal], low_strict: bool, high_strict: bool) -> Fragment:
    """JSON numbers (no exponent) within the bounds (``None``: unbounded on that side)."""
    zero = Decimal(0)
    if low is not None and high is not None and (high < low or (high == low and (low_strict or high_strict))):
        return None
    parts: list[Fragment] = []
    if low is None or low < zero:
        # Negatives -y: x <= high <=> y >= -high; x >= low <=> y <= -low; y > 0 always.
        y_low = zero if high is None or high >= zero else -high
        y_low_strict = True if (high is None or high >= zero) else high_strict
        if y_low == zero:
            y_low_strict = True
        y_high = None if low is None else -low
        magnitude = nonnegative_decimal_range(y_low, y_high, y_low_strict, low_strict)
        if magnitude is not None:
            parts.append("-" + _wrap(magnitude))
    if high is None or high >= zero:
        base = zero if low is None or low < zero else low
        strict = low_strict if low is not None and low >= zero else False
        parts.append(nonnegative_decimal_range(base, high, strict, high_strict))
    return alternation(parts)
