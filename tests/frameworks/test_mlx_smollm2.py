"""The embedded SmolLM2 through mlx-lm, loaded from its GGUF with no torch importable: the demo
extraction, run by the command line in a subprocess that blocks torch."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap

import pytest

from tests.helpers import ROOT

pytest.importorskip("mlx_lm")

# Make torch unimportable (and invisible to transformers' availability checks), then run the CLI.
SCRIPT = textwrap.dedent(
    """
    import importlib.util, sys

    _find_spec = importlib.util.find_spec
    def find_spec(name, package=None):
        return None if name.split(".")[0] == "torch" else _find_spec(name, package)
    importlib.util.find_spec = find_spec

    class Block:
        def find_spec(self, name, path=None, target=None):
            if name.split(".")[0] == "torch":
                raise ModuleNotFoundError(f"blocked: {name}", name=name)
            return None
    sys.meta_path.insert(0, Block())

    from pse_processors.cli import main
    status = main(["demo", "--framework", "mlx", "--max-new-tokens", "40"])
    assert "torch" not in sys.modules, "torch was imported"
    sys.exit(status)
    """
)


@pytest.mark.model
def test_demo_extraction_with_mlx_and_no_torch():
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]), HF_HUB_OFFLINE="1")
    result = subprocess.run([sys.executable, "-c", SCRIPT], capture_output=True, text=True, timeout=600, env=env, cwd=ROOT)
    assert result.returncode == 0, result.stderr[-3000:]
    value = json.loads(result.stdout.strip().splitlines()[-1])
    assert value["name"] == "John Smith"
    assert set(value) == {"name", "occupation"}
