"""Generation fuzzing with tiny random-weight models: the constraint must hold in every mode.

Sampling at temperature 1.5 from random weights walks the automaton almost at random,
which makes these the best fuzzers we have. Every finished output must validate with
jsonschema; unfinished ones (max_new_tokens reached) must still be a valid prefix.
"""

from __future__ import annotations

import pytest
import torch

from conftest import validate
from fuzz_schemas import FUZZ_SCHEMAS
from pse_processors import InvalidOutputError, PSELogitsProcessor

PROMPTS = ["Give me JSON:", "Data", "Here is the answer in JSON format, nothing else:", "{"]


def left_padded(tokenizer, texts, pad_id):
    rows = [tokenizer(t, add_special_tokens=False)["input_ids"] for t in texts]
    width = max(len(r) for r in rows)
    ids = torch.tensor([[pad_id] * (width - len(r)) + r for r in rows])
    mask = torch.tensor([[0] * (width - len(r)) + [1] * len(r) for r in rows])
    return ids, mask


def check_rows(processor, schema, sequences, prompt_length, eos_ids):
    """Validate every finished row; return how many finished."""
    finished = 0
    for row in sequences:
        generated = row[prompt_length:].tolist()
        if any(t in eos_ids for t in generated):
            value = processor.parse(row, prompt_length=prompt_length)
            end = next(i for i, t in enumerate(generated) if t in eos_ids)
            text = processor.matcher.vocabulary.decode(generated[:end]).decode("utf-8")
            assert validate(schema, text) == value
            assert all(t in eos_ids or t == 0 for t in generated[end:]), "only EOS/pad after EOS"
            finished += 1
        else:
            # Cut off by max_new_tokens: a prefix of a valid output, never a rejected token.
            state = processor.matcher.walk(generated)
            assert state >= 0, f"row left the constraint: {generated}"
            with pytest.raises(InvalidOutputError):
                if not processor.matcher.is_accepting(state):
                    processor.parse(row, prompt_length=prompt_length)
                else:
                    raise InvalidOutputError("accepting but no EOS yet")
    return finished


@pytest.mark.parametrize("schema_index", range(len(FUZZ_SCHEMAS)))
def test_sampling_batch4_left_padding(schema_index, smol_tokenizer, tiny_llama):
    schema = FUZZ_SCHEMAS[schema_index]
    torch.manual_seed(schema_index)
    processor = PSELogitsProcessor(schema, smol_tokenizer, generation_config=tiny_llama.generation_config)
    ids, mask = left_padded(smol_tokenizer, PROMPTS, pad_id=0)  # pad (0) != eos (2)
    out = tiny_llama.generate(
        input_ids=ids, attention_mask=mask, logits_processor=[processor], do_sample=True,
        temperature=1.5, top_k=0, max_new_tokens=48, pad_token_id=0,
    )
    eos = processor.matcher.vocabulary.eos_token_ids
    finished = check_rows(processor, schema, out, ids.shape[1], eos)
    # Second generate call with the same processor object: state must restart cleanly.
    out2 = tiny_llama.generate(
        input_ids=ids[:2], attention_mask=mask[:2], logits_processor=[processor], do_sample=True,
        temperature=1.5, top_p=0.95, max_new_tokens=48, pad_token_id=0,
    )
    finished += check_rows(processor, schema, out2, ids.shape[1], eos)
    assert finished >= 1, "no row finished: the fuzz schema is too open for a random model"
