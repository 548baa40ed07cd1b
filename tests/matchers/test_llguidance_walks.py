"""No dead end in the middle of a walk on llguidance (issue 22, item 4b).

DynamoDB CreateTable request schemas (nested arrays of objects with patterned, length-bounded
strings and enums) made ``bitmask`` raise "no token spells what must come next" partway through
a valid instance. The cause was the grammar output's string terminal for a pattern with length
bounds: the regex output narrows the pattern's unbounded parts to fit the bounds
(``[a-zA-Z0-9_.-]+`` within 3..255 characters became ``.{2,85}[...]{1,85}.{0,85}``), a regex so
ambiguous that llguidance's lexer ran out of fuel on it partway through a string; llguidance then
marks its shared lexer as failed, and no state of that grammar allows a token any more. The
grammar output now writes such strings as llguidance intersections (``&``), as llguidance's own
JSON-schema translation does.
"""

from __future__ import annotations

import json
import random

import jsonschema
import numpy as np
import pytest

import pse_processors as pse
from pse_processors.assets import load_tokenizer

# Shapes of botocore's DynamoDB shapes: unanchored patterns with length bounds, enums whose
# values share prefixes, keys that are prefixes of other keys ("Key", "KeyType", "KeySchema").
TABLE_NAME = {"type": "string", "minLength": 3, "maxLength": 255, "pattern": "[a-zA-Z0-9_.-]+"}
ATTRIBUTE_NAME = {"type": "string", "minLength": 1, "maxLength": 255}
KEY_SCHEMA = {"type": "array", "minItems": 1, "maxItems": 2, "items": {
    "type": "object", "properties": {"AttributeName": ATTRIBUTE_NAME, "KeyType": {"enum": ["HASH", "RANGE"]}},
    "required": ["AttributeName", "KeyType"], "additionalProperties": False}}
PROJECTION = {"type": "object", "properties": {
    "ProjectionType": {"enum": ["ALL", "KEYS_ONLY", "INCLUDE"]},
    "NonKeyAttributes": {"type": "array", "minItems": 1, "maxItems": 20, "items": ATTRIBUTE_NAME}},
    "additionalProperties": False}
CREATE_TABLE = {"type": "object", "properties": {
    "AttributeDefinitions": {"type": "array", "items": {"type": "object", "properties": {
        "AttributeName": ATTRIBUTE_NAME, "AttributeType": {"enum": ["S", "SS", "N", "NS", "B", "BS"]}},
        "required": ["AttributeName", "AttributeType"], "additionalProperties": False}},
    "TableName": TABLE_NAME,
    "KeySchema": KEY_SCHEMA,
    "GlobalSecondaryIndexes": {"type": "array", "items": {"type": "object", "properties": {
        "IndexName": TABLE_NAME, "KeySchema": KEY_SCHEMA, "Projection": PROJECTION},
        "required": ["IndexName", "KeySchema", "Projection"], "additionalProperties": False}},
    "BillingMode": {"enum": ["PROVISIONED", "PAY_PER_REQUEST"]},
    "Tags": {"type": "array", "items": {"type": "object", "properties": {
        "Key": {"type": "string", "minLength": 1, "maxLength": 128, "pattern": "[a-zA-Z0-9 _.:/=+@-]+"},
        "Value": {"type": "string", "maxLength": 256, "pattern": "^[a-zA-Z0-9 _.:/=+@-]*$"}},
        "required": ["Key", "Value"], "additionalProperties": False}},
}, "required": ["AttributeDefinitions", "TableName", "KeySchema"], "additionalProperties": False}
# The same shape with anchored patterns (one character class: no narrowing), optional members
# mixed with required ones, and an enum whose values are prefixes of each other.
ANCHORED = {"type": "object", "properties": {
    "Name": {"type": "string", "minLength": 3, "maxLength": 64, "pattern": "^[a-z0-9-]+$"},
    "Items": {"type": "array", "maxItems": 3, "items": {"type": "object", "properties": {
        "Mode": {"enum": ["KEYS", "KEYS_ONLY", "KEY"]},
        "Arn": {"type": "string", "minLength": 20, "maxLength": 80, "pattern": "^arn:aws:[a-z0-9-]+:[0-9]{12}$"},
        "Count": {"type": "integer", "minimum": 1, "maximum": 40000}},
        "required": ["Mode"], "additionalProperties": False}}},
    "required": ["Name"], "additionalProperties": False}


@pytest.fixture(scope="module")
def llama3():
    return pse.Vocabulary.from_tokenizer(load_tokenizer("llama3_1"))


def walk(matcher, vocabulary, rng: random.Random, steps: int, short: np.ndarray) -> tuple:
    """A random token path of at most ``steps`` tokens, mostly short tokens (long strings, many
    lexer states), ending at EOS with probability 1/10 once allowed. Every state's mask must allow a
    token or EOS: ``bitmask`` raises otherwise. Returns (the path, whether it ended at EOS)."""
    eos = set(vocabulary.eos_token_ids)
    state, path = matcher.initial_state, []
    for _ in range(steps):
        matcher.bitmask(state)
        allowed = matcher.allowed_token_ids(state).tolist()
        assert allowed, "a state with neither a token nor EOS"
        if eos & set(allowed) and (rng.random() < 0.1 or not set(allowed) - eos):
            return path, True
        text = [t for t in allowed if t not in eos]
        shorter = [t for t in text if short[t]]
        token = rng.choice(shorter if shorter and rng.random() < 0.7 else text)
        state = matcher.advance(state, token)
        assert state is not None, "an allowed token was rejected"
        path.append(token)
    return path, False


def test_create_table_walks_have_no_dead_end(llama3):
    matcher = pse.compile(CREATE_TABLE, llama3, backend="llguidance")
    short = np.array([b is not None and len(b) <= 3 for b in llama3.token_bytes])
    rng = random.Random(0)
    for _ in range(3):
        path, ended = walk(matcher, llama3, rng, 60, short)
        if ended:
            jsonschema.validate(json.loads(llama3.decode(path)), CREATE_TABLE)


def test_a_pattern_with_length_bounds_is_their_exact_intersection_on_llguidance():
    vocab = pse.Vocabulary([bytes([b]) for b in range(256)] + [None], eos_token_ids=[256])
    # Small bounds: the automaton of a narrowed pattern grows fast with them.
    name = {"type": "string", "minLength": 3, "maxLength": 20, "pattern": "[a-z]+"}
    schema = {"type": "object", "properties": {"t": name}, "required": ["t"]}
    grammar = pse.compile(schema, vocab, backend="llguidance")
    automaton = pse.compile(schema, vocab, backend="dfa")

    def accepts(matcher, text):
        return matcher.accepts(list(json.dumps({"t": text}).encode()) + [256])

    for text in ["abc", "a" * 18, "!!a", "x-y"]:
        assert accepts(grammar, text) and accepts(automaton, text), text
    for text in ["ab", "a" * 21, "!!!", "!! !"]:
        assert not accepts(grammar, text) and not accepts(automaton, text), text
    # The automaton's narrowed subset caps each unbounded part (at 6 characters here: at most 18
    # in all); llguidance's intersection has no such cap. Both are subsets of the valid strings.
    for text in ["a" * 20, "!" * 10 + "a"]:
        assert accepts(grammar, text) and not accepts(automaton, text), text
        jsonschema.validate(text, name)


@pytest.mark.parametrize("schema", [CREATE_TABLE, ANCHORED], ids=["create-table", "anchored"])
def test_random_walks_never_reach_a_state_without_a_token_or_eos(schema, llama3, smol_tokenizer):
    """The property: along random walks (several tokenizers, short-token biased), every state's
    mask allows a token or EOS, and every walk that ends is a valid instance."""
    for vocab in (llama3, pse.Vocabulary.from_tokenizer(smol_tokenizer)):
        matcher = pse.compile(schema, vocab, backend="llguidance")
        short = np.array([b is not None and len(b) <= 2 for b in vocab.token_bytes])
        rng = random.Random(1)
        for _ in range(3):
            path, ended = walk(matcher, vocab, rng, 40, short)
            if ended:
                jsonschema.validate(json.loads(vocab.decode(path)), schema)


def test_when_llguidance_gives_up_the_error_says_so(llama3):
    """The old narrowed terminal, written as a Grammar: llguidance runs out of lexer fuel within a
    few tokens. The error names llguidance's reason instead of blaming the tokenizer."""
    from pse_processors.json_schema.lark_emitter import lark_terminal
    from pse_processors.json_schema.patterns import translate_bounded

    narrowed = translate_bounded("[a-zA-Z0-9_.-]+", "#", 3, 255)
    matcher = pse.compile(pse.Grammar("start: " + lark_terminal('"' + narrowed + '"')), llama3)
    short = np.array([b is not None and len(b) <= 3 for b in llama3.token_bytes])
    rng = random.Random(0)
    with pytest.raises(pse.CompileLimitError, match="llguidance gave up on this grammar partway through a walk"):
        for _ in range(5):
            walk(matcher, llama3, rng, 60, short)
