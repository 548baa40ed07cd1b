"""``pse-processors cache info`` / ``cache clear``: the on-disk caches.

    pse-processors cache info [--json]
    pse-processors cache clear [--models]

The compile cache (``$PSE_PROCESSORS_CACHE_DIR``, default ``~/.cache/pse-processors``) holds
schema regexes, byte automata, token tries and dense tables; ``info`` also says whether the
folder is refused (owned by someone else, or writable by other users: then every process
compiles in memory). ``clear`` empties those folders. ``--models`` also removes the converted
SmolLM2 folder (converted again on next use). Nothing else in the folder (fetched tokenizers,
environments, the cache's key) is touched.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
from pathlib import Path
from typing import Any, Optional

from ..caching.store import cache_dir, user_cache_dir
from ..caching.trust import unsafe

#: The folders of the compile cache, with what they hold.
CACHE_FOLDERS = {
    "regexes": "schema → regex",
    "grammars": "byte automata",
    "tries": "token tries (one per vocabulary)",
    "tables": "dense token tables (TensorFlow/Flax)",
}


def add_parser(commands: Any, parents: list) -> None:
    parser = commands.add_parser(
        "cache", parents=parents, help="show or clear the on-disk caches",
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    actions = parser.add_subparsers(dest="action", required=True, metavar="{info,clear}")
    info = actions.add_parser("info", parents=parents, help="where the caches are and how big")
    info.add_argument("--json", action="store_true", help="print the report as JSON")
    info.set_defaults(run=run_info)
    clear = actions.add_parser("clear", parents=parents, help="delete the compile cache")
    clear.add_argument("--models", action="store_true", help="also delete the converted SmolLM2 model folder")
    clear.set_defaults(run=run_clear)


def models_dir() -> Path:
    from ..embedded import MODEL_ENV

    return Path(os.environ.get(MODEL_ENV) or user_cache_dir() / "models")


def _usage(path: Path) -> tuple[int, int]:
    """(files, bytes) under ``path``."""
    files = size = 0
    if path.is_dir():
        for item in path.rglob("*"):
            if item.is_file():
                files += 1
                size += item.stat().st_size
    return files, size


def _human(size: int) -> str:
    value = float(size)
    for unit in ("B", "KB", "MB", "GB"):
        if value < 1024 or unit == "GB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    return f"{size} B"


def _refused(folder: Path) -> Optional[str]:
    """Why processes do not use ``folder`` (see pse_processors.caching.store), without creating it."""
    try:
        return unsafe(folder.stat()) if folder.exists() else None
    except OSError as exc:
        return str(exc)


def run_info(args: argparse.Namespace) -> int:
    folder: Optional[Path] = cache_dir()
    report: dict = {"cache_dir": str(folder) if folder is not None else None, "folders": {}}
    if folder is not None:
        report["refused"] = _refused(folder)
        for name, what in CACHE_FOLDERS.items():
            files, size = _usage(folder / name)
            report["folders"][name] = {"files": files, "bytes": size, "holds": what}
    files, size = _usage(models_dir())
    report["models"] = {"path": str(models_dir()), "files": files, "bytes": size}
    if args.json:
        sys.stdout.write(json.dumps(report) + "\n")
        return 0
    if folder is None:
        sys.stdout.write("compile cache: disabled (PSE_PROCESSORS_CACHE_DIR is off)\n")
    else:
        refused = f" (not used: {report['refused']})" if report["refused"] else ""
        sys.stdout.write(f"compile cache: {folder}{refused}\n")
        for name, entry in report["folders"].items():
            sys.stdout.write(f"  {name + '/':10} {entry['files']:6} files {_human(entry['bytes']):>10}  {entry['holds']}\n")
    sys.stdout.write(f"models: {report['models']['path']} ({report['models']['files']} files, {_human(size)})\n")
    return 0


def run_clear(args: argparse.Namespace) -> int:
    folder = cache_dir()
    removed = 0
    targets = [folder / name for name in CACHE_FOLDERS] if folder is not None else []
    if args.models:
        targets.append(models_dir())
    for target in targets:
        if target.is_dir():
            removed += _usage(target)[1]
            shutil.rmtree(target)
    where = str(folder) if folder is not None else "the compile cache is disabled"
    sys.stdout.write(f"removed {_human(removed)} ({where}{'; models too' if args.models else ''})\n")
    return 0
