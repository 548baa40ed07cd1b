"""Two versions of one of our processors in one process, calls interleaved: did a change make it slower?

    python -m benchmarks.processor_ab --old 701042d --new HEAD [--batches 1,16] [--reps 60] [--save FILE]
    python -m benchmarks.processor_ab --old 701042d --framework tf|flax ...   # the legacy environment

Separate runs of ``benchmarks.processor_step`` differ by 5-10% between processes on a shared
machine (memory layout, the model's forward pass beside it), which hides a small regression or
invents one. Here both versions live in one process: each git revision's ``pse_processors`` is
extracted (``git archive``) under another top-level name (the package imports itself relatively),
each builds a processor for ``benchmarks.processor_step``'s schema on the embedded SmolLM2's
tokenizer (the automaton settled, no disk cache), and in every repetition both replay the same
teacher-forced generation (a valid instance, one token more per call, in place as in generate)
in a random order. What is timed is the processor call alone. With ``--framework tf`` (``flax``)
the processors are the in-graph ones, each called through ``tf.function(jit_compile=True)``
(``jax.jit``) on the padded buffer at every position of the same generation, as XLA's
generate loop calls them (compiled once per version before timing).
"""

from __future__ import annotations

import argparse
import importlib
import json
import os
import random
import statistics
import subprocess
import sys
import tarfile
import tempfile
import time
from pathlib import Path
from typing import Any

try:
    from ._common import ROOT, command_line, percentile, save_json
    from .processor_step import SCHEMA
except ImportError:  # run as a file: no package, so no relative import
    raise SystemExit("run it from the repository root as a module: python -m benchmarks.processor_ab ...") from None

INSTANCE = {
    "name": "Ada Lovelace", "age": 36, "email": "ada@example.com", "role": "admin", "tags": ["math", "poetry"],
    "address": {"street": "12 St James's Square", "city": "London", "zip": "SW1Y"},
}


def extract(revision: str, name: str, into: Path) -> str:
    """Unpack ``revision``'s ``pse_processors`` as the package ``name`` under ``into``; its commit."""
    commit = subprocess.run(["git", "rev-parse", "--short", revision], cwd=ROOT, check=True, capture_output=True, text=True).stdout.strip()
    archive = subprocess.run(["git", "archive", commit, "pse_processors"], cwd=ROOT, check=True, capture_output=True).stdout
    with tempfile.TemporaryFile() as handle:
        handle.write(archive)
        handle.seek(0)
        with tarfile.open(fileobj=handle) as tar:
            tar.extractall(into / "_unpacked" / name, filter="data")
    (into / "_unpacked" / name / "pse_processors").rename(into / name)
    return commit


def processor(package: str, tokenizer: Any, framework: str, max_new: int) -> Any:
    """A callable ``(ids, scores, cur_len)`` running ``package``'s processor for ``framework``
    (the torch one in place, on the settled automaton; 0.1 and 0.2 names alike)."""
    if framework == "torch":
        module = importlib.import_module(f"{package}.torch")
        first = module.PSELogitsProcessor(SCHEMA, tokenizer)
        matcher = getattr(first, "matcher", None) or first.__dict__["grammar"]
        settled = matcher.settled() if hasattr(matcher, "settled") else matcher.automaton_grammar()
        proc = module.PSELogitsProcessor(settled, inplace=True)
        return lambda ids, scores, cur: proc(ids, scores)
    module = importlib.import_module(f"{package}.{framework}")
    name = "TFPSELogitsProcessor" if framework == "tf" else "FlaxPSELogitsProcessor"
    proc = getattr(module, name)(SCHEMA, tokenizer, max_new_tokens=max_new)
    if framework == "tf":
        import tensorflow as tf

        return tf.function(lambda ids, scores, cur: proc(ids, scores, cur), jit_compile=True)
    import jax

    return jax.jit(lambda ids, scores, cur: proc(ids, scores, cur))


def _inputs(framework: str, rows: list, prompt: int, max_new: int, batch: int, width: int) -> tuple:
    """Per call ``(ids, scores, cur_len)`` in the framework's types, plus a fresh-copy function."""
    import numpy as np

    if framework == "torch":
        import torch

        calls = [(torch.tensor([row] * batch), None, len(row)) for row in rows]
        scores = torch.randn(batch, width)
        return calls, lambda: scores.clone()
    buffer = np.zeros((batch, prompt + max_new), dtype=np.int32)
    calls = []
    for row in rows:
        ids = buffer.copy()
        ids[:, : len(row)] = row
        calls.append((ids, None, len(row)))
    scores = np.random.default_rng(0).standard_normal((batch, width)).astype(np.float32)
    if framework == "tf":
        import tensorflow as tf

        calls = [(tf.constant(ids), None, tf.constant(cur, tf.int32)) for ids, _, cur in calls]
        return calls, lambda: tf.constant(scores)
    import jax.numpy as jnp

    calls = [(jnp.asarray(ids), None, jnp.asarray(cur, jnp.int32)) for ids, _, cur in calls]
    return calls, lambda: jnp.asarray(scores)


def _block(result: Any) -> None:
    """Wait for an asynchronous result (JAX), so that the timing covers the work."""
    ready = getattr(result, "block_until_ready", None)
    if ready is not None:
        ready()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--old", required=True, help="git revision of the baseline")
    parser.add_argument("--new", default="HEAD", help="git revision to compare (default HEAD)")
    parser.add_argument("--batches", default="1,16")
    parser.add_argument("--reps", type=int, default=60, help="replays of the generation per version and batch")
    parser.add_argument("--framework", choices=["torch", "tf", "flax"], default="torch",
                        help="torch (default; main environment) or the in-graph tf / flax (legacy environment)")
    parser.add_argument("--save", type=Path, help="also write the JSON report here")
    args = parser.parse_args()
    os.environ["PSE_PROCESSORS_CACHE_DIR"] = "off"
    from transformers import AutoTokenizer

    if args.framework == "torch":
        import torch

        torch.set_num_threads(1)
    from pse_processors.embedded import smollm2_dir

    try:
        tokenizer = AutoTokenizer.from_pretrained(smollm2_dir())
    except ValueError:  # transformers 4.x cannot read the config transformers 5 wrote: the plain file
        from transformers import PreTrainedTokenizerFast

        tokenizer = PreTrainedTokenizerFast.from_pretrained(smollm2_dir())
    folder = Path(tempfile.mkdtemp(prefix="processor_ab-"))
    commits = {"old": extract(args.old, "pse_ab_old", folder), "new": extract(args.new, "pse_ab_new", folder)}
    sys.path.insert(0, str(folder))
    ids = tokenizer.encode(json.dumps(INSTANCE), add_special_tokens=False)
    prompt = tokenizer.encode("Give me JSON:")
    max_new = len(ids) + 1
    procs = {name: processor(f"pse_ab_{name}", tokenizer, args.framework, max_new) for name in ("old", "new")}
    report: dict = {"command": command_line("processor_ab"), "commits": commits, "framework": args.framework, "results": []}
    rng = random.Random(0)
    for batch in (int(b) for b in args.batches.split(",")):
        calls, fresh_scores = _inputs(args.framework, [prompt + ids[:i] for i in range(len(ids))], len(prompt),
                                      max_new, batch, len(tokenizer))
        for proc in procs.values():  # compile (in-graph) and warm every mask before timing
            for row, _, cur in calls:
                _block(proc(row, fresh_scores(), cur))
        times: dict = {"old": [], "new": []}
        for _ in range(args.reps):
            for name in rng.sample(["old", "new"], 2):
                proc = procs[name]
                for row, _, cur in calls:
                    copy = fresh_scores()
                    start = time.perf_counter()
                    _block(proc(row, copy, cur))
                    times[name].append(time.perf_counter() - start)
        entry = {"batch": batch, "calls": len(times["old"])}
        for name in ("old", "new"):
            entry[name] = {"median_us": statistics.median(times[name]) * 1e6, "p90_us": percentile(times[name], 0.9) * 1e6}
        entry["new_over_old_median"] = entry["new"]["median_us"] / entry["old"]["median_us"]
        report["results"].append(entry)
        print(f"batch {batch}: old {commits['old']} {entry['old']['median_us']:.1f} us (p90 {entry['old']['p90_us']:.1f}), "
              f"new {commits['new']} {entry['new']['median_us']:.1f} us (p90 {entry['new']['p90_us']:.1f}): "
              f"new/old {entry['new_over_old_median']:.3f}")
    if args.save:
        save_json(args.save, report)
    return 0


if __name__ == "__main__":
    sys.exit(main())
