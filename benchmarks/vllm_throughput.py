"""vLLM (CPU build) on the embedded SmolLM2: output tokens/s with no constraint, with ours through the
logits-processor plug-in, and with vLLM's own structured outputs (xgrammar, guidance); then MaskBench
schemas through each back end as vLLM runs it.

    HF_HUB_OFFLINE=1 nice -n 19 python -m benchmarks.vllm_throughput [--requests 16 64] [--rounds 2] \\
        [--max-tokens 128] [--maskbench ../shared/data/maskbench-dev --stride 20] \\
        [--json benchmarks/results/vllm_throughput.json]

Run it in the serve environment (``bash scripts/setup_env.sh serve``). Each back end runs in a
process of its own (one ``LLM``, ``max_num_seqs`` = the largest request count, bfloat16 (``--dtype``), eager,
one OpenMP thread, the engine in-process), on the same workloads: N requests (``--requests``)
with one schema, and N with eight different schemas (request i uses schema i mod 8), chat
prompts asking for that JSON, temperature 1.0 with a seed per request. The configurations:

- ``none``: the same requests without any constraint (free text up to ``--max-tokens``), and no
  plug-in loaded at all;
- ``none_same_lengths``: no constraint, each request forced to the length ours produced for it
  (``ignore_eos``, ``max_tokens`` = that length): the same tokens and the same batch shape over
  time as ours, so the ratio to it isolates what the constraint costs;
- ``pse``: ours, ``extra_args={"pse": ...}``, the processor registered explicitly; its ``apply``
  is timed (the share of the wall time, calls per step, the longest call: the one that waited for
  cold compiles) and the disk cache starts empty in each process (every first use of a schema is
  a cold compile, in the front end's check and in the engine);
- ``xgrammar``, ``guidance``: ``LLM(structured_outputs_config={"backend": ...})`` and
  ``SamplingParams(structured_outputs=StructuredOutputsParams(json=schema))``, no plug-in loaded.

Each workload runs in the same process first ``cold`` (first use: compiles, first masks), then
``warm`` (the same requests again, ``--repeats`` times, the fastest counting: what a server that
has seen these schemas does; vLLM's prefix cache helps every configuration alike).
Each round runs every configuration once (``pse`` first: ``none_same_lengths`` needs its
lengths), in a rotated order; a configuration's figure is its best round. Outputs are checked
(``jsonschema``) and the share that validates is reported.

MaskBench (``--maskbench``, every ``--stride``-th dev file by name): for each schema, whether each
back end accepts it (vLLM's front-end validation for that back end, then its engine-side
compile: ``XgrammarBackend`` / ``GuidanceBackend`` as vLLM builds them; ours: ``validate_params``
then ``compile`` with vLLM's tokenizer), and for each test instance (``json.dumps``, SmolLM2's
tokens, then EOS) whether the back end's matcher accepts it whole: valid ones must pass, invalid
ones must not.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path

try:
    from ._common import RESULTS, ROOT, child_env, command_line, module_command, save_json
except ImportError:  # run as a file: no package, so no relative import
    raise SystemExit("run it from the repository root as a module: python -m benchmarks.vllm_throughput ...") from None

ENV = {"HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1", "VLLM_CPU_KVCACHE_SPACE": "2",
       "VLLM_ENABLE_V1_MULTIPROCESSING": "0", "OMP_NUM_THREADS": "1"}
S = {"type": "string", "maxLength": 24}
SCHEMAS = [
    ({"type": "object", "properties": {"name": S, "age": {"type": "integer", "minimum": 0, "maximum": 130}},
      "required": ["name", "age"]}, "Alice Smith is 31 years old."),
    ({"type": "object", "properties": {"city": S, "country": S, "population": {"type": "integer"}},
      "required": ["city", "country", "population"]}, "Lyon, in France, has about 520,000 inhabitants."),
    ({"type": "object", "properties": {"product": S, "price": {"type": "number"}, "in_stock": {"type": "boolean"}},
      "required": ["product", "price", "in_stock"]}, "The blue kettle costs 24.99 euros and is sold out."),
    ({"type": "object", "properties": {"title": S, "year": {"type": "integer"}, "genres": {"type": "array", "items": S, "maxItems": 3}},
      "required": ["title", "year", "genres"]}, "Alien (1979) is a science-fiction horror film."),
    ({"type": "object", "properties": {"event": S, "date": {"type": "string", "format": "date"}, "online": {"type": "boolean"}},
      "required": ["event", "date", "online"]}, "PyCon takes place in person on 2026-05-14."),
    ({"type": "object", "properties": {"sentiment": {"enum": ["positive", "negative", "neutral"]}, "score": {"type": "number"}},
      "required": ["sentiment", "score"]}, "I loved this phone, the battery lasts forever!"),
    ({"type": "object", "properties": {"order_id": S, "items": {"type": "array", "maxItems": 4, "items": {
        "type": "object", "properties": {"sku": S, "qty": {"type": "integer", "minimum": 1}}, "required": ["sku", "qty"]}}},
      "required": ["order_id", "items"]}, "Order A-17: two mugs (SKU M1) and one teapot (SKU T9)."),
    ({"type": "object", "properties": {"temperature_c": {"type": "number"}, "conditions": S, "windy": {"type": "boolean"}},
      "required": ["temperature_c", "conditions", "windy"]}, "It is 18 degrees, cloudy, with strong gusts."),
]
BACKENDS = ("pse", "none_same_lengths", "none", "xgrammar", "guidance")


# --- one configuration in its own process ------------------------------------------------------


def _workloads(counts: list) -> list:
    return [(n, kinds) for n in counts for kinds in (1, 8)]


def _prompts(tokenizer, n: int, kinds: int) -> list:
    out = []
    for i in range(n):
        schema, text = SCHEMAS[i % kinds]
        content = f"Extract the data as JSON with the keys {', '.join(schema['properties'])}.\n\n{text}"
        out.append(tokenizer.apply_chat_template([{"role": "user", "content": content}], tokenize=False, add_generation_prompt=True))
    return out


def worker(backend: str, counts: list, max_tokens: int, repeats: int, lengths_file: str, out_file: str, dtype: str = "bfloat16") -> None:
    import jsonschema
    import vllm.v1.sample.logits_processor as plugins
    from vllm import LLM, SamplingParams
    from vllm.sampling_params import StructuredOutputsParams

    from pse_processors.embedded import smollm2_dir
    from pse_processors.vllm import VLLMPSELogitsProcessor, extra_args

    plugins._load_logitsprocs_plugins = lambda: []  # only what this configuration registers
    timings: list = []

    class Timed(VLLMPSELogitsProcessor):
        def apply(self, logits, ctx=None):
            start = time.perf_counter()
            out = super().apply(logits, ctx)
            timings.append((time.perf_counter() - start, len(self._rows)))
            return out

    kwargs: dict = {}
    if backend == "pse":
        kwargs["logits_processors"] = [Timed]
    elif backend in ("xgrammar", "guidance"):
        kwargs["structured_outputs_config"] = {"backend": backend}
    llm = LLM(model=str(smollm2_dir()), dtype=dtype, max_model_len=1024, enforce_eager=True,
              max_num_seqs=max(counts), seed=0, **kwargs)
    tokenizer = llm.get_tokenizer()
    llm.generate(["Warm up."], SamplingParams(max_tokens=8), use_tqdm=False)
    lengths = json.loads(Path(lengths_file).read_text()) if backend == "none_same_lengths" else {}
    results = []
    for (n, kinds), run in ((w, run) for w in _workloads(counts) for run in ("cold", "warm")):
        params = []
        for i in range(n):
            schema = SCHEMAS[i % kinds][0]
            common = dict(temperature=1.0, seed=1000 + i, max_tokens=max_tokens)
            if backend == "pse":
                params.append(SamplingParams(**common, extra_args=extra_args(schema)))
            elif backend in ("xgrammar", "guidance"):
                params.append(SamplingParams(**common, structured_outputs=StructuredOutputsParams(json=schema)))
            elif backend == "none_same_lengths":
                params.append(SamplingParams(**{**common, "max_tokens": lengths[f"{n}x{kinds}:{run}"][i]}, ignore_eos=True))
            else:
                params.append(SamplingParams(**common))
        prompts = _prompts(tokenizer, n, kinds)
        wall, kept = float("inf"), []
        for _ in range(1 if run == "cold" else repeats):  # warm: the fastest of a few (a shared, busy machine)
            timings.clear()
            start = time.perf_counter()
            outs = llm.generate(prompts, params, use_tqdm=False)
            if time.perf_counter() - start < wall:
                wall, kept = time.perf_counter() - start, list(timings)
        timings[:] = kept
        tokens = [len(o.outputs[0].token_ids) for o in outs]
        valid = 0
        for i, o in enumerate(outs):
            try:
                jsonschema.validate(json.loads(o.outputs[0].text), SCHEMAS[i % kinds][0])
                valid += o.outputs[0].finish_reason == "stop"
            except (ValueError, jsonschema.ValidationError):
                pass
        row = {"requests": n, "schemas": kinds, "pass": run, "wall_s": round(wall, 3), "output_tokens": sum(tokens),
               "tokens_per_s": round(sum(tokens) / wall, 2), "mean_output_tokens": round(sum(tokens) / n, 1),
               "valid_share": round(valid / n, 3), "lengths": tokens}
        if backend == "pse":
            calls = [t for t, rows in timings if rows]
            row["apply"] = {"calls": len(timings), "constrained_calls": len(calls), "total_s": round(sum(t for t, _ in timings), 4),
                            "share_of_wall": round(sum(t for t, _ in timings) / wall, 4),
                            "median_ms": round(sorted(calls)[len(calls) // 2] * 1e3, 3) if calls else None,
                            "max_ms": round(max(calls) * 1e3, 2) if calls else None}
        results.append(row)
        print(f"[{backend}] {n} requests x {kinds} schemas ({run}): {row['tokens_per_s']} tokens/s, valid {row['valid_share']}",
              file=sys.stderr, flush=True)
    Path(out_file).write_text(json.dumps(results))


# --- MaskBench through each back end as vLLM runs it --------------------------------------------


def maskbench_worker(folder: str, stride: int, out_file: str) -> None:
    from vllm.engine.arg_utils import EngineArgs
    from vllm.sampling_params import SamplingParams, StructuredOutputsParams
    from vllm.v1.structured_output.backend_guidance import GuidanceBackend, validate_guidance_grammar
    from vllm.v1.structured_output.backend_types import StructuredOutputOptions
    from vllm.v1.structured_output.backend_xgrammar import XgrammarBackend, validate_xgrammar_grammar

    import pse_processors as pse
    from pse_processors.embedded import smollm2_dir
    from pse_processors.vllm import VLLMPSELogitsProcessor, extra_args
    from pse_processors.vllm.processor import model_vocabulary

    config = EngineArgs(model=str(smollm2_dir()), dtype="bfloat16", max_model_len=1024, enforce_eager=True).create_engine_config()
    from vllm.tokenizers import cached_tokenizer_from_config

    tokenizer = cached_tokenizer_from_config(config.model_config)
    vocab_size = config.model_config.get_vocab_size()
    vocabulary = model_vocabulary(config)
    eos = tokenizer.eos_token_id
    backends = {"xgrammar": XgrammarBackend(config, tokenizer=tokenizer, vocab_size=vocab_size),
                "guidance": GuidanceBackend(config, tokenizer=tokenizer, vocab_size=vocab_size)}
    files = sorted(Path(folder).glob("*.json"))[::stride]
    rows = []
    for path in files:
        entry = json.loads(path.read_text())
        schema, tests = entry["schema"], entry.get("tests", [])
        text = json.dumps(schema)
        row: dict = {"file": path.name}
        for name in ("pse", "pse_spec", "xgrammar", "guidance"):
            start = time.perf_counter()
            try:
                if name.startswith("pse"):
                    # pse: our defaults (undeclared properties refused); pse_spec: additional_properties="spec",
                    # as benchmarks/maskbench.py runs MaskBench (and as guidance in vLLM does by default).
                    options = {"additional_properties": "spec"} if name == "pse_spec" else {}
                    VLLMPSELogitsProcessor.validate_params(SamplingParams(extra_args=extra_args(schema, **options)))
                    matcher = pse.compile(schema, vocabulary, **options)

                    def accepts(ids, matcher=matcher):
                        return matcher.accepts(ids)
                else:
                    params = SamplingParams(structured_outputs=StructuredOutputsParams(json=schema))
                    if name == "xgrammar":
                        validate_xgrammar_grammar(params)
                    else:
                        validate_guidance_grammar(params, tokenizer=backends["guidance"].ll_tokenizer)
                    grammar = backends[name].compile_grammar(StructuredOutputOptions.JSON, text)

                    def accepts(ids, grammar=grammar):
                        grammar.reset()
                        return len(grammar.validate_tokens(list(ids))) == len(ids)
            except Exception as exc:  # noqa: BLE001 - any refusal or crash counts as not accepted
                row[name] = {"accepted": False, "error": f"{type(exc).__name__}: {str(exc)[:160]}"}
                continue
            compile_s = time.perf_counter() - start
            valid_rejected = invalid_accepted = 0
            for test in tests:
                ids = tokenizer.encode(json.dumps(test["data"], ensure_ascii=False), add_special_tokens=False) + [eos]
                ok = accepts(ids)
                valid_rejected += test["valid"] and not ok
                invalid_accepted += (not test["valid"]) and ok
            row[name] = {"accepted": True, "compile_s": round(compile_s, 4), "valid_rejected": valid_rejected,
                         "invalid_accepted": invalid_accepted}
        rows.append(row)
        print(f"[maskbench] {path.name}: " + ", ".join(f"{k}={'ok' if v['accepted'] else 'refused'}" for k, v in row.items() if k != "file"),
              file=sys.stderr, flush=True)
    Path(out_file).write_text(json.dumps(rows))


# --- the driver ---------------------------------------------------------------------------------


def _run(args: list, timeout: float = 3600) -> None:
    done = subprocess.run(module_command("vllm_throughput", *args), cwd=ROOT, env=child_env(**ENV), timeout=timeout)
    if done.returncode != 0:
        raise SystemExit(f"worker {args[:2]} failed with {done.returncode}")


def _summary(rounds: list, counts: list) -> list:
    """Per workload and pass, each configuration's best round, and ours over the others."""
    table = []
    for (n, kinds), run in ((w, run) for w in _workloads(counts) for run in ("cold", "warm")):
        best = {}
        for backend in BACKENDS:
            best[backend] = max(row["tokens_per_s"] for r in rounds for row in r[backend]
                                if (row["requests"], row["schemas"], row["pass"]) == (n, kinds, run))
        row = {"requests": n, "schemas": kinds, "pass": run, "tokens_per_s": best}
        for other in BACKENDS[1:]:
            row[f"pse_over_{other}"] = round(best["pse"] / best[other], 3)
        applies = [x["apply"] for r in rounds for x in r["pse"] if (x["requests"], x["schemas"], x["pass"]) == (n, kinds, run)]
        row["pse_apply_share_of_wall"] = min(a["share_of_wall"] for a in applies)
        row["pse_apply_median_ms"] = min(a["median_ms"] for a in applies)
        row["pse_apply_max_ms"] = min(a["max_ms"] for a in applies)
        row["valid_share"] = {b: min(x["valid_share"] for r in rounds for x in r[b]
                                     if (x["requests"], x["schemas"], x["pass"]) == (n, kinds, run)) for b in ("pse", "xgrammar", "guidance")}
        table.append(row)
    return table


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.vllm_throughput", description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, nargs="+", default=[16, 64])
    parser.add_argument("--rounds", type=int, default=2, help="0: only MaskBench, written into the existing --json report")
    parser.add_argument("--max-tokens", type=int, default=128)
    parser.add_argument("--repeats", type=int, default=3, help="warm runs per workload; the fastest counts")
    parser.add_argument("--maskbench", default=str(ROOT.parent / "shared" / "data" / "maskbench-dev"))
    parser.add_argument("--stride", type=int, default=20, help="every N-th MaskBench file (0: skip MaskBench)")
    parser.add_argument("--json", default=str(RESULTS / "vllm_throughput.json"))
    parser.add_argument("--dtype", default="bfloat16",
                        help="the model's dtype (float32 on CPUs without AVX-512, where vLLM's bfloat16 matmuls are ~20x slower)")
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    parser.add_argument("--maskbench-worker", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--lengths", help=argparse.SUPPRESS)
    parser.add_argument("--out", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        return worker(args.worker, args.requests, args.max_tokens, args.repeats, args.lengths, args.out, args.dtype)
    if args.maskbench_worker:
        return maskbench_worker(args.maskbench, args.stride, args.out)

    with tempfile.TemporaryDirectory() as scratch:
        rounds = []
        started = datetime.now(timezone.utc).isoformat(timespec="seconds")
        load_before = os.getloadavg()
        for index in range(args.rounds):
            others = list(BACKENDS[2:])
            others = others[index % len(others):] + others[: index % len(others)]
            results: dict = {}
            lengths = Path(scratch) / f"lengths{index}.json"
            for backend in ("pse", "none_same_lengths", *others):
                out = Path(scratch) / f"{backend}{index}.json"
                extra = {}
                if backend == "pse":  # an empty disk cache: every first use of a schema compiles cold
                    extra = {"PSE_PROCESSORS_CACHE_DIR": str(Path(scratch) / f"cache{index}")}
                common = ["--requests", *map(str, args.requests), "--max-tokens", str(args.max_tokens), "--repeats", str(args.repeats),
                          "--dtype", args.dtype,
                          "--lengths", str(lengths), "--out", str(out)]
                done = subprocess.run(module_command("vllm_throughput", "--worker", backend, *common), cwd=ROOT,
                                      env=child_env(**ENV, **extra), timeout=3600)
                if done.returncode != 0:
                    raise SystemExit(f"the {backend} worker failed with {done.returncode}")
                results[backend] = json.loads(out.read_text())
                if backend == "pse":
                    lengths.write_text(json.dumps({f"{r['requests']}x{r['schemas']}:{r['pass']}": r["lengths"] for r in results["pse"]}))
            rounds.append(results)
        maskbench = None
        if args.stride:
            out = Path(scratch) / "maskbench.json"
            _run(["--maskbench-worker", "--maskbench", args.maskbench, "--stride", str(args.stride), "--out", str(out)])
            maskbench = json.loads(out.read_text())
    if not rounds and Path(args.json).exists():  # --rounds 0: MaskBench only, into the existing report
        report = json.loads(Path(args.json).read_text())
        report["maskbench_command"] = command_line("vllm_throughput")
        report["maskbench"] = {"stride": args.stride, "schemas": len(maskbench), "totals": _maskbench_totals(maskbench),
                               "rows": maskbench}
        save_json(Path(args.json), report)
        print(json.dumps(report["maskbench"]["totals"], indent=2))
        return
    report = {
        "command": command_line("vllm_throughput"),
        "started": started,
        "machine": {"platform": platform.platform(), "cpus": os.cpu_count(), "load_before": load_before,
                    "load_after": os.getloadavg()},
        "versions": _versions(),
        "settings": {"max_tokens": args.max_tokens, "rounds": args.rounds, "repeats": args.repeats, "env": ENV, "temperature": 1.0,
                     "dtype": args.dtype},
        "summary": _summary(rounds, args.requests),
        "rounds": rounds,
    }
    if maskbench is not None:
        report["maskbench"] = {"stride": args.stride, "schemas": len(maskbench), "totals": _maskbench_totals(maskbench),
                               "rows": maskbench}
    save_json(Path(args.json), report)
    print(json.dumps({"summary": report["summary"], "maskbench": report.get("maskbench", {}).get("totals")}, indent=2))


def _maskbench_totals(rows: list) -> dict:
    totals = {}
    for name in ("pse", "pse_spec", "xgrammar", "guidance"):
        accepted = [r[name] for r in rows if r[name]["accepted"]]
        totals[name] = {
            "accepted": len(accepted),
            "passing": sum(1 for r in accepted if not r["valid_rejected"] and not r["invalid_accepted"]),
            "valid_rejected": sum(r["valid_rejected"] for r in accepted),
            "invalid_accepted": sum(r["invalid_accepted"] for r in accepted),
            "schemas_with_invalid_accepted": sum(1 for r in accepted if r["invalid_accepted"]),
        }
    return totals


def _versions() -> dict:
    from importlib.metadata import version

    found = {}
    for name in ("vllm-cpu", "torch", "transformers", "xgrammar", "llguidance", "outlines-core"):
        try:
            found[name] = version(name)
        except Exception:  # noqa: BLE001
            found[name] = None
    return found


if __name__ == "__main__":
    main()
