"""Structure inside free text end to end on the embedded SmolLM2 (torch, greedy): a tool call
with two tools, and a JSON answer after free reasoning text. Each output is checked with
jsonschema; the constructs must occur (a call, a reasoning block ended by its budget).

SmolLM2 has no tool-call or thinking tokens, so the markers are plain text spread over several
tokens. ``llama3_json`` with ``tool_choice="required"`` makes the reply the call itself; the
thinking budget (12 tokens) then ``</think>`` then the JSON answer bounds the second output.
"""

from __future__ import annotations

import json

import pytest

from tests.helpers import validate

pytestmark = pytest.mark.model

WEATHER = {"type": "object", "properties": {"city": {"type": "string", "maxLength": 20}}, "required": ["city"],
           "additionalProperties": False}
ADD = {"type": "object", "properties": {"a": {"type": "integer"}, "b": {"type": "integer"}}, "required": ["a", "b"],
       "additionalProperties": False}
TOOLS = [
    {"type": "function", "function": {"name": "get_weather", "description": "The weather in a city.", "parameters": WEATHER}},
    {"type": "function", "function": {"name": "add", "description": "Add two integers.", "parameters": ADD}},
]
PERSON = {"type": "object", "properties": {"name": {"type": "string", "maxLength": 20},
          "age": {"type": "integer", "minimum": 0, "maximum": 150}}, "required": ["name", "age"], "additionalProperties": False}


@pytest.fixture(scope="module")
def smollm2():
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from pse_processors.embedded import smollm2_dir

    torch.set_num_threads(1)
    folder = smollm2_dir()
    return AutoModelForCausalLM.from_pretrained(folder).eval(), AutoTokenizer.from_pretrained(folder)


def generate(model, tokenizer, constraint, message: str, max_new_tokens: int):
    import torch

    import pse_processors as pse

    processor = pse.PSELogitsProcessor(constraint, tokenizer, generation_config=model.generation_config)
    text = tokenizer.apply_chat_template([{"role": "user", "content": message}], add_generation_prompt=True, tokenize=False)
    inputs = tokenizer(text, return_tensors="pt", add_special_tokens=False)
    with torch.inference_mode():
        out = model.generate(**inputs, logits_processor=[processor], max_new_tokens=max_new_tokens, do_sample=False)
    length = inputs["input_ids"].shape[1]
    return processor.parse(out[0], prompt_length=length), tokenizer.decode(out[0][length:], skip_special_tokens=True)


def test_a_tool_call_with_two_tools(smollm2):
    import pse_processors as pse

    tools = pse.Tools(TOOLS, tool_choice="required", format="llama3_json", parallel=False)
    result, text = generate(*smollm2, tools, "What is the weather in Paris?", 40)
    [call] = result.tool_calls
    assert call.name in ("get_weather", "add")
    validate(WEATHER if call.name == "get_weather" else ADD, json.dumps(call.arguments))
    # Read back as Llama 3.1's own convention reads it: the reply is one JSON object.
    reply = json.loads(text)
    assert reply == {"name": call.name, "parameters": call.arguments}


def test_a_json_answer_after_reasoning_with_a_budget(smollm2):
    import pse_processors as pse

    constraint = pse.Reasoning(PERSON, max_tokens=12)  # text markers on SmolLM2
    result, text = generate(*smollm2, constraint, "Alice is 31 years old. Give her name and age as JSON.", 80)
    assert result.reasoning is not None and text.startswith("<think>") and "</think>" in text
    assert validate(PERSON, json.dumps(result.answer)) == result.answer
    assert json.loads(text.split("</think>", 1)[1]) == result.answer
