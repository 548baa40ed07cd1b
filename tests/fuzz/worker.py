"""The fuzz test's worker: compiles cases in a child process under a memory bound.

Run as ``python -m tests.fuzz.worker SEED MEMORY_BYTES VOCABULARY_PICKLE``. It sets ``RLIMIT_AS``,
loads the vocabulary the test pickled (SmolLM2's: no tokenizer library to import, so a worker
starts in a second), then reads case indices from stdin, one per line, and answers each with one
JSON line per back end (``auto``, then ``dfa``, then ``llguidance``)::

    {"index": 3, "backend": "dfa", "outcome": "matcher" | "named" | "raw", "error": ..., "detail": ...}

``matcher``: ``compile`` returned a matcher, its first masks and a short random walk worked (a
hand-off's automaton was waited for); ``named``: a :class:`~pse_processors.PSEError` was raised
(compiling, building the constraint or walking); ``raw``: any other exception (the traceback is in
``detail``): the failure the test looks for. The test process enforces the time bound by killing
this one; running out of address space shows as ``MemoryError`` or a dead worker.
"""

from __future__ import annotations

import faulthandler
import json
import os
import pickle
import random
import resource
import sys
import traceback

BACKENDS = ("auto", "dfa", "llguidance")
WALK_STEPS = 6


def _walk(matcher, rng: random.Random) -> None:
    """A few random allowed tokens from the initial state (masks are computed lazily: this is
    where a back end's lazy errors surface)."""
    state = matcher.initial_state
    eos = set(matcher.vocabulary.eos_token_ids)
    for _ in range(WALK_STEPS):
        allowed = matcher.allowed_token_ids(state)
        if allowed.size == 0:
            raise AssertionError("a reachable state allows no token (not even EOS)")
        token = int(allowed[rng.randrange(allowed.size)])
        if token in eos:
            if not matcher.is_accepting(state):
                raise AssertionError("EOS allowed in a state that does not accept")
            return
        state = matcher.advance(state, token)
        if state is None:
            raise AssertionError(f"token {token} was allowed but advance() rejects it")


def run_case(pse, tokenizer, seed: int, index: int) -> list:
    from tests.fuzz.cases import make_case

    case = make_case(seed, index)
    pse.clear_memory_cache()  # each input starts cold: auto's hand-off and the builds run every time
    results = []
    for backend in BACKENDS:
        result = {"index": index, "backend": backend, "outcome": "matcher", "error": "", "detail": ""}
        try:
            matcher = pse.compile(case.constraint(), tokenizer, backend=backend, **case.options)
            _walk(matcher, random.Random(f"{seed}:{index}:{backend}"))
            settled = matcher.settled()  # auto: the background automaton build, waited for
            if settled is not matcher:
                _walk(settled, random.Random(f"{seed}:{index}:{backend}:settled"))
        except pse.PSEError as exc:
            result.update(outcome="named", error=type(exc).__name__, detail=str(exc)[:300])
        except BaseException as exc:  # noqa: BLE001 - what the fuzz test is looking for
            result.update(outcome="raw", error=type(exc).__name__, detail=traceback.format_exc()[-3000:])
        results.append(result)
    return results


def main() -> None:
    # Set here, not at import: test_regressions.py imports this module into the pytest process,
    # where a module-level assignment turned the disk cache off for every later test.
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    os.environ["PSE_PROCESSORS_CACHE_DIR"] = os.environ.get("PSE_FUZZ_CACHE_DIR", "off")
    seed, memory, vocabulary = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3]
    resource.setrlimit(resource.RLIMIT_AS, (memory, memory))
    import pse_processors as pse

    with open(vocabulary, "rb") as handle:
        tokenizer = pickle.load(handle)  # written by the test from the embedded SmolLM2 tokenizer
    # The vocabulary's token trie is built once per process: before the first case's time bound runs.
    pse.compile(pse.Regex("warm"), tokenizer, backend="dfa")
    print(json.dumps({"ready": True}), flush=True)
    # A hang's stacks go to stderr shortly before the test kills this process for it.
    stack_dump_after = max(1.0, float(os.environ.get("PSE_FUZZ_TIMEOUT", "60")) - 3)
    for line in sys.stdin:
        faulthandler.dump_traceback_later(stack_dump_after, exit=False)
        results = run_case(pse, tokenizer, seed, int(line))
        faulthandler.cancel_dump_traceback_later()
        for result in results:
            print(json.dumps(result), flush=True)
        print(json.dumps({"done": int(line)}), flush=True)


if __name__ == "__main__":
    main()
