"""Regex anchors in the in-graph processors (issue 22): ``^``/``\\A`` at the start and ``$``/``\\Z`` at
the end are no-ops of a full match, so under XLA and jax.jit EOS is allowed exactly when the text
fully matches; before, ``^...$`` was refused as unsatisfiable and ``[0-9]+$`` never allowed EOS."""

from __future__ import annotations

import numpy as np
import pytest

from tests.helpers import PAD, left_padded_arrays, legacy_tokenizer, require_legacy

require_legacy("tensorflow", "tf_keras", "jax", "flax")

import jax  # noqa: E402
import jax.numpy as jnp  # noqa: E402
import tensorflow as tf  # noqa: E402

from pse_processors import FlaxPSELogitsProcessor, Regex, TFPSELogitsProcessor, UnsatisfiableConstraintError  # noqa: E402
from pse_processors.errors import UnsupportedRegexError  # noqa: E402

STEPS = 6


@pytest.mark.parametrize(
    "pattern, text, complete_after",
    [("^[0-9]{3}$", "123", 3), ("[0-9]+$", "4567", 1), (r"\A(?:yes|no)\Z", "no", 2)],
)
def test_eos_is_allowed_exactly_at_a_full_match(pattern, text, complete_after):
    tok = legacy_tokenizer()
    eos = tok.eos_token_id
    digits = tok(text, add_special_tokens=False)["input_ids"]
    prompts, _ = left_padded_arrays(["Answer:", "A"])
    prompt_length = prompts.shape[1]
    tokens = (digits + [eos] + [PAD] * STEPS)[:STEPS]
    buffer = np.concatenate([prompts, np.array([tokens] * len(prompts), dtype=np.int32)], axis=1)
    width = len(tok) + 64
    zeros = np.zeros((len(buffer), width), dtype=np.float32)
    tf_proc = TFPSELogitsProcessor(Regex(pattern), tok, max_new_tokens=STEPS)
    fx_proc = FlaxPSELogitsProcessor(Regex(pattern), tok, max_new_tokens=STEPS)
    tf_xla = tf.function(tf_proc.__call__, jit_compile=True)
    fx_jit = jax.jit(fx_proc)
    done = len(tok(text[:complete_after], add_special_tokens=False)["input_ids"])
    for step in range(len(digits) + 1):
        cur = prompt_length + step
        padded = buffer.copy()
        padded[:, cur:] = PAD
        for name, scores in (
            ("tf-xla", tf_xla(tf.constant(padded), tf.constant(zeros), tf.constant(cur)).numpy()),
            ("flax-jit", np.asarray(fx_jit(padded, jnp.asarray(zeros), jnp.int32(cur)))),
        ):
            allowed = np.isfinite(scores)
            assert bool(allowed[:, eos].all()) == (step >= done), (name, pattern, step)
            if step < len(digits):
                assert allowed[:, digits[step]].all(), (name, pattern, step)  # the text goes on
            assert not allowed[:, tok("x", add_special_tokens=False)["input_ids"][0]].any(), (name, pattern, step)
        if step == len(digits):
            assert tf_proc.parse(buffer[0], prompt_length=prompt_length) == text


def test_anchors_inside_the_pattern_are_refused_by_name():
    tok = legacy_tokenizer()
    for processor in (TFPSELogitsProcessor, FlaxPSELogitsProcessor):
        with pytest.raises(UnsupportedRegexError, match="anchor '\\$' at position 1"):
            processor(Regex("a$b"), tok, max_new_tokens=STEPS)
        with pytest.raises(UnsupportedRegexError, match="look-ahead"):
            processor(Regex("(?=a)ab"), tok, max_new_tokens=STEPS)
    assert not issubclass(UnsupportedRegexError, UnsatisfiableConstraintError)
