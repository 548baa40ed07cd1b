"""The grammar engine under generation: recursive schemas and Lark grammars, fuzzed by a tiny
random-weight Llama sampling at temperature 1.5 through the torch processor.

Every finished output must validate (jsonschema, or a Lark parser for grammars); recursive
outputs deeper than the byte automaton's old unroll depth must occur, and validate.
"""

from __future__ import annotations

import json

import pytest
import torch

from pse_processors import Grammar, PSELogitsProcessor
from tests.helpers import validate

PROMPTS = ["Give me JSON:", "Data", "{", "Here is the answer:"]

LINKED_LIST = {
    "type": "object",
    "properties": {
        "v": {"type": "integer", "minimum": 0, "maximum": 9},
        "next": {"anyOf": [{"$ref": "#"}, {"type": "null"}]},
    },
    "required": ["v", "next"],
}
TREE = {
    "$defs": {
        "node": {
            "type": "object",
            "properties": {
                "id": {"type": "integer", "minimum": 0, "maximum": 99},
                "children": {"type": "array", "items": {"$ref": "#/$defs/node"}, "maxItems": 2},
            },
            "required": ["id", "children"],
        }
    },
    "$ref": "#/$defs/node",
}
JSON_IN_JSON = {
    "type": "object",
    "properties": {"kind": {"enum": ["a", "b"]}, "payload": {}},
    "required": ["kind", "payload"],
}


def _depth(value) -> int:
    """Nesting depth of containers: a scalar is 0, ``[]`` and ``{}`` are 1."""
    if isinstance(value, dict):
        return 1 + max((_depth(v) for v in value.values()), default=0)
    if isinstance(value, list):
        return 1 + max((_depth(v) for v in value), default=0)
    return 0


class _Bias:
    """Adds ``bias`` to some tokens' logits, ahead of the constraint (which still decides)."""

    def __init__(self, token_ids, width: int, bias: float) -> None:
        self.add = torch.zeros(width)
        self.add[list(token_ids)] = bias

    def __call__(self, input_ids, scores):
        return scores + self.add


def _structure_bias(vocabulary, width: int) -> _Bias:
    """Toward tokens spelled only with brackets and commas: a random model otherwise almost
    always picks a scalar where any value is allowed."""
    return _Bias([i for i, b in enumerate(vocabulary.token_bytes) if b and set(b) <= set(b"[]{},")], width, 10.0)


def _eos_bias(vocabulary, width: int) -> _Bias:
    """Toward EOS: where a grammar may stop or go on, a random model almost never stops."""
    return _Bias(vocabulary.eos_token_ids, width, 8.0)


def _sample(model, tokenizer, processor, seed: int, max_new_tokens: int, bias=None):
    """Generate from every prompt; return the decoded finished outputs, checking the rest."""
    torch.manual_seed(seed)
    rows = [tokenizer(p, add_special_tokens=False)["input_ids"] for p in PROMPTS]
    width = max(len(r) for r in rows)
    ids = torch.tensor([[0] * (width - len(r)) + r for r in rows])
    mask = torch.tensor([[0] * (width - len(r)) + [1] * len(r) for r in rows])
    out = model.generate(
        input_ids=ids, attention_mask=mask, logits_processor=([bias] if bias else []) + [processor], do_sample=True,
        temperature=1.5,
        top_k=0, max_new_tokens=max_new_tokens, pad_token_id=0,
    )
    eos = processor.matcher.vocabulary.eos_token_ids
    texts = []
    for row in out[:, width:].tolist():
        end = next((i for i, t in enumerate(row) if t in eos), None)
        if end is None:  # cut off: still a prefix the grammar allows
            assert processor.matcher.walk(row) >= 0, f"a row left the grammar: {row}"
            continue
        assert processor.matcher.accepts(row[: end + 1])
        texts.append(processor.matcher.vocabulary.decode(row[:end]).decode("utf-8"))
    return texts


@pytest.mark.parametrize(
    "schema, depth_path",
    [(LINKED_LIST, "next"), (TREE, "children"), (JSON_IN_JSON, None)],
    ids=["linked_list", "tree", "json_in_json"],
)
def test_recursive_schemas_sampled(schema, depth_path, smol_tokenizer, tiny_llama):
    torch.set_num_threads(1)
    processor = PSELogitsProcessor(schema, smol_tokenizer, generation_config=tiny_llama.generation_config)
    assert processor.matcher.backend == "llguidance"  # backend="auto" picks it for recursion
    # Biased toward brackets for "any value" (see _StructureBias); the constraint still decides.
    bias = _structure_bias(processor.matcher.vocabulary, tiny_llama.config.vocab_size) if depth_path is None else None
    values = []
    for seed in range(6):
        for text in _sample(tiny_llama, smol_tokenizer, processor, seed, max_new_tokens=96, bias=bias):
            values.append(validate(schema, text))
        processor.reset()
    assert len(values) >= 4, f"too few rows finished ({len(values)})"
    deepest = max(_depth(v) for v in values)
    # The byte automaton unrolled $refs 3 deep (containers 4 deep for the tree) and nested
    # any value 2 deep; the grammar engine has no such limit.
    limit = 2 if depth_path is None else 3
    assert deepest > limit, f"no output deeper than {limit}: {values}"


ARITHMETIC = r"""
start: expr
expr: term (("+" | "-") term)*
term: factor (("*" | "/") factor)*
factor: NUMBER | "(" expr ")" | "-" factor
NUMBER: /[0-9]{1,3}/
"""

SQL = r"""
start: "SELECT " columns " FROM " NAME where? ";"
columns: "*" | NAME (", " NAME)*
where: " WHERE " condition ((" AND " | " OR ") condition)*
condition: NAME " " OP " " value
OP: "=" | "<" | ">" | "<=" | ">=" | "!="
value: NUMBER | STRING
NAME: /[a-z_][a-z0-9_]{0,7}/
NUMBER: /[0-9]{1,4}/
STRING: /'[a-z ]{0,8}'/
"""

JSON_GRAMMAR = r"""
start: value
value: object | array | STRING | NUMBER | "true" | "false" | "null"
object: "{" (pair ("," pair)*)? "}"
pair: STRING ":" value
array: "[" (value ("," value)*)? "]"
STRING: /"[a-z]{0,6}"/
NUMBER: /-?[0-9]{1,3}/
"""


@pytest.mark.parametrize("lark_text", [ARITHMETIC, SQL, JSON_GRAMMAR], ids=["arithmetic", "sql", "json"])
def test_lark_grammars_sampled_and_parsed(lark_text, smol_tokenizer, tiny_llama):
    lark = pytest.importorskip("lark")
    torch.set_num_threads(1)
    parser = lark.Lark(lark_text, start="start", parser="earley")
    processor = PSELogitsProcessor(Grammar(lark_text), smol_tokenizer, generation_config=tiny_llama.generation_config)
    bias = _eos_bias(processor.matcher.vocabulary, tiny_llama.config.vocab_size)
    finished = []
    for seed in range(4):
        finished += _sample(tiny_llama, smol_tokenizer, processor, seed, max_new_tokens=64, bias=bias)
        processor.reset()
    assert len(finished) >= 3, f"too few rows finished ({len(finished)})"
    assert len(set(finished)) >= 3, finished
    for text in finished:
        parser.parse(text)  # raises on any output outside the grammar
        if lark_text is JSON_GRAMMAR:
            json.loads(text)


def test_beam_search_keeps_prefix_states(smol_tokenizer, tiny_llama):
    """Beam search reorders rows: states are keyed by prefix, so every beam stays valid."""
    torch.set_num_threads(1)
    processor = PSELogitsProcessor(LINKED_LIST, smol_tokenizer, generation_config=tiny_llama.generation_config)
    ids = torch.tensor([smol_tokenizer("List:", add_special_tokens=False)["input_ids"]])
    out = tiny_llama.generate(
        input_ids=ids, logits_processor=[processor], num_beams=3, num_return_sequences=3, do_sample=False,
        max_new_tokens=40, pad_token_id=0,
    )
    for row in out[:, ids.shape[1]:].tolist():
        assert processor.matcher.walk(row) >= 0


def test_structuring_engine_from_grammar(smol_tokenizer, tiny_llama):
    lark = pytest.importorskip("lark")
    from pse_processors import StructuringEngine

    torch.set_num_threads(1)
    engine = StructuringEngine.from_grammar(JSON_GRAMMAR, tokenizer=smol_tokenizer)
    ids = torch.tensor([smol_tokenizer("JSON:", add_special_tokens=False)["input_ids"]] * 2)
    torch.manual_seed(0)
    out = engine.generate(
        tiny_llama, ids, do_sample=True, temperature=1.5, top_k=0, max_new_tokens=64,
        logits_processor=[_eos_bias(engine.matcher(smol_tokenizer).vocabulary, tiny_llama.config.vocab_size)],
    )
    parser = lark.Lark(JSON_GRAMMAR, start="start")
    parsed = 0
    for row in range(out.shape[0]):
        generated = out[row, ids.shape[1]:].tolist()
        if any(t in engine.matcher(smol_tokenizer).vocabulary.eos_token_ids for t in generated):
            text = engine.parse(out, row=row)
            parser.parse(text)
            json.loads(text)
            parsed += 1
    assert parsed >= 1
