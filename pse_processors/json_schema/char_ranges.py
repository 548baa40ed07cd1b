"""Sets of Unicode code points as sorted, disjoint ``(low, high)`` ranges, for ``pattern`` classes.

Example:
    >>> complement(DIGIT)[:2]
    [(0, 47), (58, 1114111)]
    >>> subtract([(0x61, 0x7A)], [(0x62, 0x78)])
    [(97, 97), (121, 122)]
"""

from __future__ import annotations

_MAX = 0x10FFFF
SURROGATES = (0xD800, 0xDFFF)
Ranges = list  # sorted, disjoint [(low, high)]

DIGIT: Ranges = [(0x30, 0x39)]
WORD: Ranges = [(0x30, 0x39), (0x41, 0x5A), (0x5F, 0x5F), (0x61, 0x7A)]
SPACE: Ranges = [(0x09, 0x0D), (0x20, 0x20), (0xA0, 0xA0), (0x1680, 0x1680), (0x2000, 0x200A),
                 (0x2028, 0x2029), (0x202F, 0x202F), (0x205F, 0x205F), (0x3000, 0x3000), (0xFEFF, 0xFEFF)]
LINE_TERMINATORS: Ranges = [(0x0A, 0x0A), (0x0D, 0x0D), (0x2028, 0x2029)]


def normalize(ranges: Ranges) -> Ranges:
    """``ranges`` sorted, with overlapping and adjacent ranges merged."""
    out: Ranges = []
    for low, high in sorted(ranges):
        if out and low <= out[-1][1] + 1:
            out[-1] = (out[-1][0], max(out[-1][1], high))
        else:
            out.append((low, high))
    return out


def complement(ranges: Ranges) -> Ranges:
    """Every code point (to U+10FFFF) not in ``ranges``."""
    out: Ranges = []
    start = 0
    for low, high in normalize(ranges):
        if low > start:
            out.append((start, low - 1))
        start = high + 1
    if start <= _MAX:
        out.append((start, _MAX))
    return out


def subtract(ranges: Ranges, removed: Ranges) -> Ranges:
    """The code points of ``ranges`` that are not in ``removed``."""
    keep = complement(removed)
    out: Ranges = []
    for low, high in normalize(ranges):
        for k_low, k_high in keep:
            a, b = max(low, k_low), min(high, k_high)
            if a <= b:
                out.append((a, b))
    return out
