"""Regex classes kept off the byte automaton's sentinels (``constraints/regex_sentinels.py``):
``.{n}`` and its kin build in linear time (found by tests/fuzz: ``.{18}`` took two minutes to
build, ``.{500}`` never finished), and the language is the one ``re.fullmatch`` gives on both
back ends, less U+10FFFD-U+10FFFF (which neither back end ever generates)."""

from __future__ import annotations

import random
import re
import time

import pytest

import pse_processors as pse
from pse_processors.constraints.regex_sentinels import without_sentinels

BYTES = pse.Vocabulary([bytes([b]) for b in range(256)] + [None], eos_token_ids=[256])
EOS = 256
SENTINELS = ("\U0010FFFD", "\U0010FFFE", "\U0010FFFF")


@pytest.mark.parametrize("pattern", [".{500}", "x.{40}", "(?s)a.{60}", "[^a]{80}", r"\W{40}", r"\P{L}{30}"])
def test_repeated_wide_classes_build_in_linear_time(pattern):
    start = time.perf_counter()
    matcher = pse.compile(pse.Regex(pattern), BYTES, backend="dfa")
    elapsed = time.perf_counter() - start
    # Before: about 2^n subsets (x.{40}: 2^40); now well under a second each, unloaded.
    assert elapsed < 30, f"{pattern}: {elapsed:.1f} s"
    count = int(re.search(r"\{(\d+)\}", pattern).group(1))
    text = ("x" if pattern.startswith("x") else "a" if pattern.startswith("(?s)a") else "") + "!" * count
    assert matcher.accepts(list(text.encode()) + [EOS])
    assert not matcher.accepts(list(text[:-1].encode()) + [EOS])


PATTERNS = [
    ".", "(?s:.)", "(?R).", "a.b", "[^a]", "[^\n]", r"[\s\S]", r"\W", r"\D", r"\S", r"\P{L}", r"\p{Co}", r"\p{Cn}",
    "[[:alpha:]]", "[a-z&&[^x]]", "[^[:^alpha:]]", "(?x) . # a comment with [ and .\n", "(?i:[^A])", r"[\x{10FFFC}-\x{10FFFF}]",
    "(?-s:.)(?s:.)", r"\.", r"[\].]", "(?P<n>.)",
]
SAMPLES = ["a", "b", "x", "A", "\n", "\r", " ", ".", "]", "é", "9", "\U0001F600", "\U0010FFFC", "\ue000",
           "\U000F0000", *SENTINELS]


def _fullmatch(pattern: str, text: str) -> bool:
    """Python's answer, for the constructs it shares with Rust (else None)."""
    python = pattern.replace("(?R).", "[^\\r\\n]").replace("[[:alpha:]]", "[A-Za-z]").replace("[a-z&&[^x]]", "[a-wyz]")
    python = python.replace("[^[:^alpha:]]", "[A-Za-z]").replace("\\x{10FFFC}", "\\U0010FFFC").replace("\\x{10FFFF}", "\\U0010FFFF")
    if "\\p" in python or "\\P" in python:
        return None  # type: ignore[return-value]
    return re.fullmatch(python, text) is not None


@pytest.mark.parametrize("backend", ["dfa", "llguidance"])
@pytest.mark.parametrize("pattern", PATTERNS)
def test_the_language_is_unchanged_except_the_sentinels(pattern, backend):
    matcher = pse.compile(pse.Regex(pattern), BYTES, backend=backend)
    rng = random.Random(pattern)
    texts = SAMPLES + ["".join(rng.choice(SAMPLES) for _ in range(3)) for _ in range(20)]
    for text in texts:
        accepted = matcher.accepts(list(text.encode()) + [EOS])
        if any(s in text for s in SENTINELS):
            assert not accepted, (pattern, text)
            continue
        expected = _fullmatch(pattern, text)
        if expected is not None:
            assert accepted == expected, (pattern, text)
    # Property classes: the plane-16 private-use character below the sentinels is kept.
    if pattern == r"\p{Co}":
        assert matcher.accepts(list("\U0010FFFC".encode()) + [EOS])


def test_only_classes_are_rewritten():
    assert without_sentinels(r"abc\.\d\w\s\x{10FFFE}") == r"abc\.\d\w\s\x{10FFFE}"
    assert without_sentinels(r"(?-u:[a])") == "(?-u:[a])"
    # Inline flags last to the end of their group: after it, '.' stops matching a line break again.
    assert without_sentinels("(?:(?s).).") == "(?:(?s)[^\\x{10FFFD}-\\x{10FFFF}])[^\\n\\x{10FFFD}-\\x{10FFFF}]"
