"""Execute notebooks with nbclient in this Python's environment; optionally save their outputs.

    python scripts/execute_notebooks.py --env main [--write] [notebooks/quickstart.ipynb ...]

Each notebook names its environment in its metadata (``"pse_processors": {"env": "main"}``);
only the notebooks of ``--env`` run. ``scripts/notebooks.sh`` runs this once per environment.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = ROOT / "notebooks"


def notebook_env(path: Path) -> str:
    """The environment a notebook runs in: ``metadata.pse_processors.env`` (default ``main``)."""
    return json.loads(path.read_text(encoding="utf-8"))["metadata"].get("pse_processors", {}).get("env", "main")


def execute(path: Path, timeout: int = 600):
    """Run every cell of ``path`` in a fresh kernel of this Python, from the notebook's folder;
    return the executed notebook. Raises ``nbclient.exceptions.CellExecutionError`` on an error."""
    import nbformat
    from nbclient import NotebookClient

    notebook = nbformat.read(path, as_version=4)
    # The kernel is a child of this process: it imports this checkout's pse_processors.
    paths = [p for p in os.environ.get("PYTHONPATH", "").split(os.pathsep) if p]
    if paths[:1] != [str(ROOT)]:
        os.environ["PYTHONPATH"] = os.pathsep.join([str(ROOT), *paths])
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    client = NotebookClient(
        notebook, timeout=timeout, kernel_name="python3", resources={"metadata": {"path": str(path.parent)}},
    )
    client.execute()
    return notebook


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("notebooks", nargs="*", type=Path, help="default: every notebook of --env")
    parser.add_argument("--env", required=True, choices=("main", "legacy"))
    parser.add_argument("--write", action="store_true", help="save the outputs into the notebooks")
    args = parser.parse_args()
    import nbformat

    paths = args.notebooks or sorted(NOTEBOOKS.glob("*.ipynb"))
    for path in paths:
        if notebook_env(path) != args.env:
            continue
        start = time.perf_counter()
        notebook = execute(path)
        print(f"{path.name}: executed in {time.perf_counter() - start:.0f} s", file=sys.stderr)
        if args.write:
            nbformat.write(notebook, path)
    return 0


if __name__ == "__main__":
    sys.exit(main())
