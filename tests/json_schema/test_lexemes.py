"""Keywords enforced through llguidance's terminal algebra (``json_schema/lexemes.py``).

Each construct is checked three ways: hand-written token paths that break it are rejected at the
token that breaks it; instances that keep it are accepted; and a random-weight tiny model sampling
at temperature 1.5 produces outputs that exercise it, every finished one valid under jsonschema
(the test fails when no output exercises the construct).
"""

from __future__ import annotations

import json

import pytest
import torch

import pse_processors as pse
from pse_processors import PSELogitsProcessor, UnsupportedSchemaError
from pse_processors.json_schema import json_schema_to_grammar, json_schema_to_regex
from tests.helpers import PROMPTS, check_rows, left_padded, validate

ONE_OF_PATTERNS = {"type": "array", "maxItems": 3, "items": {
    "type": "string", "maxLength": 4, "oneOf": [{"pattern": "^a"}, {"pattern": "b"}]}}
BOTH_PATTERNS = {"type": "array", "maxItems": 3, "items": {
    "type": "string", "maxLength": 5, "allOf": [{"pattern": "^[a-c]+$"}, {"pattern": "c$"}]}}
NOT_LISTED = {"type": "array", "maxItems": 4, "items": {
    "type": "string", "pattern": "^[ab]{1,2}$", "not": {"enum": ["a", "ab"]}}}
# A pattern that also matches the declared name: its keys are the pattern's minus that name.
OTHER_KEYS = {"type": "object", "properties": {"xa": {"type": "integer"}},
              "patternProperties": {"^x.?$": {"type": "integer"}}, "additionalProperties": False}

# (schema, a valid instance's JSON text, an invalid text, the character where it goes wrong)
CASES = {
    "oneOf": (ONE_OF_PATTERNS, '["ax", "cb"]', '["ax", "ab"]', 8),
    "allOf": (BOTH_PATTERNS, '["abc", "c"]', '["abd"]', 4),
    "not enum": (NOT_LISTED, '["b", "ba", "bb"]', '["ab"]', 3),  # after "ab" only the closing quote fits: excluded
    "other keys": (OTHER_KEYS, '{"xa": 1, "x": 2, "xb": 3}', '{"xa": 1, "xb": true}', 16),
}


@pytest.fixture(scope="module")
def vocabulary(smol_tokenizer):
    return pse.Vocabulary.from_tokenizer(smol_tokenizer)


def _rejected_at(grammar, tokenizer, text: str):
    """(start, end) characters of the first token the grammar rejects, or None."""
    ids = tokenizer.encode(text, add_special_tokens=False)
    state, done = grammar.initial_state, ""
    for token in ids:
        piece = tokenizer.decode([token])
        state = grammar.advance(state, token)
        if state is None:
            return len(done), len(done) + len(piece)
        done += piece
    return None


@pytest.mark.parametrize("name", list(CASES))
def test_violations_rejected_at_their_token(name, smol_tokenizer, vocabulary):
    schema, valid, invalid, where = CASES[name]
    grammar = pse.compile(schema, vocabulary, backend="auto")
    assert grammar.backend == "llguidance"  # the byte automaton's language would differ
    validate(schema, valid)
    assert grammar.accepts(smol_tokenizer.encode(valid, add_special_tokens=False))
    with pytest.raises(Exception):
        validate(schema, invalid)
    span = _rejected_at(grammar, smol_tokenizer, invalid)
    assert span is not None and span[0] <= where < span[1], (span, where)


@pytest.mark.parametrize("name", list(CASES))
def test_refused_by_name_on_the_automaton(name, vocabulary):
    schema = CASES[name][0]
    if name == "other keys":  # the automaton generates a subset (keys matching a pattern only)
        assert json_schema_to_regex(schema)
        return
    with pytest.raises(UnsupportedSchemaError) as error:
        json_schema_to_regex(schema)
    assert error.value.pointer.startswith("#/items")


def _exercises(name: str, value) -> bool:
    if name == "other keys":
        return any(key != "xa" for key in value)
    return len(value) > 0


@pytest.mark.parametrize("name", list(CASES))
def test_sampling_exercises_the_construct(name, smol_tokenizer, tiny_llama):
    schema = CASES[name][0]
    grammar = pse.compile(schema, smol_tokenizer)
    processor = PSELogitsProcessor(grammar, generation_config=tiny_llama.generation_config)
    exercised = 0
    for seed in range(3):
        torch.manual_seed(seed)
        ids, mask = left_padded(smol_tokenizer, PROMPTS, pad_id=0)
        out = tiny_llama.generate(
            input_ids=ids, attention_mask=mask, logits_processor=[processor], do_sample=True,
            temperature=1.5, top_k=0, max_new_tokens=48, pad_token_id=0,
        )
        check_rows(processor, schema, out, ids.shape[1], grammar.vocabulary.eos_token_ids)
        for row in out[:, ids.shape[1]:]:
            text = smol_tokenizer.decode([t for t in row.tolist() if t not in grammar.vocabulary.eos_token_ids and t != 0])
            try:
                value = json.loads(text)
            except json.JSONDecodeError:
                continue  # unfinished (check_rows checked it is a valid prefix)
            exercised += _exercises(name, value)
    assert exercised, f"no sampled output exercised {name}"


def test_more_patterns_than_llguidance_can_derive_refused_by_name():
    words = ["customer", "maker", "operator", "admin", "designer"]
    schema = {"type": "string", "oneOf": [{"pattern": w} for w in words]}
    with pytest.raises(UnsupportedSchemaError, match="oneOf"):
        json_schema_to_grammar(schema)
