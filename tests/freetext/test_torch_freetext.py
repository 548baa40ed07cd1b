"""Reasoning, Delimited and Tools inside transformers' ``generate`` (PSELogitsProcessor) and
through StructuringEngine, on the real Qwen3 and Llama-3.1 tokenizers with tiny random-weight
models at temperature 1.5 (steered toward their formats, see ``conventions.py``): every finished
output splits, validates and reads back by its format's own convention."""

from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch")
transformers = pytest.importorskip("transformers")

import pse_processors as pse  # noqa: E402
from pse_processors.adapters import FrameworkAdapter, PyTorchAdapter  # noqa: E402
from tests.freetext import conventions as cv  # noqa: E402
from tests.helpers import tiny_llama_torch  # noqa: E402

MAX_NEW = 56
DEBUG = False


class SteerProcessor(transformers.LogitsProcessor):
    def __init__(self, steer: cv.Steer) -> None:
        self.steer = steer

    def __call__(self, input_ids, scores):
        bias = torch.from_numpy(self.steer.bias(input_ids.cpu().numpy())[:, : scores.shape[-1]])
        return scores + bias.to(scores.dtype)


@pytest.fixture(scope="module")
def qwen3():
    return _setup("qwen3", seed=0)


@pytest.fixture(scope="module")
def llama3():
    return _setup("llama3_1", seed=1)


def _setup(name: str, seed: int):
    from transformers import AutoTokenizer

    from pse_processors.assets import tokenizer_path

    try:
        tokenizer = AutoTokenizer.from_pretrained(str(tokenizer_path(name)))
    except FileNotFoundError as exc:  # fetched by scripts/fetch_assets.py
        pytest.skip(str(exc))
    if tokenizer.pad_token is None:  # Llama 3.1 has none; rows here share one prompt length anyway
        tokenizer.pad_token = tokenizer.eos_token
    vocab = pse.Vocabulary.from_tokenizer(tokenizer)
    eos = tokenizer.eos_token_id
    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else eos
    return tokenizer, vocab, tiny_llama_torch(len(tokenizer), seed=seed, eos=eos, pad=pad), pad


def qwen3_prompts(tokenizer, states: list[str]) -> list[str]:
    """The chat template's prompt with thinking on ("start": the model opens <think>), the block
    opened in the prompt ("inside", as Qwen3-2507-thinking does) or closed (``enable_thinking=False``)."""
    messages = [{"role": "user", "content": "What is the weather?"}]
    out = []
    for state in states:
        text = tokenizer.apply_chat_template(messages, add_generation_prompt=True, tokenize=False,
                                             enable_thinking=state != "answer")
        out.append(text + "<think>\n" if state == "inside" else text)
    return out


def generate(setup, case: cv.Case, states: list[str], seed: int, backend: str = "auto", qwen: bool = True):
    """Generate one row per prompt state; check every finished row; return the processor."""
    tokenizer, vocab, model, pad = setup
    texts = qwen3_prompts(tokenizer, states) if qwen else ["Answer: "] * len(states)
    batch = tokenizer(texts, return_tensors="pt", padding=True, padding_side="left", add_special_tokens=False)
    processor = pse.PSELogitsProcessor(case.constraint, tokenizer, backend=backend)
    steer = SteerProcessor(cv.Steer(tokenizer, vocab, case, model.config.vocab_size))
    torch.manual_seed(seed)
    out = model.generate(**batch, logits_processor=[steer, processor], do_sample=True, temperature=1.5, top_k=0,
                         max_new_tokens=MAX_NEW, pad_token_id=pad)
    width = batch["input_ids"].shape[1]
    for row, state in zip(out, states):
        ids = row[width:].tolist()
        if DEBUG:
            print(case.name, state, repr(tokenizer.decode(ids)))
        eos = [i for i, t in enumerate(ids) if t in vocab.eos_token_ids]
        if eos:
            parsed = processor.parse(row, prompt_length=width)
            cv.check_output(case, parsed, ids[: eos[0]], vocab, tokenizer, state)
    return processor


def test_reasoning_budget_and_prompt_detection_qwen3(qwen3) -> None:
    # One batch: the prompt leaves the block to the model, opens it, or closes it (left padding).
    case = cv.reasoning_case(budget=5)
    states = ["start", "inside", "answer", "start", "inside", "answer"]
    generate(qwen3, case, states, seed=0)
    cv.check_seen(case, len(states))
    assert case.seen["answer"] >= 2 and case.seen["budget_reached"] >= 1


def test_reasoning_without_budget_on_llguidance_qwen3(qwen3) -> None:
    case = cv.reasoning_case(budget=None)
    processor = generate(qwen3, case, ["start", "inside"] * 2, seed=1, backend="llguidance")
    assert processor.matcher.backend == "llguidance"
    cv.check_seen(case, 4)


def test_reasoning_text_markers_and_budget_llama3(llama3) -> None:
    case = cv.reasoning_case(budget=4)  # "<think>" and "</think>" are text on Llama 3.1: several tokens each
    generate(llama3, case, ["start"] * 4, seed=2, qwen=False)
    cv.check_seen(case, 4)


@pytest.mark.parametrize("which", ["qwen3", "llama3"])
def test_delimited(which, request) -> None:
    case = cv.delimited_case()
    generate(request.getfixturevalue(which), case, ["start"] * 4, seed=3, qwen=False)
    cv.check_seen(case, 4)


@pytest.mark.parametrize("choice", ["auto", "required", "none", "add"])
def test_hermes_tool_choice_qwen3(qwen3, choice) -> None:
    case = cv.tools_case("hermes", choice)
    generate(qwen3, case, ["answer"] * 4, seed=4)
    cv.check_seen(case, 4)


@pytest.mark.parametrize("fmt, choice", [("llama3_json", "required"), ("llama3_json", "auto"), ("mistral", "get_weather")])
def test_llama3_and_mistral_formats(llama3, fmt, choice) -> None:
    case = cv.tools_case(fmt, choice, parallel=fmt != "mistral")
    generate(llama3, case, ["start"] * 4, seed=5, qwen=False)
    cv.check_seen(case, 4)


def test_nested_reasoning_tools_qwen3(qwen3) -> None:
    case = cv.nested_tools_case()
    generate(qwen3, case, ["start", "inside"] * 2, seed=6)
    cv.check_seen(case, 4)


def test_nested_reasoning_delimited_llama3(llama3) -> None:
    case = cv.nested_delimited_case()
    generate(llama3, case, ["start"] * 4, seed=7, qwen=False)
    cv.check_seen(case, 4)


def test_engine_and_custom_adapter_start_from_the_prompt(qwen3) -> None:
    # StructuringEngine (PyTorchAdapter: generate) and a custom adapter (the engine's own decode
    # loop) both read the prompt: it opened the reasoning, so the output starts inside it.
    tokenizer, vocab, model, pad = qwen3
    case = cv.nested_tools_case()
    prompt = tokenizer(qwen3_prompts(tokenizer, ["inside"]), return_tensors="pt", add_special_tokens=False)["input_ids"]
    steer = SteerProcessor(cv.Steer(tokenizer, vocab, case, model.config.vocab_size))
    engine = pse.StructuringEngine(case.constraint, PyTorchAdapter(), tokenizer)
    for seed in range(3):
        torch.manual_seed(seed)
        out = engine.generate(model, prompt, logits_processor=[steer], do_sample=True, temperature=1.5, top_k=0,
                              max_new_tokens=MAX_NEW, pad_token_id=pad)
        ids = out[0, prompt.shape[1]:].tolist()
        if vocab.eos_token_ids & set(ids):
            cv.check_output(case, engine.parse(out), ids[: ids.index(min(vocab.eos_token_ids & set(ids)))], vocab,
                            tokenizer, "inside")

    class Steered(FrameworkAdapter):  # logits: the model's plus the steering; argmax after sampling noise
        def mask_logits(self, logits, mask_indices):
            masked = np.full(logits.shape, -np.inf, dtype=np.float32)
            masked[mask_indices] = logits[mask_indices]
            return masked

        def sample_token(self, logits, temperature=1.0):
            gumbel = -np.log(-np.log(np.random.default_rng(len(calls)).random(logits.shape)))
            calls.append(1)
            return np.argmax(logits / max(temperature, 1e-6) + gumbel, axis=-1)

    calls: list = []

    def callable_model(ids):
        with torch.no_grad():
            logits = model(torch.from_numpy(ids)).logits[:, -1].numpy()
        return logits + steer.steer.bias(ids)

    custom = pse.StructuringEngine(case.constraint, Steered(), tokenizer)
    out = custom.generate(callable_model, prompt.numpy(), max_new_tokens=MAX_NEW, temperature=1.5)
    ids = out[0, prompt.shape[1]:].tolist()
    assert calls
    if vocab.eos_token_ids & set(ids):
        cv.check_output(case, custom.parse(out), ids[: ids.index(min(vocab.eos_token_ids & set(ids)))], vocab, tokenizer, "inside")
    cv.check_seen(case, 2)
