"""Helpers of the notebook tests (main: tests/test_notebooks.py; legacy: tests/legacy/test_notebooks_legacy.py).

Execution goes through ``scripts/execute_notebooks.py``, the code that ``scripts/notebooks.sh``
uses to save the outputs, so CI runs the notebooks exactly as they were recorded.
"""

from __future__ import annotations

import importlib.util
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = sorted((ROOT / "notebooks").glob("*.ipynb"))
#: Each notebook runs in under 3 minutes on the 2-core test machines; this only catches a runaway.
LIMIT_S = 600


def _executor():
    spec = importlib.util.spec_from_file_location("execute_notebooks", ROOT / "scripts" / "execute_notebooks.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)  # type: ignore[union-attr]
    return module


def notebooks_of(env: str) -> list[Path]:
    executor = _executor()
    return [path for path in NOTEBOOKS if executor.notebook_env(path) == env]


def run(path: Path) -> None:
    """Execute ``path`` in a fresh kernel of this Python; fail on any cell error (nbclient raises
    CellExecutionError with the cell and its traceback) or on a runaway notebook."""
    start = time.perf_counter()
    notebook = _executor().execute(path, timeout=LIMIT_S)
    elapsed = time.perf_counter() - start
    errors = [o for cell in notebook.cells if cell.cell_type == "code" for o in cell.outputs if o.output_type == "error"]
    assert not errors, errors
    assert elapsed < LIMIT_S, f"{path.name} took {elapsed:.0f} s"
