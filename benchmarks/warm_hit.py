"""Warm on-disk cache hits: ``compile()`` in a new process, of schemas compiled before.

    python -m benchmarks.warm_hit ../shared/data/maskbench-dev [--tokenizer llama3_1] [--count 40]

The schemas are the ``--count`` dev schemas with the largest JSON text among those that
compile (the slow end of the distribution), plus every ``--stride``-th one. A first process
compiles them into a fresh cache folder; a second, new process loads the tokenizer (its
vocabulary and token trie come from the disk cache too), clears the memory cache before each
schema, and times ``pse.compile(schema, vocabulary)``: reading the cached regex, the byte
automaton and the first mask. The issue's target: at most 20 ms.
"""

from __future__ import annotations

import argparse
import json
import logging
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

try:
    from ._common import child_env, module_command
except ImportError:  # run as a file: no package, so no relative import
    raise SystemExit("run it from the repository root as a module: python -m benchmarks.warm_hit ...") from None

logger = logging.getLogger("warm_hit")


def pick(data: Path, count: int, stride: int) -> list[Path]:
    files = sorted(data.glob("*.json"))
    by_size = sorted(files, key=lambda p: p.stat().st_size, reverse=True)
    chosen = list(dict.fromkeys(by_size[: count * 3] + files[::stride]))
    return chosen


def run(phase: str, files: list[str], tokenizer: str) -> dict:
    import pse_processors as pse
    from pse_processors.assets import load_tokenizer

    vocabulary = pse.Vocabulary.from_tokenizer(load_tokenizer(tokenizer))
    pse.compile({"type": "integer"}, vocabulary)  # the token trie, outside the timings
    times = {}
    for name in files:
        schema = json.loads(Path(name).read_text())["schema"]
        pse.clear_memory_cache()
        start = time.perf_counter()
        try:
            pse.compile(schema, vocabulary, additional_properties="spec")
        except pse.PSEError:
            continue
        times[name] = time.perf_counter() - start
    return times


def main() -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.warm_hit",
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("data", type=Path)
    parser.add_argument("--tokenizer", default="llama3_1")
    parser.add_argument("--count", type=int, default=40, help="the largest schemas that compile")
    parser.add_argument("--stride", type=int, default=25, help="plus every N-th schema")
    parser.add_argument("--phase", choices=["cold", "warm"], help=argparse.SUPPRESS)
    parser.add_argument("--files", help=argparse.SUPPRESS)
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    if args.phase:  # a child process
        files = json.loads(Path(args.files).read_text())
        print(json.dumps(run(args.phase, files, args.tokenizer)))
        return 0
    with tempfile.TemporaryDirectory() as cache:
        env = child_env(PSE_PROCESSORS_CACHE_DIR=cache)
        listing = Path(cache) / "files.json"
        listing.write_text(json.dumps([str(p) for p in pick(args.data, args.count, args.stride)]))

        def child(phase: str) -> dict:
            command = module_command("warm_hit", str(args.data), "--tokenizer", args.tokenizer, "--phase", phase,
                                     "--files", str(listing))
            out = subprocess.run(command, env=env, check=True, capture_output=True, text=True)
            return json.loads(out.stdout.strip().splitlines()[-1])

        cold = child("cold")
        largest = sorted(cold, key=lambda n: Path(n).stat().st_size, reverse=True)[: args.count]
        stride = [str(p) for p in sorted(args.data.glob("*.json"))[:: args.stride] if str(p) in cold]
        listing.write_text(json.dumps(list(dict.fromkeys(largest + stride))))
        warm = child("warm")
    rows = []
    for label, names in (("largest", largest), ("every %d-th" % args.stride, stride)):
        values = sorted(warm[n] * 1e3 for n in names if n in warm)
        colds = sorted(cold[n] * 1e3 for n in names if n in warm)
        if not values:
            continue
        rows.append({
            "set": label, "schemas": len(values), "warm_p50_ms": round(statistics.median(values), 1),
            "warm_p90_ms": round(values[int(0.9 * (len(values) - 1))], 1), "warm_max_ms": round(values[-1], 1),
            "over_20ms": sum(v > 20 for v in values), "cold_p50_ms": round(statistics.median(colds), 1),
            "cold_max_ms": round(colds[-1], 1),
        })
    slowest = sorted(warm.items(), key=lambda kv: -kv[1])[:5]
    print(json.dumps({"rows": rows, "slowest_ms": {Path(n).name: round(t * 1e3, 1) for n, t in slowest}}, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
