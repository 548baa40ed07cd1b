"""Hook time per step of the MLX processor inside mlx-lm, on the embedded SmolLM2, against the
unconstrained step and the mlx-lm processors of outlines (backends outlines_core, xgrammar and
llguidance), measured in the same run.

    python -m benchmarks.mlx_step [--tokens 40] [--runs 3] [--warmup 1] [--batch 8] [--peers outlines_core,xgrammar,llguidance]

Run it in the bench environment (scripts/setup_bench_env.sh) for the peers; in an environment
without outlines the peers are reported as missing.

What is measured:

- **hook**: the wall time spent inside the processor per call (one call per sequence and step).
  mlx is lazy: every processor reads the sampled tokens, which waits for the last step's
  computation. So every configuration, the unconstrained one included, first runs a hook that
  evaluates ``tokens`` (not timed): the hook time is the processor's own work only.
- **cold**: the hook time of the first (warm-up) run, when the grammar meets its states for the
  first time (pse_processors computes a state's allowed set on its first visit, then caches it).
- **step**: the mean time between generated tokens (batch 1: ``generate_step``; batch N:
  ``BatchGenerator.next_generated``), first token (prompt processing) excluded. Its difference to
  the unconstrained step includes the masking inside mlx's graph.

At batch N the processor of pse_processors is one instance shared by every row (state keyed by
token prefix); the peers keep per-row state by call count, so each row gets its own instance.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import platform
import statistics
import time
from pathlib import Path
from typing import Any, Callable, Optional

try:
    from ._common import save_json
except ImportError:  # run as a file: no package, so no relative import
    raise SystemExit("run it from the repository root as a module: python -m benchmarks.mlx_step ...") from None

os.environ.setdefault("HF_HUB_OFFLINE", "1")

import mlx.core as mx  # noqa: E402
from mlx_lm.generate import BatchGenerator, generate_step  # noqa: E402

from pse_processors.cli import DEMO_SCHEMA, DEMO_TEXT  # noqa: E402
from pse_processors.embedded import load_smollm2_mlx  # noqa: E402
from pse_processors.mlx import MLXPSELogitsProcessor  # noqa: E402

logger = logging.getLogger("mlx_step")

TEXTS = [
    DEMO_TEXT,
    "Extract a name from this text: Maria Garcia works as a nurse.",
    "Extract a name from this text: Ken Tanaka is a teacher in Osaka.",
    "Extract a name from this text: Ada Lovelace was a mathematician.",
    "Extract a name from this text: Omar Haddad is a chef.",
    "Extract a name from this text: Lena Fischer is an engineer.",
    "Extract a name from this text: Tom Brown drives a bus.",
    "Extract a name from this text: Priya Patel is a lawyer.",
]


def _sync(tokens: mx.array, logits: mx.array) -> mx.array:
    mx.eval(tokens)  # the wait for the last sampled token, kept out of the timed hooks
    return logits


class Timed:
    """Wraps a processor and accumulates the wall time spent inside it."""

    def __init__(self, processor: Callable) -> None:
        self.processor = processor
        self.seconds = 0.0
        self.calls = 0

    def __call__(self, tokens: mx.array, logits: mx.array) -> mx.array:
        start = time.perf_counter()
        out = self.processor(tokens, logits)
        self.seconds += time.perf_counter() - start
        self.calls += 1
        return out


def peer_factory(name: str, model: Any, tokenizer: Any, schema: dict) -> Optional[Callable[[], Callable]]:
    """A function making fresh outlines mlx-lm processors with backend ``name``, or None if unavailable."""
    try:
        import outlines
        from outlines.backends import get_json_schema_logits_processor
    except ImportError as exc:
        logger.warning("outlines is not installed (%s): peers skipped", exc)
        return None
    wrapped = outlines.from_mlxlm(model, tokenizer)
    text = json.dumps(schema)
    get_json_schema_logits_processor(name, wrapped, text)  # compile once, outside the timing
    return lambda: get_json_schema_logits_processor(name, wrapped, text)


def run_batch1(model: Any, prompt: mx.array, hook: Optional[Callable], tokens: int) -> tuple[float, int, list[int]]:
    """(mean step seconds, generated tokens, ids) of one greedy generation."""
    processors = [_sync] + ([hook] if hook is not None else [])
    stamps, ids = [], []
    for token, _ in generate_step(prompt, model, max_tokens=tokens, logits_processors=processors):
        stamps.append(time.perf_counter())
        ids.append(int(token))
        if hook is not None and int(token) == 2:  # SmolLM2's <|im_end|>
            break
    steps = [b - a for a, b in zip(stamps, stamps[1:])]
    return statistics.mean(steps), len(ids), ids


def run_batch(model: Any, prompts: list[list[int]], hooks: Optional[list], tokens: int, eos: int) -> tuple[float, int, dict]:
    """(mean step seconds, steps, ids per row) of a BatchGenerator run with per-row processor lists."""
    gen = BatchGenerator(model, max_tokens=tokens, stop_tokens=[[eos]], completion_batch_size=len(prompts),
                         prefill_batch_size=len(prompts))
    lists = [[_sync] + ([h] if h is not None else []) for h in (hooks or [None] * len(prompts))]
    uids = gen.insert(prompts, logits_processors=lists)
    ids: dict = {uid: [] for uid in uids}
    stamps = []
    while responses := gen.next_generated():
        stamps.append(time.perf_counter())
        for r in responses:
            ids[r.uid].append(r.token)
    gen.close()
    steps = [b - a for a, b in zip(stamps, stamps[1:])]
    return statistics.mean(steps), len(stamps), ids


def valid(schema: dict, text: str) -> bool:
    try:
        import jsonschema

        jsonschema.validate(json.loads(text), schema)
        return True
    except Exception:  # noqa: BLE001 - any failure is "not valid"
        return False


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.mlx_step", description=__doc__.splitlines()[0])
    parser.add_argument("--tokens", type=int, default=40, help="max new tokens per run")
    parser.add_argument("--runs", type=int, default=3, help="measured runs per configuration (medians are reported)")
    parser.add_argument("--warmup", type=int, default=1, help="first runs per configuration, reported as 'cold' only")
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--peers", default="outlines_core,xgrammar,llguidance", help="outlines backends ('' for none)")
    parser.add_argument("--json", help="also write the results here")
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(message)s")

    model, tokenizer = load_smollm2_mlx()
    eos = tokenizer.eos_token_id
    chat = [tokenizer.apply_chat_template([{"role": "user", "content": t}], add_generation_prompt=True) for t in TEXTS]
    prompts = (chat * (args.batch // len(chat) + 1))[: args.batch]
    schema = DEMO_SCHEMA
    ours = MLXPSELogitsProcessor(schema, tokenizer)

    factories: dict[str, Callable[[], Callable]] = {"pse_processors": lambda: ours}
    notes: dict[str, str] = {}
    for name in filter(None, args.peers.split(",")):
        try:
            factory = peer_factory(name, model, tokenizer, schema)
            if factory is not None:
                probe, brace = factory(), tokenizer.encode("{", add_special_tokens=False)[0]
                probe(mx.array(chat[0]), mx.zeros((1, len(tokenizer)), dtype=mx.float16))
                mx.eval(probe(mx.array(chat[0] + [brace]), mx.zeros((1, len(tokenizer)), dtype=mx.float16)))
                factories[f"outlines[{name}]"] = factory
        except Exception as exc:  # noqa: BLE001 - a peer that fails here is reported, not fatal
            notes[f"outlines[{name}]"] = f"{type(exc).__name__}: {str(exc).splitlines()[0][:160]}"
            logger.warning("peer outlines[%s] unavailable: %s", name, notes[f"outlines[{name}]"])

    results: dict[str, Any] = {"batch1": {}, f"batch{args.batch}": {}, "notes": notes}
    # Batch 1: interleave configurations run by run, so machine load drifts hit all alike.
    b1: dict[str, dict[str, list]] = {name: {"step": [], "hook": [], "valid": []} for name in ["unconstrained", *factories]}
    for _ in range(args.warmup + args.runs):
        for name in b1:
            timed = None
            if name != "unconstrained":
                processor = factories[name]()
                if hasattr(processor, "reset"):
                    processor.reset()
                timed = Timed(processor)
            step, n, ids = run_batch1(model, mx.array(prompts[0]), timed, args.tokens)
            logger.info("batch 1, %s: %d tokens, %.1f ms/step", name, n, step * 1e3)
            b1[name]["step"].append(step)
            if timed is not None:
                b1[name]["hook"].append(timed.seconds / max(timed.calls, 1))
                b1[name]["valid"].append(valid(schema, tokenizer.decode([i for i in ids if i != eos])))
    # Batch N: pse_processors shares one processor across rows; the peers need one per row.
    bn: dict[str, dict[str, list]] = {name: {"step": [], "hook": [], "valid": []} for name in ["unconstrained", *factories]}
    for _ in range(args.warmup + args.runs):
        for name in bn:
            hooks = None
            if name == "pse_processors":
                ours.reset()
                shared = Timed(ours)
                hooks = [shared] * args.batch
            elif name != "unconstrained":
                hooks = [Timed(factories[name]()) for _ in range(args.batch)]
            step, n, ids = run_batch(model, prompts, hooks, args.tokens, eos)
            logger.info("batch %d, %s: %d steps, %.1f ms/step", args.batch, name, n, step * 1e3)
            bn[name]["step"].append(step)
            if hooks is not None:
                unique = {id(h): h for h in hooks}.values()
                seconds, calls = sum(h.seconds for h in unique), sum(h.calls for h in unique)
                bn[name]["hook"].append(seconds / max(calls, 1) * args.batch)  # per batch step
                texts = [tokenizer.decode([t for t in row if t != eos]) for row in ids.values()]
                bn[name]["valid"].append(sum(valid(schema, t) for t in texts) / len(texts))

    w = args.warmup
    for label, table in (("batch1", b1), (f"batch{args.batch}", bn)):
        cold = {n: v["hook"][:w] for n, v in table.items()}
        table = {n: {k: values[w:] for k, values in v.items()} for n, v in table.items()}
        base = statistics.median(table["unconstrained"]["step"])
        hooks = {n: statistics.median(v["hook"]) for n, v in table.items() if v["hook"]}
        fastest_peer = min((h for n, h in hooks.items() if n != "pse_processors"), default=None)
        for name, values in table.items():
            row = {"step_ms": round(statistics.median(values["step"]) * 1e3, 2)}
            if values["hook"]:
                hook = hooks[name]
                row.update(
                    hook_us=round(hook * 1e6, 1), hook_pct_of_step=round(100 * hook / base, 3),
                    valid=round(statistics.mean(values["valid"]), 2),
                )
                if cold[name]:
                    row["cold_hook_us"] = round(cold[name][0] * 1e6, 1)
                if fastest_peer and name == "pse_processors":
                    row["hook_vs_fastest_peer"] = round(hook / fastest_peer, 3)
            results[label][name] = row
    results["setup"] = {
        "model": "SmolLM2-135M-Instruct (GGUF Q4_1 via load_smollm2_mlx)", "schema": schema, "tokens": args.tokens,
        "runs": args.runs, "warmup": args.warmup, "batch": args.batch, "mlx": mx.__version__, "python": platform.python_version(),
        "machine": platform.machine(), "cpus": os.cpu_count(),
    }
    print(json.dumps(results, indent=2))
    if args.json:
        save_json(Path(args.json), results)


if __name__ == "__main__":
    main()
