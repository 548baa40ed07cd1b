"""The PyTorch processor's batch step: one gather from the mask table, masks identical to each row's own.

Rows in different states (distinct masks) and rows sharing a state (a broadcast mask) must both
come out as the scores plus each row's 0/-inf mask, in place or not, also when the table's byte
budget is smaller than the batch's masks. After ``backend="auto"``'s hand-off, a whole
``generate`` (beam search) walks the token trie on no caller's thread.
"""

from __future__ import annotations

import random
import threading
import uuid

import numpy as np
import pytest
import torch

import pse_processors as pse
from pse_processors import PSELogitsProcessor, defaults
from pse_processors.matchers import handoff
from pse_processors.vocabulary.token_trie import TokenTrie
from tests.helpers import check_rows

PERSON = {
    "type": "object",
    "properties": {"name": {"type": "string", "maxLength": 6}, "age": {"type": "integer"}, "admin": {"type": "boolean"}},
    "required": ["name", "age", "admin"],
    "additionalProperties": False,
}


def _paths(matcher, batch, steps, seed):
    """``batch`` random paths of ``steps`` allowed tokens (EOS left out until the text may end)."""
    rng = random.Random(seed)
    eos = matcher.vocabulary.eos_token_ids
    paths = []
    for _ in range(batch):
        state, ids = matcher.initial_state, []
        for _ in range(steps):
            allowed = [t for t in matcher.allowed_token_ids(state).tolist() if t not in eos] or sorted(eos)
            token = rng.choice(allowed)
            ids.append(token)
            state = matcher.advance(state, token)
        paths.append(ids)
    return paths


@pytest.mark.parametrize("inplace", [False, True])
@pytest.mark.parametrize("budget", [None, 3])
def test_batch_masks_are_each_rows_own(smol_tokenizer, monkeypatch, inplace, budget):
    if budget is not None:  # a table of 3 rows: rows are reused between and within calls
        monkeypatch.setattr(defaults, "DEVICE_MASK_CACHE_BYTES", budget * len(smol_tokenizer) * 4)
    matcher = pse.compile(PERSON, smol_tokenizer, backend="dfa")
    processor = PSELogitsProcessor(matcher, inplace=inplace)
    processor._contexts.clear()  # a fresh table under this budget
    width = len(smol_tokenizer)
    prompt = smol_tokenizer.encode("JSON:", add_special_tokens=False)
    distinct = 0
    for seed, batch in [(0, 8), (1, 8), (2, 1)]:
        paths = _paths(matcher, batch, 12, seed)
        if seed == 1:
            paths = [paths[0]] * batch  # one shared mask per step: the broadcast path
        processor.reset()
        for step in range(13):  # as generate calls it: every row one token longer each time
            ids = torch.tensor([prompt + path[:step] for path in paths])
            scores = torch.randn(batch, width)
            original = scores.clone()
            out = processor(ids, scores)
            states = [matcher.walk(path[:step]) for path in paths]
            distinct = max(distinct, len({matcher.mask_id(s) for s in states}))
            for row, state in enumerate(states):
                additive = np.where(matcher.allowed_mask(state, width), 0.0, -np.inf).astype(np.float32)
                assert torch.equal(out[row], original[row] + torch.from_numpy(additive))
            assert (out is scores) == inplace
    assert distinct > 3, "no call needed more masks than the budget"


def test_generate_after_the_handoff_walks_no_trie_on_the_callers_thread(monkeypatch, smol_tokenizer, tiny_llama):
    monkeypatch.setenv("PSE_PROCESSORS_CACHE_DIR", "off")
    walks: list[int] = []
    original = TokenTrie.node_states

    def recorded(self, next_state, state):
        walks.append(threading.get_ident())
        return original(self, next_state, state)

    monkeypatch.setattr(TokenTrie, "node_states", recorded)
    schema = dict(PERSON, properties=dict(PERSON["properties"], id={"const": str(uuid.uuid4())[:6]}))
    schema["required"] = [*PERSON["required"], "id"]
    processor = PSELogitsProcessor(schema, smol_tokenizer, generation_config=tiny_llama.generation_config)
    assert isinstance(processor.matcher, handoff.HandoffMatcher)
    processor.matcher.settled(timeout=120)
    assert walks and threading.get_ident() not in walks  # the builder thread walked, not this one
    inputs = smol_tokenizer(["JSON:", "A person:"], return_tensors="pt", padding=True)
    torch.manual_seed(0)
    out = tiny_llama.generate(**inputs, logits_processor=[processor], num_beams=2, num_return_sequences=2,
                              do_sample=True, temperature=1.5, max_new_tokens=40, pad_token_id=0)
    assert threading.get_ident() not in walks, "a mask of the built automaton walked the trie on the caller's thread"
    assert check_rows(processor, schema, out, inputs["input_ids"].shape[1], processor.matcher.vocabulary.eos_token_ids) >= 1
