"""Reasoning, Delimited and Tools inside mlx-lm's loops (MLXPSELogitsProcessor: ``generate`` per
sequence, ``batch_generate`` with one processor for every row, ``BatchGenerator`` with a
processor per sequence) and through StructuringEngine's MLXAdapter, on the real Qwen3 and
Llama-3.1 tokenizers with tiny random-weight models at temperature 1.5 (steered toward their
formats, see ``conventions.py``)."""

from __future__ import annotations

import numpy as np
import pytest

mx = pytest.importorskip("mlx.core")
mlx_lm = pytest.importorskip("mlx_lm")

from mlx_lm import batch_generate, generate  # noqa: E402
from mlx_lm.sample_utils import make_sampler  # noqa: E402

import pse_processors as pse  # noqa: E402
from pse_processors.mlx import MLXPSELogitsProcessor  # noqa: E402
from tests.freetext import conventions as cv  # noqa: E402
from tests.helpers import tiny_llama_mlx  # noqa: E402

MAX_NEW = 56
TEMPERATURE = 1.5


class SteerProcessor:
    """The steering bias as an mlx-lm logits processor (it also keeps the last tokens it saw)."""

    def __init__(self, steer: cv.Steer) -> None:
        self.steer = steer
        self.last = None

    def __call__(self, tokens, logits):
        rows = np.asarray(tokens)
        rows = rows[None] if rows.ndim == 1 else rows
        self.last = rows[-1].tolist()
        return logits + mx.array(self.steer.bias(rows)[:, : logits.shape[-1]]).astype(logits.dtype)


def _setup(name: str, seed: int):
    from mlx_lm.tokenizer_utils import TokenizerWrapper
    from transformers import AutoTokenizer

    from pse_processors.assets import tokenizer_path

    try:
        hf = AutoTokenizer.from_pretrained(str(tokenizer_path(name)))
    except FileNotFoundError as exc:  # fetched by scripts/fetch_assets.py
        pytest.skip(str(exc))
    return hf, TokenizerWrapper(hf), pse.Vocabulary.from_tokenizer(hf), tiny_llama_mlx(len(hf), seed=seed)


@pytest.fixture(scope="module")
def qwen3():
    return _setup("qwen3", seed=0)


@pytest.fixture(scope="module")
def llama3():
    return _setup("llama3_1", seed=1)


def prompt_ids(hf, state: str) -> list[int]:
    messages = [{"role": "user", "content": "What is the weather?"}]
    text = hf.apply_chat_template(messages, add_generation_prompt=True, tokenize=False, enable_thinking=state != "answer")
    return hf.encode(text + ("<think>\n" if state == "inside" else ""), add_special_tokens=False)


def check(case, processor, hf, vocab, prompt: list[int], ids: list[int], state: str, text=None) -> None:
    """Parse a finished row (ids without EOS) with its prompt, and as text when given."""
    parsed = processor.parse(prompt + ids, prompt_length=len(prompt))
    cv.check_output(case, parsed, ids, vocab, hf, state)
    if text is not None:  # the same output parsed from its text, with no prompt to say where it starts
        assert processor.parse(text) == parsed


def test_batch_generate_one_processor_reads_each_rows_prompt(qwen3) -> None:
    hf, tok, vocab, model = qwen3
    case = cv.reasoning_case(budget=5)
    states = ["start", "inside", "answer", "start", "inside", "answer"]
    prompts = [prompt_ids(hf, s) for s in states]
    processor = MLXPSELogitsProcessor(case.constraint, tok)
    steer = SteerProcessor(cv.Steer(hf, vocab, case, len(hf)))
    mx.random.seed(0)
    out = batch_generate(model, tok, prompts, max_tokens=MAX_NEW, sampler=make_sampler(temp=TEMPERATURE),
                         logits_processors=[steer, processor], return_token_ids=True)
    for ids, prompt, state in zip(out.token_ids, prompts, states):
        if len(ids) < MAX_NEW:  # ended by EOS (which batch_generate drops)
            check(case, processor, hf, vocab, prompt, list(ids), state)
    cv.check_seen(case, len(states))
    assert case.seen["answer"] >= 2 and case.seen["budget_reached"] >= 1


@pytest.mark.parametrize("which, make", [
    ("qwen3", lambda: cv.tools_case("hermes", "required")),
    ("qwen3", lambda: cv.tools_case("hermes", "none")),
    ("llama3", lambda: cv.tools_case("llama3_json", "required")),
    ("llama3", lambda: cv.tools_case("mistral", "add", parallel=False)),
    ("llama3", cv.delimited_case),
], ids=["hermes-required", "hermes-none", "llama3_json", "mistral-named", "delimited"])
def test_generate_per_sequence(which, make, request) -> None:
    hf, tok, vocab, model = request.getfixturevalue(which)
    case = make()
    prompt = prompt_ids(hf, "answer") if which == "qwen3" else hf.encode("Answer: ", add_special_tokens=False)
    processor = MLXPSELogitsProcessor(case.constraint, tok)
    sampler = make_sampler(temp=TEMPERATURE)
    for seed in range(3):
        mx.random.seed(seed)
        steer = SteerProcessor(cv.Steer(hf, vocab, case, len(hf)))
        text = generate(model, tok, prompt, max_tokens=MAX_NEW, sampler=sampler, logits_processors=[steer, processor])
        generated = steer.last[len(prompt):]  # the look-ahead call saw the EOS
        eos = [i for i, t in enumerate(generated) if t in vocab.eos_token_ids]
        if eos:
            check(case, processor, hf, vocab, prompt, generated[: eos[0]], "start" if which != "qwen3" else "answer",
                  text if case.tools_format != "hermes" else None)  # mlx-lm's text drops special tokens
    cv.check_seen(case, 3)


def test_batch_generator_a_processor_per_sequence(qwen3) -> None:
    # Two constructs in one batch: Reasoning(Tools) from an opened block, Delimited.
    from mlx_lm.generate import BatchGenerator

    hf, tok, vocab, model = qwen3
    nested, spans = cv.nested_tools_case(), cv.delimited_case()
    cases = [nested, spans] * 3
    processors = {id(c): MLXPSELogitsProcessor(c.constraint, tok) for c in (nested, spans)}
    steers = {id(c): SteerProcessor(cv.Steer(hf, vocab, c, len(hf))) for c in (nested, spans)}
    prompts = [prompt_ids(hf, "inside" if c is nested else "answer") for c in cases]
    mx.random.seed(3)
    gen = BatchGenerator(model, max_tokens=MAX_NEW, stop_tokens=[[hf.eos_token_id]], sampler=make_sampler(temp=TEMPERATURE))
    uids = gen.insert(prompts, logits_processors=[[steers[id(c)], processors[id(c)]] for c in cases])
    tokens = {uid: [] for uid in uids}
    reasons = {}
    while responses := gen.next_generated():
        for r in responses:
            tokens[r.uid].append(r.token)
            if r.finish_reason is not None:
                reasons[r.uid] = r.finish_reason
    gen.close()
    for uid, case, prompt in zip(uids, cases, prompts):
        if reasons[uid] == "stop":
            ids = [t for t in tokens[uid] if t not in vocab.eos_token_ids]
            check(case, processors[id(case)], hf, vocab, prompt, ids, "inside" if case is nested else "answer")
    cv.check_seen(nested, 3)
    cv.check_seen(spans, 3)


def test_engine_mlx_adapter(llama3) -> None:
    from pse_processors.adapters import MLXAdapter

    hf, tok, vocab, model = llama3
    case = cv.nested_delimited_case()
    prompt = hf.encode("Answer: ", add_special_tokens=False)
    engine = pse.StructuringEngine(case.constraint, MLXAdapter(), tok)
    for seed in range(3):
        mx.random.seed(seed)
        steer = SteerProcessor(cv.Steer(hf, vocab, case, len(hf)))
        out = engine.generate(model, mx.array([prompt]), do_sample=True, temperature=TEMPERATURE, max_new_tokens=MAX_NEW,
                              logits_processors=[steer])
        ids = out[0].tolist()[len(prompt):]
        eos = [i for i, t in enumerate(ids) if t in vocab.eos_token_ids]
        if eos:
            cv.check_output(case, engine.parse(out), ids[: eos[0]], vocab, hf, "start")
    cv.check_seen(case, 3)
