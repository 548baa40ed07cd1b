"""``engine.parse`` on PyTorch and MLX when the chat template left, opened or closed a reasoning
block after a multi-turn history (the output then starts with ``<think>``, inside the block, or at
the answer): each row is parsed from where its prompt left it. TensorFlow and JAX run the same
check in ``tests/tf_flax/test_engine_reasoning.py``."""

from __future__ import annotations

import pytest

from pse_processors import PyTorchAdapter, StructuringEngine
from tests.engine.reasoning_rows import CONSTRAINT, PROMPTS, check_rows

NEW = 40


def test_torch_engine_parses_from_where_the_prompt_left_the_block(smol_tokenizer, tiny_llama):
    import torch

    engine = StructuringEngine(CONSTRAINT, adapter=PyTorchAdapter(device="cpu"))
    finished = set()
    for category, text in PROMPTS.items():
        torch.manual_seed(category)
        ids = smol_tokenizer(text, return_tensors="pt")["input_ids"]
        out = engine.generate(tiny_llama, ids, tokenizer=smol_tokenizer, do_sample=True, temperature=1.5,
                              max_new_tokens=NEW, num_return_sequences=3)
        finished |= check_rows(engine, out, [category] * 3)
    assert finished == set(PROMPTS), "some prompt category had no finished row"


def test_mlx_engine_parses_from_where_the_prompt_left_the_block():
    pytest.importorskip("mlx_lm")
    import mlx.core as mx

    from pse_processors.adapters import MLXAdapter
    from tests.helpers import smol_tokenizer_mlx, tiny_llama_mlx

    tok = smol_tokenizer_mlx()
    model = tiny_llama_mlx(len(tok), seed=4)
    engine = StructuringEngine(CONSTRAINT, adapter=MLXAdapter())
    finished = set()
    for category, text in PROMPTS.items():
        ids = tok.encode(text, add_special_tokens=False)
        out = engine.generate(model, mx.array([ids] * 3), tokenizer=tok, do_sample=True, temperature=1.5, max_new_tokens=NEW)
        finished |= check_rows(engine, out, [category] * 3)
    assert finished == set(PROMPTS), "some prompt category had no finished row"
