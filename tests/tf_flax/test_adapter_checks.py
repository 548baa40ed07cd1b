"""The TensorFlow and JAX adapters check their options by name and refuse another model's
tokenizer; the in-graph processors' ``parse`` checks text against the constraint (issue 22)."""

from __future__ import annotations

import numpy as np
import pytest

from tests.helpers import PAD, legacy_tokenizer, require_legacy

require_legacy("tensorflow", "tf_keras", "jax", "flax")

import pse_processors as pse  # noqa: E402
from pse_processors import StructuringEngine  # noqa: E402
from pse_processors.adapters import JAXAdapter, TensorFlowAdapter  # noqa: E402
from pse_processors.assets import load_tokenizer  # noqa: E402


@pytest.mark.parametrize("kwargs, error, name", [
    ({"xla_compilation": "yes"}, TypeError, "xla_compilation"),
    ({"mixed_precision": 1}, TypeError, "mixed_precision"),
    ({"mixed_precision": "float16"}, ValueError, "mixed_precision"),
    ({"device": 0}, TypeError, "device"),
    ({"device": "nonsense:::"}, ValueError, "device"),
])
def test_tensorflow_adapter_options_are_checked(kwargs, error, name):
    with pytest.raises(error, match=name):
        TensorFlowAdapter(**kwargs)


@pytest.mark.parametrize("kwargs, error, name", [
    ({"jit_compile": "yes"}, TypeError, "jit_compile"),
    ({"dtype": "int32"}, ValueError, "floating-point"),
    ({"dtype": "nonsense"}, TypeError, "dtype"),
    ({"platform": "gpu0"}, ValueError, "platform"),
])
def test_jax_adapter_options_are_checked(kwargs, error, name):
    with pytest.raises(error, match=name):
        JAXAdapter(**kwargs)


def tiny_gpt2_config(tok):
    from transformers import GPT2Config

    return GPT2Config(vocab_size=len(tok) + 64, n_embd=32, n_layer=1, n_head=2, n_positions=64,
                      bos_token_id=1, eos_token_id=tok.eos_token_id, pad_token_id=PAD)


def test_another_models_tokenizer_is_refused_and_text_is_checked():
    from transformers import FlaxGPT2LMHeadModel, TFGPT2LMHeadModel

    tok = legacy_tokenizer()
    tf_model = TFGPT2LMHeadModel(tiny_gpt2_config(tok))
    tf_model(np.array([[1, 2]]))  # build the weights
    flax_model = FlaxGPT2LMHeadModel(tiny_gpt2_config(tok), seed=0)
    llama2 = load_tokenizer("llama2")  # 32,000 tokens on SmolLM2's 49,152 + 64 logits
    for adapter, model in ((TensorFlowAdapter(), tf_model), (JAXAdapter(), flax_model)):
        engine = StructuringEngine.from_regex("[0-9]{2}", adapter=adapter, tokenizer=tok)
        with pytest.raises(pse.VocabularyError, match=r"32000 tokens.*config\.vocab_size\) are 49216 wide"):
            engine.generate(model, np.array([[1, 2]]), tokenizer=llama2, max_new_tokens=4)
        engine.generate(model, np.array([[1, 2]]), max_new_tokens=4)
        assert engine.parse("42") == "42"
        with pytest.raises(pse.InvalidOutputError):
            engine.parse("abc")
    for processor in (pse.TFPSELogitsProcessor, pse.FlaxPSELogitsProcessor):
        choices = processor(pse.Choice(["yes", "no"]), tok, max_new_tokens=4)
        assert choices.parse("yes") == "yes"
        with pytest.raises(pse.InvalidOutputError):
            choices.parse("maybe")
