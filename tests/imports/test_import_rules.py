"""The import rules of pyproject.toml hold, and they catch a cycle added on purpose."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import importlinter  # noqa: F401  (the main environment has it: requirements/main.txt)

from tests.helpers import ROOT
LINT = [sys.executable, "-c", "import sys; from importlinter.cli import lint_imports_command; sys.exit(lint_imports_command())"]


def _lint(package_parent: Path) -> subprocess.CompletedProcess:
    env = dict(os.environ, PYTHONPATH=str(package_parent))
    return subprocess.run([*LINT, "--no-cache", str(ROOT / "pyproject.toml")], cwd=package_parent,
                          env=env, capture_output=True, text=True, timeout=300)


def test_the_package_keeps_every_contract(tmp_path: Path) -> None:
    shutil.copytree(ROOT / "pse_processors", tmp_path / "pse_processors",
                    ignore=shutil.ignore_patterns("__pycache__"))
    result = _lint(tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "broken" not in result.stdout.lower().replace("0 broken", "")


def test_a_cycle_added_on_purpose_breaks_the_contracts(tmp_path: Path) -> None:
    shutil.copytree(ROOT / "pse_processors", tmp_path / "pse_processors",
                    ignore=shutil.ignore_patterns("__pycache__"))
    # The runtime importing the engine closes engine -> runtime -> engine.
    target = tmp_path / "pse_processors" / "runtime" / "prefix_states.py"
    target.write_text(target.read_text() + "\nfrom ..engine import StructuringEngine  # noqa: E402,F401\n")
    result = _lint(tmp_path)
    assert result.returncode != 0
    assert "pse_processors.runtime is not allowed to import pse_processors.engine" in result.stdout
    assert "No import cycle between the modules of any package BROKEN" in result.stdout
