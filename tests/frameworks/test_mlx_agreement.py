"""The MLX processor agrees with the PyTorch one: the same masks at every step of random valid
token sequences, and the same exceptions for bad input."""

from __future__ import annotations

import math

import numpy as np
import pytest

mx = pytest.importorskip("mlx.core")
pytest.importorskip("mlx_lm")
torch = pytest.importorskip("torch")

from mlx_lm import generate  # noqa: E402
from mlx_lm.sample_utils import make_logits_processors, make_sampler  # noqa: E402

import pse_processors as pse  # noqa: E402
from pse_processors.mlx import MLXPSELogitsProcessor  # noqa: E402
from pse_processors.torch import PSELogitsProcessor  # noqa: E402
from tests.helpers import FUZZ_SCHEMAS, smol_tokenizer_mlx, tiny_llama_mlx  # noqa: E402

WIDTH_EXTRA = 64


@pytest.fixture(scope="module")
def tok():
    return smol_tokenizer_mlx()


@pytest.fixture(scope="module")
def width(tok):
    return len(tok) + WIDTH_EXTRA


@pytest.mark.parametrize("index", [0, 4, 8, 11, 15, 17, 18, 20])
def test_masks_equal_torch_at_every_step(index, tok, smol_tokenizer, width):
    """MLX (tokenizer converted from the GGUF) vs PyTorch (the transformers folder's tokenizer)."""
    schema = FUZZ_SCHEMAS[index]
    ours = MLXPSELogitsProcessor(schema, tok)
    theirs = PSELogitsProcessor(schema, smol_tokenizer)
    rng = np.random.default_rng(index)
    prompt = tok.encode("JSON:")
    zeros_mx, zeros_pt = mx.zeros((1, width)), torch.zeros((1, width))
    for _ in range(3):
        row = list(prompt)
        for _ in range(60):
            got = np.asarray(ours(mx.array(row), zeros_mx))[0]
            expected = theirs(torch.tensor([row]), zeros_pt.clone())[0].numpy()
            np.testing.assert_array_equal(np.isinf(got), np.isinf(expected))
            allowed = np.flatnonzero(np.isfinite(expected))
            token = int(rng.choice(allowed))
            row.append(token)
            if token == tok.eos_token_id:
                break
        ours.reset()
        theirs.reset()


def _both(schema, tok, smol_tokenizer):
    return MLXPSELogitsProcessor(schema, tok), PSELogitsProcessor(schema, smol_tokenizer)


def _raises_same(exc_type, ours_call, theirs_call):
    with pytest.raises(exc_type) as mlx_error:
        ours_call()
    with pytest.raises(exc_type) as torch_error:
        theirs_call()
    return mlx_error.value, torch_error.value


@pytest.mark.parametrize("temp", [0.0, 1.0])
def test_nan_logits(tok, smol_tokenizer, width, temp):
    ours, theirs = _both({"type": "boolean"}, tok, smol_tokenizer)
    prompt = tok.encode("JSON:")
    nan_mx, nan_pt = mx.full((1, width), math.nan), torch.full((1, width), math.nan)
    processed = ours(mx.array(prompt), nan_mx)  # mlx is lazy: checked when the row's next token arrives
    token = make_sampler(temp=temp)(processed - mx.logsumexp(processed, keepdims=True)).item()  # what mlx-lm samples
    mlx_error, _ = _raises_same(
        pse.InvalidLogitsError, lambda: ours(mx.array(prompt + [token]), mx.zeros((1, width))),
        lambda: theirs(torch.tensor([prompt]), nan_pt),
    )
    assert "NaN" in str(mlx_error)


class CountedReads:
    """A row's pending best score that counts how often it is read back (``.item()``, the one read
    the deferred checks make)."""

    def __init__(self, value) -> None:
        self.value, self.reads = value, 0

    def item(self) -> float:
        self.reads += 1
        return self.value.item()


def test_finite_scores_are_not_read_back(tok, width, monkeypatch):
    """Plain decoding never reads the scores: a row's best score waits, unread, for its next token,
    and an allowed token after finite scores passes without reading it. Only a suspect token (one
    the constraint rejects, or the first or last id, where NaN scores land) reads it back."""
    ours = MLXPSELogitsProcessor({"type": "boolean"}, tok)
    pending: list[CountedReads] = []
    record = ours._checks.record

    def counted(keys, states, best):
        pending.append(CountedReads(best))
        record(keys, states, pending[-1])

    monkeypatch.setattr(ours._checks, "record", counted)
    prompt, t = tok.encode("JSON:"), tok.encode("true", add_special_tokens=False)[0]
    ours(mx.array(prompt), mx.zeros((1, width)))
    ours(mx.array(prompt + [t]), mx.zeros((1, width)))  # allowed: the prompt's score is checked, unread
    assert len(pending) == 2 and pending[0].reads == 0
    ours(mx.array(prompt + [t, 0]), mx.zeros((1, width)))  # id 0, rejected after "true": read, finite, passes
    assert [p.reads for p in pending] == [0, 1, 0]


def test_nan_from_an_earlier_processor_stops_generate(tok, width):
    model = tiny_llama_mlx(width, seed=3)
    processor = MLXPSELogitsProcessor({"type": "integer"}, tok)
    with pytest.raises(pse.InvalidLogitsError, match="NaN"):
        generate(model, tok, tok.encode("JSON:"), max_tokens=8, logits_processors=[lambda t, l: l * math.nan, processor])


def test_logits_narrower_than_the_tokenizer(tok, smol_tokenizer):
    ours, theirs = _both({"type": "boolean"}, tok, smol_tokenizer)
    narrow = len(tok) - 100
    _raises_same(
        pse.VocabularyError, lambda: ours(mx.array([1, 2]), mx.zeros((1, narrow))),
        lambda: theirs(torch.tensor([[1, 2]]), torch.zeros((1, narrow))),
    )


def test_eos_banned_when_only_eos_is_allowed(tok, smol_tokenizer, width):
    ours, theirs = _both({"type": "boolean"}, tok, smol_tokenizer)
    prompt, true = tok.encode("JSON:"), tok.encode("true", add_special_tokens=False)
    assert ours.matcher.accepts(true)
    for end in range(len(prompt), len(prompt) + len(true)):  # the processors follow the row token by token
        ours(mx.array(prompt + true[: end - len(prompt)]), mx.zeros((1, width)))
        theirs(torch.tensor([prompt + true[: end - len(prompt)]]), torch.zeros((1, width)))
    row = prompt + true
    banned_mx = mx.zeros((1, width))
    banned_mx[:, tok.eos_token_id] = -math.inf
    banned_pt = torch.zeros((1, width))
    banned_pt[:, tok.eos_token_id] = -math.inf
    processed = ours(mx.array(row), banned_mx)
    token = make_sampler(temp=1.0)(processed - mx.logsumexp(processed, keepdims=True)).item()  # what mlx-lm samples
    mlx_error, torch_error = _raises_same(
        pse.ConstraintConflictError, lambda: ours(mx.array(row + [token]), mx.zeros((1, width))),
        lambda: theirs(torch.tensor([row]), banned_pt),
    )
    assert "EOS was forbidden" in str(mlx_error) and "EOS was forbidden" in str(torch_error)


def test_logit_bias_banning_eos_stops_generate(tok, width):
    model = tiny_llama_mlx(width, seed=4)
    processor = MLXPSELogitsProcessor({"enum": ["yes", "no"]}, tok)
    ban_eos = make_logits_processors(logit_bias={tok.eos_token_id: -math.inf})
    with pytest.raises(pse.ConstraintConflictError, match="EOS"):
        generate(model, tok, tok.encode("JSON:"), max_tokens=20, sampler=make_sampler(temp=1.0),
                 logits_processors=ban_eos + [processor])


@pytest.mark.parametrize(
    "tokens_shape, logits_shape, dtype",
    [((4,), (1, 10, 7), "float32"), ((2, 4), (1, 7), "float32"), ((4,), (2, 7), "float32"), ((4,), (1, 7), "int32")],
)
def test_bad_shapes_and_dtypes(tok, smol_tokenizer, tokens_shape, logits_shape, dtype):
    ours, theirs = _both({"type": "boolean"}, tok, smol_tokenizer)
    tokens = np.ones(tokens_shape, dtype=np.int64)
    logits = np.zeros(logits_shape, dtype=dtype)
    torch_tokens = torch.from_numpy(tokens if tokens.ndim == 2 else tokens[None])
    _raises_same(
        pse.InvalidLogitsError, lambda: ours(mx.array(tokens), mx.array(logits)),
        lambda: theirs(torch_tokens, torch.from_numpy(logits)),
    )
