"""The seed page's PyTorch and custom-adapter snippets, as written, with local models.

The page (framework-adapters.md) loads hub models; here SmolLM2 stands in for the basic usage
and tiny random-weight Llamas for the options. Every decoded output is validated with jsonschema.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from tests.helpers import check_engine_rows, structured_part, tiny_llama_torch, validate

SCHEMA = {"type": "object", "properties": {"name": {"type": "string"}}}
SMALL = {"type": "object", "properties": {"ok": {"type": "boolean"}, "n": {"type": "string", "maxLength": 3}},
         "required": ["ok", "n"]}
PROMPT = "Extract a name from this text: John Smith is a developer."


@pytest.mark.model
def test_pytorch_basic_usage_as_on_the_page(smol_dir):
    from proxy_structuring_engine import StructuringEngine, Schema  # noqa: F401 - the page's import line
    from proxy_structuring_engine.adapters import PyTorchAdapter
    import torch  # noqa: F401
    from transformers import AutoModelForCausalLM, AutoTokenizer

    # Load model
    model = AutoModelForCausalLM.from_pretrained(smol_dir)
    tokenizer = AutoTokenizer.from_pretrained(smol_dir)

    # Define schema
    schema = {"type": "object", "properties": {"name": {"type": "string"}}}

    # Create adapter and engine
    adapter = PyTorchAdapter()
    engine = StructuringEngine.from_json_schema(schema, adapter=adapter)

    # Generate structured output (no tokenizer argument: the engine loads the model's own)
    input_ids = tokenizer.encode("Extract a name from this text: John Smith is a developer.", return_tensors="pt")
    outputs = engine.generate(model, input_ids)
    result = tokenizer.decode(outputs[0])
    assert validate(schema, structured_part(result, PROMPT, tokenizer)) == {"name": "John Smith"}
    assert engine.parse(outputs) == {"name": "John Smith"}


class Seen:
    """What the model produced (forward hook) and what the logits processors receive (one more processor)."""

    def __init__(self, model) -> None:
        self.logits: set = set()
        self.scores: set = set()
        model.register_forward_hook(lambda module, args, out: self.logits.add((out.logits.device.type, out.logits.dtype)))

    def __call__(self, input_ids, scores):
        self.scores.add((scores.device.type, scores.dtype))
        return scores


def _sample(engine, model, tokenizer, **kwargs):
    ids = tokenizer(["Output:", "JSON please"], return_tensors="pt", padding=True)
    kwargs = {"do_sample": True, "temperature": 1.5, "max_new_tokens": 24, **kwargs}
    return engine.generate(model, ids["input_ids"], attention_mask=ids["attention_mask"], **kwargs), ids["input_ids"].shape[1]


def _check_rows(engine, outputs, rows: int, schema=SMALL) -> int:
    return check_engine_rows(engine, outputs, rows, schema)


@pytest.fixture(scope="module")
def left_tokenizer(smol_tokenizer):
    import copy

    tok = copy.deepcopy(smol_tokenizer)
    tok.padding_side = "left"
    return tok


@pytest.mark.parametrize("dtype", [torch.float32, torch.float16, torch.bfloat16])
def test_pytorch_dtypes_reach_the_processor(left_tokenizer, dtype):
    from proxy_structuring_engine import StructuringEngine
    from proxy_structuring_engine.adapters import PyTorchAdapter

    model = tiny_llama_torch(len(left_tokenizer) + 64, seed=0, eos=left_tokenizer.eos_token_id, pad=0)
    seen = Seen(model)
    engine = StructuringEngine.from_json_schema(SMALL, adapter=PyTorchAdapter(dtype=dtype), tokenizer=left_tokenizer)
    torch.manual_seed(0)
    outputs, _ = _sample(engine, model, left_tokenizer, num_return_sequences=2, logits_processor=[seen])
    assert _check_rows(engine, outputs, 4) >= 1
    assert seen.logits == {("cpu", dtype)}  # the model ran in dtype...
    assert seen.scores == {("cpu", torch.float32)}  # ...and transformers 5 upcasts the logits before processors


def test_pytorch_specific_options_as_on_the_page(left_tokenizer):
    from proxy_structuring_engine import StructuringEngine
    from proxy_structuring_engine.adapters import PyTorchAdapter

    # Configure device placement
    adapter = PyTorchAdapter(device="cuda:0")
    assert adapter.device == torch.device("cuda:0")
    # Use BFloat16 precision
    adapter = PyTorchAdapter(dtype=torch.bfloat16)
    # Configure custom options (on the CPU when no GPU is here)
    device = "cuda:0" if torch.cuda.is_available() else "cpu"
    adapter = PyTorchAdapter(
        device=device,
        dtype=torch.float16,
        use_cache=True,
        compile_model=False,  # Use torch.compile for additional speedup (requires PyTorch 2.0+)
    )
    model = tiny_llama_torch(len(left_tokenizer) + 64, seed=0, eos=left_tokenizer.eos_token_id, pad=0)
    seen = Seen(model)
    engine = StructuringEngine.from_json_schema(SMALL, adapter=adapter, tokenizer=left_tokenizer)
    torch.manual_seed(1)
    outputs, _ = _sample(engine, model, left_tokenizer, logits_processor=[seen])
    kind = torch.device(device).type
    assert outputs.device.type == kind
    assert _check_rows(engine, outputs.cpu(), 2) >= 1
    assert seen.logits == {(kind, torch.float16)} and seen.scores == {(kind, torch.float32)}


def test_use_cache_reaches_the_model(smol_tokenizer):
    from proxy_structuring_engine import StructuringEngine
    from proxy_structuring_engine.adapters import PyTorchAdapter

    model = tiny_llama_torch(len(smol_tokenizer) + 64, seed=0, eos=smol_tokenizer.eos_token_id, pad=0)
    seen = []
    forward = model.forward
    model.forward = lambda *a, **k: seen.append(k.get("use_cache")) or forward(*a, **k)
    ids = smol_tokenizer("Output:", return_tensors="pt")["input_ids"]
    for use_cache in (False, True):
        seen.clear()
        engine = StructuringEngine.from_json_schema(SMALL, adapter=PyTorchAdapter(use_cache=use_cache), tokenizer=smol_tokenizer)
        engine.generate(model, ids, max_new_tokens=3)
        assert seen and set(seen) == {use_cache}


def test_compile_model_runs_the_forward_under_torch_compile(smol_tokenizer):
    """The default inductor backend takes minutes here; dynamo's capture is the same with "eager"."""
    import torch._dynamo

    from proxy_structuring_engine import StructuringEngine
    from proxy_structuring_engine.adapters import PyTorchAdapter

    torch._dynamo.reset()
    torch._dynamo.utils.counters.clear()
    model = tiny_llama_torch(len(smol_tokenizer) + 64, seed=0, eos=smol_tokenizer.eos_token_id, pad=0)
    adapter = PyTorchAdapter(compile_model=True, compile_options={"backend": "eager"})
    engine = StructuringEngine.from_json_schema(SMALL, adapter=adapter, tokenizer=smol_tokenizer)
    ids = smol_tokenizer("Output:", return_tensors="pt")["input_ids"]
    torch.manual_seed(2)
    outputs = engine.generate(model, ids, do_sample=True, temperature=1.5, max_new_tokens=24, num_return_sequences=2)
    assert hasattr(model.forward, "_torchdynamo_orig_callable"), "forward is not torch.compile's wrapper"
    assert torch._dynamo.utils.counters["stats"]["unique_graphs"] >= 1
    assert torch._dynamo.utils.counters["frames"]["ok"] >= 1
    _check_rows(engine, outputs, 2)
    compiled = model.forward
    engine.generate(model, ids, max_new_tokens=4)
    assert model.forward is compiled, "compiled twice"


# The issue names torch.ao's quantize_dynamic, which torch 2.13 deprecates (in favour of torchao)
# with warnings of its own: they are torch's, not ours.
@pytest.mark.filterwarnings("ignore::DeprecationWarning:torch", "ignore:torch.ao.quantization is deprecated",
                            "ignore:torch.quantize_per_tensor")
def test_int8_dynamic_quantization(smol_tokenizer):
    from proxy_structuring_engine import StructuringEngine
    from proxy_structuring_engine.adapters import PyTorchAdapter

    model = tiny_llama_torch(len(smol_tokenizer) + 64, seed=0, eos=smol_tokenizer.eos_token_id, pad=0)
    quantized = torch.ao.quantization.quantize_dynamic(model, {torch.nn.Linear}, dtype=torch.qint8)
    assert "quantized" in type(quantized.model.layers[0].mlp.up_proj).__module__
    engine = StructuringEngine.from_json_schema(SMALL, adapter=PyTorchAdapter(), tokenizer=smol_tokenizer)
    ids = smol_tokenizer("Output:", return_tensors="pt")["input_ids"]
    torch.manual_seed(3)
    outputs = engine.generate(quantized, ids, do_sample=True, temperature=1.5, max_new_tokens=24, num_return_sequences=4)
    assert _check_rows(engine, outputs, 4) >= 1


def test_speculative_decoding_with_an_assistant_model(smol_tokenizer, tiny_llama, tiny_llama_assistant):
    from proxy_structuring_engine import StructuringEngine
    from proxy_structuring_engine.adapters import PyTorchAdapter

    engine = StructuringEngine.from_json_schema(SMALL, adapter=PyTorchAdapter(), tokenizer=smol_tokenizer)
    ids = smol_tokenizer("Output:", return_tensors="pt")["input_ids"]
    plain = engine.generate(tiny_llama, ids, max_new_tokens=24)
    assisted = engine.generate(tiny_llama, ids, max_new_tokens=24, assistant_model=tiny_llama_assistant)
    assert torch.equal(plain, assisted)  # greedy: the assistant changes the speed, not the output
    assert _check_rows(engine, assisted, 1) == 1


def test_tokenizer_found_from_a_local_model_folder(tmp_path, smol_tokenizer):
    from transformers import AutoModelForCausalLM

    from proxy_structuring_engine import StructuringEngine

    tiny_llama_torch(len(smol_tokenizer) + 64, seed=0, eos=smol_tokenizer.eos_token_id, pad=0).save_pretrained(tmp_path)
    smol_tokenizer.save_pretrained(tmp_path)
    model = AutoModelForCausalLM.from_pretrained(tmp_path)
    engine = StructuringEngine.from_json_schema(SMALL)
    outputs = engine.generate(model, smol_tokenizer.encode("Output:", return_tensors="pt"), max_new_tokens=24)
    assert _check_rows(engine, outputs, 1) == 1


def test_tokenizer_not_found_says_what_to_pass(tiny_llama):
    from proxy_structuring_engine import StructuringEngine

    engine = StructuringEngine.from_json_schema(SMALL)
    with pytest.raises(TypeError, match="pass tokenizer= to StructuringEngine or to generate"):
        engine.generate(tiny_llama, [[1, 2]])


@pytest.mark.parametrize("name, extra", [("TensorFlowAdapter", "tf"), ("JAXAdapter", "flax")])
def test_adapter_of_a_missing_framework_names_the_extra(name, extra):
    import importlib.util

    framework = {"tf": "tensorflow", "flax": "flax"}[extra]
    if importlib.util.find_spec(framework) is not None:
        pytest.skip(f"{framework} is installed here")
    import proxy_structuring_engine.adapters as adapters

    cls = getattr(adapters, name)  # importing works without the framework...
    with pytest.raises(ImportError, match=rf"pip install 'pse-processors\[{extra}\]'"):
        cls()  # ...constructing says what to install


# ---------------------------------------------------------------- Schema


def test_schema_wraps_dicts_text_and_pydantic(smol_tokenizer, tiny_llama):
    from pydantic import BaseModel

    from proxy_structuring_engine import Schema, StructuringEngine
    from pse_processors import SchemaError

    class Person(BaseModel):
        name: str
        ok: bool

    assert Schema('{"type": "object"}') == Schema({"type": "object"})
    assert Schema.from_pydantic(Person).json_schema["required"] == ["name", "ok"]
    for bad in ("{not json", 3, [1]):
        with pytest.raises(SchemaError):
            Schema(bad)
    import pse_processors as pse

    assert pse.compile(Schema(SMALL), smol_tokenizer) is pse.compile(SMALL, smol_tokenizer)
    engine = StructuringEngine.from_json_schema(Schema(SMALL), tokenizer=smol_tokenizer)
    assert _check_rows(engine, engine.generate(tiny_llama, [[1, 2]], max_new_tokens=24), 1) == 1


# ---------------------------------------------------------------- custom adapters


class TinyNumpyModel:
    """A numpy "model": logits of the next token from the last token only (a random bigram table)."""

    def __init__(self, vocab: int, seed: int = 0) -> None:
        rng = np.random.default_rng(seed)
        self.embed = rng.standard_normal((vocab, 16)).astype(np.float32)
        self.head = rng.standard_normal((16, vocab)).astype(np.float32)
        self.calls = 0

    def __call__(self, input_ids: np.ndarray) -> np.ndarray:
        self.calls += 1
        assert isinstance(input_ids, np.ndarray) and input_ids.ndim == 2
        return self.embed[input_ids[:, -1]] @ self.head  # [batch, vocab]


def test_custom_adapter_as_on_the_page(smol_tokenizer):
    from proxy_structuring_engine import StructuringEngine
    from proxy_structuring_engine.adapters import FrameworkAdapter
    import numpy as cmf  # the page's custom_ml_framework

    class CustomAdapter(FrameworkAdapter):
        def __init__(self, **kwargs):
            super().__init__()
            self.device = kwargs.get("device", "cpu")
            self.rng = cmf.random.default_rng(0)

        def mask_logits(self, logits, mask_indices):
            """Implement masking for your framework"""
            masked_logits = cmf.full_like(logits, -cmf.inf)
            masked_logits[mask_indices] = logits[mask_indices]
            return masked_logits

        def sample_token(self, logits, temperature=1.0):
            """Implement token sampling for your framework"""
            if temperature == 0:
                return logits.argmax(axis=-1)
            scaled = logits / temperature
            probs = cmf.exp(scaled - scaled.max(axis=-1, keepdims=True))
            probs /= probs.sum(axis=-1, keepdims=True)
            sampled_token_ids = cmf.array([self.rng.choice(len(p), p=p) for p in probs])
            return sampled_token_ids

    # Use your custom adapter
    adapter = CustomAdapter(device="specialized_hardware")
    engine = StructuringEngine.from_json_schema(SMALL, adapter=adapter)

    model = TinyNumpyModel(len(smol_tokenizer))
    prompt = smol_tokenizer(["Output:"] * 6, return_tensors="np")["input_ids"]
    outputs = engine.generate(model, prompt, tokenizer=smol_tokenizer, temperature=2.0, max_new_tokens=40)
    assert outputs.shape[0] == 6 and model.calls == outputs.shape[1] - prompt.shape[1]
    finished = 0
    for row in outputs:
        result = smol_tokenizer.decode(row)
        text = structured_part(result, "Output:", smol_tokenizer)
        if smol_tokenizer.eos_token_id in row.tolist():
            validate(SMALL, text)
            finished += 1
    assert finished >= 3
    greedy = engine.generate(model, prompt[:1], tokenizer=smol_tokenizer, do_sample=False, max_new_tokens=40)
    assert validate(SMALL, structured_part(smol_tokenizer.decode(greedy[0]), "Output:", smol_tokenizer))


def test_custom_adapter_that_ignores_the_mask_is_caught(smol_tokenizer):
    from proxy_structuring_engine import StructuringEngine
    from proxy_structuring_engine.adapters import FrameworkAdapter
    from pse_processors import InvalidOutputError

    class Careless(FrameworkAdapter):
        def mask_logits(self, logits, mask_indices):
            return logits

        def sample_token(self, logits, temperature=1.0):
            return logits.argmax(axis=-1)

    engine = StructuringEngine.from_regex("[0-9]{3}", adapter=Careless(), tokenizer=smol_tokenizer)
    with pytest.raises(InvalidOutputError, match="mask_logits must set every entry"):
        engine.generate(TinyNumpyModel(len(smol_tokenizer)), [[1, 2]], max_new_tokens=8)
    with pytest.raises(TypeError):  # an abstract method left out
        type("Half", (FrameworkAdapter,), {"mask_logits": lambda self, l, m: l})()


def test_builtin_torch_adapter_also_drives_the_decode_loop(smol_tokenizer):
    """The custom-loop primitives of PyTorchAdapter over a plain callable returning torch logits."""
    from proxy_structuring_engine import StructuringEngine
    from proxy_structuring_engine.adapters import FrameworkAdapter, PyTorchAdapter

    numpy_model = TinyNumpyModel(len(smol_tokenizer), seed=1)
    adapter = PyTorchAdapter()
    engine = StructuringEngine.from_json_schema(SMALL, adapter=adapter, tokenizer=smol_tokenizer)
    model = lambda ids: torch.from_numpy(numpy_model(ids.numpy()))  # noqa: E731
    torch.manual_seed(4)
    engine.last_generation = FrameworkAdapter.generate(adapter, engine, model, [[1, 2]] * 3, smol_tokenizer, temperature=1.5, max_new_tokens=30)
    outputs = engine.last_generation.outputs
    assert _check_rows(engine, torch.from_numpy(outputs), 3) >= 1
