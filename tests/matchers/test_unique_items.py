"""``uniqueItems`` on the grammar engine (matchers/unique_items.py): repeats rejected at the exact
token, paths that can still become distinct kept open, JSON equality, the scan against a
reference over random texts, and the refusal on the byte automaton."""

from __future__ import annotations

import json
import pickle
import random

import jsonschema
import pytest

import pse_processors as pse
from pse_processors.errors import UnsupportedSchemaError
from pse_processors.json_schema.unique_items import UniquePlan, canonical
from pse_processors.matchers.json_items import ItemScan
from pse_processors.matchers.unique_items import UniqueItemsMatcher

BYTES = pse.Vocabulary([bytes([b]) for b in range(256)] + [b'"a"', b'1,', b"1]", b"]]", None], eos_token_ids=[260])
EOS = 260
QUOTED_A, ONE_COMMA, ONE_CLOSE, CLOSE_CLOSE = 256, 257, 258, 259

STRINGS = {"type": "array", "items": {"type": "string"}, "uniqueItems": True}
NUMBERS = {"type": "array", "items": {"type": "number"}, "uniqueItems": True}
ANY = {"type": "array", "uniqueItems": True}
NESTED = {"type": "object", "properties": {"rows": {"type": "array", "uniqueItems": True,
                                                      "items": {"type": "array", "items": {"type": "integer"}}}}}
# Too many sequences to unroll (8 values): the check; its few values are tracked one by one.
ENUM = {"type": "array", "items": {"enum": ["x", "yy", 3, "a", "b", "c", "d", "e"]}, "uniqueItems": True}
SMALL_ENUM = {"type": "array", "items": {"enum": ["x", "yy", 3]}, "uniqueItems": True}


def ids(text: str) -> list:
    return list(text.encode())


def first_rejected(matcher, tokens: list) -> int:
    """The index of the first token the matcher rejects (len(tokens) if none); its mask agrees."""
    state = matcher.initial_state
    for i, token in enumerate(tokens):
        allowed = bool(matcher.allowed_mask(state)[token])
        following = matcher.advance(state, token)
        assert allowed == (following is not None), f"mask and step disagree at token {i}"
        if following is None:
            return i
        state = following
    return len(tokens)


@pytest.mark.parametrize("schema, text, at", [
    (STRINGS, '["a", "b", "a"]', len('["a", "b", "a')),  # the closing quote of the repeat
    (STRINGS, '["a", "ab", "a"]', len('["a", "ab", "a')),
    (NUMBERS, "[1, 2, 1.0]", len("[1, 2, 1.0")),  # 1 == 1.0: the "]" that ends it
    (NUMBERS, "[1, 2, 1e0,3]", len("[1, 2, 1e0")),
    (NUMBERS, "[-0, 0]", len("[-0, 0")),
    (ANY, '[{"a": 1, "b": [true]}, {"b": [true], "a": 1.0}]', len('[{"a": 1, "b": [true]}, {"b": [true], "a": 1.0')),
    (ANY, "[true, 1, true]", len("[true, 1, ")),  # true != 1; a second true is decided by its "t"
    (ANY, "[null, [], {}, []]", len("[null, [], {}, [")),
    (NESTED, '{"rows": [[1, 2], [2, 1], [1, 2]]}', len('{"rows": [[1, 2], [2, 1], [1, 2')),
    (ENUM, '["x", 3, "x"]', len('["x", 3, "')),  # few values: the used "x" cannot even start
    (SMALL_ENUM, '["x", 3, "x"]', len('["x", 3, "')),  # unrolled: an automaton of the distinct sequences
])
def test_a_repeat_is_rejected_at_its_exact_token(schema, text, at):
    matcher = pse.compile(schema, BYTES, additional_properties="spec")
    assert isinstance(matcher, UniqueItemsMatcher) == (schema is not SMALL_ENUM)
    value = json.loads(text)
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(value, schema)
    assert first_rejected(matcher, ids(text) + [EOS]) == at
    assert not matcher.accepts(ids(text) + [EOS])


@pytest.mark.parametrize("schema, text", [
    (STRINGS, '["a", "ab", "b", "ba"]'),
    (NUMBERS, "[1, 10, 1.5, -1, 100]"),
    (ANY, '[1, "1", true, [1], {"a": 1}, {"a": 2}, null, [1, 1]]'),  # items of items may repeat
    (NESTED, '{"rows": [[1, 2], [2, 1], [1], [1, 2, 1]]}'),
    (ENUM, '["yy", 3, "x", "e"]'),
])
def test_distinct_items_are_accepted(schema, text):
    jsonschema.validate(json.loads(text), schema)
    assert pse.compile(schema, BYTES, additional_properties="spec").accepts(ids(text) + [EOS])


def test_paths_that_can_still_differ_stay_open():
    matcher = pse.compile(NUMBERS, BYTES)
    state = matcher.walk(ids("[1, 2, 1"))
    mask = matcher.allowed_mask(state)
    assert mask[ord("0")] and mask[ord(".")] and mask[ord("e")]  # 10, 1.5, 1e3 still differ
    assert not mask[ord(",")] and not mask[ord("]")] and mask[ONE_COMMA]  # "11," differs
    strings = pse.compile(STRINGS, BYTES)
    assert strings.allowed_mask(strings.walk(ids('["a", "')))[ord("a")]  # "ab" may follow
    assert not strings.allowed_mask(strings.walk(ids('["a", ')))[QUOTED_A]
    state = strings.walk(ids('["a", "a'))
    assert strings.allowed_mask(state)[ord("b")] and not strings.allowed_mask(state)[ord('"')]


def test_multi_byte_tokens_are_checked_through():
    matcher = pse.compile({"type": "array", "items": {"type": "array", "items": {"type": "integer"}},
                           "uniqueItems": True}, BYTES)
    state = matcher.walk(ids("[[1],["))
    assert not matcher.allowed_mask(state)[ONE_CLOSE] and matcher.allowed_mask(state)[ONE_COMMA]
    nested = pse.compile({"type": "array", "items": {"type": "array", "items": {"type": "array"}},
                          "uniqueItems": True}, BYTES)
    assert not nested.allowed_mask(nested.walk(ids("[[[]],[[]")))[CLOSE_CLOSE]  # "]]" ends the repeat [[]]
    assert nested.allowed_mask(nested.walk(ids("[[[]],[[],[]")))[CLOSE_CLOSE]


def test_few_values_end_the_array_when_all_are_used():
    matcher = pse.compile(ENUM, BYTES)
    text = '["x", "yy", 3, "a", "b", "c", "d", "e"'
    state = matcher.walk(ids(text))
    mask = matcher.allowed_mask(state)
    assert mask[ord("]")] and not mask[ord(",")]  # no unused value is left for another item
    assert matcher.accepts(ids(text + "]") + [EOS])


@pytest.mark.parametrize("schema", [SMALL_ENUM, {"type": "array", "items": {"type": "boolean"}, "uniqueItems": True},
                                    {"type": "array", "items": {"enum": list("abcdefgh")}, "uniqueItems": True,
                                     "maxItems": 3}])
def test_few_sequences_are_unrolled_for_the_automaton(schema):
    """Items of a plain enum, const or boolean with at most 512 distinct sequences: an enum of
    arrays, exact on every back end, so the byte automaton (and TF/Flax) can run it."""
    from pse_processors.json_schema.unique_items import unrolled_sequences

    sequences = unrolled_sequences(schema, 0, schema.get("maxItems"))
    assert sequences and len({json.dumps(s) for s in sequences}) == len(sequences)
    for backend in ("dfa", "llguidance"):
        matcher = pse.compile(schema, BYTES, backend=backend)
        assert not isinstance(matcher, UniqueItemsMatcher)
        for sequence in sequences:
            assert matcher.accepts(ids(json.dumps(sequence)) + [EOS])
        repeat = [sequences[-1][0]] * 2
        assert not matcher.accepts(ids(json.dumps(repeat)) + [EOS])
    assert pse.compile(schema, BYTES, backend="dfa").dense_automaton is not None


def test_equality_is_json_equality():
    assert canonical(1) == canonical(1.0) == canonical(1e0) and canonical(True) != canonical(1)
    assert canonical({"a": [1, {"b": None}]}) == canonical({"a": [1.0, {"b": None}]})
    assert canonical([1, 2]) != canonical([2, 1]) and canonical("1") != canonical(1)


def _has_repeat(value) -> bool:
    if isinstance(value, list):
        keys = [canonical(v) for v in value]
        return len(set(keys)) < len(keys) or any(_has_repeat(v) for v in value)
    if isinstance(value, dict):
        return any(_has_repeat(v) for v in value.values())
    return False


def _random_value(rng: random.Random, depth: int):
    pick = rng.randrange(6 if depth < 2 else 4)
    if pick == 0:
        return rng.choice([0, 1, 1.0, -0.0, 2, 10])
    if pick == 1:
        return rng.choice(["a", "b", "ab", ""])
    if pick == 2:
        return rng.choice([True, False, None])
    if pick == 3:
        return rng.choice([1, "a", True])
    if pick == 4:
        return [_random_value(rng, depth + 1) for _ in range(rng.randrange(4))]
    return {k: _random_value(rng, depth + 1) for k in rng.sample("abc", rng.randrange(3))}


def test_the_scan_agrees_with_a_reference_on_random_texts():
    """Every array is unique (``{}`` items, ``uniqueItems`` at every level): the scan rejects a
    text exactly when some array in it repeats an item, wherever the text is cut into tokens."""
    schema = {"$defs": {"v": {"anyOf": [{"type": "array", "uniqueItems": True, "items": {"$ref": "#/$defs/v"}},
                                        {"type": "object", "additionalProperties": {"$ref": "#/$defs/v"}},
                                        {"type": ["string", "number", "boolean", "null"]}]}},
              "$ref": "#/$defs/v"}
    plan = UniquePlan(schema)
    rng = random.Random(0)
    repeats = 0
    for _ in range(400):
        value = [_random_value(rng, 0) for _ in range(rng.randrange(1, 5))]
        text = json.dumps(value, separators=rng.choice([(",", ":"), (", ", ": ")]))
        expected = _has_repeat(value)
        repeats += expected
        scan = ItemScan.start(plan)
        cut = 0
        while scan is not None and cut < len(text):
            step = rng.randrange(1, 5)
            scan = scan.advance(text[cut:cut + step].encode())
            cut += step
        assert (scan is None) == expected, text
    assert 50 <= repeats <= 350  # both kinds occur


def test_the_byte_automaton_refuses_it_by_name():
    with pytest.raises(UnsupportedSchemaError) as info:
        pse.compile(NESTED, BYTES, backend="dfa")
    assert info.value.keyword == "uniqueItems" and info.value.pointer == "#/properties/rows"
    matcher = pse.compile(NESTED, BYTES)  # auto: the grammar engine; the in-graph processors need an automaton
    with pytest.raises(UnsupportedSchemaError) as info:
        matcher.dense_automaton
    assert info.value.keyword == "uniqueItems" and info.value.pointer == "#/properties/rows"


def test_pickles_and_keeps_checking():
    matcher = pse.compile(STRINGS, BYTES)
    clone = pickle.loads(pickle.dumps(matcher))
    assert isinstance(clone, UniqueItemsMatcher)
    assert first_rejected(clone, ids('["a", "a"]')) == len('["a", "a')
