"""What precomputing every mask costs: ``backend="auto"``'s hand-off on the MaskBench dev schemas.

    python -m benchmarks.precompute_masks ../shared/data/maskbench-dev [--stride 5] [--save FILE]

For every ``stride``-th schema (sorted by name) on SmolLM2's vocabulary, caches off: compile with
the default back end; where ``auto`` keeps the schema on the byte automaton (a hand-off), wait
for the background build and read what ``AutomatonMatcher.precompute_masks`` cost there (seconds
on the builder thread, wall and CPU, reachable states, distinct masks, bytes held: the dense tables, the
packed masks and the state -> mask id entries). Then each valid test instance is walked on the
settled matcher and every packed mask is timed (the decode path: nothing is computed there any
more). Schemas over ``defaults.PRECOMPUTE_MAX_STATES`` are counted, their masks stay lazy.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from pathlib import Path

try:
    from ._common import command_line, percentile, save_json
except ImportError:  # run as a file
    raise SystemExit("run it from the repository root as a module: python -m benchmarks.precompute_masks ...") from None


def main() -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.precompute_masks", description=__doc__.split("\n\n")[0])
    parser.add_argument("data", type=Path, help="the MaskBench folder (../shared/data/maskbench-dev)")
    parser.add_argument("--stride", type=int, default=5, help="every n-th schema (default 5)")
    parser.add_argument("--save", default=None, help="write the JSON report to this file")
    args = parser.parse_args()
    os.environ["PSE_PROCESSORS_CACHE_DIR"] = "off"
    import pse_processors as pse
    from pse_processors import defaults
    from pse_processors.embedded import smollm2_dir
    from pse_processors.matchers.handoff import HandoffMatcher
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(smollm2_dir())
    vocab = pse.Vocabulary.from_tokenizer(tokenizer)
    pse.compile(pse.Regex("a"), vocab, backend="dfa")  # the token trie, built once before any timing
    files = sorted(args.data.glob("*.json"))[:: args.stride]
    rows, mask_us = [], []
    started = time.perf_counter()
    for path in files:
        item = json.loads(path.read_text())
        pse.clear_memory_cache()
        try:
            matcher = pse.compile(item["schema"], vocab)
        except pse.PSEError:
            continue
        if not isinstance(matcher, HandoffMatcher):
            continue
        try:
            automaton = matcher.settled(timeout=600)
        except Exception:  # noqa: BLE001 - stays on llguidance: not an automaton schema
            continue
        row = {"schema": path.name, "automaton_states": automaton.num_states, "cost": automaton.mask_precompute}
        times = []
        for test in item["tests"]:
            if not test["valid"]:
                continue
            state = matcher.initial_state
            for token in tokenizer.encode(json.dumps(test["data"], ensure_ascii=False), add_special_tokens=False):
                t0 = time.perf_counter()
                matcher.bitmask(state)
                times.append((time.perf_counter() - t0) * 1e6)
                state = matcher.advance(state, token)
                if state is None:
                    break
        row["mask_us_p99"] = percentile(times, 0.99) if times else None
        mask_us += times
        rows.append(row)
        cost = row["cost"]
        print(f"{path.name}: {automaton.num_states} states, "
              + (f"{cost['masks']} masks, {cost['seconds']:.2f} s ({cost['cpu_seconds']:.2f} s CPU), {cost['bytes'] / 1e6:.1f} MB" if cost else "lazy (over the bound)"),
              file=sys.stderr, flush=True)
    done = [r["cost"] for r in rows if r["cost"]]
    seconds = [c["seconds"] for c in done]
    cpu = [c["cpu_seconds"] for c in done]
    megabytes = [c["bytes"] / 1e6 for c in done]
    summary = {
        "schemas_scanned": len(files), "automaton_schemas": len(rows), "precomputed": len(done),
        "over_the_bound": len(rows) - len(done), "bound_states": defaults.PRECOMPUTE_MAX_STATES,
        "seconds": {"p50": statistics.median(seconds), "p90": percentile(seconds, 0.9), "max": max(seconds),
                    "total": sum(seconds)} if seconds else None,
        "cpu_seconds": {"p50": statistics.median(cpu), "p90": percentile(cpu, 0.9), "max": max(cpu),
                        "total": sum(cpu)} if cpu else None,
        "megabytes": {"p50": statistics.median(megabytes), "p90": percentile(megabytes, 0.9), "max": max(megabytes)}
        if megabytes else None,
        "masks": {"p50": statistics.median(c["masks"] for c in done), "max": max(c["masks"] for c in done)} if done else None,
        "decode_mask_us": {"p50": statistics.median(mask_us), "p99": percentile(mask_us, 0.99), "max": max(mask_us),
                           "masks": len(mask_us)} if mask_us else None,
    }
    report = {"command": command_line("precompute_masks"), "vocabulary": "SmolLM2 (49152)", "summary": summary,
              "schemas": rows, "wall_s": round(time.perf_counter() - started, 1)}
    if args.save:
        save_json(Path(args.save), report)
    print(json.dumps(summary, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
