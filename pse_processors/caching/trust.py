"""What makes a disk-cache file safe to use: who can write it, what it was made from, who sealed it.

The disk store (``store.py``) calls these; the trust model is described there. Three checks:

- :func:`unsafe`: a folder or file must be owned by the user running this process and not be
  writable by anyone else (other-writable, or group-writable unless the group is the user's
  private group, Debian-style). Platforms without uids skip it (Windows: the folder's ACLs).
- :func:`entry_binding`: the SHA-256 of an entry's inputs, stored in its header and compared.
- :func:`seal` / :func:`unseal`: an HMAC-SHA256 of the header and contents under the folder's
  random key (:func:`secret_key`, a file only the user can read); once checked, a file's
  :func:`stamp` spares later loads the MAC until the file changes.

Example:
    >>> import io
    >>> binding = entry_binding("regexes", "a schema")
    >>> sealed = seal("regexes", binding, b"contents", b"k" * 32) + b"contents"
    >>> unseal(io.BytesIO(sealed), "regexes", binding, b"k" * 32)
    b'contents'
    >>> unseal(io.BytesIO(sealed), "regexes", entry_binding("regexes", "another schema"), b"k" * 32)
    Traceback (most recent call last):
    ...
    pse_processors.caching.trust.CacheEntryError: it was made for other inputs (moved or copied here)
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import os
import secrets
import stat
import tempfile
import time
from pathlib import Path
from typing import BinaryIO, Optional, Union

from ..version import __version__

logger = logging.getLogger(__name__)

#: The per-folder secret that authenticates the entries.
KEY_FILE = "compile-cache.key"
MAGIC = b"PSE-CACHE/1 "
_KEY_BYTES = 32
#: A file changed less than this long ago may change again within its timestamp tick (4 ms on
#: Linux, 2 s on FAT) unseen: it gets no :func:`stamp` yet.
SETTLED_SECONDS = 2.0


class CacheEntryError(ValueError):
    """A cache file that must not be used (foreign, moved, edited, damaged): it is rebuilt."""


def entry_binding(kind: str, *material: object) -> str:
    """The SHA-256 (hex) of what produces an entry: its kind, the library version and ``material``.

    Example:
        >>> entry_binding("tries", 1, "abc") == entry_binding("tries", 1, "abc") != entry_binding("tries", 1, "abd")
        True
    """
    digest = hashlib.sha256(MAGIC)
    for part in (kind, __version__, *material):
        data = str(part).encode("utf-8", "surrogatepass")
        digest.update(b"%d:" % len(data) + data)  # length-prefixed: no two lists hash alike
    return digest.hexdigest()


# -- who can write ------------------------------------------------------------------------------
def euid() -> Optional[int]:
    """This process's user id, or ``None`` on a platform without uids."""
    return os.geteuid() if hasattr(os, "geteuid") else None


_private_groups: dict[tuple[int, int], bool] = {}


def _private_group(gid: int, uid: int) -> bool:
    """True when ``gid`` is ``uid``'s own group: no other account is in it (Debian's user groups)."""
    if (gid, uid) not in _private_groups:
        try:
            import grp
            import pwd

            name = pwd.getpwuid(uid).pw_name
            members = set(grp.getgrgid(gid).gr_mem) - {name}
            others = any(user.pw_gid == gid and user.pw_uid != uid for user in pwd.getpwall())
            _private_groups[(gid, uid)] = not members and not others
        except (ImportError, KeyError, OSError):
            _private_groups[(gid, uid)] = False
    return _private_groups[(gid, uid)]


def unsafe(info: os.stat_result) -> Optional[str]:
    """Why a folder or file with this ``stat`` may hold someone else's writing, or ``None``."""
    uid = euid()
    if uid is None:  # no uids on this platform: the folder's ACLs are the user's business
        return None
    if info.st_uid != uid:
        return f"it is owned by uid {info.st_uid}, not by you (uid {uid})"
    mode = stat.S_IMODE(info.st_mode)
    if mode & stat.S_IWOTH:
        return f"other users can write to it (mode {mode:04o})"
    if mode & stat.S_IWGRP and not _private_group(info.st_gid, uid):
        return f"group {info.st_gid} can write to it (mode {mode:04o})"
    return None


def check_folder(folder: Path) -> Optional[str]:
    """Create ``folder`` private (0700) if missing; ``None`` when only its owner, you, can write to it, else why not."""
    try:
        folder.parent.mkdir(parents=True, exist_ok=True)
        try:
            folder.mkdir(mode=0o700)
            os.chmod(folder, 0o700)  # mkdir's mode is masked by the umask
        except FileExistsError:
            pass
        info = os.stat(folder)
    except OSError as exc:
        return f"it cannot be created or read ({exc})"
    if not stat.S_ISDIR(info.st_mode):
        return "it is not a folder"
    return unsafe(info)


def open_checked(path: Path) -> BinaryIO:
    """``path`` opened for reading, links not followed, after checking the opened file itself.

    Raises ``OSError`` (e.g. ``FileNotFoundError``) or :class:`CacheEntryError`."""
    flags = os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_BINARY", 0)
    try:
        fd = os.open(path, flags)
    except OSError as exc:
        if path.is_symlink():
            raise CacheEntryError("it is a symbolic link") from exc
        raise
    handle = os.fdopen(fd, "rb")
    info = os.fstat(fd)
    reason = "it is not a regular file" if not stat.S_ISREG(info.st_mode) else unsafe(info)
    if reason is not None:
        handle.close()
        raise CacheEntryError(reason)
    return handle


def private_file(fd: int) -> None:
    """Mode 0600 for a file we write (``mkstemp``'s 0600 is masked by the umask)."""
    if hasattr(os, "fchmod"):
        os.fchmod(fd, 0o600)


def secret_key(root: Path) -> bytes:
    """The folder's key: read, or created (mode 0600; the first of two racing processes wins).

    A key that others could read or write, or that is damaged, is replaced with a warning:
    the entries it sealed are then rebuilt."""
    path = root / KEY_FILE
    for _ in range(3):
        try:
            with open_checked(path) as handle:
                if euid() is not None and stat.S_IMODE(os.fstat(handle.fileno()).st_mode) & 0o077:
                    raise CacheEntryError("other users can read it")
                key = handle.read()
            if len(key) == _KEY_BYTES:
                return key
            raise CacheEntryError("it is damaged")
        except FileNotFoundError:
            replace = False
        except CacheEntryError as exc:
            logger.warning("replacing the cache key %s (%s): the entries it sealed will be rebuilt", path, exc)
            replace = True
        fd, temporary = tempfile.mkstemp(dir=root, prefix=f".{KEY_FILE}.", suffix=f".{os.getpid()}.tmp")
        try:
            private_file(fd)
            os.write(fd, secrets.token_bytes(_KEY_BYTES))
            os.close(fd)
            if replace:
                os.replace(temporary, path)
            else:
                try:
                    os.link(temporary, path)  # fails if another process created it meanwhile: theirs wins
                except FileExistsError:
                    pass
                except OSError:  # no hard links on this file system
                    os.replace(temporary, path)
        finally:
            if os.path.exists(temporary):
                os.unlink(temporary)
    raise OSError(f"{path} keeps changing")


# -- the sealed format: MAGIC, a JSON header line, the contents ---------------------------------
def _mac(kind: str, binding: str, payload: Union[bytes, memoryview], secret: bytes) -> str:
    mac = hmac.new(secret, f"{kind}\0{binding}\0{len(payload)}\0".encode(), hashlib.sha256)
    mac.update(payload)
    return mac.hexdigest()


def seal(kind: str, binding: str, payload: Union[bytes, memoryview], secret: bytes) -> bytes:
    """The header line to write before ``payload``: its kind, binding, size and MAC."""
    fields = {"kind": kind, "binding": binding, "size": len(payload), "mac": _mac(kind, binding, payload, secret)}
    return MAGIC + json.dumps(fields).encode() + b"\n"


def stamp(kind: str, binding: str, info: os.stat_result, secret: bytes) -> Optional[str]:
    """A MAC of a sealed file's identity (inode, size, modification and change times), or
    ``None`` while the file may still change within its timestamp tick or on Windows.

    A file whose stamp (written beside it after a full check) still matches has not changed
    since: only root can set a change time back. Its contents need no second MAC, which costs
    0.5 ms per MB (a byte automaton's table is up to 16 MB)."""
    if os.name == "nt" or time.time_ns() - info.st_ctime_ns < SETTLED_SECONDS * 1e9:
        return None  # st_ctime is the creation time on Windows
    identity = f"{kind}\0{binding}\0{info.st_ino}\0{info.st_size}\0{info.st_mtime_ns}\0{info.st_ctime_ns}"
    return hmac.new(secret, identity.encode(), hashlib.sha256).hexdigest()


def unseal(handle: BinaryIO, kind: str, binding: str, secret: bytes, stamped: bool = False) -> bytes:
    """The contents after a :func:`seal` header, once its kind, binding, size and MAC check out
    (``stamped``: the file has a matching :func:`stamp`, so its MAC was checked before)."""
    line = handle.readline(len(MAGIC) + 1024)
    if not line.startswith(MAGIC) or not line.endswith(b"\n"):
        raise CacheEntryError("not a cache file of this version")
    try:
        fields = json.loads(line[len(MAGIC) :])
        stored = (fields["kind"], fields["binding"])
        size, mac = int(fields["size"]), str(fields["mac"])
    except (ValueError, KeyError, TypeError) as exc:
        raise CacheEntryError(f"unreadable header ({exc})") from None
    if stored != (kind, binding):
        raise CacheEntryError("it was made for other inputs (moved or copied here)")
    payload = handle.read()
    if size != len(payload):
        raise CacheEntryError(f"it is truncated or extended ({len(payload)} bytes, not {size})")
    if not stamped and not hmac.compare_digest(mac, _mac(kind, binding, payload, secret)):
        raise CacheEntryError("its contents are not what this cache wrote (edited, or sealed with another key)")
    return payload
