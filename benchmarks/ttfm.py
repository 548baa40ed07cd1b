"""Time to first mask, ours beside llguidance, schema by schema in one process (issue 25).

    python -m benchmarks.ttfm ../shared/data/maskbench-dev [--stride 1] [--save benchmarks/results/ttfm.json]

For every schema, in alternating order: ours (``pse.compile(schema, vocabulary,
additional_properties="spec")`` with the memory caches cleared and the disk cache off, then the
first ``bitmask``: MaskBench's pse engine) and llguidance (``grammar_from_json_schema``,
``LLMatcher`` over llguidance's own tokenizer from the Hugging Face one, the first mask filled:
MaskBench's llguidance engine). Only the time to first mask: no test instances are walked
(``benchmarks/maskbench.py`` scores those). ``backend="auto"``'s background automaton builds are
submitted but not run (they start 20 ms after the compile, past the first mask, and then take
the CPU for up to seconds each, precomputing masks): each timing has the machine to itself.

Each timing is the wall time and the calling thread's CPU time (llguidance builds on that
thread too). On a busy machine the wall time also holds the waits for a core (a few ms each
time the process is preempted); the CPU time does not, and its ratio is what a quiet machine
would show. Schemas either side refuses are left out of the ratios (and counted).
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
import time
from pathlib import Path
from typing import Any, Callable, Optional

try:
    from ._common import command_line, load_tokenizer, percentiles, save_json
except ImportError:  # run as a file: no package, so no relative import
    raise SystemExit("run it from the repository root as a module: python -m benchmarks.ttfm ...") from None

os.environ.setdefault("PSE_PROCESSORS_CACHE_DIR", "off")

logger = logging.getLogger("ttfm")


def _timed(run: Callable[[], Any]) -> tuple:
    """(wall s, thread CPU s, what ``run`` returned or the exception it raised)."""
    wall, cpu = time.perf_counter(), time.thread_time()
    try:
        out: Any = run()
    except Exception as exc:  # noqa: BLE001 - a refusal is a result
        out = exc
    return time.perf_counter() - wall, time.thread_time() - cpu, out


def measure(data: Path, tokenizer_name: str, stride: int) -> dict:
    import llguidance
    import llguidance.hf
    import llguidance.numpy as lnp

    import pse_processors as pse
    from pse_processors.compiler import llg_json
    from pse_processors.matchers import handoff

    tokenizer = load_tokenizer(tokenizer_name)
    vocabulary = pse.Vocabulary.from_tokenizer(tokenizer)
    peer_tokenizer = llguidance.hf.from_tokenizer(tokenizer)
    mask = lnp.allocate_token_bitmask(1, peer_tokenizer.vocab_size)
    pse.compile({"type": "integer"}, vocabulary)  # the token trie and llguidance's tokenizer, outside the timings
    pse.compile(pse.Grammar('start: "a"'), vocabulary)
    handoff.wait_for_builds(60)
    handoff._submit = lambda shared, build: None  # see the module's docstring

    def ours(schema: Any) -> Any:
        pse.clear_memory_cache()
        matcher = pse.compile(schema, vocabulary, additional_properties="spec")
        matcher.bitmask(matcher.initial_state)
        return matcher

    def theirs(schema: Any) -> Any:
        matcher = llguidance.LLMatcher(peer_tokenizer, llguidance.LLMatcher.grammar_from_json_schema(json.dumps(schema)))
        if matcher.is_error():
            raise ValueError(matcher.get_error())
        lnp.fill_next_token_bitmask(matcher, mask, 0)
        return matcher

    rows = []
    files = sorted(data.glob("*.json"))[::stride]
    for n, path in enumerate(files):
        schema = json.loads(path.read_text())["schema"]
        timings: dict = {}
        for name in (("ours", "theirs") if n % 2 else ("theirs", "ours")):
            timings[name] = _timed(lambda: (ours if name == "ours" else theirs)(schema))
        row: dict = {"schema": path.name}
        for name, (wall, cpu, out) in timings.items():
            if isinstance(out, Exception):
                row[f"{name}_error"] = f"{type(out).__name__}: {str(out)[:160]}"
            else:
                row[f"{name}_s"], row[f"{name}_cpu_s"] = wall, cpu
        matcher = timings["ours"][2]
        if not isinstance(matcher, Exception):
            row["backend"] = type(matcher).__name__
            grammar = getattr(matcher, "pushdown", matcher)
            row["front_end"] = llg_json.is_wrapped(getattr(grammar, "lark", None) or "")
        rows.append(row)
        if (n + 1) % 50 == 0:
            logger.info("%d/%d schemas", n + 1, len(files))
    return {"summary": summarize(rows), "rows": rows}


def summarize(rows: list) -> dict:
    both = [r for r in rows if "ours_s" in r and "theirs_s" in r]
    out: dict = {
        "schemas": len(rows), "both_compile": len(both),
        "ours_only": sum("ours_s" in r and "theirs_s" not in r for r in rows),
        "theirs_only": sum("theirs_s" in r and "ours_s" not in r for r in rows),
        "neither": sum("ours_s" not in r and "theirs_s" not in r for r in rows),
    }
    groups = {"all": both, "front_end": [r for r in both if r.get("front_end")]}
    for backend in ("HandoffMatcher", "LLGuidanceMatcher", "AutomatonMatcher"):
        groups[backend] = [r for r in both if r.get("backend") == backend and not r.get("front_end")]
    for group, members in groups.items():
        entry: dict = {"schemas": len(members)}
        for clock in ("", "_cpu"):
            ours = percentiles([r[f"ours{clock}_s"] for r in members])
            theirs = percentiles([r[f"theirs{clock}_s"] for r in members])
            ratios = percentiles([r[f"ours{clock}_s"] / r[f"theirs{clock}_s"] for r in members], scale=1)
            label = "wall" if not clock else "cpu"
            entry[label] = {
                "ours_us": ours, "theirs_us": theirs,
                "ratio_of_percentiles": {k: None if ours[k] is None else round(ours[k] / theirs[k], 2) for k in ("p50", "p90", "p99")},
                "per_schema_ratio": ratios,
            }
        out[group] = entry
    return out


def main(argv: Optional[list] = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.ttfm", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("data", type=Path, help="a MaskBench folder of .json files")
    parser.add_argument("--tokenizer", default="llama3_1")
    parser.add_argument("--stride", type=int, default=1, help="take every N-th schema (sorted by name)")
    parser.add_argument("--save", type=Path, help="write the summary and per-schema rows, with the command, here")
    args = parser.parse_args(argv)
    import importlib.util

    if importlib.util.find_spec("llguidance") is None:
        raise SystemExit("llguidance is not installed here; run with the bench venv (bash scripts/setup_bench_env.sh)")
    logging.basicConfig(level=logging.INFO, format="%(name)s: %(message)s", stream=sys.stderr)
    logging.getLogger("pse_processors").setLevel(logging.ERROR)  # format annotations etc.: not timings
    result = measure(args.data, args.tokenizer, args.stride)
    print(json.dumps(result["summary"], indent=1))
    if args.save:
        from importlib.metadata import version

        result["command"] = command_line("ttfm", argv)
        result["date"] = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
        result["llguidance"] = version("llguidance")
        result["load_average"] = os.getloadavg()
        save_json(args.save, result, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
