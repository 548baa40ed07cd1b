"""Steady-state generate step under XLA (TensorFlow) and jax.jit (Flax): constrained / unconstrained.

    PY=$(bash scripts/setup_env.sh legacy | tail -n 1)
    $PY -m benchmarks.xla_step [--models tiny,small] [--frameworks tf,flax] [--batch 1] [--cases regex] [--json]

What is measured:

* Whole ``generate`` calls, compiled once (``tf.function(model.generate, jit_compile=True)``,
  ``jax.jit(model.generate)``), greedy, on random-weight models over SmolLM2's vocabulary
  (49,152 ids): ``tiny`` (GPT-2, 2 layers x 32 wide: the model step is ~1 ms, so this is the
  worst case for the processor's share) and ``small`` (GPT-2, 4 layers x 256), plus
  ``smollm2`` (the real SmolLM2-135M via ``from_pt``; TF via TFMistral, Flax via FlaxLlama).
* The per-step time is ``(t(N2) - t(N1)) / (N2 - N1)`` for two generation lengths, which
  removes the prompt's forward pass and the call overhead: steps ``N1..N2`` (default 32..128).
  The in-graph processor recomputes each row's state from all generated tokens on every call,
  so its cost grows with the position; this averages it over those positions.
* The constraint is ``Regex("[a-z ]{4000}")``: it never allows EOS within ``N2`` tokens, so
  every run generates exactly ``N`` tokens, constrained or not (unconstrained runs have no EOS).
* Cases (``--cases``, see :data:`CASES`): ``regex`` is the constraint against no processor;
  structure in free text (issue 23) adds ``free-text`` and ``free-text-budget`` (a
  ``Reasoning`` whose block the prompt opened: every step is reasoning text, with or without a
  thinking budget, against no processor) and ``structured`` (a ``Reasoning`` whose block the
  prompt closed: every step is in its answer, the same regex, against today's ``Regex``
  processor). The prompt scan, the budget counter and the marker columns are all inside.
* Runs are interleaved (constrained, unconstrained, ...) and each time is the minimum of
  ``--repeats`` calls (the machine is shared: the minimum is the least disturbed run), after a
  warm-up call (which includes compilation, reported apart). The medians are reported too.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import platform
import statistics
import sys
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Callable

try:
    from ._common import command_line, save_json
except ImportError:  # run as a file: no package, so no relative import
    raise SystemExit("run it from the repository root as a module: python -m benchmarks.xla_step ...") from None

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

import numpy as np  # noqa: E402

CONSTRAINT = "[a-z ]{4000}"
PAD = 0


#: ``--tokenizer``: SmolLM2's (49,152 ids, ``<think>`` is text) or a real reasoning model's
#: (``qwen3``: 151,669 ids, ``<think>`` and ``</think>`` are single tokens).
TOKENIZER = {"name": "smollm2"}


def _tokenizer() -> Any:
    from transformers import PreTrainedTokenizerFast

    if TOKENIZER["name"] != "smollm2":
        from pse_processors.assets import load_tokenizer

        return load_tokenizer(TOKENIZER["name"], fetch=True)
    from pse_processors.embedded import smollm2_dir

    return PreTrainedTokenizerFast.from_pretrained(smollm2_dir())


def _ids(tokenizer: Any) -> tuple[int, int]:
    """(EOS, pad): a pad that is no EOS and no text (SmolLM2: 2 and 0)."""
    eos = int(tokenizer.eos_token_id)
    pad = tokenizer.pad_token_id if tokenizer.pad_token_id not in (None, eos) else tokenizer.convert_tokens_to_ids("<|finetune_right_pad_id|>")
    return eos, int(pad if TOKENIZER["name"] != "smollm2" else PAD)


def _gpt2_config(size: str, vocab: int, eos: int = 2, pad: int = PAD) -> Any:
    from transformers import GPT2Config

    width, layers = {"tiny": (32, 2), "small": (256, 4)}[size]
    return GPT2Config(vocab_size=vocab, n_embd=width, n_layer=layers, n_head=4 if width > 32 else 2, n_positions=2048,
                      bos_token_id=1, eos_token_id=eos, pad_token_id=pad)


def _smollm2_config() -> dict:
    from pse_processors.embedded import smollm2_dir

    values = json.loads((smollm2_dir() / "config.json").read_text())
    values["rope_theta"] = values.get("rope_theta") or values["rope_parameters"]["rope_theta"]
    return values


def tf_model(size: str, vocab: int, eos: int = 2, pad: int = PAD) -> Any:
    import tensorflow as tf

    if size != "smollm2":
        from transformers import TFGPT2LMHeadModel

        tf.keras.utils.set_random_seed(0)
        model = TFGPT2LMHeadModel(_gpt2_config(size, vocab, eos, pad))
        model(tf.constant([[1, 2]]))
        return model
    from transformers import MistralConfig, TFMistralForCausalLM

    from pse_processors.embedded import smollm2_dir

    c = _smollm2_config()
    config = MistralConfig(
        vocab_size=c["vocab_size"], hidden_size=c["hidden_size"], intermediate_size=c["intermediate_size"],
        num_hidden_layers=c["num_hidden_layers"], num_attention_heads=c["num_attention_heads"],
        num_key_value_heads=c["num_key_value_heads"], head_dim=c["head_dim"],
        max_position_embeddings=c["max_position_embeddings"],
        rms_norm_eps=c["rms_norm_eps"], rope_theta=c["rope_theta"], sliding_window=None, tie_word_embeddings=True,
        bos_token_id=1, eos_token_id=2, pad_token_id=PAD,
    )
    model = TFMistralForCausalLM.from_pretrained(smollm2_dir(), from_pt=True, config=config)
    model.lm_head.kernel.assign(tf.transpose(model.model.embed_tokens.embeddings))
    return model


def flax_model(size: str, vocab: int, eos: int = 2, pad: int = PAD) -> Any:
    if size != "smollm2":
        from transformers import FlaxGPT2LMHeadModel

        return FlaxGPT2LMHeadModel(_gpt2_config(size, vocab, eos, pad), seed=0)
    from transformers import FlaxLlamaForCausalLM, LlamaConfig

    from pse_processors.embedded import smollm2_dir

    c = _smollm2_config()
    keep = {k: v for k, v in c.items() if k not in ("rope_parameters", "dtype", "transformers_version", "architectures")}
    model = FlaxLlamaForCausalLM.from_pretrained(smollm2_dir(), from_pt=True, config=LlamaConfig(**keep))
    model.params["lm_head"]["kernel"] = model.params["model"]["embed_tokens"]["embedding"].T
    return model


#: What each case compares (``--cases``): (numerator, denominator, how the prompt ends). A side is
#: ``"plain"`` (no processor), ``"regex"`` (today's processor: ``Regex(CONSTRAINT)``),
#: ``"reasoning"`` (``Reasoning(Regex(CONSTRAINT))``) or ``"budget"`` (the same with a thinking
#: budget of 4096 tokens, never reached). ``"free"``: the chat template opened the reasoning block
#: (every step is free text inside it; it never allows EOS); ``"answer"``: it closed it (every
#: step is in the answer, the structured part).
CASES = {
    "regex": ("regex", "plain", ""),
    "free-text": ("reasoning", "plain", "free"),
    "free-text-budget": ("budget", "plain", "free"),
    "structured": ("reasoning", "regex", "answer"),
}
PROMPT_ENDS = {"": "", "free": "<think>\n", "answer": "<think>\n\n</think>\n\n"}


def processor_constraint(side: str) -> Any:
    from pse_processors import Reasoning, Regex

    if side == "regex":
        return Regex(CONSTRAINT)
    return Reasoning(Regex(CONSTRAINT), max_tokens=4096 if side == "budget" else None)


def tf_generators(model: Any, tokenizer: Any, ids: np.ndarray, n: int, sides: tuple) -> dict[str, Callable[[], Any]]:
    import tensorflow as tf
    from transformers import TFLogitsProcessorList

    from pse_processors import TFPSELogitsProcessor

    eos, pad = _ids(tokenizer)
    base = dict(max_new_tokens=n, do_sample=False, pad_token_id=pad)
    x = tf.constant(ids)
    runs: dict = {}
    for side in sides:
        if side == "plain":
            plain = tf.function(lambda x: model.generate(input_ids=x, eos_token_id=None, **base), jit_compile=True)
            runs[side] = (lambda f: lambda: f(x).numpy())(plain)
            continue
        processor = TFPSELogitsProcessor(processor_constraint(side), tokenizer, max_new_tokens=n)
        constrained = tf.function(
            (lambda p: lambda x: model.generate(input_ids=x, logits_processor=TFLogitsProcessorList([p]), eos_token_id=eos, **base))(processor),
            jit_compile=True,
        )
        runs[side] = (lambda f: lambda: f(x).numpy())(constrained)
        runs[side].processor = processor  # type: ignore[attr-defined]
    return runs


def flax_generators(model: Any, tokenizer: Any, ids: np.ndarray, n: int, sides: tuple) -> dict[str, Callable[[], Any]]:
    import jax

    from pse_processors import FlaxPSELogitsProcessor

    eos, pad = _ids(tokenizer)
    runs: dict = {}
    for side in sides:
        if side == "plain":
            plain = jax.jit(lambda x: model.generate(x, max_new_tokens=n, eos_token_id=None, pad_token_id=pad).sequences)
            runs[side] = (lambda f: lambda: np.asarray(f(ids)))(plain)
            continue
        processor = FlaxPSELogitsProcessor(processor_constraint(side), tokenizer, max_new_tokens=n)
        constrained = jax.jit((lambda p: lambda x: model.generate(
            x, logits_processor=[p], max_new_tokens=n, eos_token_id=eos, pad_token_id=pad).sequences)(processor))
        runs[side] = (lambda f: lambda: np.asarray(f(ids)))(constrained)
        runs[side].processor = processor  # type: ignore[attr-defined]
    return runs


def check_output(run: Any, out: np.ndarray, prompt: list, n: int, side: str) -> None:
    """Every run generates exactly ``n`` tokens, and a constrained one stays inside its constraint
    (from the state its prompt gives)."""
    assert out.shape[1] == len(prompt) + n, (side, n, out.shape)  # no early stop
    processor = getattr(run, "processor", None)
    if processor is not None:
        matcher = processor.matcher
        state = matcher.walk([int(t) for t in out[0, len(prompt):]], matcher.initial_state_for(prompt))
        assert state >= 0, f"{side}: the output left the constraint"


def measure(framework: str, size: str, batch: int, n1: int, n2: int, repeats: int, case: str = "regex",
            prompt_tokens: int = 0) -> dict:
    tokenizer = _tokenizer()
    vocab = len(tokenizer)
    numerator, denominator, ending = CASES[case]
    filler = tokenizer(" word" * prompt_tokens, add_special_tokens=False)["input_ids"][:prompt_tokens]
    prompt = filler + tokenizer("Write some words:" + PROMPT_ENDS[ending], add_special_tokens=False)["input_ids"]
    ids = np.array([prompt] * batch, dtype=np.int32)
    model = (tf_model if framework == "tf" else flax_model)(size, vocab, *_ids(tokenizer))
    make = tf_generators if framework == "tf" else flax_generators
    sides = (numerator, denominator)
    runs = {n: make(model, tokenizer, ids, n, sides) for n in (n1, n2)}
    compile_s: dict = {}
    for n, generators in runs.items():
        for name, run in generators.items():
            start = time.perf_counter()
            out = run()
            compile_s[f"{name}@{n}"] = round(time.perf_counter() - start, 2)
            check_output(run, out, prompt, n, name)
    samples: dict = {(name, n): [] for name in sides for n in (n1, n2)}
    for _ in range(repeats):
        for n in (n1, n2):
            for name in sides:
                start = time.perf_counter()
                runs[n][name]()
                samples[(name, n)].append(time.perf_counter() - start)
    times: dict = {}
    medians: dict = {}
    for name in sides:
        times[name] = (min(samples[(name, n2)]) - min(samples[(name, n1)])) / (n2 - n1)
        medians[name] = (statistics.median(samples[(name, n2)]) - statistics.median(samples[(name, n1)])) / (n2 - n1)
    return {
        "framework": framework, "model": size, "batch": batch, "steps": f"{n1}..{n2}", "case": case,
        "numerator": numerator, "denominator": denominator, "prompt_ends": PROMPT_ENDS[ending],
        "tokenizer": TOKENIZER["name"], "prompt_tokens": len(prompt),
        "constrained_step_ms": round(times[numerator] * 1e3, 3),
        # The denominator's step (unconstrained for every case but "structured": today's processor).
        "unconstrained_step_ms": round(times[denominator] * 1e3, 3),
        "ratio": round(times[numerator] / times[denominator], 3),
        "median_ratio": round(medians[numerator] / medians[denominator], 3),
        "first_call_s": compile_s,
    }


def main() -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.xla_step", description=__doc__.split("\n")[0])
    parser.add_argument("--frameworks", default="tf,flax")
    parser.add_argument("--models", default="tiny,small")
    parser.add_argument("--batch", type=int, default=1)
    parser.add_argument("--cases", default="regex", help=f"comma-separated, of: {', '.join(CASES)}")
    parser.add_argument("--tokenizer", default="smollm2", choices=["smollm2", "qwen3", "llama3_1"])
    parser.add_argument("--prompt-tokens", type=int, default=0, help="filler tokens before the prompt (a long chat)")
    parser.add_argument("--n1", type=int, default=32)
    parser.add_argument("--n2", type=int, default=128)
    parser.add_argument("--repeats", type=int, default=9)
    parser.add_argument("--json", action="store_true")
    parser.add_argument("--save", type=Path, help="also write the JSON report to this file (e.g. benchmarks/results/xla_step.json)")
    args = parser.parse_args()
    TOKENIZER["name"] = args.tokenizer
    logging.basicConfig(level=logging.WARNING)
    results = []
    for framework in args.frameworks.split(","):
        if framework == "tf":
            import tensorflow as tf

            tf.config.threading.set_intra_op_parallelism_threads(1)
            tf.config.threading.set_inter_op_parallelism_threads(1)
        for size, case in [(size, case) for size in args.models.split(",") for case in args.cases.split(",")]:
            result = measure(framework, size, args.batch, args.n1, args.n2, args.repeats, case, args.prompt_tokens)
            results.append(result)
            if not args.json:
                print(
                    f"{framework:5s} {size:8s} {case:16s} batch {args.batch}  steps {result['steps']}: {result['numerator']} "
                    f"{result['constrained_step_ms']:.3f} ms, {result['denominator']} {result['unconstrained_step_ms']:.3f} ms, "
                    f"ratio {result['ratio']:.3f} (of medians {result['median_ratio']:.3f})  "
                    f"(first calls, s: {result['first_call_s']})",
                    flush=True,
                )
    if args.json or args.save:
        import transformers

        report = {
            "source": "written by python -m benchmarks.xla_step",
            "date": datetime.now(timezone.utc).isoformat(timespec="seconds"), "machine": platform.machine(),
            "command": command_line("xla_step"),
            "cpus": os.cpu_count(), "transformers": transformers.__version__, "results": results,
        }
        if args.save:
            save_json(args.save, report)
        if args.json:
            print(json.dumps(report, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
