"""``generate``/``extract`` with ``--reasoning``, ``--delimited`` and ``--tools``, run as a user runs
them (subprocesses of ``python -m pse_processors``), on a tiny model sampling at temperature 1.5.

The model is a one-layer GPT-2 over SmolLM2's vocabulary whose final layer norm outputs a
constant: its next-token distribution is a fixed unigram that favours a few tokens (EOS, the
span markers ``<<``/``>>``, digits), so free text reaches the markers and ends within a few
dozen tokens and every construct occurs; inside them the constraint decides, as ever. Every
printed result is checked with jsonschema against the result's own schema, and the spans and
call arguments against theirs.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.apps.test_cli import cli
from tests.helpers import validate

ITEM = {"type": "object", "properties": {"n": {"type": "integer", "minimum": 0, "maximum": 99}}, "required": ["n"],
        "additionalProperties": False}
WEATHER = {"type": "object", "properties": {"city": {"enum": ["Paris", "Oslo"]}}, "required": ["city"],
           "additionalProperties": False}
ADD = {"type": "object", "properties": {"a": {"type": "integer", "minimum": 0, "maximum": 9},
       "b": {"type": "integer", "minimum": 0, "maximum": 9}}, "required": ["a", "b"], "additionalProperties": False}
TOOLS = [
    {"type": "function", "function": {"name": "get_weather", "parameters": WEATHER}},
    {"type": "function", "function": {"name": "add", "parameters": ADD}},
]
#: What ``generate`` prints for structure in free text.
RESULT = {
    "type": "object",
    "properties": {
        "reasoning": {"type": ["string", "null"]}, "text": {"type": "string"}, "spans": {"type": "array"},
        "tool_calls": {"type": "array", "items": {
            "type": "object", "properties": {"name": {"type": "string"}, "arguments": {"type": "object"}},
            "required": ["name", "arguments"], "additionalProperties": False,
        }},
        "answer": True,
        "segments": {"type": "array", "items": {"type": "object", "minProperties": 1, "maxProperties": 1,
                                                "propertyNames": {"enum": ["text", "span", "call"]}}},
    },
    "required": ["reasoning", "text", "spans", "tool_calls", "answer", "segments"],
    "additionalProperties": False,
}
SCHEMAS = {"get_weather": WEATHER, "add": ADD}
FAVOURED = ["<<", ">>", " ", "1", "2", "7"]


@pytest.fixture(scope="module")
def unigram_dir(tmp_path_factory, smol_tokenizer):
    """A one-layer GPT-2 whose logits do not depend on the input: EOS and :data:`FAVOURED` likely."""
    import torch
    from transformers import GPT2Config, GPT2LMHeadModel

    tokenizer = smol_tokenizer
    config = GPT2Config(vocab_size=len(tokenizer), n_positions=512, n_embd=16, n_layer=1, n_head=2,
                        bos_token_id=tokenizer.bos_token_id, eos_token_id=tokenizer.eos_token_id,
                        pad_token_id=tokenizer.pad_token_id, tie_word_embeddings=False)
    torch.manual_seed(0)
    model = GPT2LMHeadModel(config)
    logits = torch.full((len(tokenizer),), -4.0)
    for text in FAVOURED:
        [token] = tokenizer(text, add_special_tokens=False)["input_ids"]
        logits[token] = 6.0
    logits[tokenizer.eos_token_id] = 5.0
    with torch.no_grad():
        model.transformer.ln_f.weight.zero_()
        model.transformer.ln_f.bias.zero_()
        model.transformer.ln_f.bias[0] = 1.0
        model.lm_head.weight.zero_()
        model.lm_head.weight[:, 0] = logits
    folder = tmp_path_factory.mktemp("unigram-model")
    model.save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return folder


def run(tmp_path: Path, model: Path, *args: str, seed: int = 0):
    return cli(tmp_path, "generate", "--prompt", "Go.", "--model", str(model), "--temperature", "1.5",
               "--seed", str(seed), "--threads", "1", "-q", *args, timeout=300)


def printed(result) -> dict:
    assert result.returncode == 0, result.stderr
    return validate(RESULT, result.stdout)


def test_generate_with_reasoning_and_a_thinking_budget(tmp_path, unigram_dir):
    value = printed(run(tmp_path, unigram_dir, "--schema", json.dumps(ITEM), "--reasoning", "--think-budget", "6",
                        "--max-new-tokens", "40"))
    assert value["reasoning"] is not None
    validate(ITEM, json.dumps(value["answer"]))


def extract_values(tmp_path: Path, model: Path, rows: int, *args: str) -> list[dict]:
    """``extract`` over ``rows`` documents in one process; each record's value, checked against :data:`RESULT`."""
    source, target = tmp_path / "in.jsonl", tmp_path / "out.jsonl"
    source.write_text("".join(json.dumps({"text": f"doc {i}", "id": i}) + "\n" for i in range(rows)))
    result = cli(tmp_path, "extract", "--input", str(source), "--output", str(target), "--overwrite", "--model", str(model),
                 "--temperature", "1.5", "--seed", "1", "--threads", "1", "--batch-size", str(rows), "-q", *args, timeout=300)
    assert result.returncode == 0, result.stderr
    records = [json.loads(line) for line in target.read_text().splitlines()]
    assert [r["id"] for r in records] == list(range(rows))
    for record in records:
        assert "error" not in record, record
        validate(RESULT, json.dumps(record["value"]))
    return [record["value"] for record in records]


def test_extract_with_delimited_spans(tmp_path, unigram_dir):
    values = extract_values(tmp_path, unigram_dir, 4, "--schema", json.dumps(ITEM), "--delimited", "--span-start", "<<",
                            "--span-end", ">>", "--min-count", "1", "--max-count", "2", "--max-new-tokens", "80")
    for value in values:
        assert 1 <= len(value["spans"]) <= 2
        for span in value["spans"]:
            validate(ITEM, json.dumps(span))
        assert [s["span"] for s in value["segments"] if "span" in s] == value["spans"]


def test_tools_file_and_each_tool_choice(tmp_path, unigram_dir):
    (tmp_path / "tools.json").write_text(json.dumps({"tools": TOOLS}))
    common = ("--tools", "tools.json", "--tool-format", "llama3_json", "--max-new-tokens", "60")
    names = set()
    for value in extract_values(tmp_path, unigram_dir, 6, *common, "--tool-choice", "required", "--one-call"):
        [call] = value["tool_calls"]
        validate(SCHEMAS[call["name"]], json.dumps(call["arguments"]))
        names.add(call["name"])
    assert names == {"get_weather", "add"}, names
    value = printed(run(tmp_path, unigram_dir, *common, "--tool-choice", "add"))
    assert value["tool_calls"] and {c["name"] for c in value["tool_calls"]} == {"add"}
    for call in value["tool_calls"]:
        validate(ADD, json.dumps(call["arguments"]))
    value = printed(run(tmp_path, unigram_dir, *common, "--tool-choice", "none"))
    assert value["tool_calls"] == []
    # Reasoning(Tools(...)): think first, then the call.
    value = printed(run(tmp_path, unigram_dir, *common, "--tool-choice", "required", "--one-call", "--reasoning",
                           "--think-budget", "4"))
    assert value["reasoning"] is not None and value["tool_calls"]


@pytest.mark.parametrize("args, words", [
    (("--schema", "{}", "--think-budget", "8"), "--think-budget needs --reasoning"),
    (("--schema", "{}", "--reasoning", "--think-budget", "0"), "bad constraint"),
    (("--tools", "[{\"name\": \"f\", \"parameters\": {\"type\": \"object\"}}]", "--tool-choice", "g"), "tool_choice 'g'"),
    (("--tools", "[]"), "non-empty JSON list"),
    (("--tools", "missing.json"), "no such file"),
    (("--tools", "[{\"name\": \"f\", \"parameters\": {\"type\": \"object\"}}]", "--schema", "{}"), "--tools is the constraint"),
    (("--tools", "[{\"name\": \"f\", \"parameters\": {\"type\": \"object\"}}]", "--tool-format", "hermes",
      "--delimited"), "--delimited spans hold"),
    (("--tools", "[{\"name\": \"f\", \"parameters\": {\"type\": \"object\"}}]"), "format"),  # SmolLM2: no tool template
    (("--reasoning",), "give a constraint"),
])
def test_structure_usage_errors_exit_2(tmp_path, unigram_dir, args, words):
    result = run(tmp_path, unigram_dir, *args, "--max-new-tokens", "4")
    assert result.returncode == 2, (result.returncode, result.stderr)
    assert words in result.stderr and "Traceback" not in result.stderr, result.stderr


@pytest.mark.model
@pytest.mark.parametrize("framework", ["torch", "mlx"])
def test_a_tool_call_on_smollm2_with_each_framework(tmp_path, framework):
    """The embedded SmolLM2, greedy: the call validates and names one of the two tools (torch and mlx runners)."""
    if framework == "mlx":
        pytest.importorskip("mlx_lm")
    (tmp_path / "tools.json").write_text(json.dumps(TOOLS))
    result = cli(tmp_path, "generate", "--framework", framework, "--tools", "tools.json", "--tool-format", "llama3_json",
                 "--tool-choice", "required", "--one-call", "--prompt", "What is the weather in Paris?",
                 "--max-new-tokens", "40", "--threads", "1", "-q", timeout=600)
    value = printed(result)
    [call] = value["tool_calls"]
    validate(SCHEMAS[call["name"]], json.dumps(call["arguments"]))
    assert value["segments"] == [{"call": call}]
