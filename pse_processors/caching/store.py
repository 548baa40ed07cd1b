"""The one on-disk store: a folder of cache files, one subfolder per kind, written atomically.

``$PSE_PROCESSORS_CACHE_DIR`` (default: the user cache folder, e.g. ``~/.cache/pse-processors``)
holds ``regexes/`` (schema -> regex, JSON), ``grammars/`` (byte automata, ``.npz``, no pickle;
tables over 16 MB in a memory-mapped ``.npy`` beside them), ``tables/`` (dense automata) and
``tries/`` (token tries). Set the variable to ``off`` (or ``0``, or an empty string) to disable
it. Readers never see half a file: each is written to a temporary file, then renamed; a file
that fails validation is rebuilt and replaced by its owner.

Example:
    >>> import os, tempfile
    >>> from pathlib import Path
    >>> store = DiskStore(Path(tempfile.mkdtemp()))
    >>> path = store.path("regexes", "abc", ".json")
    >>> store.write(path, lambda handle: handle.write(b"{}"), "regex")
    >>> path.read_bytes(), path.parent.name
    (b'{}', 'regexes')
"""

from __future__ import annotations

import logging
import os
import sys
import tempfile
from pathlib import Path
from typing import BinaryIO, Callable, Optional

from .. import defaults

logger = logging.getLogger(__name__)


class DiskStore:
    """One cache folder; every cache file of the package goes through :meth:`path` and :meth:`write`."""

    def __init__(self, root: Path) -> None:
        self.root = root

    def path(self, kind: str, key: str, suffix: str) -> Path:
        """Where the ``kind`` file of ``key`` lives (it may not exist)."""
        return self.root / kind / f"{key}{suffix}"

    def write(self, path: Path, write: Callable[[BinaryIO], None], what: str) -> None:
        """Write ``path`` atomically with ``write(handle)``; see :func:`write_atomically`."""
        write_atomically(path, write, what)

    def __repr__(self) -> str:
        return f"DiskStore({str(self.root)!r})"


def user_cache_dir() -> Path:
    """The platform's per-user cache folder for this package."""
    if sys.platform == "darwin":
        base = Path.home() / "Library" / "Caches"
    elif os.name == "nt":
        base = Path(os.environ.get("LOCALAPPDATA", Path.home() / "AppData" / "Local"))
    else:
        base = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    return base / "pse-processors"


def cache_dir() -> Optional[Path]:
    """The on-disk cache folder, or ``None`` when ``PSE_PROCESSORS_CACHE_DIR`` disables it."""
    value = os.environ.get(defaults.CACHE_ENV)
    if value is None:
        return user_cache_dir()
    if value.strip().lower() in ("", "0", "off", "false", "none"):
        return None
    return Path(value).expanduser()


def disk_store() -> Optional[DiskStore]:
    """The store of :func:`cache_dir` (read at every call: the variable may change), or ``None``."""
    folder = cache_dir()
    return None if folder is None else DiskStore(folder)


def write_atomically(path: Path, write: Callable[[BinaryIO], None], what: str) -> None:
    """Call ``write(handle)`` on a temporary file next to ``path``, then move it into place.

    A failure (read-only or full disk) is logged as a warning naming ``what``: a cache that
    cannot be written is not an error.
    """
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=path.parent, delete=False, suffix=".tmp") as handle:
            write(handle)
        os.replace(handle.name, path)
    except OSError as exc:
        logger.warning("could not write the %s cache file %s: %s", what, path, exc)
