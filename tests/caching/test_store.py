"""The disk store's files: private modes whatever the umask, sealed entries, and no temporary file
left behind, whether a write fails midway, the folder cannot be written, or the writer is killed
or exits while a background build writes."""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import sys
import textwrap
import time

import pytest

from pse_processors.caching import store as store_module
from pse_processors.caching.store import DiskStore, entry_binding, sweep_temporary_files, write_atomically
from tests.helpers import ROOT


def temporary_files(root) -> list:
    return sorted(str(path.relative_to(root)) for path in root.rglob("*.tmp"))


def entry(root, name: str = "x"):
    return DiskStore(root).entry("grammars", entry_binding("grammars", name), ".npz")


def test_folders_and_files_are_private_whatever_the_umask(tmp_path):
    previous = os.umask(0)
    try:
        target = entry(tmp_path / "a" / "cache")
        assert target.save(lambda handle: handle.write(b"data"), "test")
    finally:
        os.umask(previous)
    root = tmp_path / "a" / "cache"
    modes = {path.name: path.stat().st_mode & 0o777 for path in (root, root / "grammars", target.path, root / "compile-cache.key")}
    assert modes == {"cache": 0o700, "grammars": 0o700, target.path.name: 0o600, "compile-cache.key": 0o600}
    assert target.load("test") == b"data"


def test_a_write_that_fails_midway_leaves_no_temporary_file(tmp_path, monkeypatch, caplog):
    def fails_midway(handle):
        handle.write(b"half a file")
        raise OSError(28, "No space left on device")

    path = tmp_path / "grammars" / "x.npz"
    with caplog.at_level(logging.WARNING, logger="pse_processors.caching.store"):
        assert write_atomically(path, fails_midway, "grammar") is False
        assert entry(tmp_path).save(fails_midway, "grammar") is False
    assert "No space left on device" in caplog.text
    assert not path.exists() and temporary_files(tmp_path) == []

    def raises_a_bug(handle):
        handle.write(b"half")
        raise ValueError("a bug in a save function")

    assert write_atomically(path, raises_a_bug, "grammar") is False  # a cache write never fails compile
    with pytest.raises(KeyboardInterrupt):  # but an interrupt goes through, after the cleanup
        write_atomically(path, lambda handle: (handle.write(b"half"), (_ for _ in ()).throw(KeyboardInterrupt())), "grammar")
    assert temporary_files(tmp_path) == []

    def no_rename(*args):
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr(store_module.os, "replace", no_rename)  # the rename step fails, the file was written
    assert write_atomically(path, lambda handle: handle.write(b"data"), "grammar") is False
    assert not path.exists() and temporary_files(tmp_path) == []


def test_a_read_only_folder_leaves_no_temporary_file(tmp_path, monkeypatch, caplog):
    folder = tmp_path / "grammars"
    folder.mkdir()
    folder.chmod(0o500)
    if os.geteuid() == 0:  # root writes into read-only folders: fail as a read-only file system would
        def read_only(*args, **kwargs):
            raise OSError(30, "Read-only file system")

        monkeypatch.setattr(store_module.tempfile, "mkstemp", read_only)
    try:
        with caplog.at_level(logging.WARNING):
            assert write_atomically(folder / "x.npz", lambda handle: handle.write(b"data"), "grammar") is False
        assert "could not write the grammar cache file" in caplog.text
    finally:
        folder.chmod(0o700)
    assert list(folder.iterdir()) == []


def run_child(code: str, root, **kwargs) -> subprocess.Popen:
    env = dict(os.environ, PYTHONPATH=str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", ""))
    return subprocess.Popen([sys.executable, "-c", textwrap.dedent(code), str(root)], env=env, **kwargs)


def test_a_killed_writer_leaves_a_temporary_file_that_the_next_writer_removes(tmp_path):
    child = run_child("""
        import sys, time
        from pathlib import Path
        from pse_processors.caching.store import write_atomically

        def slow(handle):  # a large table being written (a sidecar goes straight to its file)
            handle.write(b"half a file")
            handle.flush()
            time.sleep(60)

        write_atomically(Path(sys.argv[1]) / "grammars" / "x.npy", slow, "grammar table")
    """, tmp_path)
    try:
        deadline = time.monotonic() + 60
        while not temporary_files(tmp_path) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert temporary_files(tmp_path), "the child never started writing"
    finally:
        child.send_signal(signal.SIGKILL)
        child.wait()
    left = temporary_files(tmp_path)
    assert len(left) == 1 and left[0].startswith("grammars/")
    # An older version's temporary file (no pid in its name), over an hour old, goes too; a fresh one stays.
    old, fresh = tmp_path / "grammars" / "tmpab12cd.tmp", tmp_path / "grammars" / "tmpef34gh.tmp"
    old.write_bytes(b"")
    fresh.write_bytes(b"")
    os.utime(old, (time.time() - 7200, time.time() - 7200))
    store_module.reset()  # a new process: its first write sweeps
    assert entry(tmp_path, "y").save(lambda handle: handle.write(b"data"), "grammar")
    assert temporary_files(tmp_path) == ["grammars/tmpef34gh.tmp"]
    assert sweep_temporary_files(tmp_path) == 0


@pytest.mark.skipif(not hasattr(os, "fork"), reason="no fork")
def test_a_forked_child_does_not_wait_for_its_parents_writes(tmp_path):
    """A child forked while another thread writes (a DataLoader worker) exits at once: the write is
    not under way in the child."""
    child = run_child("""
        import os, sys, threading, time
        from pathlib import Path
        from pse_processors.caching.store import write_atomically

        started = threading.Event()

        def slow(handle):
            started.set()
            time.sleep(30)

        threading.Thread(target=write_atomically, args=(Path(sys.argv[1]) / "x.npy", slow, "test"), daemon=True).start()
        started.wait()
        begin = time.monotonic()
        pid = os.fork()
        if pid == 0:
            sys.exit(0)  # runs the exit hooks
        os.waitpid(pid, 0)
        print(time.monotonic() - begin)
        os._exit(0)
    """, tmp_path, stdout=subprocess.PIPE, text=True)
    out, _ = child.communicate(timeout=120)
    assert float(out) < 5  # not the 10 s the exit hook waits for writes under way


def test_exit_waits_for_a_background_write_under_way(tmp_path):
    """A daemon thread (the hand-off's builder) writing when the interpreter exits finishes its file."""
    child = run_child("""
        import sys, threading, time
        from pathlib import Path
        from pse_processors.caching.store import DiskStore, entry_binding

        started = threading.Event()

        def slow(handle):
            started.set()
            time.sleep(1.0)
            handle.write(b"the whole file")

        store = DiskStore(Path(sys.argv[1]))
        write = lambda: store.entry("grammars", entry_binding("grammars", "x"), ".npz").save(slow, "grammar")
        threading.Thread(target=write, daemon=True).start()
        started.wait()
    """, tmp_path)
    assert child.wait(timeout=120) == 0
    assert temporary_files(tmp_path) == []
    store_module.reset()
    assert entry(tmp_path).load("grammar") == b"the whole file"
