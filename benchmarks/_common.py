"""What the benchmark scripts share: the repository root, commands and environments for child
processes, the bench environment's python, tokenizers, percentiles and result files.

The scripts are modules of this package and run from the repository root, which puts this
checkout's ``pse_processors`` first on ``sys.path``::

    python -m benchmarks.maskbench ../shared/data/maskbench-dev --limit 3
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import Any, Optional

#: The repository root (the folder holding ``benchmarks/`` and ``pse_processors/``).
ROOT = Path(__file__).resolve().parents[1]
#: Where the recorded results live (read by notebooks/benchmarks.ipynb).
RESULTS = ROOT / "benchmarks" / "results"


def command_line(module: str, argv: Optional[list] = None) -> str:
    """The command that ran ``benchmarks.<module>`` (with this process's arguments), for result files."""
    args = sys.argv[1:] if argv is None else list(argv)
    return " ".join(["python -m", f"benchmarks.{module}", *args])


def child_env(**extra: str) -> dict:
    """``os.environ`` for a child Python (or a Ray worker) that must import this checkout's
    ``benchmarks`` and ``pse_processors`` from any working folder: the root first on PYTHONPATH."""
    path = os.pathsep.join(p for p in (str(ROOT), os.environ.get("PYTHONPATH", "")) if p)
    return {**os.environ, "PYTHONPATH": path, **extra}


def module_command(module: str, *args: str, python: Optional[str] = None) -> list:
    """``[python, "-m", "benchmarks.<module>", *args]``; run it with :func:`child_env`."""
    return [python or sys.executable, "-m", f"benchmarks.{module}", *args]


# --- the bench environment (the peer libraries: scripts/setup_bench_env.sh) ------------------


def bench_python() -> Path:
    """The bench venv's python: ``$PSE_ENV_ROOT/bench`` (default ``~/.cache/pse-processors/envs/bench``)."""
    root = Path(os.environ.get("PSE_ENV_ROOT") or Path.home() / ".cache" / "pse-processors" / "envs")
    return root / "bench" / "bin" / "python"


def rerun_in_bench_env(module: str, missing: list) -> None:
    """When ``missing`` (peer modules not importable here) is not empty, replace this process with
    ``python -m benchmarks.<module>`` (the same arguments) under the bench venv's python; exit with
    a hint when that venv is missing or is already this one."""
    if not missing:
        return
    python = bench_python()
    if os.environ.get("PSE_BENCH_REEXEC") or not python.exists() or Path(sys.executable) == python:
        raise SystemExit(
            f"the peer libraries {missing} are not installed for {sys.executable}; "
            "run `bash scripts/setup_bench_env.sh` first"
        )
    print(f"[{module}] peers missing here ({', '.join(missing)}): re-running with {python}", file=sys.stderr, flush=True)
    sys.stdout.flush()
    os.execve(str(python), module_command(module, *sys.argv[1:], python=str(python)), child_env(PSE_BENCH_REEXEC="1"))


# --- tokenizers ---------------------------------------------------------------------------------


def tokenizer_folder(name: str) -> Path:
    """A tokenizer folder: a path, ``smollm2`` (the embedded model) or a fetched npm tokenizer name."""
    path = Path(name).expanduser()
    if path.exists():
        return path.parent if path.is_file() else path
    if name == "smollm2":
        from pse_processors.embedded import smollm2_dir

        return smollm2_dir()
    base = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "pse-processors" / "tokenizers" / name
    if not (base / "tokenizer.json").exists():
        raise SystemExit(f"no tokenizer {name!r} at {base}: run `python scripts/fetch_assets.py` first")
    return base


def load_tokenizer(name: str) -> Any:
    """A transformers tokenizer for :func:`tokenizer_folder` ``(name)``."""
    from transformers import AutoTokenizer, PreTrainedTokenizerFast

    folder = tokenizer_folder(name)
    try:
        return AutoTokenizer.from_pretrained(str(folder))
    except Exception:  # noqa: BLE001 - npm folders hold only tokenizer.json + config
        config = json.loads((folder / "tokenizer_config.json").read_text()) if (folder / "tokenizer_config.json").exists() else {}
        keep = {k: v for k, v in config.items() if k.endswith("_token") and isinstance(v, str)}
        return PreTrainedTokenizerFast(tokenizer_file=str(folder / "tokenizer.json"), **keep)


# --- statistics and results ---------------------------------------------------------------------


def percentiles(values: list, scale: float = 1e6) -> dict:
    """p50/p90/p95/p99 (nearest rank) of ``values`` times ``scale``, rounded to 0.1; None when empty."""
    if not values:
        return {"p50": None, "p90": None, "p95": None, "p99": None}
    ordered = sorted(values)

    def q(p: float) -> float:
        return round(ordered[min(len(ordered) - 1, int(p * len(ordered)))] * scale, 1)

    return {"p50": q(0.50), "p90": q(0.90), "p95": q(0.95), "p99": q(0.99)}


def percentile(values: list, q: float) -> float:
    """The ``q`` quantile (0..1) of ``values``, interpolated between ranks; NaN when empty."""
    ordered = sorted(values)
    if not ordered:
        return float("nan")
    k = (len(ordered) - 1) * q
    lo, hi = int(k), min(int(k) + 1, len(ordered) - 1)
    return ordered[lo] + (ordered[hi] - ordered[lo]) * (k - lo)


def save_json(path: Path, data: Any, indent: int = 2) -> str:
    """Write ``data`` as JSON (and a final newline) to ``path``, creating its folder; return the text."""
    text = json.dumps(data, indent=indent)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text + "\n", encoding="utf-8")
    return text
