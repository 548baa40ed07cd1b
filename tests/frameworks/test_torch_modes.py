"""The PyTorch processor in every generation mode transformers offers, with random weights."""

from __future__ import annotations

import math

import pytest
import torch

from pse_processors import (
    ConstraintConflictError,
    InvalidLogitsError,
    PSELogitsProcessor,
    VocabularyError,
)
from tests.helpers import FUZZ_SCHEMAS, check_rows, left_padded, validate

PERSON = {
    "type": "object",
    "properties": {"name": {"type": "string", "maxLength": 5}, "admin": {"type": "boolean"}},
    "required": ["name", "admin"],
}


def prompt(tokenizer, text="JSON:"):
    return tokenizer(text, return_tensors="pt", add_special_tokens=False)


@pytest.mark.parametrize("schema_index", [0, 4, 5, 7, 12, 13, 16, 21])
def test_beam_search_three_beams(schema_index, smol_tokenizer, tiny_llama):
    schema = FUZZ_SCHEMAS[schema_index]
    processor = PSELogitsProcessor(schema, smol_tokenizer, generation_config=tiny_llama.generation_config)
    ids, mask = left_padded(smol_tokenizer, PROMPTS_2, pad_id=0)
    out = tiny_llama.generate(
        input_ids=ids, attention_mask=mask, logits_processor=[processor], num_beams=3,
        num_return_sequences=3, max_new_tokens=48, do_sample=False, pad_token_id=0,
    )
    assert out.shape[0] == 6
    finished = check_rows(processor, schema, out, ids.shape[1], processor.matcher.vocabulary.eos_token_ids)
    assert finished >= 2


PROMPTS_2 = ["JSON please:", "x"]


def test_beam_sampling(smol_tokenizer, tiny_llama):
    processor = PSELogitsProcessor(PERSON, smol_tokenizer, generation_config=tiny_llama.generation_config)
    torch.manual_seed(0)
    out = tiny_llama.generate(
        **prompt(smol_tokenizer), logits_processor=[processor], num_beams=3, do_sample=True, temperature=1.5,
        max_new_tokens=40, pad_token_id=0,
    )
    assert check_rows(processor, PERSON, out, 2, processor.matcher.vocabulary.eos_token_ids) == 1


def test_num_return_sequences_sampling(smol_tokenizer, tiny_gpt2):
    processor = PSELogitsProcessor(PERSON, smol_tokenizer, generation_config=tiny_gpt2.generation_config)
    torch.manual_seed(0)
    inputs = prompt(smol_tokenizer)
    out = tiny_gpt2.generate(
        **inputs, logits_processor=[processor], do_sample=True, temperature=1.5, num_return_sequences=5,
        max_new_tokens=40, pad_token_id=0,
    )
    assert check_rows(processor, PERSON, out, inputs["input_ids"].shape[1], {smol_tokenizer.eos_token_id}) >= 3


@pytest.mark.parametrize("do_sample", [False, True])
def test_assisted_generation(do_sample, smol_tokenizer, tiny_llama, tiny_llama_assistant):
    torch.manual_seed(3)
    for schema in (PERSON, FUZZ_SCHEMAS[11], FUZZ_SCHEMAS[17]):
        processor = PSELogitsProcessor(schema, smol_tokenizer, generation_config=tiny_llama.generation_config)
        inputs = prompt(smol_tokenizer, "Answer:")
        kwargs = {"temperature": 1.5} if do_sample else {}
        out = tiny_llama.generate(
            **inputs, logits_processor=[processor], assistant_model=tiny_llama_assistant, do_sample=do_sample,
            max_new_tokens=40, pad_token_id=0, **kwargs,
        )
        assert check_rows(processor, schema, out, inputs["input_ids"].shape[1], {smol_tokenizer.eos_token_id}) == 1


def test_pipeline(smol_tokenizer, tiny_llama):
    from transformers import pipeline

    pipe = pipeline("text-generation", model=tiny_llama, tokenizer=smol_tokenizer)
    processor = PSELogitsProcessor(PERSON, smol_tokenizer, generation_config=tiny_llama.generation_config)
    torch.manual_seed(0)
    for text in ["Person:", "Person: Bob", "Another person:", "Person:"]:  # prompts sharing prefixes
        result = pipe(
            text, logits_processor=[processor], max_new_tokens=40, do_sample=True, temperature=1.5,
            return_full_text=False, pad_token_id=0,
        )
        generated = result[0]["generated_text"]
        assert validate(PERSON, generated) == processor.parse(generated)


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16, torch.float32])
def test_low_precision_logits(dtype, smol_tokenizer, tiny_llama):
    processor = PSELogitsProcessor(PERSON, smol_tokenizer, generation_config=tiny_llama.generation_config)
    model = tiny_llama.to(dtype)
    try:
        torch.manual_seed(0)
        inputs = prompt(smol_tokenizer)
        out = model.generate(
            **inputs, logits_processor=[processor], do_sample=True, temperature=1.5, num_return_sequences=3,
            max_new_tokens=40, pad_token_id=0,
        )
        assert check_rows(processor, PERSON, out, 2, {smol_tokenizer.eos_token_id}) >= 1
        scores = torch.randn(2, model.config.vocab_size, dtype=dtype)
        processed = processor(inputs["input_ids"].repeat(2, 1), scores)
        assert processed.dtype == dtype
        allowed = torch.as_tensor(processor.matcher.allowed_token_ids(processor.matcher.initial_state).copy())
        assert torch.isfinite(processed[:, allowed]).all()
        assert int(torch.isfinite(processed[0]).sum()) == len(allowed)
    finally:
        tiny_llama.to(torch.float32)


def test_wider_logits_are_masked(smol_tokenizer, tiny_llama):
    processor = PSELogitsProcessor({"type": "string"}, smol_tokenizer)
    width = tiny_llama.config.vocab_size
    assert width > len(smol_tokenizer)
    processed = processor(torch.tensor([[5, 6]]), torch.zeros(1, width))
    assert torch.isinf(processed[0, len(smol_tokenizer):]).all()


def test_after_acceptance_only_eos(smol_tokenizer):
    processor = PSELogitsProcessor({"type": "boolean"}, smol_tokenizer)
    row = [7]  # the prompt; then feed the generated tokens one call at a time, as generate does
    for token in smol_tokenizer("true", add_special_tokens=False)["input_ids"] + [None]:
        processed = processor(torch.tensor([row]), torch.zeros(1, len(smol_tokenizer)))
        if token is not None:
            assert torch.isfinite(processed[0, token])
            row.append(token)
    assert torch.isfinite(processed[0]).nonzero().flatten().tolist() == [smol_tokenizer.eos_token_id]
    # After EOS, generate pads the row; the processor keeps allowing EOS only.
    for token in (2, 0):
        row.append(token)
        processed = processor(torch.tensor([row]), torch.zeros(1, len(smol_tokenizer)))
        assert torch.isfinite(processed[0]).nonzero().flatten().tolist() == [2]


def test_tokenizer_wider_than_logits(smol_tokenizer):
    processor = PSELogitsProcessor(PERSON, smol_tokenizer)
    with pytest.raises(VocabularyError, match="does not belong to this model"):
        processor(torch.tensor([[1, 2]]), torch.zeros(1, 1000))


def test_nan_logits(smol_tokenizer):
    processor = PSELogitsProcessor(PERSON, smol_tokenizer)
    scores = torch.full((1, len(smol_tokenizer)), math.nan)
    with pytest.raises(InvalidLogitsError, match="NaN"):
        processor(torch.tensor([[1, 2]]), scores)


def test_bad_shapes(smol_tokenizer):
    processor = PSELogitsProcessor(PERSON, smol_tokenizer)
    with pytest.raises(InvalidLogitsError, match="expected"):
        processor(torch.tensor([1, 2]), torch.zeros(len(smol_tokenizer)))
    with pytest.raises(InvalidLogitsError, match="floating-point"):
        processor(torch.tensor([[1, 2]]), torch.zeros(1, len(smol_tokenizer), dtype=torch.long))


def test_min_new_tokens_conflict(smol_tokenizer, tiny_llama):
    processor = PSELogitsProcessor({"type": "boolean"}, smol_tokenizer, generation_config=tiny_llama.generation_config)
    with pytest.raises(ConstraintConflictError, match="min_new_tokens"):
        tiny_llama.generate(
            **prompt(smol_tokenizer), logits_processor=[processor], min_new_tokens=10, max_new_tokens=20,
            pad_token_id=0, do_sample=False,
        )


def test_forced_eos_conflict(smol_tokenizer, tiny_llama):
    schema = {"type": "array", "items": {"type": "integer"}, "minItems": 20}
    processor = PSELogitsProcessor(schema, smol_tokenizer, generation_config=tiny_llama.generation_config)
    with pytest.raises(ConstraintConflictError, match="forced_eos_token_id"):
        tiny_llama.generate(
            **prompt(smol_tokenizer), logits_processor=[processor], forced_eos_token_id=2, max_new_tokens=5,
            pad_token_id=0, do_sample=False,
        )


def test_one_processor_in_several_threads(smol_tokenizer, tiny_llama):
    from concurrent.futures import ThreadPoolExecutor

    processor = PSELogitsProcessor(PERSON, smol_tokenizer, generation_config=tiny_llama.generation_config)

    def run(seed):
        torch.manual_seed(seed)
        inputs = prompt(smol_tokenizer, f"Person {seed}:")
        out = tiny_llama.generate(**inputs, logits_processor=[processor], do_sample=True, temperature=1.5,
                                  num_return_sequences=2, max_new_tokens=40, pad_token_id=0)
        return check_rows(processor, PERSON, out, inputs["input_ids"].shape[1], {smol_tokenizer.eos_token_id})

    with ThreadPoolExecutor(4) as pool:
        assert sum(pool.map(run, range(8))) >= 8
