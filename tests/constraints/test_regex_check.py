"""Regex constraints: anchors mean what they mean under ``re.fullmatch``, on both back ends, and a
pattern no back end can enforce exactly is refused by name (``constraints/regex_check.py``).

The property test compiles random patterns (literals, classes, groups, alternation, quantifiers
and anchors anywhere) for a vocabulary of single characters and a few longer tokens, and checks
that every string up to three characters is accepted exactly when ``re.fullmatch`` matches it,
on the byte automaton and on llguidance, unless the pattern is refused with
``UnsupportedRegexError``.
"""

from __future__ import annotations

import itertools
import pickle
import random
import re

import pytest

import pse_processors as pse
from pse_processors.constraints.regex_check import check_regex
from pse_processors.constraints.regex_sentinels import without_sentinels
from pse_processors.constraints.spec import normalize
from pse_processors.errors import SchemaError, UnsupportedRegexError, UnsupportedSchemaError

ALPHABET = ["a", "b", "1", "A", "\n"]
TOKENS = [ch.encode() for ch in ALPHABET] + [b"ab", b"1a", b"ba1", b"c", b"0", b"$", b"^", b"-"]
EOS = len(TOKENS)
VOCAB = pse.Vocabulary(TOKENS + [None], eos_token_ids=[EOS])
BACKENDS = ("dfa", "llguidance")
STRINGS = ["".join(chars) for n in range(4) for chars in itertools.product(ALPHABET, repeat=n)]


@pytest.fixture(autouse=True)
def no_disk_cache(monkeypatch):
    """Hundreds of throwaway automata: compile in memory only."""
    monkeypatch.setenv("PSE_PROCESSORS_CACHE_DIR", "off")


def ids(text: str) -> list:
    return [TOKENS.index(ch.encode()) for ch in text]


def accepted(matcher, text: str) -> bool:
    return matcher.accepts(ids(text) + [EOS])


@pytest.mark.parametrize(
    "pattern, regex",
    [
        ("^[0-9]{3}$", "[0-9]{3}"),
        ("^abc$", "abc"),
        ("[0-9]+$", "[0-9]+"),
        ("^a", "a"),
        ("(^a|b$)", "(a|b)"),
        ("(?:^abc$)", "(?:abc)"),
        ("^a|b$|^c$", "a|b|c"),
        (r"\Aab\z", "ab"),
        (r"\Aab\Z", "ab"),  # Python's \Z is Rust's \z
        ("(?i)^a$", "(?i)a"),
        ("^(?i)a", "(?i)a"),
        ("(?m)^a$", "(?m)a"),
        ("((^a))b", "((a))b"),
        ("(?P<x>^a)(b$)", "(?P<x>a)(b)"),
        ("x|(?:y|^z)", "x|(?:y|z)"),
        ("^$", "(?:)"),
        ("$^", "(?:)"),  # matches only the empty string, as re.fullmatch says
        ("(?x) ^ a b $ # a comment", "(?x)  a b  # a comment\n"),  # a line break ends the comment
        ("(?x)a # ^ and $ in a comment\n$", "(?x)a # ^ and $ in a comment\n"),
        ("[$^]$", "[$^]"),  # inside a class both are characters
        ("[^^]$", "[^^]"),
        (r"\^a\$", r"\^a\$"),
        ("[[:alpha:]]+$", "[[:alpha:]]+"),
        ("[]a]$", "[]a]"),
        ("a/b$", "a/b"),
        ("[0-9]{3}-[a-z]+", "[0-9]{3}-[a-z]+"),  # nothing to remove: returned as is
    ],
)
def test_anchors_at_the_ends_are_removed(pattern, regex):
    assert check_regex(pattern) == regex
    assert normalize(pse.Regex(pattern)).regex == without_sentinels(regex)  # classes: see regex_sentinels.py


@pytest.mark.parametrize(
    "pattern, construct, position",
    [
        ("a^b", "anchor", 1),
        ("a$b", "anchor", 1),
        ("(a$|b)c", "anchor", 2),
        ("(^a)*", "anchor", 1),
        ("(?:a|^b)+", "anchor", 5),
        ("^*a", "anchor", 0),
        ("a$?", "anchor", 1),
        (r"a\Zb", "anchor", 1),
        (r"a\Ab", "anchor", 1),
        ("(?m)a$\n^b", "anchor", 5),
        ("(?=a)b", "look-ahead", 0),
        ("a(?!b)", "look-ahead", 1),
        ("(?<=a)b", "look-behind", 0),
        ("(?<!a)b", "look-behind", 0),
        (r"(a)\1", "back-reference", 3),
        ("(?P<n>a)(?P=n)", "back-reference", 8),
        (r"(?<n>a)\k<n>", "back-reference", 7),
        (r"\bword\b", "word boundary", 0),
        (r"a\B", "word boundary", 1),
        (r"\<a", "word boundary", 0),
        ("(?>ab|a)b", "atomic group", 0),
        ("a*+", "possessive quantifier", 1),
        ("a++b", "possessive quantifier", 1),
        ("a{2}+", "possessive quantifier", 1),
        ("(?(1)a|b)", "conditional group", 0),
        ("(?#note)a", "inline comment", 0),
    ],
)
def test_constructs_no_back_end_can_enforce_are_refused_by_name(pattern, construct, position):
    with pytest.raises(UnsupportedRegexError) as caught:
        check_regex(pattern)
    error = caught.value
    assert (error.keyword, error.position, error.pattern) == (construct, position, pattern)
    assert isinstance(error, UnsupportedSchemaError) and isinstance(error, SchemaError)
    assert f"at position {position}" in str(error) and construct in str(error)
    assert "\\x{10FFFE}" not in str(error) and "\n" not in str(error)
    copy = pickle.loads(pickle.dumps(error))
    assert type(copy) is UnsupportedRegexError and str(copy) == str(error) and copy.keyword == construct
    for backend in BACKENDS:  # the same refusal whichever back end would run it
        with pytest.raises(UnsupportedRegexError, match=re.escape(f"at position {position}")):
            pse.compile(pse.Regex(pattern), VOCAB, backend=backend)


@pytest.mark.parametrize(
    "pattern, reason, position",
    [
        ("(", "unclosed group", 0),
        ("ab)", "unopened group", 2),
        ("[z-a]", "invalid character class range", 1),
        ("[ab", "unclosed character class", 0),
        ("a{3,2}", "invalid repetition count range", 1),
        ("a{,3}", "repetition quantifier expects a valid decimal", 2),
        ("*a", "repetition operator missing expression", 0),
        (r"\x{zz}", "invalid hexadecimal digit", 3),
        (r"\p{NoSuchClass}", "Unicode property not found", 0),
        ("(?a)x", "unrecognized flag", 2),
        (r"a\q", "unrecognized escape sequence", 1),
        ("a/b(", "unclosed group", 3),  # "/" is escaped when llguidance shows the pattern
        ("x\ny(", "unclosed group", 3),  # so are line breaks
        ("(^a", "unclosed group", 0),  # the structure is broken: the parser reports it, not the anchor
        (r"(a\Z", "unclosed group", 0),
    ],
)
def test_malformed_patterns_say_what_is_wrong_and_where(pattern, reason, position):
    for backend in BACKENDS:
        with pytest.raises(SchemaError) as caught:
            pse.compile(pse.Regex(pattern), VOCAB, backend=backend)
        message = str(caught.value)
        assert not isinstance(caught.value, UnsupportedSchemaError)
        assert reason in message and f"(at position {position})" in message, message
        assert "Failed to build DFA" not in message and "NFA" not in message and "\n" not in message


def test_long_patterns_are_shown_around_the_error():
    pattern = "a" * 500 + "(" + "b" * 500
    with pytest.raises(SchemaError) as caught:
        check_regex(pattern)
    message = str(caught.value)
    assert "(at position 500)" in message and "1,001 characters" in message and len(message) < 250


def test_the_issue_examples_on_both_back_ends():
    """``Regex("[0-9]+$")`` never allowed EOS on the automaton; ``^…$`` was refused as unsatisfiable."""
    digits = pse.Vocabulary([str(d).encode() for d in range(10)] + [b"12", b"a", None], eos_token_ids=[12])
    for backend in BACKENDS:
        for pattern in ("[0-9]+$", "^[0-9]{3}$", r"\A[0-9]+\Z"):
            matcher = pse.compile(pse.Regex(pattern), digits, backend=backend)
            assert matcher.accepts([1, 2, 3, 12]), (pattern, backend)
            assert matcher.accepts([10, 3, 12]), (pattern, backend)  # "12" + "3"
            assert not matcher.accepts([1, 11, 12]) and not matcher.accepts([12])
        abc = pse.Vocabulary([b"a", b"b", b"c", b"abc", None], eos_token_ids=[4])
        matcher = pse.compile(pse.Regex("^abc$"), abc, backend=backend)
        assert matcher.accepts([0, 1, 2, 4]) and matcher.accepts([3, 4]) and not matcher.accepts([0, 4])


@pytest.mark.parametrize(
    "pattern, matches, misses",
    [
        ("(?x) a b # a comment", ["ab"], ["a b", "a"]),
        ("(?x)a # { and ) in a comment", ["a"], ["a ", ""]),  # were a raw ValueError / IndexError on the automaton
        ("(?x) ^ a # {2\n b $", ["ab"], ["a"]),
        ("(?x:a b) c", ["ab c"], ["abc"]),  # x mode ends with its group
        ("(?x)a(?-x) b", ["a b"], ["ab"]),
        (r"\u{61}\x{62}", ["ab"], ["a"]),
    ],
)
def test_verbose_mode_and_braced_escapes_compile_on_both_back_ends(pattern, matches, misses):
    spaced = pse.Vocabulary([b"a", b"b", b"c", b" ", b"\n", None], eos_token_ids=[5])
    for backend in BACKENDS:
        matcher = pse.compile(pse.Regex(pattern), spaced, backend=backend)
        for text, expected in [(t, True) for t in matches] + [(t, False) for t in misses]:
            assert matcher.accepts([b"abc \n".index(ch) for ch in text.encode()] + [5]) is expected, (pattern, backend, text)


# --- the property: re.fullmatch on both back ends, or a refusal by name ---------------------------

_ATOMS = ["a", "b", "1", "A", ".", "[ab]", "[^a]", r"\d", r"\n", "[a1]"]
_QUANTIFIERS = ["*", "+", "?", "{2}", "{0,2}", "{1,}", "*?", "??", "{1,2}?"]
_ANCHORS = ["^", "$", r"\A", r"\Z"]


def _pattern(rng: random.Random, depth: int) -> str:
    """An alternation of sequences of pieces; anchors may land anywhere, ends most often."""
    branches = []
    for _ in range(rng.choice([1, 1, 1, 2, 3])):
        pieces = [_piece(rng, depth) for _ in range(rng.randint(1, 3))]
        if rng.random() < 0.35:
            pieces.insert(0, rng.choice(["^", r"\A"]))
        if rng.random() < 0.35:
            pieces.append(rng.choice(["$", r"\Z"]))
        branches.append("".join(pieces))
    return "|".join(branches)


def _piece(rng: random.Random, depth: int) -> str:
    roll = rng.random()
    if roll < 0.08:
        return rng.choice(_ANCHORS)
    if roll < 0.35 and depth > 0:
        body = rng.choice(["(", "(?:", "(?i:"]) + _pattern(rng, depth - 1) + ")"
    else:
        body = rng.choice(_ATOMS)
    return body + (rng.choice(_QUANTIFIERS) if rng.random() < 0.3 else "")


def _random_patterns(count: int, seed: int) -> list:
    rng = random.Random(seed)
    patterns: list = []
    while len(patterns) < count:
        pattern = _pattern(rng, 2)
        if pattern not in patterns:
            patterns.append(pattern)
    return patterns


HAND_WRITTEN = [
    "^[ab]{2}$", "a$|^b", "(^a|b$)", "(?:^a|b)1", "(a|^b)*", "^(a|b)+$", "^a?$", "(?i:^a)", r"\Aa|b\Z",
    "a^", "$a", "^$", "(^)a", "a($)", "((^a)|b)$", "(a|b$)(1)", "^.$", r"^\d\d?$", "(?i)^ab?$", "^\n?a$",
]


@pytest.mark.parametrize("chunk", range(4))
def test_full_match_semantics_on_both_back_ends(chunk):
    patterns = (HAND_WRITTEN if chunk == 0 else []) + _random_patterns(40, seed=chunk)
    refused = agreed = 0
    for pattern in patterns:
        re.compile(pattern)  # the generator writes patterns that Python and Rust both read
        expected = {text for text in STRINGS if re.fullmatch(pattern, text)}
        try:
            regex = check_regex(pattern)
        except UnsupportedRegexError as exc:
            assert exc.keyword == "anchor", (pattern, str(exc))
            refused += 1
            for backend in BACKENDS:
                with pytest.raises(UnsupportedRegexError):
                    pse.compile(pse.Regex(pattern), VOCAB, backend=backend)
            continue
        assert not re.search(r"(?<!\\)[$^]|\\[AzZ]", re.sub(r"\[[^\]]*\]", "", regex)) or "(?x)" in regex, regex
        for backend in BACKENDS:
            matcher = pse.compile(pse.Regex(pattern), VOCAB, backend=backend)
            got = {text for text in STRINGS if accepted(matcher, text)}
            assert got == expected, (pattern, backend, sorted(got ^ expected)[:5])
        agreed += 1
    assert agreed > 0 and (refused > 0 or chunk > 0), (agreed, refused)


def test_scanner_never_crashes_on_garbage():
    """Any mix of regex syntax: a regex the Rust parser reads, or a named error; never anything else."""
    import llguidance

    rng = random.Random(7)
    symbols = list("ab^$|()[]{}*+?.\\-:,2#=!<>PAzZbB1 \n") + ["(?", "(?:", "(?x)", "(?i)", "[^", "[:alpha:]", "{2}", "\\Z"]
    for _ in range(3000):
        pattern = "".join(rng.choice(symbols) for _ in range(rng.randint(1, 12)))
        try:
            regex = check_regex(pattern)
        except SchemaError:
            continue
        llguidance.RegexCompiler().compile(regex)  # raises if the returned regex does not parse


def test_lone_surrogates_are_named_with_their_place():
    with pytest.raises(SchemaError, match=r"Choice item 1 \('b\\ud800'\) holds a lone surrogate U\+D800 at position 1"):
        pse.Choice(["a", "b\ud800"])
    with pytest.raises(SchemaError, match=r"holds a lone surrogate U\+DC00 at position 2"):
        normalize(pse.Regex("ab\udc00"))
    with pytest.raises(SchemaError, match="lone surrogate U\\+D83D on line 2"):
        pse.Grammar('start: A\nA: "\ud83d"')
    for backend in BACKENDS:
        with pytest.raises(SchemaError, match="lone surrogate"):
            pse.compile(pse.Regex("x\ud800"), VOCAB, backend=backend)


def test_choices_and_schema_patterns_keep_their_meaning():
    """Choices are literal text, and a JSON Schema pattern keeps its ECMA search semantics."""
    for backend in BACKENDS:
        matcher = pse.compile(pse.Choice(["a$b", "^a", "b^"]), VOCAB, backend=backend)
        assert matcher.accepts([0, TOKENS.index(b"$"), 1, EOS]) and matcher.accepts([TOKENS.index(b"^"), 0, EOS])
        assert not matcher.accepts([0, 1, EOS])
        quote = pse.Vocabulary([b'"', b"a", b"b", b"x", None], eos_token_ids=[4])
        anchored = pse.compile({"type": "string", "pattern": "^ab$"}, quote, backend=backend)
        assert anchored.accepts([0, 1, 2, 0, 4]) and not anchored.accepts([0, 3, 1, 2, 0, 4])
        searched = pse.compile({"type": "string", "pattern": "ab"}, quote, backend=backend)
        assert searched.accepts([0, 3, 1, 2, 3, 0, 4])
