"""``engine.parse`` on TensorFlow and JAX when the chat template left, opened or closed a reasoning
block after a multi-turn history (as ``tests/engine/test_engine_reasoning.py`` for PyTorch and
MLX): the adapters hand back ``Generation(outputs, matcher, prompt_length)`` with the left-padded
prompt inside the outputs, and each row is parsed from where its own prompt left the block. One
batch mixes the three categories; tiny random-weight GPT-2 models sample at temperature 1.5."""

from __future__ import annotations

import numpy as np
import pytest

from tests.engine.reasoning_rows import CONSTRAINT, PROMPTS, check_rows
from tests.helpers import PAD, legacy_tokenizer, require_legacy

pytestmark = pytest.mark.timeout(1800)

require_legacy("tensorflow", "tf_keras", "jax", "flax")

from transformers import FlaxGPT2LMHeadModel, GPT2Config, TFGPT2LMHeadModel  # noqa: E402

from pse_processors import StructuringEngine  # noqa: E402
from pse_processors.adapters import JAXAdapter, TensorFlowAdapter  # noqa: E402

NEW = 40
CATEGORIES = sorted(PROMPTS) * 3


def batch() -> dict:
    tok = legacy_tokenizer()
    return tok([PROMPTS[c] for c in CATEGORIES], return_tensors="np", padding=True, add_special_tokens=False)


def config() -> GPT2Config:
    tok = legacy_tokenizer()
    return GPT2Config(vocab_size=len(tok) + 64, n_embd=32, n_layer=1, n_head=2, n_positions=256,
                      bos_token_id=1, eos_token_id=tok.eos_token_id, pad_token_id=PAD)


def test_tf_engine_parses_from_where_the_prompt_left_the_block():
    import tensorflow as tf

    tf.keras.utils.set_random_seed(5)
    model = TFGPT2LMHeadModel(config())
    model(tf.constant([[1, 2]]))  # build the weights
    engine = StructuringEngine(CONSTRAINT, adapter=TensorFlowAdapter(), tokenizer=legacy_tokenizer())
    ids = batch()
    out = engine.generate(model, ids["input_ids"], attention_mask=ids["attention_mask"], do_sample=True,
                          temperature=1.5, top_k=0, max_new_tokens=NEW)
    assert engine.last_generation.prompt_length == ids["input_ids"].shape[1]
    assert check_rows(engine, np.asarray(out), CATEGORIES) == set(PROMPTS)


def test_jax_engine_parses_from_where_the_prompt_left_the_block():
    import jax

    model = FlaxGPT2LMHeadModel(config(), seed=5)
    engine = StructuringEngine(CONSTRAINT, adapter=JAXAdapter(), tokenizer=legacy_tokenizer())
    ids = batch()
    out = engine.generate(model, ids["input_ids"], attention_mask=ids["attention_mask"], do_sample=True,
                          temperature=1.5, top_k=0, max_new_tokens=NEW, prng_key=jax.random.PRNGKey(5))
    assert engine.last_generation.prompt_length == ids["input_ids"].shape[1]
    assert check_rows(engine, np.asarray(out), CATEGORIES) == set(PROMPTS)
