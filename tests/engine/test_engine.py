"""The Proxy Structuring Engine API: StructuringEngine + PyTorchAdapter over native generate."""

from __future__ import annotations

import pytest
import torch

from pse_processors import PyTorchAdapter, StructuringEngine
from tests.helpers import validate

SCHEMA = {"type": "object", "properties": {"ok": {"type": "boolean"}, "n": {"type": "string", "maxLength": 3}}, "required": ["ok", "n"]}


def test_from_json_schema_generate_and_parse(smol_tokenizer, tiny_llama):
    engine = StructuringEngine.from_json_schema(SCHEMA, adapter=PyTorchAdapter(device="cpu"))
    torch.manual_seed(0)
    ids = smol_tokenizer("Output:", return_tensors="pt")["input_ids"]
    out = engine.generate(tiny_llama, ids, tokenizer=smol_tokenizer, do_sample=True, temperature=1.5, num_return_sequences=3)
    assert out.shape[0] == 3
    for row in range(3):
        value = engine.parse(out, row=row)
        validate(SCHEMA, __import__("json").dumps(value))


def test_regex_choice_and_pydantic_engines(smol_tokenizer, tiny_llama):
    from pydantic import BaseModel, Field

    class Item(BaseModel):
        sku: str = Field(max_length=4)
        qty: bool

    ids = smol_tokenizer("x", return_tensors="pt")["input_ids"]
    regex = StructuringEngine.from_regex(r"[0-9]{3}-[a-z]{2}", tokenizer=smol_tokenizer)
    import re

    assert re.fullmatch(r"[0-9]{3}-[a-z]{2}", regex.parse(regex.generate(tiny_llama, ids)))
    choices = StructuringEngine.from_choices(["alpha", "beta", "gamma"], tokenizer=smol_tokenizer)
    assert choices.parse(choices.generate(tiny_llama, ids, do_sample=True)) in {"alpha", "beta", "gamma"}
    pyd = StructuringEngine.from_pydantic(Item, tokenizer=smol_tokenizer)
    item = pyd.parse(pyd.generate(tiny_llama, ids[0].tolist(), do_sample=True, temperature=1.5))
    assert isinstance(item, Item)


def test_engine_needs_a_tokenizer(tiny_llama):
    engine = StructuringEngine.from_json_schema(SCHEMA)
    with pytest.raises(TypeError, match="pass tokenizer="):
        engine.generate(tiny_llama, [[1, 2]])
    with pytest.raises(RuntimeError, match="call generate"):
        engine.parse(torch.tensor([[1]]))


def test_engine_rejects_bad_input_shape(smol_tokenizer, tiny_llama):
    engine = StructuringEngine.from_json_schema(SCHEMA, tokenizer=smol_tokenizer)
    with pytest.raises(ValueError, match=r"input_ids must be \[batch, length\]"):
        engine.generate(tiny_llama, torch.zeros(1, 1, 2, dtype=torch.long))


def test_inplace_only_when_raw_logits_are_not_returned(smol_tokenizer, tiny_llama):
    engine = StructuringEngine.from_json_schema(SCHEMA, tokenizer=smol_tokenizer)
    ids = smol_tokenizer("x", return_tensors="pt")["input_ids"]
    engine.generate(tiny_llama, ids, max_new_tokens=4)
    assert engine.last_generation.processor.inplace
    out = engine.generate(tiny_llama, ids, max_new_tokens=4, output_logits=True, output_scores=True, return_dict_in_generate=True)
    assert not engine.last_generation.processor.inplace
    # The raw logits stay raw: the constraint's -inf shows only in the processed scores.
    assert torch.isfinite(out.logits[0]).all() and not torch.isfinite(out.scores[0]).all()


def test_inplace_processor_masks_like_the_default(smol_tokenizer):
    from pse_processors import PSELogitsProcessor

    default = PSELogitsProcessor(SCHEMA, smol_tokenizer)
    inplace = PSELogitsProcessor(default.matcher, inplace=True)
    scores = torch.randn(2, len(smol_tokenizer))
    ids = torch.tensor([[5, 6], [5, 7]])
    expected = default(ids, scores)
    assert torch.isfinite(scores).all()  # the default leaves its input alone
    result = inplace(ids, scores)
    assert result is scores and torch.equal(result, expected)


LIST = {"$defs": {"cell": {"type": "object", "properties": {"v": {"type": "integer"}, "next": {"$ref": "#/$defs/cell"}},
                           "required": ["v"]}}, "$ref": "#/$defs/cell"}


class TablesAdapter:
    """A custom adapter that needs whole tables, as the TF and JAX adapters do (``backend = "dfa"``)."""

    @staticmethod
    def make(**class_attributes):
        from pse_processors.adapters import FrameworkAdapter

        def refuse(*args, **kwargs):
            raise AssertionError("not called: only the matcher is compiled")

        return type("TablesAdapter", (FrameworkAdapter,), {"mask_logits": refuse, "sample_token": refuse, **class_attributes})


def test_the_adapter_chooses_the_back_end(smol_tokenizer):
    """A recursive schema runs on llguidance, unless the adapter needs whole tables; an explicit backend= wins."""
    adapter = TablesAdapter.make(backend="dfa")()
    assert StructuringEngine.from_json_schema(LIST).matcher(smol_tokenizer).backend == "llguidance"
    assert StructuringEngine.from_json_schema(LIST, adapter=adapter).matcher(smol_tokenizer).backend == "dfa"
    explicit = StructuringEngine.from_json_schema(LIST, adapter=adapter, backend="llguidance")
    assert explicit.matcher(smol_tokenizer).backend == "llguidance"


def test_the_0_1_names_still_work_and_warn(smol_tokenizer):
    """engine=, "grammar", grammar_engine, engine.grammar(), processor.grammar and matcher.engine: each
    answers as before, with a DeprecationWarning that names its new spelling."""
    from pse_processors import PSELogitsProcessor

    with pytest.warns(DeprecationWarning, match="set backend = 'dfa'"):
        adapter = TablesAdapter.make(grammar_engine="dfa")()
    assert adapter.backend == "dfa"
    with pytest.warns(DeprecationWarning, match="use backend"):
        assert adapter.grammar_engine == "dfa"
    with pytest.warns(DeprecationWarning, match="engine='grammar' is deprecated: use backend='llguidance'") as caught:
        engine = StructuringEngine.from_json_schema(LIST, engine="grammar")
    assert len(caught) == 1 and caught[0].filename == __file__  # one warning, pointing at the caller's line
    with pytest.warns(DeprecationWarning, match=r"use \.matcher\(\)"):
        matcher = engine.grammar(smol_tokenizer)
    assert matcher is engine.matcher(smol_tokenizer)
    with pytest.warns(DeprecationWarning, match="Matcher.backend"):
        assert matcher.engine == "grammar"
    processor = PSELogitsProcessor(matcher)
    with pytest.warns(DeprecationWarning, match="use .matcher"):
        assert processor.grammar is matcher
    with pytest.warns(DeprecationWarning, match="use .options"):
        assert engine.compile_options["backend"] == "llguidance"
