"""Where the grammar engine's time to first mask goes, against llguidance's own JSON Schema path.

    python -m benchmarks.ttfm_floor ../shared/data/maskbench-dev [--stride 2] [--repeats 3] [--save F]

For every schema that both compile, in one process and the same run:

- ``theirs``: llguidance on the schema (``grammar_from_json_schema``, ``LLMatcher``, first
  bitmask): the peer's whole time to first mask.
- ``ours_llg``: llguidance on *our* grammar for the schema (``grammar_from_lark`` of the Lark
  text our compiler wrote, ``LLMatcher`` with our limits, first bitmask), with none of our
  Python: the floor of any design that runs our grammar through llguidance's public API.
- ``ours_py``: our compiler's grammar output (``json_schema_to_grammar``: the compiler and
  ``to_lark``), the first time this process compiles the schema.

llguidance keeps nothing between two grammars, so its two timings are the fastest of
``--repeats`` runs, in alternating order (this machine's noise is +-50% on one run). The
``trivial_lark`` line is llguidance on a one-terminal Lark grammar: the fixed cost of its Lark
front end (it builds a lexer for the Lark syntax for every grammar it reads), which its JSON
Schema path does not pay.
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
    raise SystemExit("run it from the repository root as a module: python -m benchmarks.ttfm_floor ...") from None

os.environ.setdefault("PSE_PROCESSORS_CACHE_DIR", "off")

logger = logging.getLogger("ttfm_floor")


def _fastest(run: Callable[[], Any], repeats: int) -> Optional[float]:
    best = None
    for _ in range(repeats):
        start = time.perf_counter()
        if run() is None:
            return None
        elapsed = time.perf_counter() - start
        best = elapsed if best is None else min(best, elapsed)
    return best


def measure(data: Path, tokenizer_name: str, stride: int, repeats: int) -> dict:
    import llguidance
    import llguidance.hf
    import llguidance.numpy as lnp

    import pse_processors as pse
    from pse_processors.matchers import llguidance as pushdown
    from pse_processors.json_schema import SchemaOptions, json_schema_to_grammar

    tokenizer = load_tokenizer(tokenizer_name)
    peer_tokenizer = llguidance.hf.from_tokenizer(tokenizer)
    our_tokenizer = pushdown.lltokenizer_for(pse.Vocabulary.from_tokenizer(tokenizer))
    options = SchemaOptions(additional_properties="spec")  # MaskBench's reading, as maskbench.py's
    mask = lnp.allocate_token_bitmask(1, peer_tokenizer.vocab_size)

    def first_mask(matcher: Any) -> Any:
        if matcher.is_error():
            return None
        lnp.fill_next_token_bitmask(matcher, mask, 0)
        return matcher

    def theirs(schema: Any) -> Any:
        grammar = llguidance.LLMatcher.grammar_from_json_schema(json.dumps(schema))
        return first_mask(llguidance.LLMatcher(peer_tokenizer, grammar, log_level=0))

    def ours_llg(lark: str) -> Any:
        return first_mask(pushdown.llguidance_matcher(our_tokenizer, lark))  # as PushdownGrammar builds it

    trivial = _fastest(lambda: ours_llg('start: /"a"/'), 50)
    rows = []
    files = sorted(data.glob("*.json"))[::stride]
    for n, path in enumerate(files):
        schema = json.loads(path.read_text())["schema"]
        start = time.perf_counter()
        try:
            lark = json_schema_to_grammar(schema, options).lark
        except pse.PSEError:
            continue  # refused: no grammar to time
        ours_py = time.perf_counter() - start
        try:
            if n % 2:
                peer, ours = _fastest(lambda: theirs(schema), repeats), _fastest(lambda: ours_llg(lark), repeats)
            else:
                ours, peer = _fastest(lambda: ours_llg(lark), repeats), _fastest(lambda: theirs(schema), repeats)
        except Exception:  # noqa: BLE001 - llguidance refuses some schemas
            continue
        if peer is None or ours is None:
            continue
        rows.append({"schema": path.name, "theirs": peer, "ours_llg": ours, "ours_py": ours_py})
        if (n + 1) % 100 == 0:
            logger.info("%d/%d schemas", n + 1, len(files))
    summary: dict = {"schemas": len(rows), "trivial_lark_ms": round(trivial * 1e3, 3)}
    us = {  # percentiles in µs, as maskbench.py takes them
        "theirs": percentiles([r["theirs"] for r in rows]), "ours_llg": percentiles([r["ours_llg"] for r in rows]),
        "ours_py": percentiles([r["ours_py"] for r in rows]),
        "ours_llg_plus_py": percentiles([r["ours_llg"] + r["ours_py"] for r in rows]),
    }
    for p in ("p50", "p90", "p99"):
        summary[p] = {f"{name}_ms": round(values[p] / 1e3, 3) for name, values in us.items()}
        summary[p]["floor_ratio"] = round(us["ours_llg"][p] / us["theirs"][p], 2)
        summary[p]["with_python_ratio"] = round(us["ours_llg_plus_py"][p] / us["theirs"][p], 2)
    return {"summary": summary, "rows": rows}


def main(argv: Optional[list] = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.ttfm_floor",
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("data", type=Path, help="a MaskBench folder of .json files")
    parser.add_argument("--tokenizer", default="llama3_1")
    parser.add_argument("--stride", type=int, default=2, help="take every N-th schema (sorted by name)")
    parser.add_argument("--repeats", type=int, default=3, help="llguidance timings: the fastest of this many")
    parser.add_argument("--save", type=Path, help="write the summary and per-schema rows, with the command, here")
    args = parser.parse_args(argv)
    import importlib.util

    if importlib.util.find_spec("llguidance") is None:
        raise SystemExit("llguidance is not installed here; run with the bench venv (bash scripts/setup_bench_env.sh)")
    logging.basicConfig(level=logging.INFO, format="%(name)s: %(message)s", stream=sys.stderr)
    logging.getLogger("pse_processors").setLevel(logging.ERROR)  # format annotations etc.: not timings
    result = measure(args.data, args.tokenizer, args.stride, args.repeats)
    print(json.dumps(result["summary"], indent=2))
    if args.save:
        from importlib.metadata import version

        result["command"] = command_line("ttfm_floor", argv)
        result["date"] = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
        result["llguidance"] = version("llguidance")
        save_json(args.save, result, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
