"""What the compile fuzz test (``test_compile_fuzz.py``) found, each pinned on every back end, and
a check that the fuzz worker does report a raw exception (so the fuzz test can fail)."""

from __future__ import annotations

import random
import time
import types

import pytest

import pse_processors as pse
from pse_processors import CompileLimitError, PSEError, SchemaError
from pse_processors.constraints.regex_size import shortest_match
from tests.fuzz import worker

BYTES = pse.Vocabulary([bytes([b]) for b in range(256)] + [None], eos_token_ids=[256])
BACKENDS = ("auto", "dfa", "llguidance")


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("fmt", [["date"], {"a": 1}, 5, None])
def test_a_format_that_is_not_a_string_is_a_schema_error(fmt, backend):
    # ["date"] and {"a": 1} raised TypeError: unhashable type, in the type inference of a schema without "type".
    schema = {"format": fmt, "minLength": 1}
    if fmt is None:
        pse.compile(schema, BYTES, backend=backend)  # format: null is absent
        return
    with pytest.raises(SchemaError, match="format must be a string"):
        pse.compile(schema, BYTES, backend=backend)


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("negated", [1.5, "x", [1], None])
def test_a_not_that_is_not_a_schema_is_a_schema_error(negated, backend):
    # {"not": 1.5, ...} raised AttributeError: 'float' object has no attribute 'get'.
    with pytest.raises(SchemaError, match="not must be a schema"):
        pse.compile({"type": "string", "not": negated, "maxLength": 3}, BYTES, backend=backend)


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("pattern, text", [(".{18}", "y" * 18), ("x.{40}", "x" + "é" * 40), ("[\\s\\S]{0,300}", "a\nb")])
def test_wide_classes_under_counted_repetitions_compile(pattern, text, backend):
    # The byte automaton took minutes (.{18}) or never ended (.{500}): see constraints/regex_sentinels.py.
    matcher = pse.compile(pse.Regex(pattern), BYTES, backend=backend)
    assert matcher.accepts(list(text.encode()) + [256])
    assert not matcher.accepts(list((text + "y" * 300).encode()) + [256])


class _Boom(Exception):
    pass


def _fake_pse(error: BaseException):
    def compile(*args, **kwargs):  # noqa: A001 - stands in for pse.compile
        raise error
    return types.SimpleNamespace(compile=compile, clear_memory_cache=lambda: None, PSEError=PSEError)


@pytest.mark.parametrize("error, outcome", [(SchemaError("bad", "#"), "named"), (KeyError("x"), "raw"),
                                            (RecursionError(), "raw"), (_Boom(), "raw")])
def test_the_worker_tells_named_errors_from_raw_ones(error, outcome):
    results = worker.run_case(_fake_pse(error), BYTES, 22, 0)
    assert [r["backend"] for r in results] == list(worker.BACKENDS)
    assert {r["outcome"] for r in results} == {outcome}
    if outcome == "raw":
        assert type(error).__name__ in results[0]["detail"]


def test_the_worker_walk_flags_a_state_without_a_token():
    class DeadEnd:
        vocabulary = BYTES
        initial_state = 0

        def allowed_token_ids(self, state):
            import numpy as np
            return np.zeros(0, dtype=np.int64)

    with pytest.raises(AssertionError, match="allows no token"):
        worker._walk(DeadEnd(), random.Random(0))


@pytest.mark.parametrize("pattern", ["a{1000000}", "(?:ab{1000}){600}", "x(?:a{999}b){600}"])
def test_a_pattern_longer_than_max_states_is_refused_before_the_build(pattern):
    # a{1000000} was refused only after outlines-core built a million states (190 s on a busy CPU).
    start = time.perf_counter()
    with pytest.raises(CompileLimitError, match="shortest match is"):
        pse.compile(pse.Regex(pattern), BYTES, backend="dfa")
    assert time.perf_counter() - start < 20
    assert pse.compile(pse.Regex(pattern), BYTES, backend="auto").backend == "llguidance"  # auto falls back


@pytest.mark.parametrize("pattern, shortest", [
    ("a{3}(?:bc|d){2,4}x*", 5), ("a|bc", 1), ("(a|)b", 1), ("a{0,5}b?c+", 1), ("[abc]{3}?", 3),
    (r"\x{10FFFF}{2}", 2), ("(?i)ab", 2), ("(?P<n>ab)c", 3), ("^ab$", 2), ("[[a]--[b]]{4}", 4),
    ("(?:a|b{5})+", 1), (r"\Aa\z", 1), ("(?x)a b c", 0), ("(", 0), ("a{2}{3}", 2),
])
def test_shortest_match_never_overstates(pattern, shortest):
    assert shortest_match(pattern) == shortest
