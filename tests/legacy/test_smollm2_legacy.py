"""Real weights: the embedded SmolLM2-135M-Instruct, loaded from PyTorch weights into TF and Flax.

- TF has no Llama; TFMistralForCausalLM with ``sliding_window=None`` is the same network and
  honours ``rope_theta``.
- FlaxLlamaForCausalLM loads the weights, but hard-codes rope_theta=10000 (SmolLM2 uses
  100000), so its logits drift from the PyTorch model's; the constraint holds all the same.
- Neither ties the output layer to the embeddings, which SmolLM2 does: both are copied here.
"""

from __future__ import annotations

import functools
import json

import numpy as np
import pytest

from legacy_support import PAD, check_rows, require, tokenizer

require("torch", "tensorflow", "tf_keras", "jax", "flax")

import jax  # noqa: E402
import tensorflow as tf  # noqa: E402

from pse_processors import FlaxPSELogitsProcessor, TFPSELogitsProcessor  # noqa: E402
from pse_processors.embedded import smollm2_dir  # noqa: E402

pytestmark = pytest.mark.model

SCHEMA = {"type": "object", "properties": {"name": {"type": "string", "maxLength": 20}}, "required": ["name"]}
PEOPLE = {"type": "object", "properties": {"name": {"type": "string", "maxLength": 12}, "age": {"type": "integer"}},
          "required": ["name", "age"]}
NEW = 16


def config() -> dict:
    values = json.loads((smollm2_dir() / "config.json").read_text())
    # transformers 5 writes rope_parameters; 4.57 reads a top-level rope_theta (else 10000).
    values["rope_theta"] = values.get("rope_theta") or values["rope_parameters"]["rope_theta"]
    return values


def chat_prompts(texts: list[str]) -> tuple[np.ndarray, np.ndarray]:
    tok = tokenizer()
    rows = []
    for text in texts:
        chat = tok.apply_chat_template([{"role": "user", "content": text}], tokenize=False, add_generation_prompt=True)
        rows.append(tok(chat, add_special_tokens=False)["input_ids"])
    width = max(len(r) for r in rows)
    ids = np.array([[PAD] * (width - len(r)) + r for r in rows], dtype=np.int32)
    mask = np.array([[0] * (width - len(r)) + [1] * len(r) for r in rows], dtype=np.int32)
    return ids, mask


EXTRACT = "Extract a name from this text: John Smith is a developer."
TWO = [EXTRACT, "Alice is 31 years old. Give her name and age as JSON."]


@functools.cache
def tf_model():
    from transformers import MistralConfig, TFMistralForCausalLM

    c = config()
    mistral = MistralConfig(
        vocab_size=c["vocab_size"], hidden_size=c["hidden_size"], intermediate_size=c["intermediate_size"],
        num_hidden_layers=c["num_hidden_layers"], num_attention_heads=c["num_attention_heads"],
        num_key_value_heads=c["num_key_value_heads"], head_dim=c["head_dim"],
        max_position_embeddings=c["max_position_embeddings"], rms_norm_eps=c["rms_norm_eps"], rope_theta=c["rope_theta"],
        sliding_window=None, tie_word_embeddings=True, bos_token_id=1, eos_token_id=2, pad_token_id=PAD,
    )
    model = TFMistralForCausalLM.from_pretrained(smollm2_dir(), from_pt=True, config=mistral)
    model.lm_head.kernel.assign(tf.transpose(model.model.embed_tokens.embeddings))  # tied in SmolLM2
    return model


@functools.cache
def flax_model():
    from transformers import FlaxLlamaForCausalLM, LlamaConfig

    c = config()
    keep = {k: v for k, v in c.items() if k not in ("rope_parameters", "dtype", "transformers_version", "architectures")}
    model = FlaxLlamaForCausalLM.from_pretrained(smollm2_dir(), from_pt=True, config=LlamaConfig(**keep))
    model.params["lm_head"]["kernel"] = model.params["model"]["embed_tokens"]["embedding"].T  # tied in SmolLM2
    return model


def test_tf_eager_greedy_extraction():
    from transformers import TFLogitsProcessorList

    proc = TFPSELogitsProcessor(SCHEMA, tokenizer(), max_new_tokens=NEW)
    ids, _ = chat_prompts([EXTRACT])
    out = tf_model().generate(input_ids=tf.constant(ids), logits_processor=TFLogitsProcessorList([proc]),
                              max_new_tokens=NEW, do_sample=False, eos_token_id=2, pad_token_id=PAD)
    assert proc.parse(out.numpy()[0], prompt_length=ids.shape[1]) == {"name": "John Smith"}


def test_tf_xla_batch_left_padded():
    from transformers import TFLogitsProcessorList

    new = 24
    proc = TFPSELogitsProcessor(PEOPLE, tokenizer(), max_new_tokens=new)
    ids, mask = chat_prompts(TWO)
    kwargs = dict(logits_processor=TFLogitsProcessorList([proc]), max_new_tokens=new, do_sample=False,
                  eos_token_id=2, pad_token_id=PAD)
    generate = tf.function(tf_model().generate, jit_compile=True)
    out = generate(input_ids=tf.constant(ids), attention_mask=tf.constant(mask), **kwargs)
    assert check_rows(proc, PEOPLE, out.numpy(), ids.shape[1]) == 2
    assert proc.parse(out.numpy()[0], prompt_length=ids.shape[1])["name"] == "John Smith"
    assert proc.parse(out.numpy()[1], prompt_length=ids.shape[1]) == {"name": "Alice", "age": 31}


def test_flax_jit_batch_left_padded():
    new = 24
    proc = FlaxPSELogitsProcessor(PEOPLE, tokenizer(), max_new_tokens=new)
    ids, mask = chat_prompts(TWO)
    kwargs = dict(logits_processor=[proc], max_new_tokens=new, eos_token_id=2, pad_token_id=PAD)
    model = flax_model()
    out = jax.jit(lambda i, m: model.generate(i, attention_mask=m, **kwargs).sequences)(ids, mask)
    assert check_rows(proc, PEOPLE, out, ids.shape[1]) == 2
    assert proc.parse(np.asarray(out)[0], prompt_length=ids.shape[1])["name"] == "John Smith"
