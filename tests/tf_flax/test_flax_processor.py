"""FlaxPSELogitsProcessor in Flax generate: trace=True/False, jax.jit, sampling, beam search, batches.

Random-weight models sampling at a high temperature walk the automaton almost at random: every
finished row must validate with jsonschema, every unfinished row must be a live prefix.
"""

from __future__ import annotations

import functools

import numpy as np
import pytest

from tests.helpers import FUZZ_SCHEMAS, PAD, check_in_graph_rows, left_padded_arrays, legacy_tokenizer, require_legacy

require_legacy("jax", "flax")

import jax  # noqa: E402
import jax.numpy as jnp  # noqa: E402
from transformers import FlaxGPT2LMHeadModel, FlaxLlamaForCausalLM, GPT2Config, LlamaConfig  # noqa: E402

from pse_processors import FlaxPSELogitsProcessor, InvalidLogitsError, VocabularyError  # noqa: E402
from pse_processors.runtime.device_tables import device_tables  # noqa: E402

NEW = 32
JIT_SCHEMAS = [1, 3, 5, 7, 8, 10, 12, 14, 16, 17, 18, 20, 21]  # 13: each costs one jit compile
BEAM_SCHEMAS = [0, 8, 11, 17]


@functools.cache
def tiny_llama() -> FlaxLlamaForCausalLM:
    """A random-weight Llama over SmolLM2's vocabulary, 64 logits wider than the tokenizer."""
    tok = legacy_tokenizer()
    config = LlamaConfig(
        vocab_size=len(tok) + 64, hidden_size=32, intermediate_size=64, num_hidden_layers=2,
        num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=256,
        bos_token_id=1, eos_token_id=tok.eos_token_id, pad_token_id=PAD, tie_word_embeddings=False,
    )
    return FlaxLlamaForCausalLM(config, seed=4)


@functools.cache
def tiny_gpt2() -> FlaxGPT2LMHeadModel:
    tok = legacy_tokenizer()
    config = GPT2Config(
        vocab_size=len(tok), n_embd=32, n_layer=2, n_head=2, n_positions=256,
        bos_token_id=1, eos_token_id=tok.eos_token_id, pad_token_id=PAD,
    )
    return FlaxGPT2LMHeadModel(config, seed=5)


def processor(schema_index: int) -> FlaxPSELogitsProcessor:
    return FlaxPSELogitsProcessor(FUZZ_SCHEMAS[schema_index], legacy_tokenizer(), max_new_tokens=NEW)


def sample_kwargs(proc: FlaxPSELogitsProcessor) -> dict:
    return dict(
        logits_processor=[proc], max_new_tokens=NEW, do_sample=True, temperature=1.5, top_k=0,
        eos_token_id=legacy_tokenizer().eos_token_id, pad_token_id=PAD,
    )


@pytest.mark.parametrize("schema_index", JIT_SCHEMAS)
def test_jit_sampling_batch_left_padded_llama(schema_index):
    model, proc = tiny_llama(), processor(schema_index)
    kwargs = sample_kwargs(proc)
    generate = jax.jit(lambda ids, mask, key: model.generate(ids, attention_mask=mask, prng_key=key, **kwargs).sequences)
    ids, mask = left_padded_arrays()
    finished = 0
    for seed in range(3):  # one compile, three samples
        out = generate(ids, mask, jax.random.PRNGKey(seed))
        assert out.shape == (4, ids.shape[1] + NEW)
        finished += check_in_graph_rows(proc, FUZZ_SCHEMAS[schema_index], out, ids.shape[1])
    assert finished >= 1, "no row finished: the fuzz schema is too open for a random model"


@pytest.mark.parametrize("schema_index", [2, 8, 13])
def test_trace_true_and_false_agree_gpt2(schema_index):
    model, proc = tiny_gpt2(), processor(schema_index)
    ids, mask = left_padded_arrays()
    key = jax.random.PRNGKey(schema_index)
    traced = model.generate(ids, attention_mask=mask, prng_key=key, **sample_kwargs(proc)).sequences
    untraced = model.generate(ids, attention_mask=mask, prng_key=key, trace=False, **sample_kwargs(proc)).sequences
    np.testing.assert_array_equal(np.asarray(traced), np.asarray(untraced))
    finished = check_in_graph_rows(proc, FUZZ_SCHEMAS[schema_index], traced, ids.shape[1])
    assert finished >= 1, "no row finished: the fuzz schema is too open for a random model"


@pytest.mark.parametrize("schema_index", BEAM_SCHEMAS)
def test_beam_search_gpt2(schema_index):
    model, proc = tiny_gpt2(), processor(schema_index)
    ids, mask = left_padded_arrays(["Give me JSON:", "{"])
    out = model.generate(
        ids, attention_mask=mask, logits_processor=[proc], max_new_tokens=NEW, num_beams=3,
        eos_token_id=legacy_tokenizer().eos_token_id, pad_token_id=PAD,
    ).sequences
    check_in_graph_rows(proc, FUZZ_SCHEMAS[schema_index], out, ids.shape[1])


def test_greedy_jit_llama_batch():
    model, proc = tiny_llama(), processor(9)
    ids, mask = left_padded_arrays()
    kwargs = dict(logits_processor=[proc], max_new_tokens=NEW, eos_token_id=legacy_tokenizer().eos_token_id, pad_token_id=PAD)
    jitted = jax.jit(lambda i, m: model.generate(i, attention_mask=m, **kwargs).sequences)(ids, mask)
    finished = check_in_graph_rows(proc, FUZZ_SCHEMAS[9], jitted, ids.shape[1])
    assert finished >= 1, "no row finished: the fuzz schema is too open for a random model"


@pytest.mark.parametrize("dtype", [jnp.float32, jnp.float16, jnp.bfloat16])
def test_score_dtypes_eager_and_jit(dtype):
    proc = processor(8)
    width = len(legacy_tokenizer()) + 64
    tables = device_tables(proc.matcher, width)
    prompt = 3
    buffer = np.full((2, prompt + NEW), PAD, dtype=np.int32)
    tokens = legacy_tokenizer()('{"name":"ab', add_special_tokens=False)["input_ids"]
    buffer[0, prompt:prompt + len(tokens)] = tokens
    cur = prompt + len(tokens)
    scores = jnp.asarray(np.random.default_rng(0).normal(size=(2, width)), dtype=dtype)
    for out in (proc(buffer, scores, cur), jax.jit(proc)(buffer, scores, jnp.int32(cur))):
        assert out.dtype == dtype
        allowed = np.isfinite(np.asarray(out, dtype=np.float32))
        np.testing.assert_array_equal(allowed[0], tables.allowed_mask(tables.walk(tokens)))
        np.testing.assert_array_equal(allowed[1], tables.allowed_mask(tables.walk([PAD] * len(tokens))))
        np.testing.assert_array_equal(np.asarray(out)[allowed], np.asarray(scores)[allowed])


def test_user_errors():
    proc = processor(0)
    width = len(legacy_tokenizer())
    ids = jnp.zeros((1, 4 + NEW), jnp.int32)
    with pytest.raises(InvalidLogitsError, match="expected input_ids"):
        proc(jnp.zeros((4 + NEW,), jnp.int32), jnp.zeros((1, width)), 4)
    with pytest.raises(InvalidLogitsError, match="rows"):
        proc(ids, jnp.zeros((2, width)), 4)
    with pytest.raises(InvalidLogitsError, match="floating"):
        proc(ids, jnp.zeros((1, width), jnp.int32), 4)
    with pytest.raises(VocabularyError, match="only 100 wide"):
        proc(ids, jnp.zeros((1, 100)), 4)
    with pytest.raises(InvalidLogitsError, match="max_new_tokens"):
        proc(ids, jnp.zeros((1, width)), 2)
    with pytest.raises(ValueError, match="max_new_tokens"):
        FlaxPSELogitsProcessor(FUZZ_SCHEMAS[0], legacy_tokenizer())


@pytest.mark.parametrize("dtype", [jnp.bfloat16, jnp.float16])
def test_half_precision_model_jit_sampling(dtype):
    """A model computing in bfloat16/float16 hands the processor half-precision scores."""
    tok = legacy_tokenizer()
    config = LlamaConfig(
        vocab_size=len(tok) + 64, hidden_size=32, intermediate_size=64, num_hidden_layers=2,
        num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=256,
        bos_token_id=1, eos_token_id=tok.eos_token_id, pad_token_id=PAD, tie_word_embeddings=False,
    )
    model = FlaxLlamaForCausalLM(config, seed=6, dtype=dtype)
    seen = []

    class Spy:
        def __call__(self, input_ids, scores, cur_len):
            seen.append(scores.dtype)
            return scores

    schema_index = 8
    proc = processor(schema_index)
    kwargs = sample_kwargs(proc)
    kwargs["logits_processor"] = [Spy(), proc]
    generate = jax.jit(lambda ids, mask, key: model.generate(ids, attention_mask=mask, prng_key=key, **kwargs).sequences)
    ids, mask = left_padded_arrays()
    finished = 0
    for seed in range(2):
        finished += check_in_graph_rows(proc, FUZZ_SCHEMAS[schema_index], generate(ids, mask, jax.random.PRNGKey(seed)), ids.shape[1])
    assert seen and all(d == dtype for d in seen), seen
    assert finished >= 1
