"""The documentation site's ```python blocks (docs/*.md) run as written, so the pages cannot
drift from the code.

The blocks of one page run in order in one namespace (a later block may use an earlier one's
names), with the repository root as the working directory. A block is skipped when:

- an HTML comment right before it says ``<!-- test: skip (why) -->`` (a fragment whose model or
  inputs are the reader's; each such comment says where the full version is tested);
- it imports a package that is not installed here (TensorFlow, JAX, vLLM, openai in the main
  environment): the skip names the package.

A page with no block that runs is reported as skipped, never as passed. The framework examples
that need a model run on the embedded SmolLM2 (``pse_processors.embedded``), offline.
"""

from __future__ import annotations

import ast
import importlib.util
import os
import re
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
DOCS = ROOT / "docs"
_BLOCK = re.compile(r"(?P<marker><!--\s*test:\s*(?P<directive>[^>]*?)\s*-->\s*\n)?^```python[^\n]*\n(?P<code>.*?)^```\s*$",
                    re.MULTILINE | re.DOTALL)


def blocks(text: str) -> list[tuple[int, str, str]]:
    """``(line, directive, code)`` for each ```python block of a page (directive: "" or "skip ...")."""
    return [(text.count("\n", 0, m.start("code")) + 1, m.group("directive") or "", m.group("code"))
            for m in _BLOCK.finditer(text)]


def missing_imports(code: str) -> list[str]:
    """The top-level packages ``code`` imports that are not installed here."""
    names = set()
    for node in ast.walk(ast.parse(code)):
        if isinstance(node, ast.Import):
            names.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names.add(node.module.split(".")[0])
    return sorted(name for name in names if importlib.util.find_spec(name) is None)


def test_blocks_are_found():
    text = "<!-- test: skip (a fragment) -->\n```python\nx = 1\n```\n\n```python\ny = 2\n```\n"
    assert blocks(text) == [(3, "skip (a fragment)", "x = 1\n"), (7, "", "y = 2\n")]
    assert missing_imports("import json\nfrom no_such_package_xyz import a") == ["no_such_package_xyz"]


PAGES = sorted(p.name for p in DOCS.glob("*.md") if blocks(p.read_text(encoding="utf-8")))


@pytest.mark.parametrize("page", PAGES)
def test_page_snippets(page, monkeypatch):
    path = DOCS / page
    namespace: dict = {"__name__": f"docs.{path.stem}"}
    monkeypatch.chdir(ROOT)
    ran, skipped = 0, []
    for line, directive, code in blocks(path.read_text(encoding="utf-8")):
        where = f"docs/{page}:{line}"
        if directive.startswith("skip"):
            skipped.append(f"{where}: {directive}")
            continue
        if directive:
            pytest.fail(f"{where}: unknown directive {directive!r} (only 'skip (why)')")
        missing = missing_imports(code)
        if missing:
            skipped.append(f"{where}: needs {', '.join(missing)}")
            continue
        try:
            exec(compile(code, where, "exec"), namespace)  # noqa: S102: the docs' own code
        except Exception as exc:
            raise AssertionError(f"the snippet at {where} failed: {type(exc).__name__}: {exc}") from exc
        ran += 1
    if not ran:
        pytest.skip("; ".join(skipped))
