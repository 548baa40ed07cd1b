"""Helpers of the legacy-environment tests (transformers 4.57.6 with TensorFlow and Flax).

Not a conftest (tests/conftest.py is imported as ``conftest`` by the other tests): heavy
objects are cached per process with ``functools.cache`` so every test module shares them.

In the main environment these tests skip. ``bash scripts/test.sh`` runs them in the legacy
environment with ``PSE_REQUIRE_LEGACY=1``, where a framework that cannot be imported is a
failure, not a skip.
"""

from __future__ import annotations

import functools
import importlib
import os
from typing import Any

import numpy as np
import pytest

REQUIRED = os.environ.get("PSE_REQUIRE_LEGACY") == "1"

PROMPTS = ["Give me JSON:", "Data", "Here is the answer in JSON format, nothing else:", "{"]
PAD = 0  # pad (0, <|endoftext|>) != EOS (2, <|im_end|>)


def require(*modules: str) -> None:
    """Import ``modules`` and transformers 4.x; skip the calling module without them, unless required."""
    try:
        for name in modules:
            importlib.import_module(name)
        import transformers

        if int(transformers.__version__.split(".")[0]) >= 5:
            raise ImportError(f"transformers {transformers.__version__} has no TF/Flax generation (needs < 5)")
    except ImportError as exc:
        if REQUIRED:
            raise ImportError(f"PSE_REQUIRE_LEGACY=1 but the legacy test environment is incomplete: {exc}") from exc
        pytest.skip(f"legacy environment only: {exc}", allow_module_level=True)


@functools.cache
def tokenizer() -> Any:
    """SmolLM2's tokenizer. The cached folder was saved by transformers 5, whose tokenizer class
    4.57 does not know, so load it as a plain fast tokenizer."""
    from transformers import PreTrainedTokenizerFast

    from pse_processors.embedded import smollm2_dir

    tok = PreTrainedTokenizerFast.from_pretrained(smollm2_dir())
    tok.padding_side = "left"
    return tok


def left_padded(texts: list[str] = PROMPTS) -> tuple[np.ndarray, np.ndarray]:
    tok = tokenizer()
    rows = [tok(t, add_special_tokens=False)["input_ids"] for t in texts]
    width = max(len(r) for r in rows)
    ids = np.array([[PAD] * (width - len(r)) + r for r in rows], dtype=np.int32)
    mask = np.array([[0] * (width - len(r)) + [1] * len(r) for r in rows], dtype=np.int32)
    return ids, mask


def check_rows(processor: Any, schema: Any, sequences: Any, prompt_length: int) -> int:
    """Every finished row validates with jsonschema (and equals ``parse``); every unfinished row is
    a live prefix of the grammar. Returns how many rows finished."""
    from conftest import validate

    from pse_processors import InvalidOutputError

    grammar = processor.matcher
    eos = grammar.vocabulary.eos_token_ids
    finished = 0
    for row in np.asarray(sequences):
        generated = [int(t) for t in row[prompt_length:]]
        end = next((i for i, t in enumerate(generated) if t in eos), None)
        if end is not None:
            text = grammar.vocabulary.decode(generated[:end]).decode("utf-8")
            value = processor.parse(row, prompt_length=prompt_length)
            assert validate(schema, text) == value, text
            assert all(t in eos or t == PAD for t in generated[end:]), f"only EOS/pad after EOS: {generated}"
            finished += 1
        else:
            state = grammar.walk(generated)
            assert state >= 0, f"row left the constraint: {grammar.vocabulary.decode(generated)!r}"
            if not grammar.is_accepting(state):
                with pytest.raises(InvalidOutputError):
                    processor.parse(row, prompt_length=prompt_length)
    return finished
