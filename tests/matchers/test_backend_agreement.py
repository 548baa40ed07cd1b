"""Both engines give identical masks on schemas both compile, along random valid token paths.

The grammar engine runs the compiler's grammar output, the byte automaton its regex output:
the same semantics, the same whitespace and order policies. Schemas whose language recurses
(any value, recursive $refs) differ by design (the automaton cuts them at a depth) and are
left out. Every token is compared, plane-16 characters included (test_plane16.py covers
every lead byte and plane).
"""

from __future__ import annotations

import random

import numpy as np
import pytest

import pse_processors as pse
from pse_processors.json_schema import json_schema_to_grammar
from tests.helpers import FUZZ_SCHEMAS

AGREEING = [s for s in FUZZ_SCHEMAS if not json_schema_to_grammar(s).recursive]
EXTRA = [
    {"type": "object", "properties": {"a": {"type": "integer"}, "b": {"type": "string", "maxLength": 3},
                                      "c": {"enum": ["x", "y"]}, "d": {"type": "boolean"}}},
    {"anyOf": [{"type": "object", "properties": {"k": {"const": 1}}, "required": ["k"]},
               {"type": "object", "properties": {"k": {"const": "1"}, "z": {"type": "null"}}, "required": ["k"]}]},
    {"type": "array", "items": {"type": "number", "minimum": -5, "maximum": 5}, "minItems": 1, "maxItems": 4},
]


def test_there_are_schemas_to_compare():
    assert len(AGREEING) >= 10


@pytest.mark.parametrize("schema", AGREEING + EXTRA, ids=lambda s: str(s)[:40])
def test_masks_agree_along_random_paths(schema, smol_tokenizer):
    vocab = pse.Vocabulary.from_tokenizer(smol_tokenizer)
    dfa = pse.compile(schema, vocab, backend="dfa")
    grammar = pse.compile(schema, vocab, backend="llguidance")
    rng = random.Random(0)
    for _ in range(4):
        a, b = dfa.initial_state, grammar.initial_state
        for step in range(60):
            mask_a, mask_b = dfa.allowed_mask(a), grammar.allowed_mask(b)
            if not (mask_a == mask_b).all():
                only_a = np.flatnonzero(mask_a & ~mask_b)[:5].tolist()
                only_b = np.flatnonzero(mask_b & ~mask_a)[:5].tolist()
                raise AssertionError(
                    f"masks differ after {step} tokens: dfa only {[vocab.token_bytes[i] for i in only_a]}, "
                    f"grammar only {[vocab.token_bytes[i] for i in only_b]}"
                )
            assert dfa.is_accepting(a) == grammar.is_accepting(b)
            # The packed bitmasks too (the grammar engine keeps them packed end to end).
            bits_b = np.unpackbits(grammar.bitmask(b).view(np.uint8), bitorder="little")[: vocab.size].astype(bool)
            assert (bits_b == mask_a).all()
            choices = np.flatnonzero(mask_a).tolist()
            token = rng.choice(choices)
            if token in vocab.eos_token_ids:
                break
            a, b = dfa.advance(a, token), grammar.advance(b, token)
            assert a is not None and b is not None
