"""The PyTorch processor and the in-graph TF/Flax processors give identical masks at every step.

For the same grammar and random valid token sequences (EOS then padding included), in a batch
with a left-padded prompt, the three processors must allow exactly the same ids at every step:
PyTorch from its prefix-keyed states, TF eagerly and under XLA, Flax eagerly and under jit.
"""

from __future__ import annotations

import numpy as np
import pytest

from tests.helpers import FUZZ_SCHEMAS, PAD, left_padded_arrays, legacy_tokenizer, require_legacy

require_legacy("torch", "tensorflow", "tf_keras", "jax", "flax")

import jax  # noqa: E402
import jax.numpy as jnp  # noqa: E402
import tensorflow as tf  # noqa: E402
import torch  # noqa: E402

from pse_processors import FlaxPSELogitsProcessor, PSELogitsProcessor, Regex, TFPSELogitsProcessor  # noqa: E402
from pse_processors import compile as compile_grammar  # noqa: E402

STEPS = 28
CONSTRAINTS = [FUZZ_SCHEMAS[i] for i in (0, 4, 8, 11, 15, 17, 19, 21)] + [Regex(r"[a-z]{1,5}@[a-z]+\.(com|org)")]


def random_rows(grammar, rng, prompt_ids: np.ndarray) -> np.ndarray:
    """[rows, prompt + STEPS]: each row a random valid continuation; after EOS, padding."""
    eos = sorted(grammar.vocabulary.eos_token_ids)
    rows = []
    for prompt in prompt_ids:
        state, tokens = grammar.initial_state, []
        while len(tokens) < STEPS:
            if state is None:  # finished: generate pads
                tokens.append(PAD)
                continue
            allowed = grammar.allowed_token_ids(state)
            # Prefer EOS half the time once allowed, so that rows finish and get padded.
            token = int(eos[0]) if eos[0] in allowed and rng.random() < 0.5 else int(rng.choice(allowed))
            tokens.append(token)
            state = None if token in eos else grammar.advance(state, token)
        rows.append(np.concatenate([prompt, tokens]))
    return np.array(rows, dtype=np.int32)


@pytest.mark.parametrize("index", range(len(CONSTRAINTS)))
def test_identical_masks_at_every_step(index):
    tok = legacy_tokenizer()
    width = len(tok) + 64
    constraint = CONSTRAINTS[index]
    grammar = compile_grammar(constraint, tok, backend="dfa")  # the in-graph processors run the automaton
    prompts, _ = left_padded_arrays(["Give me JSON:", "{", "Data"])
    prompt_len = prompts.shape[1]
    buffer = random_rows(grammar, np.random.default_rng(index), prompts)
    t_proc = PSELogitsProcessor(grammar)
    tf_proc = TFPSELogitsProcessor(grammar, max_new_tokens=STEPS)
    fx_proc = FlaxPSELogitsProcessor(grammar, max_new_tokens=STEPS)
    tf_xla = tf.function(tf_proc.__call__, jit_compile=True)
    fx_jit = jax.jit(fx_proc)
    zeros_np = np.zeros((len(buffer), width), dtype=np.float32)
    zeros_tf, zeros_jax = tf.constant(zeros_np), jnp.asarray(zeros_np)
    buffer_tf = tf.constant(buffer)
    for step in range(STEPS):
        cur = prompt_len + step
        # generate pads the buffer past cur_len; the in-graph processors must not look there.
        padded = buffer.copy()
        padded[:, cur:] = PAD
        reference = np.isfinite(t_proc(torch.from_numpy(buffer[:, :cur].astype(np.int64)), torch.from_numpy(zeros_np)).numpy())
        masks = {
            "tf-xla": np.isfinite(tf_xla(tf.constant(padded), zeros_tf, tf.constant(cur)).numpy()),
            "flax-jit": np.isfinite(np.asarray(fx_jit(padded, zeros_jax, jnp.int32(cur)))),
            # Future tokens in the buffer are ignored too.
            "flax-jit-unpadded": np.isfinite(np.asarray(fx_jit(buffer, zeros_jax, jnp.int32(cur)))),
        }
        if step % 7 == 0:  # eager calls are slower; sample some steps
            masks["tf-eager"] = np.isfinite(tf_proc(buffer_tf, zeros_tf, cur).numpy())
            masks["flax-eager"] = np.isfinite(np.asarray(fx_proc(padded, zeros_jax, cur)))
        for name, mask in masks.items():
            for row in range(len(buffer)):
                if not np.array_equal(mask[row], reference[row]):
                    diff = np.flatnonzero(mask[row] != reference[row])[:10].tolist()
                    pytest.fail(f"{name} differs from torch at step {step}, row {row}, ids {diff}")
        assert reference.any(axis=1).all()
    assert tf_xla.experimental_get_tracing_count() == 1
