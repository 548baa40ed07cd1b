"""Write a cache file so that readers never see half of it: a temporary file, then a rename."""

from __future__ import annotations

import logging
import os
import tempfile
from pathlib import Path
from typing import BinaryIO, Callable

logger = logging.getLogger(__name__)


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
