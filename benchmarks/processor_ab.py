"""Two versions of our torch processor in one process, calls interleaved: did a change make it slower?

    python -m benchmarks.processor_ab --old 701042d --new HEAD [--batches 1,16] [--reps 60] [--save FILE]

Separate runs of ``benchmarks.processor_step`` differ by 5-10% between processes on a shared
machine (memory layout, the model's forward pass beside it), which hides a small regression or
invents one. Here both versions live in one process: each git revision's ``pse_processors`` is
extracted (``git archive``) under another top-level name (the package imports itself relatively),
each builds a processor for ``benchmarks.processor_step``'s schema on the embedded SmolLM2's
tokenizer (the automaton settled, no disk cache), and in every repetition both replay the same
teacher-forced generation (a valid instance, one token more per call, in place as in generate)
in a random order. What is timed is the processor call alone.
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


def processor(package: str, tokenizer: Any) -> Any:
    """An in-place processor of ``package`` on the settled automaton (0.1 and 0.2 names alike)."""
    module = importlib.import_module(f"{package}.torch")
    first = module.PSELogitsProcessor(SCHEMA, tokenizer)
    matcher = getattr(first, "matcher", None) or first.__dict__["grammar"]
    settled = matcher.settled() if hasattr(matcher, "settled") else matcher.automaton_grammar()
    return module.PSELogitsProcessor(settled, inplace=True)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--old", required=True, help="git revision of the baseline")
    parser.add_argument("--new", default="HEAD", help="git revision to compare (default HEAD)")
    parser.add_argument("--batches", default="1,16")
    parser.add_argument("--reps", type=int, default=60, help="replays of the generation per version and batch")
    parser.add_argument("--save", type=Path, help="also write the JSON report here")
    args = parser.parse_args()
    os.environ["PSE_PROCESSORS_CACHE_DIR"] = "off"
    import torch
    from transformers import AutoTokenizer

    torch.set_num_threads(1)
    from pse_processors.embedded import smollm2_dir

    tokenizer = AutoTokenizer.from_pretrained(smollm2_dir())
    folder = Path(tempfile.mkdtemp(prefix="processor_ab-"))
    commits = {"old": extract(args.old, "pse_ab_old", folder), "new": extract(args.new, "pse_ab_new", folder)}
    sys.path.insert(0, str(folder))
    procs = {"old": processor("pse_ab_old", tokenizer), "new": processor("pse_ab_new", tokenizer)}
    ids = tokenizer.encode(json.dumps(INSTANCE), add_special_tokens=False)
    prompt = tokenizer.encode("Give me JSON:")
    report: dict = {"command": command_line("processor_ab"), "commits": commits, "results": []}
    rng = random.Random(0)
    for batch in (int(b) for b in args.batches.split(",")):
        rows = [torch.tensor([prompt + ids[:i]] * batch) for i in range(len(ids))]
        scores = torch.randn(batch, len(tokenizer))
        times: dict = {"old": [], "new": []}
        for _ in range(args.reps):
            for name in rng.sample(["old", "new"], 2):
                proc = procs[name]
                proc.reset()
                for row in rows:
                    copy = scores.clone()
                    start = time.perf_counter()
                    proc(row, copy)
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
