"""The README's and the root Markdown files' links resolve: a linked file exists, and a linked
heading (``BENCHMARKS.md#processor-step-pytorch-smollm2``) is a heading of that file, under
GitHub's anchors (``pymdownx.slugs``, which the site uses too). The site's own pages are checked
by ``mkdocs build --strict`` (``scripts/test.sh``); the README is not part of the site, so every
figure it links to its BENCHMARKS section is checked here.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
ROOT_FILES = ("README.md", "BENCHMARKS.md", "benchmarks/history.md", "tests/README.md")
_LINK = re.compile(r"\]\(([^)\s]+)\)")


def anchors(path: Path) -> set[str]:
    """The heading anchors of a Markdown file, as GitHub (and the site) write them."""
    slugs = pytest.importorskip("pymdownx.slugs")
    slugify = slugs.slugify(case="lower")
    seen: dict[str, int] = {}
    found, fence = set(), False
    for line in path.read_text(encoding="utf-8").split("\n"):
        if line.startswith("```"):
            fence = not fence
        match = None if fence else re.match(r"#{1,6} (.*)", line)
        if match:
            slug = slugify(match.group(1).strip(), "-")
            count = seen.get(slug, 0)
            seen[slug] = count + 1
            found.add(slug if count == 0 else f"{slug}-{count}")
    return found


def test_anchors_are_githubs():
    assert "every-5th-dev-schema-219-every-engine" == pytest.importorskip("pymdownx.slugs").slugify(case="lower")(
        "Every 5th dev schema (219): every engine", "-")


@pytest.mark.parametrize("name", [name for name in ROOT_FILES if (ROOT / name).exists()])
def test_links_resolve(name):
    page = ROOT / name
    broken = []
    for target in _LINK.findall(page.read_text(encoding="utf-8")):
        if re.match(r"[a-z]+:", target):  # http:, https:, mailto:
            continue
        file, _, anchor = target.partition("#")
        linked = (page.parent / file).resolve() if file else page
        if not linked.exists():
            broken.append(f"{target}: no file {linked.relative_to(ROOT) if linked.is_relative_to(ROOT) else linked}")
        elif anchor and linked.suffix == ".md" and anchor not in anchors(linked):
            broken.append(f"{target}: no heading #{anchor} in {linked.relative_to(ROOT)}")
    assert not broken, f"{name}: broken links:\n" + "\n".join(broken)
