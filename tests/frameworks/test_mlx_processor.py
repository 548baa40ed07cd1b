"""MLXPSELogitsProcessor inside mlx-lm's own loops, fuzzed with tiny random-weight Llamas at
temperature 1.5: generate, stream_generate, batch_generate, composition with mlx-lm's samplers and
processors, dtypes, quantized models, reuse, and the errors shared with the PyTorch processor."""

from __future__ import annotations

import json

import numpy as np
import pytest

mx = pytest.importorskip("mlx.core")
mlx_lm = pytest.importorskip("mlx_lm")

from mlx_lm import batch_generate, generate, stream_generate  # noqa: E402
from mlx_lm.sample_utils import make_logits_processors, make_sampler  # noqa: E402

import pse_processors as pse  # noqa: E402
from pse_processors.mlx import MLXPSELogitsProcessor  # noqa: E402
from tests.helpers import FUZZ_SCHEMAS, smol_tokenizer_mlx, tiny_llama_mlx, validate  # noqa: E402

MAX_TOKENS = 48
EXTRA = 64  # logits wider than the tokenizer, as padded vocabularies are


@pytest.fixture(scope="module")
def tok():
    return smol_tokenizer_mlx()


@pytest.fixture(scope="module")
def eos(tok):
    return tok.eos_token_id


@pytest.fixture(scope="module")
def model(tok):
    return tiny_llama_mlx(len(tok) + EXTRA, seed=0)


@pytest.fixture(scope="module")
def prompt(tok):
    return tok.encode("Reply in JSON:")


class Recorder:
    """A logits processor that keeps the last token row it was handed (prompt + generated)."""

    def __init__(self) -> None:
        self.last = None

    def __call__(self, tokens, logits):
        self.last = np.asarray(tokens).tolist()
        return logits


def check_finished(processor, schema, ids, text=None) -> bool:
    """Validate a finished output (its ids end in EOS, or ended before max_tokens)."""
    value = processor.parse(ids)
    validate(schema, json.dumps(value))
    if text is not None:
        assert validate(schema, text) == value
    return True


def test_generate_fuzz(model, tok, eos, prompt):
    sampler = make_sampler(temp=1.5)
    finished = 0
    for i, schema in enumerate(FUZZ_SCHEMAS):
        mx.random.seed(i)
        processor, recorder = MLXPSELogitsProcessor(schema, tok), Recorder()
        text = generate(model, tok, prompt, max_tokens=MAX_TOKENS, sampler=sampler, logits_processors=[processor, recorder])
        generated = recorder.last[len(prompt):]
        if eos in generated:  # the look-ahead call saw the EOS
            finished += check_finished(processor, schema, generated, text)
    assert finished >= len(FUZZ_SCHEMAS) * 2 // 3


def test_stream_generate_fuzz(model, tok, eos, prompt):
    sampler = make_sampler(temp=1.5)
    finished = 0
    for i, schema in enumerate(FUZZ_SCHEMAS):
        mx.random.seed(100 + i)
        processor = MLXPSELogitsProcessor(schema, tok)
        responses = list(
            stream_generate(model, tok, mx.array(prompt), max_tokens=MAX_TOKENS, sampler=sampler, logits_processors=[processor])
        )
        if responses[-1].finish_reason == "stop":
            ids = [r.token for r in responses]
            assert ids[-1] == eos
            finished += check_finished(processor, schema, ids, "".join(r.text for r in responses))
    assert finished >= len(FUZZ_SCHEMAS) * 2 // 3


def test_batch_generate_fuzz_one_processor_for_all_rows(model, tok, prompt):
    sampler = make_sampler(temp=1.5)
    prompts = [prompt, tok.encode("JSON, please:"), prompt, tok.encode("Now some JSON")]
    finished = 0
    for i, schema in enumerate(FUZZ_SCHEMAS):
        mx.random.seed(200 + i)
        processor = MLXPSELogitsProcessor(schema, tok)
        out = batch_generate(
            model, tok, prompts, max_tokens=MAX_TOKENS, sampler=sampler, logits_processors=[processor],
            return_token_ids=True,
        )
        for ids, text in zip(out.token_ids, out.texts):
            if len(ids) < MAX_TOKENS:  # ended by EOS (which batch_generate drops)
                finished += check_finished(processor, schema, ids, text)
    assert finished >= len(FUZZ_SCHEMAS) * len(prompts) * 2 // 3


def test_batch_generator_two_schemas_in_one_batch(model, tok, prompt):
    from mlx_lm.generate import BatchGenerator

    person = {"type": "object", "properties": {"name": {"type": "string", "maxLength": 6}}, "required": ["name"]}
    flags = {"type": "array", "items": {"type": "boolean"}, "minItems": 1, "maxItems": 3}
    schemas = [person, flags, person, flags, person, flags]
    processors = {id(s): MLXPSELogitsProcessor(s, tok) for s in (person, flags)}
    mx.random.seed(7)
    gen = BatchGenerator(model, max_tokens=MAX_TOKENS, stop_tokens=[[tok.eos_token_id]], sampler=make_sampler(temp=1.5))
    uids = gen.insert([prompt] * len(schemas), logits_processors=[[processors[id(s)]] for s in schemas])
    tokens = {uid: [] for uid in uids}
    reasons = {}
    while responses := gen.next_generated():
        for r in responses:
            tokens[r.uid].append(r.token)
            if r.finish_reason is not None:
                reasons[r.uid] = r.finish_reason
    gen.close()
    finished = 0
    for uid, schema in zip(uids, schemas):
        if reasons[uid] == "stop":
            finished += check_finished(processors[id(schema)], schema, tokens[uid])
    assert finished >= 4
    assert {reasons[u] for u, s in zip(uids, schemas) if s is flags} == {"stop"}  # arrays of booleans finish fast


def test_speculative_decoding_with_a_draft_model(model, tok, prompt):
    """A draft model that disagrees often: the processor sees draft positions and rollbacks."""
    draft = tiny_llama_mlx(len(tok) + EXTRA, seed=5)
    sampler = make_sampler(temp=1.5)
    finished = drafted = 0
    for i, schema in enumerate(FUZZ_SCHEMAS[::2]):
        mx.random.seed(300 + i)
        processor = MLXPSELogitsProcessor(schema, tok)
        responses = list(
            stream_generate(
                model, tok, mx.array(prompt), max_tokens=MAX_TOKENS, draft_model=draft, num_draft_tokens=3,
                sampler=sampler, logits_processors=[processor],
            )
        )
        drafted += sum(r.from_draft for r in responses)
        if responses[-1].finish_reason == "stop":
            finished += check_finished(processor, schema, [r.token for r in responses])
    assert finished >= len(FUZZ_SCHEMAS[::2]) // 2
    assert drafted > 0  # some draft tokens were accepted, so both paths ran


def test_composes_with_mlx_lm_samplers_and_processors(model, tok, prompt):
    schema = FUZZ_SCHEMAS[8]  # an object with a string and an integer
    sampler = make_sampler(temp=1.5, top_p=0.9, min_p=0.05)
    finished = 0
    for i in range(4):
        mx.random.seed(400 + i)
        processor = MLXPSELogitsProcessor(schema, tok)
        penalty = make_logits_processors(repetition_penalty=1.3, repetition_context_size=20)
        chain = penalty + [processor] if i % 2 else [processor] + penalty
        responses = list(
            stream_generate(model, tok, mx.array(prompt), max_tokens=MAX_TOKENS, sampler=sampler, logits_processors=chain)
        )
        if responses[-1].finish_reason == "stop":
            finished += check_finished(processor, schema, [r.token for r in responses])
    assert finished >= 2


@pytest.mark.parametrize("dtype", ["float16", "bfloat16"])
def test_half_precision_logits(tok, prompt, dtype):
    model = tiny_llama_mlx(len(tok) + EXTRA, seed=1, dtype=getattr(mx, dtype))
    schema = FUZZ_SCHEMAS[9]
    processor = MLXPSELogitsProcessor(schema, tok)
    finished = 0
    for i in range(4):
        mx.random.seed(500 + i)
        responses = list(
            stream_generate(model, tok, mx.array(prompt), max_tokens=MAX_TOKENS, sampler=make_sampler(temp=1.5),
                            logits_processors=[processor])
        )
        if responses[-1].finish_reason == "stop":
            finished += check_finished(processor, schema, [r.token for r in responses])
    assert finished >= 2
    from pse_processors.runtime.device_cache import device_cache

    masks = device_cache(processor.matcher, "mlx")
    assert (getattr(mx, dtype), len(tok) + EXTRA) in masks
    assert all(m.dtype == getattr(mx, dtype) for m in masks[(getattr(mx, dtype), len(tok) + EXTRA)]._items.values())


def test_quantized_model_and_reuse_across_calls(tok, prompt):
    import mlx.nn as nn

    model = tiny_llama_mlx(len(tok) + EXTRA, seed=2)
    nn.quantize(model, group_size=32, bits=4)
    schema = FUZZ_SCHEMAS[17]  # $ref'd object with an array of enums
    processor = MLXPSELogitsProcessor(schema, tok)  # one instance, several calls and prompts
    finished = 0
    for i, text_prompt in enumerate(["Reply in JSON:", "Reply in JSON: {", "Another prompt", "Reply in JSON:"]):
        mx.random.seed(600 + i)
        responses = list(
            stream_generate(model, tok, mx.array(tok.encode(text_prompt)), max_tokens=64,
                            sampler=make_sampler(temp=1.5), logits_processors=[processor])
        )
        if responses[-1].finish_reason == "stop":
            finished += check_finished(processor, schema, [r.token for r in responses])
    assert finished >= 2


def test_regex_choice_and_pydantic_constraints(model, tok, prompt):
    pydantic = pytest.importorskip("pydantic")

    class Point(pydantic.BaseModel):
        x: int
        y: bool

    for i, constraint in enumerate([pse.Regex(r"[a-c]{2,4}-[0-9]"), pse.Choice(["alpha", "beta", "gamma delta"]), Point]):
        processor = MLXPSELogitsProcessor(constraint, tok)
        for seed in range(3):
            mx.random.seed(700 + 10 * i + seed)
            text = generate(model, tok, prompt, max_tokens=MAX_TOKENS, sampler=make_sampler(temp=1.5), logits_processors=[processor])
            value = processor.parse(text)
            if isinstance(constraint, pse.Regex):
                assert pse.compile(constraint, tok._tokenizer).accepts(tok.encode(text, add_special_tokens=False))
            elif isinstance(constraint, pse.Choice):
                assert value in ("alpha", "beta", "gamma delta")
            else:
                assert isinstance(value, Point)
