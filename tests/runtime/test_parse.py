"""``parse`` checks the constraint: text and token ids, on both back ends, for every kind of
constraint and the tokenizer families (byte-level BPE, Llama-2's dummy prefix, Gemma's
SentencePiece), through every processor's ``parse``."""

from __future__ import annotations

import json
import time

import numpy as np
import pytest

import pse_processors as pse
from pse_processors import Choice, Grammar, InvalidOutputError, Regex
from pse_processors.assets import load_tokenizer
from pse_processors.runtime.results import parse_output, spell
from tests.helpers import validate

NAME = {"type": "object", "properties": {"name": {"type": "string"}}, "required": ["name"]}
PARENS = Grammar('start: "(" start ")" | "x"')
# (constraint, the back ends that run it, invalid texts, (valid text, its value))
CASES = {
    "choice": (Choice(["yes", "no"]), ("dfa", "llguidance"), ["maybe", "ye", "yess", "", "YES", "yes\n"], ("no", "no")),
    "regex": (Regex("[0-9]{3}"), ("dfa", "llguidance"), ["abc", "12", "1234", "12a"], ("123", "123")),
    "schema": (
        NAME, ("dfa", "llguidance"),
        ['{"nom": 5}', '{"name": 5}', '{"name": "a"', '{"name": "a"} x', "{'name': 'a'}", ""],
        ('{"name": "Zoë, 日本 🙂"}', {"name": "Zoë, 日本 🙂"}),
    ),
    "grammar": (PARENS, ("llguidance",), ["((x)", "(x))", "y", "", "( x )"], ("((x))", "((x))")),
}


@pytest.fixture(scope="module", params=["qwen3", "llama2"])
def tokenizer(request):
    return load_tokenizer(request.param)


def matchers(tokenizer, case):
    constraint, backends, invalid, valid = CASES[case]
    for backend in backends:
        yield pse.compile(constraint, tokenizer, backend=backend), invalid, valid


@pytest.mark.parametrize("case", sorted(CASES))
def test_text_outside_the_constraint_raises(tokenizer, case):
    for matcher, invalid, _ in matchers(tokenizer, case):
        for text in invalid:
            with pytest.raises(InvalidOutputError, match="does not satisfy|incomplete"):
                parse_output(matcher, text)
            with pytest.raises(InvalidOutputError):
                parse_output(matcher, text.encode())


@pytest.mark.parametrize("case", sorted(CASES))
def test_valid_text_and_its_tokens_parse(tokenizer, case):
    for matcher, _, (text, value) in matchers(tokenizer, case):
        assert parse_output(matcher, text) == value, matcher
        assert parse_output(matcher, text.encode()) == value
        ids = tokenizer.encode(text, add_special_tokens=False)  # multi-token, non-ASCII, ▁ on Llama-2
        assert parse_output(matcher, ids) == value
        decoded = tokenizer.decode(ids)  # what a user passes: the decoder drops Llama-2's dummy space
        assert parse_output(matcher, decoded) == value
        if matcher.vocabulary.dummy_prefix:
            assert parse_output(matcher, " " + text) == value  # the ▁ the model emits first
            with pytest.raises(InvalidOutputError):
                parse_output(matcher, "  " + text)  # but only one
        else:
            with pytest.raises(InvalidOutputError):
                parse_output(matcher, " " + text)


def test_the_issue_examples_raise_through_the_processors(smol_tokenizer):
    from pse_processors import PSELogitsProcessor

    with pytest.raises(InvalidOutputError):
        PSELogitsProcessor(Choice(["yes", "no"]), smol_tokenizer).parse("maybe")
    with pytest.raises(InvalidOutputError):
        PSELogitsProcessor(Regex("[0-9]{3}"), smol_tokenizer).parse("abc")
    processor = PSELogitsProcessor(NAME, smol_tokenizer)
    with pytest.raises(InvalidOutputError):
        processor.parse('{"nom": 5}')
    assert validate(NAME, json.dumps(processor.parse('{"name": "Ada"}'))) == {"name": "Ada"}
    grammar = PSELogitsProcessor(PARENS, smol_tokenizer)
    assert grammar.parse("(x)") == "(x)"
    with pytest.raises(InvalidOutputError):
        grammar.parse("(x")


def test_mlx_processor_parse_checks_text():
    pytest.importorskip("mlx_lm")
    from pse_processors.mlx import MLXPSELogitsProcessor
    from tests.helpers import smol_tokenizer_mlx

    processor = MLXPSELogitsProcessor(Choice(["yes", "no"]), smol_tokenizer_mlx())
    assert processor.parse("yes") == "yes"
    with pytest.raises(InvalidOutputError):
        processor.parse("maybe")


def test_in_graph_processor_parse_checks_text(smol_tokenizer):
    from pse_processors.runtime.in_graph import InGraphProcessor

    class NumpyInGraph(InGraphProcessor):  # parse needs no tensor op
        namespace = "test-parse"

    processor = NumpyInGraph(Regex("[0-9]{3}"), smol_tokenizer, max_new_tokens=8)
    ids = smol_tokenizer.encode("123", add_special_tokens=False)
    assert processor.parse("123") == "123"
    assert processor.parse(np.array([7, 7] + ids + [smol_tokenizer.eos_token_id]), prompt_length=2) == "123"
    with pytest.raises(InvalidOutputError):
        processor.parse("abc")
    with pytest.raises(InvalidOutputError):
        processor.parse(np.array(smol_tokenizer.encode("abc", add_special_tokens=False)))


def test_text_the_vocabulary_cannot_spell_is_invalid():
    vocab = pse.Vocabulary([b"yes", b"no", b"y", b"es", None], eos_token_ids=[4])
    matcher = pse.compile(Choice(["yes", "no"]), vocab)
    assert spell(vocab, b"yesno") == [0, 1] and spell(vocab, b"") == []
    assert parse_output(matcher, "yes") == "yes"
    with pytest.raises(InvalidOutputError, match="cannot be spelled"):
        parse_output(matcher, "yeah")
    with pytest.raises(InvalidOutputError, match="does not satisfy"):
        parse_output(matcher, "yesno")  # spelled, but not one of the choices


def test_spelling_backtracks_past_a_dead_end():
    # Longest first would take "ab" and strand "c"; the spelling must be "a" "bc".
    vocab = pse.Vocabulary([b"ab", b"a", b"bc", None], eos_token_ids=[3])
    assert spell(vocab, b"abc") == [1, 2]
    assert parse_output(pse.compile(Regex("abc"), vocab), "abc") == "abc"


def test_bad_outputs_raise_clear_errors(smol_tokenizer):
    matcher = pse.compile(NAME, smol_tokenizer)
    with pytest.raises(InvalidOutputError, match="not valid UTF-8"):
        parse_output(matcher, b'{"name": "\xff"}')
    with pytest.raises(InvalidOutputError, match="not valid UTF-8"):
        parse_output(matcher, '{"name": "\ud800"}')  # a lone surrogate has no UTF-8
    with pytest.raises(TypeError, match="integer token ids"):
        parse_output(matcher, [1.5, 2.0])
    with pytest.raises(InvalidOutputError):
        parse_output(matcher, [-1, 10**9])


def test_the_handoff_checks_text_before_and_after_its_automaton(smol_tokenizer, disk_cache):
    from pse_processors.matchers.handoff import HandoffMatcher, wait_for_builds

    for max_states in (4, 10_000):  # too few states: the automaton fails and llguidance answers for good
        code = {"type": "string", "maxLength": 7, "pattern": f"^[a-z]{{0,{max_states}}}$"}  # one schema each
        schema = {"type": "object", "properties": {"code": code}, "required": ["code"]}
        matcher = pse.compile(schema, smol_tokenizer, max_states=max_states)
        assert isinstance(matcher, HandoffMatcher)
        wait_for_builds()
        assert matcher.ready == (max_states > 4) and matcher.backend == ("dfa" if matcher.ready else "llguidance")
        assert parse_output(matcher, '{"code": "abc"}') == {"code": "abc"}
        with pytest.raises(InvalidOutputError):
            parse_output(matcher, '{"code": "abcdefgh"}')


def test_pydantic_result_after_the_check(smol_tokenizer):
    from pydantic import BaseModel

    class Person(BaseModel):
        name: str

    processor = pse.compile(Person, smol_tokenizer)
    assert parse_output(processor, '{"name": "Ada"}') == Person(name="Ada")
    with pytest.raises(InvalidOutputError):
        parse_output(processor, '{"nom": "Ada"}')


@pytest.mark.parametrize("backend", ["dfa", "llguidance"])
def test_a_10_kb_text_parses_in_milliseconds(backend):
    tokenizer = load_tokenizer("qwen3")
    item = {"type": "object", "properties": {"name": {"type": "string"}, "n": {"type": "integer"}}, "required": ["name", "n"]}
    schema = {"type": "object", "properties": {"items": {"type": "array", "items": item}}, "required": ["items"]}
    value = {"items": [{"name": f"item {i} héllo 日本", "n": i} for i in range(240)]}
    text = json.dumps(value, ensure_ascii=False)
    assert len(text.encode()) > 10_000
    matcher = pse.compile(schema, tokenizer, backend=backend)
    assert parse_output(matcher, text) == value  # builds the per-vocabulary tables once
    start = time.perf_counter()
    for _ in range(5):
        parse_output(matcher, text)
    # A few ms each (10-15 ms on llguidance on a busy 2-core machine); walking the int states
    # instead took about a second on llguidance.
    assert (time.perf_counter() - start) / 5 < 0.2
