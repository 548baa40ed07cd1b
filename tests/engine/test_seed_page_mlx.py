"""The seed page's MLX snippets, as written, with local models.

SmolLM2 through mlx-lm (``load_smollm2_mlx``, 4-bit as in its GGUF) stands in for the page's
hub model in the basic usage; tiny random-weight mlx-lm Llamas sampling at a high temperature
run the options. Every decoded output is validated with jsonschema. On Linux there is no Metal:
``use_metal=True`` falls back to the CPU with a warning, which is tested.
"""

from __future__ import annotations

import logging

import pytest

pytest.importorskip("mlx_lm")

import mlx.core as mx  # noqa: E402
import mlx.nn as nn  # noqa: E402

from tests.helpers import check_engine_rows, smol_tokenizer_mlx, structured_part, tiny_llama_mlx, validate  # noqa: E402

SMALL = {"type": "object", "properties": {"ok": {"type": "boolean"}, "n": {"type": "string", "maxLength": 3}},
         "required": ["ok", "n"]}
PROMPT = "Extract a name from this text: John Smith is a developer."


class Seen:
    """An mlx-lm logits processor placed before the engine's: the logits' dtypes."""

    def __init__(self) -> None:
        self.dtypes: set = set()

    def __call__(self, tokens, logits):
        self.dtypes.add(logits.dtype)
        return logits


def sample(engine, model, seen=None, rows=("Output:", "JSON please", "x"), **kwargs):
    tok = smol_tokenizer_mlx()
    ids = [tok.encode(r) for r in rows]
    width = min(len(i) for i in ids)
    extra = {"logits_processors": [seen]} if seen is not None else {}
    return engine.generate(model, mx.array([i[:width] for i in ids]), tokenizer=tok, do_sample=True,
                           temperature=1.5, max_new_tokens=24, **extra, **kwargs)


def check_rows(engine, outputs, rows: int, schema=SMALL) -> int:
    return check_engine_rows(engine, outputs, rows, schema)


@pytest.mark.model
def test_mlx_basic_usage_as_on_the_page():
    from proxy_structuring_engine import StructuringEngine, Schema  # noqa: F401 - the page's import line
    from proxy_structuring_engine.adapters import MLXAdapter
    import mlx.core as mx
    from pse_processors.embedded import load_smollm2_mlx

    # Load model (the embedded SmolLM2, 4-bit; the page loads a hub model with mlx-lm)
    model, tokenizer = load_smollm2_mlx()

    # Define schema
    schema = {"type": "object", "properties": {"name": {"type": "string"}}}

    # Create adapter and engine
    adapter = MLXAdapter()
    engine = StructuringEngine.from_json_schema(schema, adapter=adapter)

    # Generate structured output (no tokenizer argument: the model came with its own)
    input_ids = tokenizer.encode("Extract a name from this text: John Smith is a developer.")
    input_ids = mx.array([input_ids])
    outputs = engine.generate(model, input_ids)
    result = tokenizer.decode(outputs[0].tolist())
    assert validate(schema, structured_part(result, PROMPT, tokenizer)) == {"name": "John Smith"}


def test_mlx_specific_options_as_on_the_page(caplog):
    from proxy_structuring_engine import StructuringEngine
    from proxy_structuring_engine.adapters import MLXAdapter

    # Configure precision
    adapter = MLXAdapter(dtype=mx.float16)
    assert adapter.dtype == mx.float16

    # Configure custom options
    with caplog.at_level(logging.WARNING, logger="pse_processors.adapters.mlx"):
        adapter = MLXAdapter(
            dtype=mx.bfloat16,
            use_metal=True,  # Force Metal GPU usage
            optimize_graph=True,  # Enable MLX graph optimization
        )
    if not mx.metal.is_available():
        assert "Metal device not found" in caplog.text and "falling back to the CPU" in caplog.text
        assert adapter.device == mx.cpu
    model = tiny_llama_mlx(len(smol_tokenizer_mlx()), seed=0)
    engine = StructuringEngine.from_json_schema(SMALL, adapter=adapter)
    seen, batched = Seen(), []
    run_batch = adapter._batched
    adapter._batched = lambda *args: batched.append(len(args[2])) or run_batch(*args)
    outputs = sample(engine, model, seen)
    assert batched == [3]  # one mlx-lm batch_generate for the three rows
    assert check_rows(engine, outputs, 3) >= 1
    assert seen.dtypes == {mx.bfloat16}
    steps = outputs.shape[1] - engine.last_generation.prompt_length
    # Compiled: the Python body runs once per traced batch size (rows leave the batch as they end), not per step.
    assert 1 <= adapter.sampler_traces <= 3 < steps


@pytest.mark.parametrize("dtype", [mx.float32, mx.float16, mx.bfloat16])
def test_mlx_dtypes_reach_the_processor(dtype):
    from proxy_structuring_engine import StructuringEngine
    from proxy_structuring_engine.adapters import MLXAdapter

    model = tiny_llama_mlx(len(smol_tokenizer_mlx()), seed=1)
    engine = StructuringEngine.from_json_schema(SMALL, adapter=MLXAdapter(dtype=dtype))
    seen = Seen()
    assert check_rows(engine, sample(engine, model, seen), 3) >= 1
    assert seen.dtypes == {dtype}


@pytest.mark.parametrize("bits", [4, 8])
def test_mlx_quantized_models(bits):
    from proxy_structuring_engine import StructuringEngine
    from proxy_structuring_engine.adapters import MLXAdapter

    model = tiny_llama_mlx(len(smol_tokenizer_mlx()), seed=2)
    nn.quantize(model, group_size=32, bits=bits)
    assert isinstance(model.layers[0].mlp.up_proj, nn.QuantizedLinear)
    engine = StructuringEngine.from_json_schema(SMALL, adapter=MLXAdapter())
    assert check_rows(engine, sample(engine, model), 3) >= 1


def test_mlx_speculative_decoding_with_a_draft_model():
    from proxy_structuring_engine import StructuringEngine
    from proxy_structuring_engine.adapters import MLXAdapter

    tok = smol_tokenizer_mlx()
    model, draft = tiny_llama_mlx(len(tok), seed=3), tiny_llama_mlx(len(tok), seed=4)
    engine = StructuringEngine.from_json_schema(SMALL, adapter=MLXAdapter())
    ids = mx.array([tok.encode("Output:")])
    plain = engine.generate(model, ids, tokenizer=tok, max_new_tokens=24)
    assisted = engine.generate(model, ids, tokenizer=tok, max_new_tokens=24, draft_model=draft, num_draft_tokens=3)
    assert plain.tolist() == assisted.tolist()  # greedy: the draft changes the speed, not the output
    assert check_rows(engine, assisted, 1) == 1


def test_mlx_tokenizer_is_found_or_asked_for():
    from proxy_structuring_engine import StructuringEngine
    from proxy_structuring_engine.adapters import MLXAdapter, remember_tokenizer

    tok = smol_tokenizer_mlx()
    model = tiny_llama_mlx(len(tok), seed=5)
    engine = StructuringEngine.from_json_schema(SMALL, adapter=MLXAdapter())
    ids = mx.array([tok.encode("Output:")])
    with pytest.raises(TypeError, match="pass tokenizer="):
        engine.generate(model, ids, max_new_tokens=4)
    remember_tokenizer(model, tok)  # what MLXAdapter.load and load_smollm2_mlx do
    assert check_rows(engine, engine.generate(model, ids, max_new_tokens=24), 1) == 1


def test_mlx_adapter_drives_the_decode_loop():
    """The custom-loop primitives of MLXAdapter over a plain callable returning MLX logits."""
    from proxy_structuring_engine import StructuringEngine
    from proxy_structuring_engine.adapters import FrameworkAdapter, MLXAdapter

    tok = smol_tokenizer_mlx()
    model = tiny_llama_mlx(len(tok), seed=6)
    adapter = MLXAdapter()
    engine = StructuringEngine.from_json_schema(SMALL, adapter=adapter, tokenizer=tok)
    mx.random.seed(0)
    engine.last_generation = FrameworkAdapter.generate(adapter, engine, model, [tok.encode("Output:")] * 3, tok, temperature=1.5, max_new_tokens=24)
    outputs = engine.last_generation.outputs
    assert check_rows(engine, mx.array(outputs), 3) >= 1
