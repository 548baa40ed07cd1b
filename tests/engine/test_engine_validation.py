"""Input validation at the engine and the adapters (issue 22): ``parse`` checks the constraint on
every path (engine, runners), a tokenizer that is not the model's is refused, bad constructor
arguments and bad sampled ids fail by name, and ``compile_model`` says what it is doing."""

from __future__ import annotations

import logging
import types

import numpy as np
import pytest
import torch

import pse_processors as pse
from pse_processors import (
    Choice, InvalidOutputError, PyTorchAdapter, Regex, StructuringEngine, VocabularyError,
)
from pse_processors.adapters import FrameworkAdapter
from pse_processors.assets import load_tokenizer

NAME = {"type": "object", "properties": {"name": {"type": "string"}}, "required": ["name"]}


# -- parse checks the constraint (item 2) ------------------------------------------------------


def test_engine_parse_checks_text(smol_tokenizer, tiny_llama):
    engine = StructuringEngine.from_choices(["yes", "no"], tokenizer=smol_tokenizer)
    assert engine.parse("yes") == "yes"  # before any generate: the engine's tokenizer
    for bad in ("maybe", ["no", "maybe"]):
        with pytest.raises(InvalidOutputError):
            engine.parse(bad, row=1 if isinstance(bad, list) else 0)
    schema = StructuringEngine.from_json_schema(NAME, tokenizer=smol_tokenizer)
    ids = smol_tokenizer("x", return_tensors="pt")["input_ids"]
    out = schema.generate(tiny_llama, ids, max_new_tokens=40, do_sample=True, temperature=1.5)
    texts = smol_tokenizer.batch_decode(out[:, ids.shape[1]:], skip_special_tokens=True)
    try:
        value = schema.parse(out)
    except InvalidOutputError:  # cut off by max_new_tokens: its text is refused alike
        with pytest.raises(InvalidOutputError):
            schema.parse(texts)
    else:
        assert schema.parse(texts) == value and isinstance(value["name"], str)
    with pytest.raises(InvalidOutputError):
        schema.parse('{"nom": 5}')
    fake = torch.tensor([ids[0].tolist() + smol_tokenizer.encode('{"nom": 5}') + [smol_tokenizer.eos_token_id]])
    with pytest.raises(InvalidOutputError):
        schema.parse(fake)  # ids the matcher rejects


def test_engine_parse_of_text_needs_a_matcher():
    with pytest.raises(RuntimeError, match="give the engine a tokenizer"):
        StructuringEngine.from_choices(["yes", "no"]).parse("yes")


def test_torch_runner_refuses_an_output_outside_the_constraint(tiny_model_dir, monkeypatch):
    from pse_processors.runners.base import RowError, Settings
    from pse_processors.runners.torch_runner import Runner

    runner = Runner(tiny_model_dir)
    prepared = runner.prepare(Choice(["yes", "no"]), pse.CompileOptions())
    for text, expected in (("maybe", RowError), ("no", str)):
        spelled = runner.tokenizer.encode(text, add_special_tokens=False) + [runner.tokenizer.eos_token_id]

        def generate(input_ids, **kwargs):  # what a model that ignored the processor would return
            return torch.cat([input_ids, torch.tensor([spelled] * input_ids.shape[0])], dim=1)

        monkeypatch.setattr(runner.model, "generate", generate)
        [result] = runner.generate(prepared, ["Yes or no?"], Settings(max_new_tokens=4))
        assert isinstance(result, expected), result


def test_mlx_runner_checks_the_text_it_parses():
    pytest.importorskip("mlx_lm")
    from pse_processors.runners.base import RowError, Settings
    from pse_processors.runners.mlx_runner import Runner
    from tests.helpers import smol_tokenizer_mlx

    runner = object.__new__(Runner)  # no model: mlx_lm.generate is replaced below
    runner.model, runner.tokenizer, runner.context_length = None, smol_tokenizer_mlx(), None
    import mlx.core as mx

    runner._mx = mx
    prepared = runner.prepare(Choice(["yes", "no"]), pse.CompileOptions())
    for text, expected in (("maybe", RowError), ("yes", str)):
        runner._mlx_lm = types.SimpleNamespace(generate=lambda *args, text=text, **kwargs: text)
        [result] = runner.generate(prepared, ["Yes or no?"], Settings(max_new_tokens=4))
        assert isinstance(result, expected), result


# -- a tokenizer that is not the model's (item 7) ------------------------------------------------


def test_another_models_tokenizer_is_refused_with_both_sizes(tiny_llama):
    llama2 = load_tokenizer("llama2")  # 32,000 tokens; tiny_llama has SmolLM2's 49,152 + 64 logits
    ids = torch.tensor([[1, 2, 3]])
    engine = StructuringEngine.from_regex("[0-9]{3}")
    with pytest.raises(VocabularyError, match=r"32000 tokens.*config\.vocab_size\) are 49216 wide"):
        engine.generate(tiny_llama, ids, tokenizer=llama2)
    processor = pse.PSELogitsProcessor(Regex("[0-9]{3}"), llama2)
    with pytest.raises(VocabularyError, match=r"32000 tokens but the logits are 49216 wide"):
        tiny_llama.generate(ids, logits_processor=[processor], max_new_tokens=2)
    qwen = load_tokenizer("qwen3")  # 151,669 tokens: wider than the model
    with pytest.raises(VocabularyError, match=r"151669 tokens.*only 49216 wide"):
        engine.generate(tiny_llama, ids, tokenizer=qwen)


def test_a_generation_config_that_names_text_tokens_is_refused(smol_tokenizer):
    from tests.helpers import tiny_llama_torch

    model = tiny_llama_torch(len(smol_tokenizer), seed=3, eos=smol_tokenizer.eos_token_id, pad=0)
    engine = StructuringEngine.from_regex("[0-9]{3}")
    ids = torch.tensor([[1, 2, 3]])
    model.generation_config.bos_token_id = 300  # an ordinary token of this tokenizer
    with pytest.raises(VocabularyError, match=r"generation_config\.bos_token_id is \[300\].*own bos_token_id 1"):
        engine.generate(model, ids, tokenizer=smol_tokenizer, max_new_tokens=2)
    model.generation_config.bos_token_id = [smol_tokenizer.bos_token_id, 300]  # its own among them: fine
    engine.generate(model, ids, tokenizer=smol_tokenizer, max_new_tokens=2)
    model.generation_config.bos_token_id = 3  # another special token: not a clear disagreement
    engine.generate(model, ids, tokenizer=smol_tokenizer, max_new_tokens=2)


@pytest.mark.parametrize("name, logits", [
    ("qwen3", 151_936), ("gemma3", 262_144), ("llama3_1", 128_256), ("llama2", 32_064), ("llama2", 32_000),
])
def test_real_models_padding_passes(name, logits):
    matcher = pse.compile(Regex("[0-9]"), load_tokenizer(name))
    matcher.check_logits_width(logits)  # Qwen3 pads 267 ids; Gemma-3's tokenizer has one more (special) id
    assert logits - matcher.vocab_size <= 1024


def test_the_mlx_adapter_refuses_another_tokenizer():
    pytest.importorskip("mlx_lm")
    import mlx.core as mx

    from pse_processors.adapters import MLXAdapter
    from tests.helpers import tiny_llama_mlx

    model = tiny_llama_mlx(49_152 + 64)
    engine = StructuringEngine.from_regex("[0-9]{3}", adapter=MLXAdapter())
    with pytest.raises(VocabularyError, match=r"32000 tokens.*args\.vocab_size\) are 49216 wide"):
        engine.generate(model, mx.array([[1, 2]]), tokenizer=load_tokenizer("llama2"))


# -- constructor arguments and sampled ids (item 8) -------------------------------------------


def test_engine_constructor_refuses_bad_arguments():
    for bad in (42, None, 3.5, [1]):
        with pytest.raises(TypeError, match="constraint must be"):
            StructuringEngine.from_json_schema(bad)
    with pytest.raises(TypeError, match="from_regex"):
        StructuringEngine.from_json_schema(Regex("a"))
    with pytest.raises(TypeError, match="Pydantic model class"):
        StructuringEngine.from_pydantic(NAME)
    with pytest.raises(pse.SchemaError):
        StructuringEngine.from_json_schema("not json")
    with pytest.raises(TypeError, match=r"adapter=PyTorchAdapter\(\)"):
        StructuringEngine.from_json_schema(NAME, adapter="torch")
    with pytest.raises(TypeError, match=r"an instance, adapter=PyTorchAdapter\(\)"):
        StructuringEngine(NAME, adapter=PyTorchAdapter)
    with pytest.raises(TypeError, match="adapter must be a FrameworkAdapter"):
        StructuringEngine(NAME, adapter=object())
    with pytest.raises(TypeError, match="options must be a CompileOptions"):
        StructuringEngine(NAME, options={"backend": "dfa"})


@pytest.mark.parametrize("kwargs, error, name", [
    ({"use_cache": "yes"}, TypeError, "use_cache"),
    ({"use_cache": 1}, TypeError, "use_cache"),
    ({"compile_model": "no"}, TypeError, "compile_model"),
    ({"compile_options": "fast"}, TypeError, "compile_options"),
    ({"compile_options": {"mdoe": "reduce-overhead"}}, TypeError, "mdoe"),
    ({"device": "nonsense"}, ValueError, "device"),
    ({"device": 2.5}, TypeError, "device"),
    ({"dtype": "float16"}, TypeError, "dtype"),
])
def test_pytorch_adapter_options_are_checked(kwargs, error, name):
    with pytest.raises(error, match=name):
        PyTorchAdapter(**kwargs)


def test_mlx_adapter_options_are_checked():
    pytest.importorskip("mlx_lm")
    from pse_processors.adapters import MLXAdapter

    with pytest.raises(TypeError, match="use_metal"):
        MLXAdapter(use_metal="yes")
    with pytest.raises(TypeError, match="optimize_graph"):
        MLXAdapter(optimize_graph=None)
    with pytest.raises(TypeError, match="dtype"):
        MLXAdapter(dtype="bfloat16")
    assert MLXAdapter(use_metal=False, optimize_graph=np.bool_(True)).optimize_graph is True


class SamplesAdapter(FrameworkAdapter):
    """A custom adapter whose sample_token returns what the test says."""

    def __init__(self, sampled):
        super().__init__()
        self.sampled = sampled

    def mask_logits(self, logits, mask_indices):
        masked = np.full_like(logits, -np.inf)
        masked[mask_indices] = logits[mask_indices]
        return masked

    def sample_token(self, logits, temperature=1.0):
        return self.sampled


@pytest.mark.parametrize("sampled, message", [
    (np.array([-1]), r"token id -1, outside the logits' ids 0\.\.8"),  # numpy would read the last column
    (np.array([9]), r"token id 9, outside"),
    (np.array([1.0]), "integer token ids"),
    (np.array([0, 0]), "2 ids for 1 rows"),
])
def test_custom_adapter_ids_outside_the_logits_are_refused(sampled, message):
    vocab = pse.Vocabulary([b"a", b"b", None, None, None, None, None, None, b"z"], eos_token_ids=[2])
    engine = StructuringEngine.from_regex("z?a", adapter=SamplesAdapter(sampled), tokenizer=vocab)

    def model(ids):
        return np.zeros((ids.shape[0], 9))

    with pytest.raises(InvalidOutputError, match=message):
        engine.generate(model, np.array([[0]]), tokenizer=vocab, max_new_tokens=3)


# -- compile_model says what it is doing (item 10) ---------------------------------------------


def test_compile_model_logs_before_and_after_the_first_call(smol_tokenizer, monkeypatch, caplog):
    from tests.helpers import tiny_llama_torch

    model = tiny_llama_torch(len(smol_tokenizer) + 64, seed=4, eos=smol_tokenizer.eos_token_id, pad=0)
    compiled = []
    monkeypatch.setattr(torch, "compile", lambda fn, **kwargs: compiled.append(kwargs) or fn)  # not minutes of inductor
    engine = StructuringEngine.from_regex("[0-9]{2}", adapter=PyTorchAdapter(compile_model=True), tokenizer=smol_tokenizer)
    ids = torch.tensor([[1, 2, 3]])
    with caplog.at_level(logging.INFO, logger="pse_processors.adapters.torch"):
        engine.generate(model, ids, max_new_tokens=3)
        engine.generate(model, ids, max_new_tokens=3)
    messages = [record.getMessage() for record in caplog.records if record.name == "pse_processors.adapters.torch"]
    assert compiled == [{"dynamic": True}]
    assert len(messages) == 2, messages  # the first call only
    assert "compiles LlamaForCausalLM's forward pass" in messages[0] and "minutes before the first token on a CPU" in messages[0]
    assert "the first compiled generate took" in messages[1]
