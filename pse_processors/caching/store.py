"""The one on-disk store: a private folder of sealed cache files, one subfolder per kind.

``$PSE_PROCESSORS_CACHE_DIR`` (default: the user cache folder, e.g. ``~/.cache/pse-processors``)
holds ``regexes/`` (schema -> regex), ``grammars/`` (byte automata; tables over 16 MB in a
memory-mapped ``.npy`` beside them), ``tables/`` (dense automata) and ``tries/`` (token tries),
never pickles. Set the variable to ``off`` (or ``0``, or an empty string) to disable it.

The trust model (what a planted file could otherwise do: make an object schema accept ``"hello"``):

- **Only you write it.** The folder and its subfolders are created mode 0700 and files 0600,
  whatever the umask. A folder or file owned by another user, or that other users can write
  (other-writable, or group-writable unless the group is your private group), is refused:
  one warning, then the process compiles in memory. Platforms without uids (Windows) skip
  this check.
- **Each entry names its inputs.** A file holds a header with the SHA-256 of everything that
  produced it (its kind, the library version, the constraint or regex, the options, the
  vocabulary's fingerprint, the file format), checked on load: a file moved under another
  entry's name answers for nothing.
- **Each entry is authenticated.** The header carries an HMAC-SHA256 of the header and the
  contents under a random per-folder key (``compile-cache.key``, mode 0600): a file edited or
  forged without that key (copied from another cache, damaged on disk) is refused. Once a
  file is checked in full (and has not changed for 2 s), a ``.stamp`` beside it holds a MAC
  of its inode, size and modification and change times: later loads skip the contents' MAC
  while those match (a change time cannot be set back but by root). A memory-mapped table
  over 16 MB is bound by its index (shape and 64 sampled rows), not read whole. What it
  cannot stop: anything running as you (or root), which can read the key.

A refused or damaged entry is ignored with a warning and rebuilt over. Readers never see half
a file (a temporary file, then a rename); a failed write removes its temporary file, and a
temporary file left by a killed process is deleted by the next process that writes.

Example:
    >>> import tempfile
    >>> from pathlib import Path
    >>> store = DiskStore(Path(tempfile.mkdtemp()) / "cache")
    >>> entry = store.entry("regexes", entry_binding("regexes", "the inputs"), ".json")
    >>> entry.save(lambda handle: handle.write(b"{}"), "regex"), entry.load("regex")
    (True, b'{}')
    >>> oct(entry.path.stat().st_mode & 0o777), oct(store.root.stat().st_mode & 0o777)
    ('0o600', '0o700')
"""

from __future__ import annotations

import atexit
import io
import logging
import os
import sys
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO, Callable, Optional

from .. import defaults
from .trust import KEY_FILE, CacheEntryError, check_folder, entry_binding, open_checked, private_file, secret_key, seal, stamp, unseal

__all__ = [
    "KEY_FILE", "KINDS", "CacheEntry", "CacheEntryError", "DiskStore", "cache_dir", "disk_store", "entry_binding",
    "reset", "sweep_temporary_files", "user_cache_dir", "write_atomically",
]

logger = logging.getLogger(__name__)

#: The compile cache's subfolders.
KINDS = ("regexes", "grammars", "tables", "tries")
_STALE_SECONDS = 3600  # a temporary file this old is left over, whatever its writer's pid
_STAMP_BYTES = 1 << 18  # below, the contents' MAC costs less than reading a stamp


@dataclass(frozen=True)
class CacheEntry:
    """One file of a :class:`DiskStore`: its kind folder, its binding (which names the file) and suffix."""

    store: "DiskStore"
    kind: str
    binding: str
    suffix: str

    @property
    def path(self) -> Path:
        return self.store.root / self.kind / f"{self.binding[:40]}{self.suffix}"

    def exists(self) -> bool:
        return self.store.usable and self.path.exists()

    def load(self, what: str) -> Optional[bytes]:
        """The entry's verified contents, or ``None`` (absent; refused or damaged, with a warning)."""
        return self.store.load(self, what)

    def save(self, write: Callable[[BinaryIO], object], what: str) -> bool:
        """Seal what ``write(handle)`` writes and store it atomically; False when not written (logged)."""
        return self.store.save(self, write, what)


class _Root:
    """What one process knows of one cache folder: why it is refused (or ``None``), its key."""

    def __init__(self, refused: Optional[str], secret: bytes = b"") -> None:
        self.refused = refused
        self.secret = secret
        self.kinds: dict[str, Optional[str]] = {}  # subfolder -> why it is refused, or None
        self.swept = False


_roots: dict[str, _Root] = {}
_roots_lock = threading.RLock()


class DiskStore:
    """One cache folder; every cache file of the package goes through :meth:`entry`."""

    def __init__(self, root: Path) -> None:
        self.root = Path(root)

    def _state(self) -> _Root:
        with _roots_lock:
            state = _roots.get(str(self.root))
            if state is None:
                state = _roots[str(self.root)] = _open_root(self.root)
            return state

    @property
    def refused(self) -> Optional[str]:
        """Why this folder is not used (checked once per process; warned once), or ``None``."""
        return self._state().refused

    @property
    def usable(self) -> bool:
        return self.refused is None

    def entry(self, kind: str, binding: str, suffix: str) -> CacheEntry:
        """The ``kind`` file bound to ``binding`` (see :func:`entry_binding`); it may not exist."""
        return CacheEntry(self, kind, binding, suffix)

    def load(self, entry: CacheEntry, what: str) -> Optional[bytes]:
        state = self._state()
        path = entry.path
        if state.refused is not None or self._kind_refused(state, entry.kind, create=False) or not path.exists():
            return None
        try:
            with open_checked(path) as handle:
                info = os.fstat(handle.fileno())
                large = info.st_size >= _STAMP_BYTES
                expected = stamp(entry.kind, entry.binding, info, state.secret) if large else None
                stamped = expected is not None and _read_stamp(path) == expected
                payload = unseal(handle, entry.kind, entry.binding, state.secret, stamped)
        except (OSError, CacheEntryError) as exc:
            logger.warning("ignoring the %s cache file %s (%s); rebuilding it", what, path, exc)
            return None
        if expected is not None and not stamped:  # checked in full: later loads skip the MAC
            write_atomically(_stamp_path(path), lambda handle: handle.write(expected.encode()), f"{what} stamp", quiet=True)
        return payload

    def save(self, entry: CacheEntry, write: Callable[[BinaryIO], object], what: str) -> bool:
        state = self._state()
        if state.refused is not None or self._kind_refused(state, entry.kind, create=True):
            return False
        with _roots_lock:
            sweep, state.swept = not state.swept, True
        if sweep:
            sweep_temporary_files(self.root)
        if not _begin_write(what, entry.path):
            return False
        try:
            buffer = io.BytesIO()  # sealed once complete: the MAC covers the whole contents
            write(buffer)
            payload = buffer.getbuffer()
            header = seal(entry.kind, entry.binding, payload, state.secret)
            return write_atomically(entry.path, lambda handle: (handle.write(header), handle.write(payload)), what)
        except Exception as exc:  # noqa: BLE001 - a cache that cannot be written is not an error
            logger.warning("could not write the %s cache file %s: %s", what, entry.path, exc)
            return False
        finally:
            _end_write()

    def check_file(self, path: Path) -> None:
        """Raise :class:`CacheEntryError` unless ``path`` is a regular file that only its owner, you, can write."""
        with open_checked(path):
            pass

    def _kind_refused(self, state: _Root, kind: str, create: bool) -> bool:
        with _roots_lock:
            if kind in state.kinds:
                return state.kinds[kind] is not None
            folder = self.root / kind
            if not create and not folder.exists():
                return False  # nothing to read; checked when first written
            reason = state.kinds[kind] = check_folder(folder)
        if reason is not None:
            logger.warning("not using the cache folder %s: %s. %s", folder, reason, _FIX)
        return reason is not None

    def __repr__(self) -> str:
        return f"DiskStore({str(self.root)!r})"


def _stamp_path(path: Path) -> Path:
    return path.with_name(path.name + ".stamp")


def _read_stamp(path: Path) -> Optional[str]:
    try:
        with open_checked(_stamp_path(path)) as handle:
            return handle.read(128).decode("ascii", "replace")
    except (OSError, CacheEntryError):
        return None


_FIX = f"Compiling in memory; make it private (chmod 700) or set {defaults.CACHE_ENV} to a folder of your own"


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
    """The store of :func:`cache_dir` (read at every call: the variable may change), or ``None``
    when it is disabled or refused (see the module docstring)."""
    folder = cache_dir()
    if folder is None:
        return None
    store = DiskStore(folder)
    return store if store.usable else None


def reset() -> None:
    """Forget what this process checked of every cache folder (tests; a folder whose owner changed)."""
    with _roots_lock:
        _roots.clear()


def _open_root(root: Path) -> _Root:
    reason = check_folder(root)
    secret = b""
    if reason is None:
        try:
            secret = secret_key(root)
        except OSError as exc:
            reason = f"its key file cannot be read or written ({exc})"
    if reason is not None:
        logger.warning("not using the compile cache %s: %s. %s", root, reason, _FIX)
    return _Root(reason, secret)


# -- atomic writes ------------------------------------------------------------------------------
_writes = threading.Condition()
_in_flight = 0
_closing = False
_depth = threading.local()  # writes under way in this thread (a sidecar is written inside its entry's)


def _begin_write(what: str, path: Path) -> bool:
    """Count a write under way; False once the interpreter exits (unless inside one under way)."""
    global _in_flight
    depth = getattr(_depth, "value", 0)
    with _writes:
        if _closing and not depth:
            logger.debug("exiting: not writing the %s cache file %s", what, path)
            return False
        _in_flight += 1
    _depth.value = depth + 1
    return True


def _end_write() -> None:
    global _in_flight
    _depth.value -= 1
    with _writes:
        _in_flight -= 1
        _writes.notify_all()


def write_atomically(path: Path, write: Callable[[BinaryIO], object], what: str, quiet: bool = False) -> bool:
    """Call ``write(handle)`` on a private temporary file next to ``path``, then move it into place.

    A failure (read-only or full disk, a failing ``write``) is logged as a warning naming
    ``what`` (``quiet``: at debug level) and removes the temporary file: a cache that cannot
    be written is not an error.
    Returns whether ``path`` was written. Once the interpreter exits, new writes are skipped
    and those under way are waited for, so that no background build leaves half a file.
    """
    if not _begin_write(what, path):
        return False
    temporary = None
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=f".{os.getpid()}.tmp")
        with os.fdopen(fd, "wb") as handle:
            private_file(fd)
            write(handle)
        os.replace(temporary, path)
        temporary = None
        return True
    except Exception as exc:  # noqa: BLE001 - see the docstring
        logger.log(logging.DEBUG if quiet else logging.WARNING, "could not write the %s cache file %s: %s", what, path, exc)
        return False
    finally:
        if temporary is not None:
            try:
                os.unlink(temporary)
            except OSError:
                pass
        _end_write()


def _finish_writes(timeout: float = 10.0) -> None:
    global _closing
    with _writes:
        _closing = True
        _writes.wait_for(lambda: _in_flight == 0, timeout)


atexit.register(_finish_writes)


def _after_fork_in_child() -> None:
    """A forked child has only the forking thread: no write of another thread is under way
    there, and a lock another thread held would never be released."""
    global _writes, _in_flight, _depth, _roots_lock
    _writes, _in_flight, _depth, _roots_lock = threading.Condition(), 0, threading.local(), threading.RLock()


if hasattr(os, "register_at_fork"):  # not on Windows, which has no fork
    os.register_at_fork(after_in_child=_after_fork_in_child)


def sweep_temporary_files(root: Path) -> int:
    """Delete the temporary files that killed writers left in ``root``'s kind folders; how many."""
    removed = 0
    now = time.time()
    for folder in (root, *(root / kind for kind in KINDS)):
        try:
            entries = list(os.scandir(folder))
        except OSError:
            continue
        for item in entries:
            if not item.name.endswith(".tmp") or (folder == root and not item.name.startswith(f".{KEY_FILE}.")):
                continue
            try:
                pid = int(item.name.rsplit(".", 2)[-2])
            except (ValueError, IndexError):
                pid = None  # a name of an older version
            try:
                if (pid is not None and not _alive(pid)) or now - item.stat(follow_symlinks=False).st_mtime > _STALE_SECONDS:
                    os.unlink(item.path)
                    removed += 1
            except OSError:
                pass
    if removed:
        logger.info("removed %d temporary files left by interrupted cache writes in %s", removed, root)
    return removed


def _alive(pid: int) -> bool:
    if pid == os.getpid() or os.name == "nt":  # Windows' os.kill would end the process: age decides there
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except (PermissionError, OSError, OverflowError):
        return True  # someone else's process, or no way to tell
    return True
