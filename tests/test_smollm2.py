"""End-to-end with the embedded real model, SmolLM2-135M-Instruct (kept short: CPU runs ~10 tok/s)."""

from __future__ import annotations

import json

import pytest
import torch

from conftest import validate
from fuzz_schemas import FUZZ_SCHEMAS
from pse_processors import PSELogitsProcessor, PyTorchAdapter, StructuringEngine
from pse_processors.cli import DEMO_SCHEMA, DEMO_TEXT, main
from test_torch_generation import check_rows

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
