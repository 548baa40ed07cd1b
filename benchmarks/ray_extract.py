"""Rows per second of structured extraction on SmolLM2: a plain loop, Ray with 1 actor, Ray with 2 actors.

    HF_HUB_OFFLINE=1 nice -n 10 python -m benchmarks.ray_extract [--rows 24] [--batch-size 4] \\
        [--max-new-tokens 24] [--repeat 2] [--model DIR] [--json benchmarks/results/ray_extract.json]

Every configuration runs the same rows with the same settings (greedy, torch 1 thread per
process: the plain loop, and each actor with ``num_cpus=1``), ``--repeat`` times, interleaved;
the fastest run counts. ``end-to-end`` is the whole job (model load, compile; for Ray also the
actors' start and imports); ``generating`` runs from the first batch's start to the last
batch's end (stamped inside the actors), which is what a long job sees per row. Ray's local
cluster (``ray.init(num_cpus=2)``) is started once, before timing.
"""

from __future__ import annotations

import argparse
import logging
import os
import platform
import subprocess
import time
from datetime import datetime, timezone
from pathlib import Path

try:
    from ._common import RESULTS, ROOT, command_line, save_json
except ImportError:  # run as a file: no package, so no relative import
    raise SystemExit("run it from the repository root as a module: python -m benchmarks.ray_extract ...") from None

logger = logging.getLogger("ray_extract")

SCHEMA = {
    "type": "object",
    "properties": {"name": {"type": "string", "maxLength": 12}, "age": {"type": "integer", "minimum": 0, "maximum": 120}},
    "required": ["name", "age"], "additionalProperties": False,
}
TEMPLATE = "Extract the person's name and age as JSON.\n\n{text}"
NAMES = ["Alice", "Bob", "Chen", "Dana", "Emeka", "Farah", "Goran", "Hana", "Ivan", "Jo", "Kofi", "Lena"]
CITIES = ["Oslo", "Paris", "Taipei", "Lima", "Lagos", "Cairo", "Zagreb", "Tokyo", "Kyiv", "Perth", "Accra", "Riga"]


def make_rows(count: int) -> list[dict]:
    return [
        {"id": i, "text": f"{NAMES[i % 12]} is {18 + (i * 7) % 60} years old and lives in {CITIES[(i * 5) % 12]}."}
        for i in range(count)
    ]


def plain(rows: list[dict], model: Path, batch_size: int, max_new_tokens: int) -> dict:
    """The single-process loop (the command line's runner): seconds in all and generating, valid rows."""
    import jsonschema

    from pse_processors.compiler.options import CompileOptions
    from pse_processors.runners import Settings, fill_template
    from pse_processors.runners.torch_runner import Runner

    start = time.perf_counter()
    runner = Runner(model, threads=1)
    prepared = runner.prepare(SCHEMA, CompileOptions())
    settings, validator, valid = Settings(max_new_tokens=max_new_tokens), jsonschema.Draft202012Validator(SCHEMA), 0
    first_batch, batches = time.time(), 0
    for first in range(0, len(rows), batch_size):
        prompts = [fill_template(TEMPLATE, row["text"]) for row in rows[first:first + batch_size]]
        for value in runner.generate(prepared, prompts, settings):
            valid += isinstance(value, dict) and validator.is_valid(value)
        batches += 1
    generating = time.time() - first_batch
    return {"seconds": time.perf_counter() - start, "generating": generating, "seconds_per_batch": generating / batches,
            "valid": valid}


def timed_extractor():
    """A PSEExtractor that stamps each batch's start and end (wall clock, shared by the processes
    of one machine), so the benchmark can tell generating from starting actors."""
    from pse_processors.ray import PSEExtractor

    class Timed(PSEExtractor):
        def __call__(self, batch):
            import pyarrow as pa

            began = time.time()
            out = super().__call__(batch)
            ended = time.time()
            return out.append_column("t0", pa.array([began] * out.num_rows)).append_column(
                "t1", pa.array([ended] * out.num_rows))

    return Timed


def on_ray(rows: list[dict], model: Path, batch_size: int, max_new_tokens: int, actors: int) -> dict:
    import ray

    from pse_processors.ray import extract

    start = time.perf_counter()
    out = extract(
        ray.data.from_items(rows), SCHEMA, prompt_template=TEMPLATE, model=model, concurrency=actors,
        batch_size=batch_size, max_new_tokens=max_new_tokens, threads=1, num_cpus=1, extractor=timed_extractor(),
    )
    results = out.take_all()
    seconds = time.perf_counter() - start
    assert sorted(r["id"] for r in results) == [row["id"] for row in rows], "rows lost or duplicated"
    batches = {(r["t0"], r["t1"]) for r in results}
    return {"seconds": seconds, "generating": max(r["t1"] for r in results) - min(r["t0"] for r in results),
            "seconds_per_batch": sum(t1 - t0 for t0, t1 in batches) / len(batches),
            "valid": sum(bool(r["valid"]) for r in results)}


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.ray_extract", description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=24)
    parser.add_argument("--batch-size", type=int, default=4)
    parser.add_argument("--max-new-tokens", type=int, default=24)
    parser.add_argument("--repeat", type=int, default=2, help="runs of each configuration; the fastest counts")
    parser.add_argument("--model", type=Path, help="a transformers folder (default: the embedded SmolLM2)")
    parser.add_argument("--json", type=Path, default=RESULTS / "ray_extract.json")
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    import ray
    import torch

    from pse_processors.embedded import smollm2_dir

    torch.set_num_threads(1)
    model = args.model or smollm2_dir()
    ray.init(
        num_cpus=2, include_dashboard=False, log_to_driver=False,
        runtime_env={"env_vars": {"PYTHONPATH": str(ROOT), "HF_HUB_OFFLINE": "1",
                                  "TOKENIZERS_PARALLELISM": "false"}},
    )
    ray.data.DataContext.get_current().enable_progress_bars = False
    rows = make_rows(args.rows)
    configs = {
        "plain loop (1 process, 1 thread)": lambda: plain(rows, model, args.batch_size, args.max_new_tokens),
        "Ray, 1 actor (1 thread)": lambda: on_ray(rows, model, args.batch_size, args.max_new_tokens, 1),
        "Ray, 2 actors (1 thread each)": lambda: on_ray(rows, model, args.batch_size, args.max_new_tokens, 2),
    }
    runs: dict = {name: [] for name in configs}
    loads = [os.getloadavg()[0]]
    for repeat in range(args.repeat):  # configurations interleaved, so a busy spell hits all of them
        for name, run in configs.items():
            runs[name].append(run())
            loads.append(os.getloadavg()[0])
            logger.info("repeat %d, %s: %s", repeat, name, runs[name][-1])
    results = []
    for name, measured in runs.items():
        seconds, generating = min(m["seconds"] for m in measured), min(m["generating"] for m in measured)
        entry = {
            "config": name, "seconds_end_to_end": round(seconds, 2), "seconds_generating": round(generating, 2),
            "seconds_per_batch": round(min(m["seconds_per_batch"] for m in measured), 2),
            "valid": min(m["valid"] for m in measured), "rows_per_s_end_to_end": round(len(rows) / seconds, 3),
            "rows_per_s_generating": round(len(rows) / generating, 3),
            "all_runs": [{k: round(v, 2) for k, v in m.items()} for m in measured],
        }
        logger.info("%s", entry)
        results.append(entry)
    ray.shutdown()
    base, one_actor, two_actors = results
    summary = {
        "ray_1_actor_overhead_end_to_end": round(one_actor["seconds_end_to_end"] / base["seconds_end_to_end"] - 1, 3),
        "ray_1_actor_overhead_generating": round(one_actor["seconds_generating"] / base["seconds_generating"] - 1, 3),
        "scaling_1_to_2_actors_end_to_end": round(two_actors["rows_per_s_end_to_end"] / one_actor["rows_per_s_end_to_end"], 3),
        "scaling_1_to_2_actors_generating": round(two_actors["rows_per_s_generating"] / one_actor["rows_per_s_generating"], 3),
    }
    rev = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True,
                         cwd=ROOT).stdout.strip()
    report = {
        "date": datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC"), "git_rev": rev, "command": command_line("ray_extract"),
        "machine": f"{platform.machine()}, {os.cpu_count()} CPUs", "ray": ray.__version__, "torch": torch.__version__,
        "load_average_1min": {"min": min(loads), "max": max(loads)}, "repeat": args.repeat,
        "rows": args.rows, "batch_size": args.batch_size, "max_new_tokens": args.max_new_tokens,
        "results": results, "summary": summary,
    }
    save_json(args.json, report)
    logger.info("summary: %s", summary)
    print("| configuration | end-to-end (s) | generating (s) | s per batch | valid | rows/s end-to-end | rows/s generating |")
    print("|---|---|---|---|---|---|---|")
    for e in results:
        print(f"| {e['config']} | {e['seconds_end_to_end']} | {e['seconds_generating']} | {e['seconds_per_batch']} | "
              f"{e['valid']}/{args.rows} | "
              f"{e['rows_per_s_end_to_end']} | {e['rows_per_s_generating']} |")

if __name__ == "__main__":
    main()
