"""Constraints without a finite instance are refused at compile time on every back end, naming the
rule or the JSON pointer; recursive constraints that do have finite instances still compile, and
their walks finish (issue 22, item 3)."""

from __future__ import annotations

import json
import random

import pytest

import pse_processors as pse
from pse_processors import Grammar, SchemaError, UnsatisfiableConstraintError
from pse_processors.compiler.finiteness import check_grammar
from pse_processors.json_schema import json_schema_to_grammar
from tests.helpers import validate

BYTES = pse.Vocabulary([bytes([b]) for b in range(256)] + [None], eos_token_ids=[256])
EOS = 256
BACKENDS = ("dfa", "llguidance", "auto")

NESTED_FOREVER = {"type": "array", "items": {"$ref": "#"}, "minItems": 1}
REQUIRED_SELF = {"type": "object", "properties": {"a": {"$ref": "#"}}, "required": ["a"]}
MUTUAL = {
    "$defs": {
        "a": {"type": "object", "properties": {"b": {"$ref": "#/$defs/b"}}, "required": ["b"]},
        "b": {"type": "array", "items": {"$ref": "#/$defs/a"}, "minItems": 1},
    },
    "$ref": "#/$defs/a",
}
TREE = {
    "type": "object",
    "properties": {"v": {"type": "integer"}, "children": {"type": "array", "items": {"$ref": "#"}}},
    "required": ["v"],
}
LINKED_LIST = {
    "$defs": {"node": {"type": "object", "properties": {"v": {"type": "integer"}, "next": {"$ref": "#/$defs/node"}},
                       "required": ["v"]}},
    "$ref": "#/$defs/node",
}
# Finite instances exist, but only through the integer branch of the union.
UNION_WITH_ENDLESS_BRANCH = {"anyOf": [{"type": "integer"}, {"type": "array", "items": {"$ref": "#/anyOf/1"}, "minItems": 1}]}
# "bad" can never end; it is optional, so the schema has instances: {"x": 1}, never with "bad".
OPTIONAL_ENDLESS = {
    "type": "object",
    "properties": {"x": {"type": "integer"}, "bad": {"$ref": "#/$defs/bad"}},
    "required": ["x"],
    "$defs": {"bad": {"type": "object", "properties": {"n": {"$ref": "#/$defs/bad"}}, "required": ["n"]}},
}


def ids(text: str) -> list:
    return list(text.encode("utf-8"))


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("schema", [NESTED_FOREVER, REQUIRED_SELF], ids=["minItems", "required"])
def test_the_issue_schemas_are_refused_naming_the_pointer(schema, backend):
    with pytest.raises(UnsatisfiableConstraintError, match="the recursive schema '#' has no finite instance"):
        pse.compile(schema, BYTES, backend=backend)


@pytest.mark.parametrize("backend", BACKENDS)
def test_mutual_recursion_is_refused_naming_the_pointer(backend):
    with pytest.raises(UnsatisfiableConstraintError, match="'#/\\$defs/a' has no finite instance"):
        pse.compile(MUTUAL, BYTES, backend=backend)


@pytest.mark.parametrize("backend", ("llguidance", "auto"))
def test_the_issue_grammar_is_refused_naming_the_rule(backend):
    with pytest.raises(UnsatisfiableConstraintError, match="rule 'a' can never finish: every alternative needs 'a' again"):
        pse.compile(Grammar('start: a\na: "x" a'), BYTES, backend=backend)


def test_a_grammar_is_refused_on_the_automaton_before_anything_else():
    with pytest.raises(SchemaError, match="runs on llguidance only"):
        pse.compile(Grammar('start: a\na: "x" a'), BYTES, backend="dfa")


@pytest.mark.parametrize(
    "lark, message",
    [
        ('start: a\na: "x" b\nb: "y" a', "rules 'a', 'b' can never finish: every alternative of each needs one of them again"),
        ('start: item+\nitem: "x" item', "rule 'item' can never finish"),  # x+ finishes only if x does
        ('start: a{2,3}\na: "(" a ")"', "rule 'a' can never finish"),
        ('?start: value\n?value: "[" value "]"\n    | "{" value "}"', "rule 'value' can never finish"),
        ('start: A\nA: "a" & ~"a"', "terminal 'A' matches no string"),
        ('start: "y" | a\na: "x" a', "the grammar has parts that can never finish"),  # reachable: a walk enters it
        ('start: "k" a{0,3}\na: "x" a', "parts that can never finish .*: rule 'a'"),  # optional, yet reachable
        ('start: "k" [a] b*\na: "x" a\nb: "y"', "parts that can never finish .*: rule 'a'"),
        ('start: x\nx: "a" x | A\nA: "a" & ~"a"', "terminal 'A' matches no string"),
    ],
)
def test_grammars_without_a_finite_sentence_name_their_rules(lark, message):
    with pytest.raises(UnsatisfiableConstraintError, match=message):
        check_grammar(lark)
    with pytest.raises(UnsatisfiableConstraintError):
        pse.compile(Grammar(lark), BYTES)


@pytest.mark.parametrize(
    "lark",
    [
        'start: "(" start ")" | "x"',
        '?start: value\n?value: list | "v"\nlist: "[" [value ("," value)*] "]"',  # ?-inlined rules, [..], *
        "start: item+\nitem: \"x\" item?",
        'start: a\n// a comment\na: "x"  # another\n   | "y" a',  # alternatives over lines
        '%import common.NUMBER\nstart: NUMBER ("," NUMBER)*',
        'start: b\nb[capture]: "z" b | "q"',
    ],
)
def test_grammars_with_finite_sentences_pass(lark):
    check_grammar(lark)
    grammar = pse.compile(Grammar(lark), BYTES)
    assert grammar.backend == "llguidance"


def test_unreachable_rules_that_never_finish_do_not_matter():
    check_grammar('start: "x"\nunused: unused "y"')


def random_walk(matcher, rng: random.Random, max_steps: int = 400) -> list:
    """A random token path to EOS (EOS taken with probability 1/2 once allowed), or ``[]``."""
    state, path = matcher.initial_state, []
    for _ in range(max_steps):
        allowed = matcher.allowed_token_ids(state).tolist()
        if EOS in allowed and (len(allowed) == 1 or rng.random() < 0.5):
            return path
        token = rng.choice([t for t in allowed if t != EOS])
        path.append(token)
        state = matcher.advance(state, token)
    return []


@pytest.mark.parametrize("schema", [TREE, LINKED_LIST, UNION_WITH_ENDLESS_BRANCH, OPTIONAL_ENDLESS],
                         ids=["tree", "linked-list", "union", "optional"])
def test_recursive_schemas_with_finite_instances_compile_and_walks_finish(schema):
    matcher = pse.compile(schema, BYTES, backend="llguidance")
    rng = random.Random(0)
    finished = 0
    for _ in range(30):
        path = random_walk(matcher, rng)
        if path:
            validate(schema, bytes(path).decode())
            finished += 1
    assert finished >= 25


def test_an_optional_member_that_never_ends_is_dropped_as_on_the_automaton():
    grammar = pse.compile(OPTIONAL_ENDLESS, BYTES, backend="llguidance")
    automaton = pse.compile(OPTIONAL_ENDLESS, BYTES, backend="dfa")
    for matcher in (grammar, automaton):
        state = matcher.walk(ids('{"x": 0'))
        assert matcher.allowed_token_ids(state).tolist() == [ord("}")]  # no ',"bad":'
    assert '"bad"' not in json_schema_to_grammar(OPTIONAL_ENDLESS).lark


def test_the_automaton_says_when_only_its_depth_limit_empties_a_schema():
    # The ref with siblings needs "k" twice nested: deeper than max_recursion_depth=1 unrolls.
    schema = {
        "$defs": {"n": {"type": "object", "properties": {"k": {"$ref": "#/$defs/n"}}}},
        "type": "object", "properties": {"k": {"$ref": "#/$defs/n", "required": ["k"]}}, "required": ["k"],
    }
    with pytest.raises(UnsatisfiableConstraintError, match="within max_recursion_depth=1"):
        pse.compile(schema, BYTES, backend="dfa", max_recursion_depth=1)
    grammar = pse.compile(schema, BYTES, backend="llguidance")
    assert grammar.accepts(ids(json.dumps({"k": {"k": {}}})) + [EOS])


def test_unsatisfiable_schemas_without_recursion_keep_their_message():
    with pytest.raises(UnsatisfiableConstraintError, match="^no JSON value satisfies this schema$"):
        pse.compile({"type": "string", "minLength": 3, "maxLength": 2}, BYTES, backend="dfa")
