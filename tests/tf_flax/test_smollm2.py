"""Real weights: the embedded SmolLM2-135M-Instruct, loaded from PyTorch weights into TF and Flax.

- TF has no Llama; TFMistralForCausalLM with ``sliding_window=None`` is the same network and
  honours ``rope_theta``.
- FlaxLlamaForCausalLM loads the weights, but hard-codes rope_theta=10000 (SmolLM2 uses
  100000), so its logits drift from the PyTorch model's; the constraint holds all the same.
- Neither ties the output layer to the embeddings, which SmolLM2 does: both are copied here.
"""

from __future__ import annotations

import numpy as np
import pytest

from tests.helpers import PAD, check_in_graph_rows, legacy_tokenizer, require_legacy, smollm2_flax_model, smollm2_tf_model

require_legacy("torch", "tensorflow", "tf_keras", "jax", "flax")

import jax  # noqa: E402
import tensorflow as tf  # noqa: E402

from pse_processors import FlaxPSELogitsProcessor, TFPSELogitsProcessor  # noqa: E402

pytestmark = pytest.mark.model

SCHEMA = {"type": "object", "properties": {"name": {"type": "string", "maxLength": 20}}, "required": ["name"]}
PEOPLE = {"type": "object", "properties": {"name": {"type": "string", "maxLength": 12}, "age": {"type": "integer"}},
          "required": ["name", "age"]}
NEW = 16


def chat_prompts(texts: list[str]) -> tuple[np.ndarray, np.ndarray]:
    tok = legacy_tokenizer()
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


def test_tf_eager_greedy_extraction():
    from transformers import TFLogitsProcessorList

    proc = TFPSELogitsProcessor(SCHEMA, legacy_tokenizer(), max_new_tokens=NEW)
    ids, _ = chat_prompts([EXTRACT])
    out = smollm2_tf_model().generate(input_ids=tf.constant(ids), logits_processor=TFLogitsProcessorList([proc]),
                                      max_new_tokens=NEW, do_sample=False, eos_token_id=2, pad_token_id=PAD)
    assert proc.parse(out.numpy()[0], prompt_length=ids.shape[1]) == {"name": "John Smith"}


def test_tf_xla_batch_left_padded():
    from transformers import TFLogitsProcessorList

    new = 24
    proc = TFPSELogitsProcessor(PEOPLE, legacy_tokenizer(), max_new_tokens=new)
    ids, mask = chat_prompts(TWO)
    kwargs = dict(logits_processor=TFLogitsProcessorList([proc]), max_new_tokens=new, do_sample=False,
                  eos_token_id=2, pad_token_id=PAD)
    generate = tf.function(smollm2_tf_model().generate, jit_compile=True)
    out = generate(input_ids=tf.constant(ids), attention_mask=tf.constant(mask), **kwargs)
    assert check_in_graph_rows(proc, PEOPLE, out.numpy(), ids.shape[1]) == 2
    assert proc.parse(out.numpy()[0], prompt_length=ids.shape[1])["name"] == "John Smith"
    assert proc.parse(out.numpy()[1], prompt_length=ids.shape[1]) == {"name": "Alice", "age": 31}


def test_flax_jit_batch_left_padded():
    new = 24
    proc = FlaxPSELogitsProcessor(PEOPLE, legacy_tokenizer(), max_new_tokens=new)
    ids, mask = chat_prompts(TWO)
    kwargs = dict(logits_processor=[proc], max_new_tokens=new, eos_token_id=2, pad_token_id=PAD)
    model = smollm2_flax_model()
    out = jax.jit(lambda i, m: model.generate(i, attention_mask=m, **kwargs).sequences)(ids, mask)
    assert check_in_graph_rows(proc, PEOPLE, out, ids.shape[1]) == 2
    assert proc.parse(np.asarray(out)[0], prompt_length=ids.shape[1])["name"] == "John Smith"
