"""``uniqueItems`` and ``dependentSchemas`` under generation (issue 26): a tiny random-weight Llama
sampling at temperature 1.5 through the torch processor, with beam search, and with one
processor reused across ``generate`` calls.

Every finished output must validate with jsonschema. The constructs must occur: arrays where
the grammar alone would have let an item repeat (a step whose mask the uniqueness check cut),
and objects with the dependency's key present and absent.
"""

from __future__ import annotations

import pytest
import torch

from pse_processors import PSELogitsProcessor
from pse_processors.matchers.unique_items import UniqueItemsMatcher
from tests.helpers import validate

PROMPTS = ["Give me JSON:", "Data", "[", "Here is the answer:"]

COLORS = {"type": "array", "items": {"enum": ["red", "green", "blue", "cyan", "pink", "gray", "teal", "navy"]},
          "uniqueItems": True, "minItems": 1}  # too many sequences to unroll: the check
DIGITS = {"type": "object", "properties": {"d": {"type": "array", "items": {"type": "integer", "minimum": 0, "maximum": 4},
                                                 "uniqueItems": True, "minItems": 2, "maxItems": 4}},
          "required": ["d"], "additionalProperties": False}
WORDS = {"type": "array", "items": {"type": "string", "maxLength": 2}, "uniqueItems": True, "minItems": 2, "maxItems": 5}
CARD = {
    "type": "object",
    "properties": {"name": {"type": "string", "maxLength": 4}, "card": {"type": "integer", "minimum": 0, "maximum": 9},
                   "billing": {"enum": ["home", "work"]}},
    "dependentSchemas": {"card": {"required": ["billing"]}},
    "additionalProperties": False,
}


class _Bias:
    """Adds ``bias`` to some tokens' logits, ahead of the constraint (which still decides)."""

    def __init__(self, token_ids, width: int, bias: float) -> None:
        self.add = torch.zeros(width)
        self.add[list(token_ids)] = bias

    def __call__(self, input_ids, scores):
        return scores + self.add


def _generate(model, tokenizer, processors, seed: int, max_new_tokens: int, **kwargs):
    torch.manual_seed(seed)
    rows = [tokenizer(p, add_special_tokens=False)["input_ids"] for p in PROMPTS]
    width = max(len(r) for r in rows)
    ids = torch.tensor([[0] * (width - len(r)) + r for r in rows])
    mask = torch.tensor([[0] * (width - len(r)) + [1] * len(r) for r in rows])
    out = model.generate(input_ids=ids, attention_mask=mask, logits_processor=processors, max_new_tokens=max_new_tokens,
                         pad_token_id=0, **kwargs)
    return out[:, width:].tolist()


def _finished(matcher, rows, with_ids: bool = False):
    """The finished outputs' texts (and ids); every cut-off row must still be a prefix the constraint allows."""
    eos = matcher.vocabulary.eos_token_ids
    texts = []
    for row in rows:
        end = next((i for i, t in enumerate(row) if t in eos), None)
        if end is None:
            assert matcher.walk(row) >= 0, f"a row left the constraint: {row}"
            continue
        assert matcher.accepts(row[: end + 1])
        text = matcher.vocabulary.decode(row[:end]).decode("utf-8")
        texts.append((text, row[:end]) if with_ids else text)
    return texts


def _repeats_cut(matcher: UniqueItemsMatcher, text_ids: list) -> int:
    """Steps along ``text_ids`` where the grammar allowed a token that the uniqueness check masked."""
    state, cut = matcher.initial_state, 0
    for token in text_ids:
        inner = matcher.inner.allowed_mask(matcher._inner_state[state])
        cut += int((inner & ~matcher.allowed_mask(state)).any())
        state = matcher.step(state, token)
    return cut


@pytest.mark.parametrize("schema", [COLORS, DIGITS, WORDS], ids=["enum", "integers", "strings"])
def test_unique_items_sampled(schema, smol_tokenizer, tiny_llama):
    torch.set_num_threads(1)
    processor = PSELogitsProcessor(schema, smol_tokenizer, generation_config=tiny_llama.generation_config)
    matcher = processor.matcher
    assert isinstance(matcher, UniqueItemsMatcher)
    vocabulary, width = matcher.vocabulary, tiny_llama.config.vocab_size
    # Toward separators, so that arrays get long enough for repeats to be candidates.
    bias = _Bias([i for i, b in enumerate(vocabulary.token_bytes) if b in (b",", b", ", b'","', b'", "')], width, 4.0)
    values, cut = [], 0
    for seed in range(4):
        rows = _generate(tiny_llama, smol_tokenizer, [bias, processor], seed, 48, do_sample=True, temperature=1.5, top_k=0)
        for text, text_ids in _finished(matcher, rows, with_ids=True):
            value = validate(schema, text)
            values.append(value)
            items = value if isinstance(value, list) else value["d"]
            if len(items) >= 2:
                cut += _repeats_cut(matcher, text_ids)
        processor.reset()
    assert len(values) >= 4, f"too few rows finished ({len(values)})"
    assert any(len(v if isinstance(v, list) else v["d"]) >= 2 for v in values), values
    assert cut > 0, f"no step where a repeat was a candidate: {values}"


def test_dependent_schemas_sampled(smol_tokenizer, tiny_llama):
    torch.set_num_threads(1)
    processor = PSELogitsProcessor(CARD, smol_tokenizer, generation_config=tiny_llama.generation_config)
    vocabulary = processor.matcher.vocabulary
    eos_bias = _Bias(vocabulary.eos_token_ids, tiny_llama.config.vocab_size, 6.0)
    values = []
    for seed in range(6):
        for text in _finished(processor.matcher, _generate(tiny_llama, smol_tokenizer, [eos_bias, processor], seed, 40,
                                                           do_sample=True, temperature=1.5, top_k=0)):
            values.append(validate(CARD, text))
        processor.reset()
    with_card = [v for v in values if "card" in v]
    assert with_card and all("billing" in v for v in with_card), values
    assert any("card" not in v for v in values), f"the dependency's key was never absent: {values}"


def test_unique_items_with_beam_search_and_reuse(smol_tokenizer, tiny_llama):
    """Beam search reorders rows, and one processor serves two generate calls without a reset:
    states are keyed by prefix, so every row stays exact."""
    torch.set_num_threads(1)
    processor = PSELogitsProcessor(DIGITS, smol_tokenizer, generation_config=tiny_llama.generation_config)
    matcher = processor.matcher
    ids = torch.tensor([smol_tokenizer("Digits:", add_special_tokens=False)["input_ids"]])
    out = tiny_llama.generate(input_ids=ids, logits_processor=[processor], num_beams=3, num_return_sequences=3,
                              do_sample=False, max_new_tokens=40, pad_token_id=0)
    rows = out[:, ids.shape[1]:].tolist()
    for text in _finished(matcher, rows):
        validate(DIGITS, text)
    assert len(set(map(tuple, rows))) == 3
    # The same processor again, without reset: sampled rows over the states beam search left.
    finished = []
    for seed in range(2):
        finished += _finished(matcher, _generate(tiny_llama, smol_tokenizer, [processor], seed, 40,
                                                 do_sample=True, temperature=1.5, top_k=0))
    assert finished, "no row finished"
    for text in finished:
        value = validate(DIGITS, text)
        assert len(set(value["d"])) == len(value["d"])
