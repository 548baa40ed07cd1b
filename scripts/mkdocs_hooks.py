"""MkDocs hooks: the site shows files that live outside ``docs/`` at their repository paths.

``BENCHMARKS.md``, ``CHANGELOG.md``, ``benchmarks/history.md``, the benchmark plots and the
notebooks stay where readers of the repository expect them; this hook adds them to the site under
the same paths, so a link that works on GitHub from a root file works on the site too. A page in
``docs/`` links to them as ``../BENCHMARKS.md`` (right on GitHub); the hook rewrites those links
to the site's path before MkDocs validates them, so ``mkdocs build --strict`` still fails on a
link to a file or an anchor that does not exist.
"""

from __future__ import annotations

import logging
import re
from pathlib import Path

from mkdocs.plugins import event_priority
from mkdocs.structure.files import File, Files

ROOT = Path(__file__).resolve().parent.parent
#: Repository files (globs, relative to the root) that the site serves at the same path.
EXTERNAL = ("BENCHMARKS.md", "CHANGELOG.md", "benchmarks/history.md", "benchmarks/plots/*.png",
            "notebooks/*.ipynb")
_LINK = re.compile(r"\]\(\.\./([^)#\s]+)")
_DOCS_LINK = re.compile(r"\]\(docs/")


# The docstrings document several parameters in one entry ("start, end: the markers"), which
# griffe reads as one unknown parameter. Those warnings (and only those: the entry's name has a
# comma) are dropped; a documented parameter missing from its signature still fails the build.
_GROUPED = re.compile(r"(Parameter '[^']*, [^']*' does not appear in the function signature"
                      r"|Failed to get 'name: description' pair from '[^':]*,')")


class _GroupedParameters(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        return not _GROUPED.search(record.getMessage())


def on_startup(command, dirty) -> None:
    logging.getLogger("mkdocs.plugins.griffe").addFilter(_GroupedParameters())


def _nav_paths(nav) -> set:
    if isinstance(nav, str):
        return {nav}
    if isinstance(nav, dict):
        return set().union(*(_nav_paths(v) for v in nav.values()))
    if isinstance(nav, list):
        return set().union(set(), *(_nav_paths(v) for v in nav))
    return set()


def on_config(config):
    """A notebook that mkdocs.yml's nav does not list yet goes under "Notebooks" (titled by its
    first heading), so adding a notebook never breaks the strict build."""
    listed = _nav_paths(config["nav"])
    section = next((item["Notebooks"] for item in config["nav"] if isinstance(item, dict) and "Notebooks" in item), None)
    if section is not None:
        section.extend(path for path in _external() if path.endswith(".ipynb") and path not in listed)
    return config


def _external() -> list[str]:
    return sorted(str(p.relative_to(ROOT)) for pattern in EXTERNAL for p in ROOT.glob(pattern))


@event_priority(100)  # before mkdocs-jupyter, which turns every *.ipynb it sees into a page
def on_files(files: Files, config) -> Files:
    for path in _external():
        if files.get_file_from_path(path) is None:
            files.append(File(path, src_dir=str(ROOT), dest_dir=config["site_dir"],
                              use_directory_urls=config["use_directory_urls"]))
    return files


def on_page_markdown(markdown: str, page, config, files: Files) -> str:
    """``../X`` from a page in docs/ becomes ``X`` where the site serves X (see ``EXTERNAL``)."""
    served = set(_external())
    depth = page.file.src_uri.count("/")

    def fix(match: re.Match) -> str:
        target = match.group(1)
        return f"]({'../' * depth}{target}" if target in served else match.group(0)

    if (Path(config["docs_dir"]) / page.file.src_uri).exists():
        return _LINK.sub(fix, markdown)
    # A root file (BENCHMARKS.md) links to docs/X.md; on the site that page is X.md.
    return _DOCS_LINK.sub(lambda m: "](" + "../" * depth, markdown)
