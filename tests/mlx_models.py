"""Models and tokenizers for the MLX tests: the embedded SmolLM2 tokenizer (converted from its
GGUF without torch) and tiny random-weight mlx-lm Llamas over its vocabulary."""

from __future__ import annotations

import functools


@functools.lru_cache(maxsize=None)
def smol_tokenizer_mlx():
    """mlx-lm's ``TokenizerWrapper`` of the embedded SmolLM2 tokenizer."""
    import os
    from pathlib import Path

    from mlx_lm.tokenizer_utils import load as load_tokenizer

    from pse_processors.compiler.compiler import user_cache_dir
    from pse_processors.embedded import MODEL_ENV, smollm2_gguf_path
    from pse_processors.mlx_embedded import tokenizer_dir

    root = Path(os.environ.get(MODEL_ENV) or user_cache_dir() / "models")
    return load_tokenizer(tokenizer_dir(smollm2_gguf_path(), root))


def tiny_llama_mlx(vocab_size: int, seed: int = 0, dtype=None):
    """A random-weight mlx-lm Llama (2 layers, width 32); ``dtype`` casts its parameters."""
    import mlx.core as mx
    from mlx_lm.models.llama import Model, ModelArgs

    mx.random.seed(seed)
    args = ModelArgs(
        model_type="llama", hidden_size=32, num_hidden_layers=2, intermediate_size=64, num_attention_heads=4,
        num_key_value_heads=2, rms_norm_eps=1e-5, vocab_size=vocab_size, rope_theta=10000.0, tie_word_embeddings=False,
    )
    model = Model(args)
    if dtype is not None:
        model.set_dtype(dtype)
    mx.eval(model.parameters())
    model.eval()
    return model
