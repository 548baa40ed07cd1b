"""The seed page's TensorFlow snippets, as written, with local models (legacy environment).

SmolLM2 (as TFMistralForCausalLM) stands in for the page's "gpt2" in the basic usage; a tiny
random-weight TF GPT-2 sampling at a high temperature runs the options. Every decoded output is
validated with jsonschema. One XLA compile (about a minute on a busy CPU).
"""

from __future__ import annotations

import functools

import pytest

from tests.helpers import PAD, check_engine_rows, legacy_tokenizer, require_legacy, smollm2_tf_model, structured_part, validate

require_legacy("tensorflow", "tf_keras")

import tensorflow as tf  # noqa: E402


tf.config.threading.set_intra_op_parallelism_threads(1)
tf.config.threading.set_inter_op_parallelism_threads(1)

SMALL = {"type": "object", "properties": {"ok": {"type": "boolean"}, "n": {"type": "string", "maxLength": 3}},
         "required": ["ok", "n"]}
PROMPT = "Extract a name from this text: John Smith is a developer."


@functools.cache
def tiny_gpt2():
    from transformers import GPT2Config, TFGPT2LMHeadModel

    tok = legacy_tokenizer()
    tf.keras.utils.set_random_seed(3)
    model = TFGPT2LMHeadModel(GPT2Config(
        vocab_size=len(tok) + 64, n_embd=32, n_layer=1, n_head=2, n_positions=256,
        bos_token_id=1, eos_token_id=tok.eos_token_id, pad_token_id=PAD,
    ))
    model(tf.constant([[1, 2]]))  # build the weights
    return model


class Seen:
    """A TF logits processor placed before the engine's: the scores' dtype, and whether it ran in a graph."""

    def __init__(self) -> None:
        self.seen: set = set()

    def __call__(self, input_ids, scores, cur_len):
        self.seen.add((scores.dtype.name, tf.executing_eagerly()))
        return scores


def sample(engine, model, seen, rows=("Output:", "JSON please", "x")):
    tok = legacy_tokenizer()
    ids = tok(list(rows), return_tensors="np", padding=True)  # left-padded
    outputs = engine.generate(model, ids["input_ids"], attention_mask=ids["attention_mask"], do_sample=True,
                              temperature=1.5, top_k=0, max_new_tokens=20, seed=[1, 2], logits_processor=[seen])
    return outputs, len(rows)


def check_rows(engine, outputs, rows: int, schema=SMALL) -> int:
    return check_engine_rows(engine, outputs, rows, schema)


@pytest.mark.model
def test_tensorflow_basic_usage_as_on_the_page():
    from proxy_structuring_engine import StructuringEngine, Schema  # noqa: F401 - the page's import line
    from proxy_structuring_engine.adapters import TensorFlowAdapter
    import tensorflow as tf  # noqa: F401

    # Load model (SmolLM2 as TFMistralForCausalLM; the page loads "gpt2" from the hub)
    model = smollm2_tf_model()
    tokenizer_ = legacy_tokenizer()

    # Define schema
    schema = {"type": "object", "properties": {"name": {"type": "string"}}}

    # Create adapter and engine
    adapter = TensorFlowAdapter()
    engine = StructuringEngine.from_json_schema(schema, adapter=adapter)

    # Generate structured output (no tokenizer argument: found from the model's folder)
    input_ids = tokenizer_.encode("Extract a name from this text: John Smith is a developer.", return_tensors="tf")
    outputs = engine.generate(model, input_ids)
    result = tokenizer_.decode(outputs[0].numpy())
    value = validate(schema, structured_part(result, PROMPT, tokenizer_))
    assert value == engine.parse(outputs) and "John" in value["name"]


def test_tensorflow_specific_options_as_on_the_page(caplog):
    from proxy_structuring_engine import StructuringEngine
    from proxy_structuring_engine.adapters import TensorFlowAdapter

    # Configure device placement
    adapter = TensorFlowAdapter(device="/GPU:0")
    # Use mixed precision
    adapter = TensorFlowAdapter(mixed_precision=True)
    seen = Seen()
    engine = StructuringEngine.from_json_schema(SMALL, adapter=adapter, tokenizer=legacy_tokenizer())
    outputs, rows = sample(engine, tiny_gpt2(), seen)
    assert check_rows(engine, outputs, rows) >= 1
    assert seen.seen == {("float16", True)}  # float16 compute reaches the processors, eagerly

    # Configure custom options (the CPU stands in for the page's "/GPU:0" when no GPU is here)
    device = "/GPU:0" if tf.config.list_physical_devices("GPU") else "/CPU:0"
    adapter = TensorFlowAdapter(
        device=device,
        mixed_precision=True,
        xla_compilation=True,  # Enable XLA compilation for faster execution
    )
    seen = Seen()
    engine = StructuringEngine.from_json_schema(SMALL, adapter=adapter, tokenizer=legacy_tokenizer())
    outputs, rows = sample(engine, tiny_gpt2(), seen)
    assert check_rows(engine, outputs, rows) >= 1
    assert seen.seen == {("float16", False)}  # in the graph
    (model, compiled), = adapter.compiled.values()
    assert compiled.function_spec.jit_compile if hasattr(compiled, "function_spec") else compiled._jit_compile
    assert compiled.experimental_get_tracing_count() == 1
    assert device.split(":")[0].strip("/").lower() in outputs.device.lower()


@pytest.mark.parametrize("policy, dtype", [(False, "float32"), ("mixed_bfloat16", "bfloat16")])
def test_tensorflow_dtypes_reach_the_processor(policy, dtype):
    from proxy_structuring_engine import StructuringEngine
    from proxy_structuring_engine.adapters import TensorFlowAdapter

    seen = Seen()
    engine = StructuringEngine.from_json_schema(SMALL, adapter=TensorFlowAdapter(mixed_precision=policy), tokenizer=legacy_tokenizer())
    outputs, rows = sample(engine, tiny_gpt2(), seen, rows=("Output:", "JSON please", "x", "{"))
    assert check_rows(engine, outputs, rows) >= 1
    assert seen.seen == {(dtype, True)}


def test_tensorflow_bad_options():
    from proxy_structuring_engine.adapters import TensorFlowAdapter

    with pytest.raises(ValueError, match=r"mixed_precision=\.\.\.\) must be"):
        TensorFlowAdapter(mixed_precision="float8")


def test_tensorflow_adapter_compiles_recursive_schemas_for_the_automaton():
    """The in-graph processor needs whole tables: the adapter compiles with backend='dfa' (recursion
    unrolled), where the default back end of a recursive schema is the grammar engine."""
    from proxy_structuring_engine import StructuringEngine
    from proxy_structuring_engine.adapters import TensorFlowAdapter

    tree = {"$defs": {"n": {"type": "object", "properties": {"kids": {"type": "array", "items": {"$ref": "#/$defs/n"}}}}},
            "$ref": "#/$defs/n"}
    engine = StructuringEngine.from_json_schema(tree, adapter=TensorFlowAdapter())
    assert engine.matcher(legacy_tokenizer()).backend == "dfa"


def test_tensorflow_adapter_drives_the_decode_loop():
    """The custom-loop primitives of TensorFlowAdapter over a plain callable returning TF logits."""
    from proxy_structuring_engine import StructuringEngine
    from proxy_structuring_engine.adapters import FrameworkAdapter, TensorFlowAdapter

    model = tiny_gpt2()
    adapter = TensorFlowAdapter()
    engine = StructuringEngine.from_json_schema(SMALL, adapter=adapter, tokenizer=legacy_tokenizer())
    tf.random.set_seed(5)
    engine.last_generation = FrameworkAdapter.generate(adapter, engine, lambda ids: model(ids).logits, [[1, 2]] * 3,
                                                       legacy_tokenizer(), temperature=1.5, max_new_tokens=16)
    outputs = engine.last_generation.outputs
    assert check_rows(engine, tf.constant(outputs), 3) >= 1
