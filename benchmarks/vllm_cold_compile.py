"""vLLM (CPU build): what a constraint nobody has used yet costs a running batch.

    HF_HUB_OFFLINE=1 nice -n 19 python -m benchmarks.vllm_cold_compile [--background 8] [--repeats 3] \\
        [--json benchmarks/results/vllm_cold_compile.json]

Run it in the serve environment (``bash scripts/setup_env.sh serve``). One ``LLM`` on the embedded
SmolLM2 (bfloat16 (``--dtype``), eager, one OpenMP thread, the engine in-process) with the pse processor
registered explicitly and an empty disk cache, driven step by step (``llm.llm_engine.step()``):
``--background`` unconstrained requests decode (forced to a fixed length), and after a few steps
one more request joins. Each step's wall time is recorded, and the processor's ``apply``:

- ``control``: the request that joins is unconstrained: the step that takes its prefill;
- ``first``: it carries the first constraint of the engine's life: the compile also reads the
  model's tokenizer into a ``Vocabulary``;
- ``cold``: a constraint not seen before (a new schema: the nested ``order`` schema of
  ``benchmarks.vllm_throughput`` with a fresh ``maxLength``, so nothing is cached);
- ``warm``: the same constraint again (compiled, first masks cached).

The cost to the batch is the extra wall time of the join step and of the following steps over the
same steps of ``control`` (every other row waits through it). On a shared machine wall times move
with the load, so CPU times are recorded too: the engine thread's (``*_cpu_ms``: the forward pass,
the sampler, ``apply``) and the whole process's (``after_process_cpu_ms``: with the compile thread). ``front_end_ms``: ``add_request``'s
time, which holds ``validate_params``' check of the constraint (in ``vllm serve`` that runs in
the API server's process, beside the engine's). ``compile_ms``: the engine-side compile on the
background thread; ``apply_ms`` at the join step: how long ``apply`` waited for it.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path

try:
    from ._common import RESULTS, command_line, save_json
except ImportError:  # run as a file: no package, so no relative import
    raise SystemExit("run it from the repository root as a module: python -m benchmarks.vllm_cold_compile ...") from None

ENV = {"HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1", "VLLM_CPU_KVCACHE_SPACE": "2",
       "VLLM_ENABLE_V1_MULTIPROCESSING": "0", "OMP_NUM_THREADS": "1"}
#: Steps before the new request joins, and steps after the join that are compared with control.
BEFORE, AFTER = 6, 12


def order_schema(max_length: int) -> dict:
    """The nested schema of ``benchmarks.vllm_throughput`` (``SCHEMAS[6]``), one string bound changed."""
    s = {"type": "string", "maxLength": max_length}
    return {"type": "object", "properties": {"order_id": s, "items": {"type": "array", "maxItems": 4, "items": {
        "type": "object", "properties": {"sku": s, "qty": {"type": "integer", "minimum": 1}}, "required": ["sku", "qty"]}}},
        "required": ["order_id", "items"]}


def measure(background: int, repeats: int, dtype: str = "bfloat16") -> dict:
    for name, value in ENV.items():
        os.environ.setdefault(name, value)
    import vllm.v1.sample.logits_processor as plugins
    from vllm import LLM, SamplingParams

    from pse_processors.embedded import smollm2_dir
    from pse_processors.vllm import VLLMPSELogitsProcessor, extra_args
    from pse_processors.vllm.compiling import MatcherCache

    plugins._load_logitsprocs_plugins = lambda: []  # only the processor registered below
    applies: list = []
    compiles: list = []
    compile_one = MatcherCache._compile

    def timed_compile(self, request):
        start = time.perf_counter()
        try:
            return compile_one(self, request)
        finally:
            compiles.append(time.perf_counter() - start)

    MatcherCache._compile = timed_compile  # type: ignore[method-assign]

    class Timed(VLLMPSELogitsProcessor):
        def apply(self, logits, ctx=None):
            start = time.perf_counter()
            out = super().apply(logits, ctx)
            applies.append(time.perf_counter() - start)
            return out

    llm = LLM(model=str(smollm2_dir()), dtype=dtype, max_model_len=1024, enforce_eager=True,
              max_num_seqs=background + 1, seed=0, logits_processors=[Timed])
    engine = llm.llm_engine
    tokenizer = llm.get_tokenizer()
    prompt = tokenizer.apply_chat_template(
        [{"role": "user", "content": "Extract the order as JSON: Order A-17: two mugs (SKU M1) and one teapot (SKU T9)."}],
        tokenize=False, add_generation_prompt=True)
    llm.generate(["Warm up."], SamplingParams(max_tokens=8), use_tqdm=False)
    counter = iter(range(10**6))

    def one(constraint) -> dict:
        for i in range(background):
            engine.add_request(f"bg{next(counter)}", f"Write a long story about ship number {i}.",
                               SamplingParams(max_tokens=BEFORE + AFTER + 8, ignore_eos=True, temperature=1.0, seed=i))
        walls, cpus, mains = [], [], []

        def step() -> None:
            start, cpu, main = time.perf_counter(), time.process_time(), time.thread_time()
            engine.step()
            walls.append(time.perf_counter() - start)
            cpus.append(time.process_time() - cpu)
            mains.append(time.thread_time() - main)

        for _ in range(BEFORE):
            step()
        params = SamplingParams(max_tokens=AFTER, temperature=1.0, seed=7,
                                **({"extra_args": extra_args(constraint)} if constraint is not None else {"ignore_eos": True}))
        compiles.clear()
        start = time.perf_counter()
        engine.add_request(f"new{next(counter)}", prompt, params)
        front = time.perf_counter() - start
        applies.clear()
        for _ in range(AFTER):
            step()
        while engine.has_unfinished_requests():
            engine.step()
        return {"step_ms_before": round(statistics.median(walls[1:BEFORE]) * 1e3, 2),
                "join_step_ms": round(walls[BEFORE] * 1e3, 2),
                "after_ms": round(sum(walls[BEFORE:]) * 1e3, 2),
                "step_cpu_ms_before": round(statistics.median(mains[1:BEFORE]) * 1e3, 2),
                "join_step_cpu_ms": round(mains[BEFORE] * 1e3, 2),
                "after_cpu_ms": round(sum(mains[BEFORE:]) * 1e3, 2),
                "after_process_cpu_ms": round(sum(cpus[BEFORE:]) * 1e3, 2),
                "front_end_ms": round(front * 1e3, 2),
                "compile_ms": round(sum(compiles) * 1e3, 2),
                "apply_join_ms": round(applies[0] * 1e3, 2) if applies else None,
                "apply_max_after_ms": round(max(applies[1:]) * 1e3, 2) if len(applies) > 1 else None}

    runs: dict = {"control": [], "first": [], "cold": [], "warm": []}
    runs["control"].append(one(None))
    runs["first"].append(one(order_schema(23)))
    for r in range(repeats):
        runs["control"].append(one(None))
        schema = order_schema(30 + r)
        runs["cold"].append(one(schema))
        runs["warm"].append(one(schema))
    control_after = statistics.median(x["after_ms"] for x in runs["control"])
    control_join = statistics.median(x["join_step_ms"] for x in runs["control"])
    summary = {}
    for name, rows in runs.items():
        summary[name] = {key: round(statistics.median(x[key] for x in rows if x[key] is not None), 2)
                         for key in rows[0] if any(x[key] is not None for x in rows)}
        summary[name]["join_step_over_control_ms"] = round(summary[name]["join_step_ms"] - control_join, 2)
        summary[name]["batch_cost_ms"] = round(summary[name]["after_ms"] - control_after, 2)
        for key in ("join_step_cpu_ms", "after_cpu_ms", "after_process_cpu_ms"):
            summary[name][f"{key}_over_control"] = round(
                summary[name][key] - statistics.median(x[key] for x in runs["control"]), 2)
    return {"runs": runs, "summary": summary}


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.vllm_cold_compile", description=__doc__.splitlines()[0])
    parser.add_argument("--background", type=int, default=8, help="unconstrained requests decoding when the new one joins")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--json", default=str(RESULTS / "vllm_cold_compile.json"))
    parser.add_argument("--dtype", default="bfloat16",
                        help="the model's dtype (float32 on CPUs without AVX-512, where vLLM's bfloat16 matmuls are ~20x slower)")
    args = parser.parse_args()
    started = datetime.now(timezone.utc).isoformat(timespec="seconds")
    load_before = os.getloadavg()
    with tempfile.TemporaryDirectory() as cache:
        os.environ["PSE_PROCESSORS_CACHE_DIR"] = cache  # empty: every first use of a constraint compiles
        result = measure(args.background, args.repeats, args.dtype)
    from importlib.metadata import version

    report = {"command": command_line("vllm_cold_compile"), "started": started,
              "machine": {"platform": platform.platform(), "cpus": os.cpu_count(), "load_before": load_before,
                          "load_after": os.getloadavg()},
              "versions": {name: version(name) for name in ("vllm-cpu", "torch", "llguidance", "outlines-core")},
              "settings": {"dtype": args.dtype, "background": args.background, "before": BEFORE, "after": AFTER, "repeats": args.repeats, "env": ENV},
              **result}
    save_json(Path(args.json), report)
    print(json.dumps(report["summary"], indent=2))


if __name__ == "__main__":
    main()
