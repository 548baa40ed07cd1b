"""End-to-end with the embedded real model, SmolLM2-135M-Instruct (kept short: CPU runs ~10 tok/s)."""

from __future__ import annotations

import json

import pytest
import torch

from pse_processors import PSELogitsProcessor, PyTorchAdapter, StructuringEngine
from pse_processors.cli import DEMO_SCHEMA, DEMO_TEXT, main
from tests.helpers import FUZZ_SCHEMAS, check_rows, left_padded, validate

pytestmark = pytest.mark.model


def chat(tokenizer, text):
    return tokenizer.apply_chat_template(
        [{"role": "user", "content": text}], add_generation_prompt=True, return_tensors="pt", return_dict=True
    )


def test_demo_extraction(smol_model, smol_tokenizer):
    engine = StructuringEngine.from_json_schema(DEMO_SCHEMA, adapter=PyTorchAdapter())
    inputs = chat(smol_tokenizer, DEMO_TEXT)
    out = engine.generate(smol_model, inputs["input_ids"], tokenizer=smol_tokenizer, do_sample=False, max_new_tokens=40)
    result = engine.parse(out)
    assert result["name"] == "John Smith"
    validate(DEMO_SCHEMA, json.dumps(result))


def test_cli_demo_prints_json(capsys, smol_dir):
    assert main(["demo"]) == 0
    printed = json.loads(capsys.readouterr().out)
    assert printed["name"] == "John Smith"


def test_pydantic_result(smol_model, smol_tokenizer):
    from pydantic import BaseModel, Field

    class Person(BaseModel):
        name: str = Field(max_length=40)
        is_developer: bool

    processor = PSELogitsProcessor(Person, smol_tokenizer, generation_config=smol_model.generation_config)
    inputs = chat(smol_tokenizer, "John Smith is a developer. Give his name and whether he is a developer, as JSON.")
    out = smol_model.generate(**inputs, logits_processor=[processor], max_new_tokens=30, do_sample=False)
    person = processor.parse(out[0], prompt_length=inputs["input_ids"].shape[1])
    assert isinstance(person, Person) and "John" in person.name


def test_sampling_twenty_schemas_temperature_1_5(smol_model, smol_tokenizer):
    torch.manual_seed(0)
    finished = 0
    assert len(FUZZ_SCHEMAS) >= 20
    for schema in FUZZ_SCHEMAS:
        processor = PSELogitsProcessor(schema, smol_tokenizer, generation_config=smol_model.generation_config)
        inputs = chat(smol_tokenizer, f"Reply with JSON matching this schema: {json.dumps(schema)}")
        out = smol_model.generate(
            **inputs, logits_processor=[processor], do_sample=True, temperature=1.5, top_k=0,
            max_new_tokens=40, pad_token_id=smol_tokenizer.pad_token_id,
        )
        finished += check_rows(processor, schema, out, inputs["input_ids"].shape[1], {smol_tokenizer.eos_token_id})
    assert finished >= len(FUZZ_SCHEMAS) * 3 // 4


def test_real_model_batch_beams_assisted_pipeline(smol_model, smol_tokenizer):
    """The generation modes once more, with real weights (short: CPU generation is slow)."""
    from transformers import pipeline


    schema = {
        "type": "object",
        "properties": {"city": {"type": "string", "maxLength": 12}, "sunny": {"type": "boolean"}},
        "required": ["city", "sunny"],
    }
    processor = PSELogitsProcessor(schema, smol_tokenizer, generation_config=smol_model.generation_config)
    eos = processor.matcher.vocabulary.eos_token_ids
    torch.manual_seed(1)
    texts = ["Weather in Paris as JSON:", "JSON:", "Describe the weather in Rome today, as JSON:", "Oslo:"]
    ids, mask = left_padded(smol_tokenizer, texts, pad_id=0)  # pad 0 != eos 2
    out = smol_model.generate(
        input_ids=ids, attention_mask=mask, logits_processor=[processor], do_sample=True, temperature=1.5,
        max_new_tokens=24, pad_token_id=0,
    )
    finished = check_rows(processor, schema, out, ids.shape[1], eos)
    inputs = chat(smol_tokenizer, "What is the weather in Paris? Answer as JSON.")
    length = inputs["input_ids"].shape[1]
    beams = smol_model.generate(
        **inputs, logits_processor=[processor], num_beams=3, num_return_sequences=3, max_new_tokens=24, do_sample=False,
    )
    finished += check_rows(processor, schema, beams, length, eos)
    assisted = smol_model.generate(
        **inputs, logits_processor=[processor], assistant_model=smol_model, max_new_tokens=24, do_sample=False,
    )
    finished += check_rows(processor, schema, assisted, length, eos)
    pipe = pipeline("text-generation", model=smol_model, tokenizer=smol_tokenizer)
    text = pipe("Weather report in JSON:", logits_processor=[processor], max_new_tokens=24, do_sample=True,
                temperature=1.5, return_full_text=False)[0]["generated_text"]
    validate(schema, text)
    assert finished >= 6
