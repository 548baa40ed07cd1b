"""Fuzzing ``compile`` (issue 22, Proof): random and mutated JSON Schemas, random regexes, random
Lark grammars and choices (``tests/fuzz/cases.py``), each compiled on every back end (``auto``,
``dfa``, ``llguidance``) with SmolLM2's tokenizer, must end in a matcher (whose first masks and a
short random walk work) or in a named :class:`~pse_processors.PSEError`, within a time and a memory
bound: never a raw Python exception, a hang or a crash.

Each case runs in a worker process (``tests/fuzz/worker.py``) under ``RLIMIT_AS``; a case that
takes longer than the time bound kills the worker (a fresh one takes the next case).

Environment: ``PSE_FUZZ_CASES`` (inputs, default 150, each on three back ends: 450 compiles,
about a minute on a busy 2-core CPU), ``PSE_FUZZ_SEED`` (default 22), ``PSE_FUZZ_TIMEOUT`` (seconds
per input, default 60), ``PSE_FUZZ_MEMORY_GB`` (the worker's address space, default 6),
``PSE_FUZZ_REPORT`` (a file that gets every failure). A longer run, as done before a release::

    PSE_FUZZ_CASES=5000 nice -n 19 python -m pytest tests/fuzz -q
"""

from __future__ import annotations

import collections
import json
import os
import pickle
import queue
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import pytest

from tests.fuzz.cases import KINDS, make_case

ROOT = Path(__file__).resolve().parents[2]
CASES = int(os.environ.get("PSE_FUZZ_CASES", "150"))
SEED = int(os.environ.get("PSE_FUZZ_SEED", "22"))
TIMEOUT = float(os.environ.get("PSE_FUZZ_TIMEOUT", "60"))
MEMORY = int(float(os.environ.get("PSE_FUZZ_MEMORY_GB", "6")) * 2**30)
STARTUP_TIMEOUT = 300.0


class Worker:
    """One worker process; answers are read with a deadline so that a hang is seen as one."""

    def __init__(self, vocabulary: Path) -> None:
        env = dict(os.environ, OMP_NUM_THREADS="1", OPENBLAS_NUM_THREADS="1", MKL_NUM_THREADS="1",
                   RAYON_NUM_THREADS="1", TOKENIZERS_PARALLELISM="false")
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH", "")]))
        self.log = tempfile.TemporaryFile(mode="w+")  # not a pipe: a chatty worker must not block on it
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "tests.fuzz.worker", str(SEED), str(MEMORY), str(vocabulary)], cwd=ROOT, env=env,
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=self.log, text=True, bufsize=1,
        )
        # Lines are read on a thread: select() on a buffered pipe misses lines already buffered.
        self.lines: queue.Queue = queue.Queue()
        threading.Thread(target=self._read, daemon=True).start()
        ready = self._line(STARTUP_TIMEOUT)
        if ready is None or not ready.get("ready"):
            raise RuntimeError(f"the fuzz worker did not start: {self.stderr()}")

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self.lines.put(json.loads(line))
        self.lines.put({"eof": True})

    def _line(self, timeout: float):
        try:
            return self.lines.get(timeout=max(timeout, 0.001))
        except queue.Empty:
            return None

    def run(self, index: int) -> tuple[list, str]:
        """The results of case ``index`` and ``""``, or what is missing and ``"hang"``/``"crash"``."""
        assert self.proc.stdin is not None
        self.proc.stdin.write(f"{index}\n")
        self.proc.stdin.flush()
        results, deadline = [], time.monotonic() + TIMEOUT
        while True:
            line = self._line(deadline - time.monotonic())
            if line is None:
                return results, "hang"
            if line.get("eof"):
                return results, "crash"
            if "done" in line:
                return results, ""
            results.append(line)

    def stderr(self) -> str:
        self.close()
        self.log.seek(0)
        return self.log.read()[-2000:]

    def close(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait()


def test_compile_ends_in_a_matcher_or_a_named_error(smol_tokenizer, tmp_path):
    import pse_processors as pse

    vocabulary = tmp_path / "vocabulary.pickle"
    vocabulary.write_bytes(pickle.dumps(pse.Vocabulary.from_tokenizer(smol_tokenizer)))
    failures, outcomes, kinds = [], collections.Counter(), collections.Counter()
    start = time.monotonic()
    worker = Worker(vocabulary)
    try:
        for index in range(CASES):
            case = make_case(SEED, index)
            kinds[case.kind] += 1
            results, trouble = worker.run(index)
            for result in results:
                outcomes[result["outcome"]] += 1
                if result["outcome"] == "raw":
                    failures.append(f"{case.describe()}\n  backend={result['backend']}: {result['detail']}")
            if trouble:
                done = [r["backend"] for r in results]
                failures.append(f"{case.describe()}\n  {trouble} after {done} (bound: {TIMEOUT} s, "
                                f"{MEMORY / 2**30:.1f} GiB): {worker.stderr()}")
                outcomes[trouble] += 1
                worker = Worker(vocabulary)
    finally:
        worker.close()
        summary = (f"{sum(kinds.values())} of {CASES} inputs x 3 back ends in {time.monotonic() - start:.0f} s: "
                   f"{dict(outcomes)}; kinds {dict(kinds)}")
        print(summary)
        if os.environ.get("PSE_FUZZ_REPORT"):  # every failure, for long local runs
            Path(os.environ["PSE_FUZZ_REPORT"]).write_text(summary + "\n\n" + "\n\n".join(failures), encoding="utf-8")
    assert not failures, f"{len(failures)} failures ({summary}):\n\n" + "\n\n".join(failures[:20])
    # The test can fail only if the inputs reach both ends: some compile, some are refused by name.
    assert outcomes["matcher"] > 0 and outcomes["named"] > 0, summary
    assert set(kinds) == set(KINDS) or CASES < 50, summary


@pytest.mark.parametrize("index", [0])
def test_cases_are_deterministic(index):
    assert make_case(SEED, index).describe() == make_case(SEED, index).describe()
