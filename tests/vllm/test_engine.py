"""Offline vLLM (``LLM``, CPU build) on the embedded SmolLM2 with the pse processor: mixed batches,
reshuffled rows, refused requests, speculative decoding. The serve environment only."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys

import pytest

from tests.helpers import ROOT, VLLM_ENV, require_vllm

require_vllm()

import jsonschema  # noqa: E402
from vllm import LLM, SamplingParams  # noqa: E402
from vllm.exceptions import VLLMValidationError  # noqa: E402

import pse_processors as pse  # noqa: E402
from pse_processors.errors import PSEError  # noqa: E402
from pse_processors.vllm import VLLMPSELogitsProcessor, extra_args, parse  # noqa: E402

pytestmark = pytest.mark.model

PERSON = {"type": "object", "properties": {"name": {"type": "string", "maxLength": 20}, "age": {"type": "integer", "minimum": 0}},
          "required": ["name", "age"]}
PLACE = {"type": "object", "properties": {"city": {"type": "string", "maxLength": 15}, "capital": {"type": "boolean"},
                                          "tags": {"type": "array", "items": {"enum": ["big", "old", "new"]}, "maxItems": 3}},
         "required": ["city", "capital"]}
PHONE = pse.Regex(r"[0-9]{3}-[0-9]{4}")
ANSWER = pse.Choice(["yes", "no"])
VERDICT = pse.Choice(["true", "false", "unknown"])
#: (prompt, constraint or None, max_tokens): eleven requests for four rows, so rows finish, are
#: refilled and are moved while the others decode (the last one, constrained, is moved to
#: another row as the batch drains: see the test).
BATCH = [
    ("Alice is 31. Her name and age as JSON:", PERSON, 80),
    ("Tell me a story about a cat.", None, 40),
    ("Paris is the capital of France. As JSON:", PLACE, 90),
    ("Is the sky blue? Answer yes or no.", ANSWER, 10),
    ("Write a poem about the sea.", None, 25),
    ("Bob's phone number:", PHONE, 20),
    ("Bob is 40. His name and age as JSON:", PERSON, 80),
    ("List three fruits.", None, 50),
    ("Is water wet?", VERDICT, 10),
    ("Count to five.", None, 30),
    ("Carol is 25. Her name and age as JSON:", PERSON, 80),
]
MODEL_ARGS = dict(dtype="bfloat16", max_model_len=512, enforce_eager=True, max_num_seqs=4, seed=0)

#: BATCH through vLLM with no logits-processor plug-in at all: the unconstrained requests as they
#: are, each constrained one free but held to the length it had with the plug-in (argv[1]), so
#: the batch has the same rows at every step. (A row's logits depend on which rows share its
#: forward pass, in the last bits of bfloat16: with other lengths, a sampled token may differ.)
BASELINE = """
import json, sys
if __name__ == "__main__":
    import vllm.v1.sample.logits_processor as plugins
    plugins._load_logitsprocs_plugins = lambda: []  # not even the installed entry point
    from vllm import LLM, SamplingParams
    from pse_processors.embedded import smollm2_dir
    from tests.vllm.test_engine import BATCH, MODEL_ARGS, sampling
    lengths = json.loads(sys.argv[1])
    llm = LLM(model=str(smollm2_dir()), **MODEL_ARGS)
    params = [sampling(i, None) if n is None else sampling(i, None, max_tokens=n, ignore_eos=True) for i, n in enumerate(lengths)]
    outs = llm.generate([p for p, _, _ in BATCH], params, use_tqdm=False)
    print(json.dumps([list(o.outputs[0].token_ids) for o in outs]))
"""


def sampling(index: int, constraint, **kwargs) -> SamplingParams:
    """Temperature 1.0, a seed per request: sampling is random but repeatable."""
    _, _, max_tokens = BATCH[index]
    kwargs.setdefault("max_tokens", max_tokens)
    return SamplingParams(temperature=1.0, seed=100 + index,
                          extra_args=extra_args(constraint) if constraint is not None else None, **kwargs)


class RecordingProcessor(VLLMPSELogitsProcessor):
    """The processor, recording vLLM's batch updates (to show that rows were moved and refilled)
    and which rows held a constrained request before and after each."""

    updates: list = []

    def update_state(self, batch_update) -> None:
        before = set(self._rows.indices())
        super().update_state(batch_update)
        if batch_update is not None:
            RecordingProcessor.updates.append((list(batch_update.removed), [a[0] for a in batch_update.added],
                                               [(m[0], m[1], m[2].name) for m in batch_update.moved],
                                               before, set(self._rows.indices())))


@pytest.fixture(scope="module")
def llm(smol_dir):
    with pytest.MonkeyPatch.context() as patch:
        import vllm.v1.sample.logits_processor as plugins

        patch.setattr(plugins, "_load_logitsprocs_plugins", lambda: [])  # one instance: the explicit one
        yield LLM(model=str(smol_dir), logits_processors=[RecordingProcessor], **MODEL_ARGS)


def check(text: str, finish_reason: str, constraint) -> None:
    assert finish_reason == "stop", (text, finish_reason)
    if isinstance(constraint, dict):
        jsonschema.validate(json.loads(text), constraint)
    elif isinstance(constraint, pse.Regex):
        assert re.fullmatch(constraint.pattern, text), text
    else:
        assert text in constraint.choices, text


def test_a_mixed_batch_obeys_per_request_and_leaves_the_rest_as_without_the_plugin(llm, smol_dir) -> None:
    RecordingProcessor.updates.clear()
    outs = llm.generate([p for p, _, _ in BATCH], [sampling(i, c) for i, (_, c, _) in enumerate(BATCH)], use_tqdm=False)
    for (_, constraint, _), out in zip(BATCH, outs):
        if constraint is not None:
            check(out.outputs[0].text, out.outputs[0].finish_reason, constraint)
            assert parse(out, constraint) is not None
    # Rows finished early and were refilled (eleven requests through four rows; vLLM 0.32 adds a
    # request over a finished one without listing it as removed) while another row held a
    # constrained request, and a constrained request still decoding was moved to another row
    # (vLLM condenses the batch as it drains); every constrained output above validated.
    updates = RecordingProcessor.updates
    assert sum(len(added) for _, added, _, _, _ in updates) == len(BATCH)
    assert any(added and (before - set(added)) for _, added, _, before, _ in updates[1:]), updates
    assert any(target in after for _, _, moved, _, after in updates for _, target, _ in moved), updates

    env = {**os.environ, **VLLM_ENV, "PYTHONPATH": str(ROOT)}
    lengths = [None if c is None else len(out.outputs[0].token_ids) for (_, c, _), out in zip(BATCH, outs)]
    done = subprocess.run([sys.executable, "-c", BASELINE, json.dumps(lengths)], cwd=ROOT, env=env, capture_output=True,
                          text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    baseline = json.loads(done.stdout.strip().splitlines()[-1])
    assert [len(ids) for ids, n in zip(baseline, lengths) if n] == [n for n in lengths if n]  # the same batch shapes
    for index, ((_, constraint, _), out) in enumerate(zip(BATCH, outs)):
        if constraint is None:
            assert list(out.outputs[0].token_ids) == baseline[index], BATCH[index][0]


def test_several_samples_min_tokens_and_greedy_requests_stay_valid(llm) -> None:
    outs = llm.generate(
        ["Alice is 31. JSON:", "Is the sky blue?", "Phone:"],
        [SamplingParams(n=3, max_tokens=80, temperature=1.0, seed=7, extra_args=extra_args(PERSON)),
         # min_tokens bans EOS after "yes"/"no", leaving nothing: the processor gives the row its
         # allowed tokens back (EOS only), and vLLM stops on EOS (the constraint wins over min_tokens)
         SamplingParams(max_tokens=10, min_tokens=6, temperature=1.0, seed=8, extra_args=extra_args(ANSWER)),
         SamplingParams(max_tokens=20, temperature=0.0, extra_args=extra_args(PHONE))],
        use_tqdm=False,
    )
    assert len(outs[0].outputs) == 3
    for sample in outs[0].outputs:
        check(sample.text, sample.finish_reason, PERSON)
    check(outs[1].outputs[0].text, outs[1].outputs[0].finish_reason, ANSWER)
    # Left with every token at -inf, vLLM would sample id 0 (a special token) until min_tokens:
    # the answer's own tokens, then EOS, nothing else.
    tokenizer, ids = llm.get_tokenizer(), list(outs[1].outputs[0].token_ids)
    assert ids[-1] == tokenizer.eos_token_id and not set(ids[:-1]) & set(tokenizer.all_special_ids), ids
    check(outs[2].outputs[0].text, outs[2].outputs[0].finish_reason, PHONE)


def test_a_json_answer_after_reasoning_with_text_markers(llm) -> None:
    # SmolLM2 has no <think> token: the markers are text. A budget of 12 reasoning tokens, then
    # only the way to </think>; the answer after it validates, and parse splits the two.
    constraint = pse.Reasoning(PERSON, max_tokens=12)
    out = llm.generate(["Alice is 31. Think briefly, then give her name and age as JSON."],
                       SamplingParams(max_tokens=120, temperature=1.0, seed=5, extra_args=extra_args(constraint)),
                       use_tqdm=False)[0]
    text, ids = out.outputs[0].text, list(out.outputs[0].token_ids)
    assert out.outputs[0].finish_reason == "stop", text
    assert text.startswith("<think>") and text.count("</think>") == 1, text
    reasoning, _, answer = text[len("<think>"):].partition("</think>")
    assert answer.lstrip("\n") == answer.lstrip() and answer.count("\n", 0, len(answer) - len(answer.lstrip("\n"))) <= 2
    jsonschema.validate(json.loads(answer), PERSON)
    result = parse(out, constraint)
    assert result.reasoning == reasoning and result.answer == json.loads(answer)
    # The budget: after 12 tokens inside the block, only tokens that continue "</think>" (8 bytes:
    # at most 8 tokens, however the model spells it).
    tokenizer = llm.get_tokenizer()
    opened = next(i for i in range(1, len(ids) + 1) if tokenizer.decode(ids[:i]).startswith("<think>"))
    closed = next(i for i in range(1, len(ids) + 1) if "</think>" in tokenizer.decode(ids[:i]))
    assert closed - opened <= 12 + len("</think>"), (ids, text)


@pytest.mark.parametrize(
    "pse_args, words",
    [
        ({"pse": {"json_schema": {"$dynamicRef": "#meta"}}}, "unsupported JSON Schema keyword '$dynamicRef'"),
        ({"pse": {"regex": "[0-9"}}, "regex"),
        ({"pse": "{not json"}, "not valid JSON"),
        ({"pse": {"choice": ["a"], "regex": "a"}}, "exactly one of"),
    ],
)
def test_a_bad_request_is_refused_before_the_engine_and_the_engine_keeps_serving(llm, pse_args, words) -> None:
    # vLLM wraps what validate_params raises: ours is the cause, and its message is vLLM's.
    with pytest.raises(VLLMValidationError, match=re.escape(words)) as info:
        llm.generate(["Hi"], SamplingParams(max_tokens=5, extra_args=pse_args), use_tqdm=False)
    assert isinstance(info.value.__cause__, PSEError) and isinstance(info.value.__cause__, ValueError)
    out = llm.generate(["Is it?"], SamplingParams(max_tokens=10, temperature=0.0, extra_args=extra_args(ANSWER)), use_tqdm=False)
    check(out[0].outputs[0].text, out[0].outputs[0].finish_reason, ANSWER)


SPECULATIVE = """
import sys
if __name__ == "__main__":
    from vllm import LLM, SamplingParams
    from pse_processors.embedded import smollm2_dir
    from vllm.exceptions import VLLMValidationError
    from pse_processors.vllm import VLLMPSELogitsProcessor, extra_args
    explicit = {"logits_processors": [VLLMPSELogitsProcessor]} if sys.argv[1] == "explicit" else {}
    try:
        llm = LLM(model=str(smollm2_dir()), dtype="bfloat16", max_model_len=512, enforce_eager=True, max_num_seqs=4,
                  speculative_config={"method": "ngram", "num_speculative_tokens": 3, "prompt_lookup_max": 3,
                                      "prompt_lookup_min": 1}, **explicit)
    except ValueError as exc:
        print("REFUSED AT START:", exc)
        raise SystemExit
    try:
        llm.generate(["Age:"], SamplingParams(max_tokens=10, extra_args=extra_args({"type": "integer"})), use_tqdm=False)
        print("GENERATED")
    except VLLMValidationError as exc:
        print("REFUSED REQUEST:", exc)
    out = llm.generate(["Age:"], SamplingParams(max_tokens=3), use_tqdm=False)
    print("STILL SERVING:", len(out[0].outputs[0].token_ids))
"""


@pytest.mark.parametrize("registration", ["entry_point", "explicit"])
def test_speculative_decoding_is_a_clear_error_not_a_wrong_output(registration) -> None:
    # vLLM refuses explicitly registered logits processors with speculative decoding, and silently
    # skips entry-point ones: then validate_params refuses the constrained requests instead.
    env = {**os.environ, **VLLM_ENV, "PYTHONPATH": str(ROOT)}
    done = subprocess.run([sys.executable, "-c", SPECULATIVE, registration], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    if registration == "explicit":
        assert "REFUSED AT START: Custom logits processors are not supported when speculative decoding" in done.stdout
    else:
        assert "REFUSED REQUEST: this server decodes speculatively" in done.stdout, done.stdout
        assert "STILL SERVING: 3" in done.stdout
    assert "GENERATED" not in done.stdout
