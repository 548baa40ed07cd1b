"""The seed page's JAX snippets, as written, with local models (legacy environment).

SmolLM2 (as FlaxLlamaForCausalLM) stands in for the page's "gpt2" in the basic usage; a tiny
random-weight Flax GPT-2, saved to a folder with SmolLM2's tokenizer and loaded back with
``FlaxAutoModelForCausalLM.from_pretrained`` as on the page, runs the options. Every decoded
output is validated with jsonschema. Each jitted configuration is one XLA compile.
"""

from __future__ import annotations

import functools
import logging

import numpy as np
import pytest

from tests.helpers import PAD, check_engine_rows, legacy_tokenizer, require_legacy, smollm2_flax_model, structured_part, validate

require_legacy("jax", "flax")

import jax  # noqa: E402
import jax.numpy as jnp  # noqa: E402


SMALL = {"type": "object", "properties": {"ok": {"type": "boolean"}, "n": {"type": "string", "maxLength": 3}},
         "required": ["ok", "n"]}
PROMPT = "Extract a name from this text: John Smith is a developer."
NEW = 20


@pytest.fixture(scope="module")
def tiny_folder(tmp_path_factory):
    """A tiny random Flax GPT-2 and SmolLM2's tokenizer in one folder, as a hub download would be."""
    from transformers import FlaxGPT2LMHeadModel, GPT2Config

    folder = tmp_path_factory.mktemp("tiny-flax-gpt2")
    tok = legacy_tokenizer()
    config = GPT2Config(vocab_size=len(tok) + 64, n_embd=32, n_layer=1, n_head=2, n_positions=256,
                        bos_token_id=1, eos_token_id=tok.eos_token_id, pad_token_id=PAD)
    FlaxGPT2LMHeadModel(config, seed=0).save_pretrained(folder)
    tok.save_pretrained(folder)
    return folder


@pytest.fixture(scope="module")
def tiny_model(tiny_folder):
    from transformers import FlaxAutoModelForCausalLM

    return FlaxAutoModelForCausalLM.from_pretrained(tiny_folder)


class Seen:
    """A Flax logits processor placed before the engine's: the scores' dtype, and whether it was traced."""

    def __init__(self) -> None:
        self.seen: set = set()

    def __call__(self, input_ids, scores, cur_len):
        self.seen.add((str(scores.dtype), isinstance(scores, jax.core.Tracer)))
        return scores


def prompts(rows=("Output:", "JSON please", "x")):
    return legacy_tokenizer()(list(rows), return_tensors="np", padding=True)  # left-padded


def check_rows(engine, outputs, rows: int, schema=SMALL) -> int:
    return check_engine_rows(engine, outputs, rows, schema)


@functools.cache
def jit_engine():
    """One jitted float32 engine on the CPU, shared (one compile) by the tests that sample with it."""
    from proxy_structuring_engine import StructuringEngine
    from proxy_structuring_engine.adapters import JAXAdapter

    return StructuringEngine.from_json_schema(SMALL, adapter=JAXAdapter(jit_compile=True, platform="cpu"))


def sample(engine, model, key, seen=None):
    ids = prompts()
    extra = {"logits_processor": [seen]} if seen is not None else {}
    return engine.generate(model, ids["input_ids"], attention_mask=ids["attention_mask"], do_sample=True,
                           temperature=1.5, top_k=0, max_new_tokens=NEW, prng_key=key, **extra)


@pytest.mark.model
def test_jax_basic_usage_as_on_the_page():
    from proxy_structuring_engine import StructuringEngine, Schema  # noqa: F401 - the page's import line
    from proxy_structuring_engine.adapters import JAXAdapter
    import jax  # noqa: F401
    import jax.numpy as jnp
    from pse_processors.embedded import smollm2_dir

    # Load model (SmolLM2 as FlaxLlamaForCausalLM; the page loads "gpt2" from the hub)
    model = smollm2_flax_model()
    model.config._name_or_path = str(smollm2_dir())  # what from_pretrained(folder) records with its own config
    tokenizer_ = legacy_tokenizer()

    # Define schema
    schema = {"type": "object", "properties": {"name": {"type": "string"}}}

    # Create adapter and engine (jitted: SmolLM2 without jit takes minutes here; tiny models test that path)
    adapter = JAXAdapter(jit_compile=True)
    engine = StructuringEngine.from_json_schema(schema, adapter=adapter)

    # Generate structured output (no tokenizer argument: found from the model's folder)
    input_ids = jnp.array([tokenizer_.encode("Extract a name from this text: John Smith is a developer.")])
    outputs = engine.generate(model, input_ids)
    result = tokenizer_.decode(outputs[0])
    assert validate(schema, structured_part(result, PROMPT, tokenizer_)) == engine.parse(outputs)


def test_jax_specific_options_as_on_the_page(tiny_model, caplog):
    from proxy_structuring_engine import StructuringEngine
    from proxy_structuring_engine.adapters import JAXAdapter

    # Configure precision
    adapter = JAXAdapter(dtype=jnp.bfloat16)
    assert adapter.dtype == jnp.bfloat16 and not adapter.jit_compile

    # Configure custom options
    with caplog.at_level(logging.WARNING, logger="pse_processors.adapters.jax"):
        adapter = JAXAdapter(
            dtype=jnp.bfloat16,
            jit_compile=True,  # Enable JAX JIT compilation
            platform="gpu",    # Target specific platform (gpu, cpu, tpu)
        )
    if not any(d.platform == "gpu" for d in jax.devices()):
        assert adapter.device.platform == "cpu"
        assert "platform 'gpu' is not available" in caplog.text and "falling back to the CPU" in caplog.text
    engine = StructuringEngine.from_json_schema(SMALL, adapter=adapter)
    seen = Seen()
    outputs = sample(engine, tiny_model, jax.random.PRNGKey(1), seen)
    assert check_rows(engine, outputs, 3) >= 1
    assert seen.seen == {("bfloat16", True)}
    (model, jitted), = adapter.compiled.values()
    assert jitted._cache_size() == 1
    again = sample(engine, tiny_model, jax.random.PRNGKey(1), seen)
    assert jitted._cache_size() == 1 and np.array_equal(again, outputs)  # no retrace, same key: same output


def test_jax_without_jit_float16(tiny_model):
    from proxy_structuring_engine import StructuringEngine
    from proxy_structuring_engine.adapters import JAXAdapter

    adapter = JAXAdapter(dtype=jnp.float16)
    engine = StructuringEngine.from_json_schema(SMALL, adapter=adapter)
    seen = Seen()
    ids = prompts(["Output:"])
    outputs = engine.generate(tiny_model, ids["input_ids"], do_sample=True, temperature=1.5, top_k=0,
                              max_new_tokens=8, prng_key=jax.random.key(3), logits_processor=[seen])
    assert not adapter.compiled
    assert {dtype for dtype, _ in seen.seen} == {"float16"}
    check_rows(engine, outputs, 1)


def test_jax_float32_batch_and_prng_keys(tiny_model):
    engine = jit_engine()
    seen = Seen()
    first = sample(engine, tiny_model, jax.random.PRNGKey(0), seen)
    assert check_rows(engine, first, 3) >= 1 and seen.seen == {("float32", True)}
    second = sample(engine, tiny_model, jax.random.PRNGKey(0))
    other = sample(engine, tiny_model, jax.random.split(jax.random.PRNGKey(0))[1])
    assert np.array_equal(first, second) and not np.array_equal(first, other)
    assert check_rows(engine, other, 3) >= 1


@pytest.mark.parametrize("key", [42, np.float32([1.0, 2.0]), jax.random.split(jax.random.PRNGKey(0), 3), "seed"])
def test_jax_bad_prng_key_says_how_to_make_one(tiny_model, key):
    with pytest.raises(TypeError, match=r"PRNG key error.*jax\.random\.PRNGKey\(seed\)"):
        sample(jit_engine(), tiny_model, key)


def test_jax_bad_platform():
    from proxy_structuring_engine.adapters import JAXAdapter

    with pytest.raises(ValueError, match=r"platform=\.\.\.\) must be one of"):
        JAXAdapter(platform="quantum")


def test_jax_adapter_drives_the_decode_loop():
    """The custom-loop primitives of JAXAdapter over a plain callable returning JAX logits (a random
    bigram "model": constant shapes, so each op compiles once)."""
    from proxy_structuring_engine import StructuringEngine
    from proxy_structuring_engine.adapters import FrameworkAdapter, JAXAdapter

    vocab = len(legacy_tokenizer())
    embed = jax.random.normal(jax.random.PRNGKey(1), (vocab, 16))
    head = jax.random.normal(jax.random.PRNGKey(2), (16, vocab))
    adapter = JAXAdapter()
    engine = StructuringEngine.from_json_schema(SMALL, adapter=adapter, tokenizer=legacy_tokenizer())
    engine.last_generation = FrameworkAdapter.generate(adapter, engine, lambda ids: embed[ids[:, -1]] @ head, [[1, 2]] * 3,
                                                       legacy_tokenizer(), temperature=1.5, max_new_tokens=24)
    outputs = engine.last_generation.outputs
    assert check_rows(engine, outputs, 3) >= 1
