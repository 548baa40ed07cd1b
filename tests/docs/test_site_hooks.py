"""The site's build helpers in scripts/ (loaded by mkdocs.yml, not importable as a package):
the griffe extension's docstring rewrites and the MkDocs hook's link rewriting and notebook nav."""

from __future__ import annotations

import importlib.util
from pathlib import Path
from types import SimpleNamespace

import pytest

ROOT = Path(__file__).resolve().parents[2]


def load(name: str):
    pytest.importorskip("mkdocs")
    pytest.importorskip("griffe")
    spec = importlib.util.spec_from_file_location(name, ROOT / "scripts" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_docstrings_become_markdown():
    rewrite = load("griffe_docstrings").markdown_docstring
    text = "A :class:`~pse_processors.Schema` and :func:`pse_processors.compile`::\n\n    x\n\nExample:\n    >>> 1\n    1"
    assert rewrite(text) == "A `Schema` and `pse_processors.compile`:\n\n    x\n\nExamples:\n    >>> 1\n    1"
    assert rewrite("Examples:\n    >>> 2") == "Examples:\n    >>> 2"  # already right: unchanged


def test_links_from_docs_reach_root_files():
    hooks = load("mkdocs_hooks")
    page = SimpleNamespace(file=SimpleNamespace(src_uri="vllm.md"))
    config = {"docs_dir": str(ROOT / "docs")}
    text = "[b](../BENCHMARKS.md#vllm-cpu-build) [s](../pse_processors/torch.py) [c](conformance.md)"
    assert hooks.on_page_markdown(text, page, config, None) == (
        "[b](BENCHMARKS.md#vllm-cpu-build) [s](../pse_processors/torch.py) [c](conformance.md)")
    root_page = SimpleNamespace(file=SimpleNamespace(src_uri="BENCHMARKS.md"))
    assert hooks.on_page_markdown("see [v](docs/vllm.md#requests)", root_page, config, None) == "see [v](vllm.md#requests)"


def test_unlisted_notebooks_join_the_nav():
    hooks = load("mkdocs_hooks")
    notebooks = [p for p in hooks._external() if p.endswith(".ipynb")]
    assert notebooks, "no notebook found"
    config = {"nav": [{"Home": "index.md"}, {"Notebooks": [{"First": notebooks[0]}]}]}
    hooks.on_config(config)
    assert config["nav"][1]["Notebooks"] == [{"First": notebooks[0]}, *notebooks[1:]]
