"""The DFA toolkit of structure inside free text (``matchers/compose.py``) against plain-Python oracles
on random byte strings: pieces, concatenation, alternation, bounded and unbounded repetition,
symbols, and its limit."""

from __future__ import annotations

import random
import re

import pytest

from pse_processors import CompileLimitError
from pse_processors.matchers.byte_automaton import ByteAutomaton
from pse_processors.matchers.compose import Alt, Repeat, Seq, compose, from_automaton, literal, text

ALPHABET = [b"<", b"t", b">", b"/", b"a", b"0", b"1", b"\n", "é".encode(), b"\xff", b"\xc3"]


def accepts(dfa: ByteAutomaton, data: bytes) -> bool:
    state = dfa.walk(data)
    return state is not None and bool(dfa.accepting[state])


def utf8(data: bytes) -> bool:
    try:
        data.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return True


def samples(seed: int, count: int = 3000, pieces: tuple = ()) -> list[bytes]:
    rng = random.Random(seed)
    out = []
    for _ in range(count):
        parts = [rng.choice(ALPHABET + list(pieces)) for _ in range(rng.randint(0, 9))]
        out.append(b"".join(parts))
    return out


def lazy_then(data: bytes, marker: bytes):
    """(text before the first ``marker``, the rest after it), or None."""
    at = data.find(marker)
    return None if at < 0 else (data[:at], data[at + len(marker):])


def test_reasoning_shape_against_an_oracle():
    dfa = compose(Seq(literal(b"<t>"), text(until=b"</t>"), from_automaton(ByteAutomaton.build("[0-9]+"))))
    for data in samples(0, pieces=(b"<t>", b"</t>")):
        expected = False
        if data.startswith(b"<t>"):
            split = lazy_then(data[3:], b"</t>")
            expected = split is not None and utf8(split[0]) and re.fullmatch(rb"[0-9]+", split[1]) is not None
        assert accepts(dfa, data) == expected, data


def test_forbidden_text_and_first_byte():
    dfa = compose(text(forbid=[b"<t>", b"0a"], first_not=b"<"))
    for data in samples(1, pieces=(b"<t>",)):
        expected = utf8(data) and b"<t>" not in data and b"0a" not in data and not data.startswith(b"<")
        assert accepts(dfa, data) == expected, data


def test_delimited_shape_with_bounded_repetition():
    span = Seq(text(until=b"<"), from_automaton(ByteAutomaton.build("[01]+")), literal(b">"))
    dfa = compose(Seq(Repeat(span, 1, 2), text(forbid=[b"<"])))
    pattern = re.compile(rb"(?:[^<]*<[01]+>){1,2}[^<]*", re.S)
    for data in samples(2, pieces=(b"<0>", b"<1>")):
        assert accepts(dfa, data) == (utf8(data) and pattern.fullmatch(data) is not None), data


def test_unbounded_repetition_and_alternation():
    dfa = compose(Alt(Repeat(literal(b"ab")), Seq(literal(b"t"), Repeat(literal(b"0"), 2))))
    pattern = re.compile(rb"(?:ab)*|t0{2,}")
    for data in samples(3, pieces=(b"ab", b"00")):
        assert accepts(dfa, data) == (pattern.fullmatch(data) is not None), data


def test_symbols_are_columns_no_text_spells():
    dfa = compose(Seq(text(forbid=[b"<t>"]), literal([256]), literal(b"\n"), text()), num_symbols=2)
    assert dfa.next_state.shape[1] == 258
    state = dfa.walk(b"hi")
    assert state is not None and dfa.next_state[state, 257] == -1
    after = dfa.next_state[state, 256]
    assert after >= 0 and dfa.walk(b"\nok", int(after)) is not None
    assert not dfa.accepting[after] and dfa.walk(b"<t>") is None


def test_plane_16_is_never_free_text():
    dfa = compose(text())
    assert accepts(dfa, "\U000F0000".encode()) and not accepts(dfa, "\U00100000".encode())


def test_limit_names_max_states():
    with pytest.raises(CompileLimitError, match="max_states"):
        compose(Repeat(from_automaton(ByteAutomaton.build("[a-z]{20}")), 0, 40), max_states=200)
