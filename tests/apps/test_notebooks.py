"""Every committed notebook has the outputs of a complete run, and the main-environment notebooks
execute without error (the TensorFlow/Flax one runs in tests/tf_flax/test_notebooks.py)."""

from __future__ import annotations

import json

import pytest

from tests.helpers import NOTEBOOKS, notebooks_of, run_notebook

MODEL_FREE = {"benchmarks.ipynb"}  # the others load the embedded SmolLM2


def test_notebooks_exist():
    names = {path.name for path in NOTEBOOKS}
    assert {"quickstart.ipynb", "pipelines_and_batching.ipynb", "tensorflow_and_flax.ipynb", "benchmarks.ipynb", "mlx.ipynb", "freetext.ipynb"} <= names


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_committed_notebook_has_outputs(path):
    """Executed top to bottom in one kernel (counts 1, 2, 3...), with outputs and no error."""
    notebook = json.loads(path.read_text(encoding="utf-8"))
    assert notebook["metadata"].get("pse_processors", {}).get("env") in ("main", "legacy"), "no environment named"
    cells = [cell for cell in notebook["cells"] if cell["cell_type"] == "code"]
    assert cells, "no code cell"
    counts = [cell.get("execution_count") for cell in cells]
    assert counts == list(range(1, len(cells) + 1)), f"not executed in one run from the top: {counts}"
    outputs = [output for cell in cells for output in cell.get("outputs", [])]
    assert not [o for o in outputs if o["output_type"] == "error"], "a cell failed"
    assert sum(1 for cell in cells if cell.get("outputs")) >= len(cells) // 2, "most cells have no output"


@pytest.mark.parametrize(
    "path",
    [pytest.param(p, marks=() if p.name in MODEL_FREE else pytest.mark.model, id=p.name) for p in notebooks_of("main")],
)
def test_main_notebook_executes(path):
    pytest.importorskip("nbclient")
    run_notebook(path)
