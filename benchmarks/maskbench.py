"""MaskBench: compile real schemas and check every test instance token by token, through the matcher API.

    python -m benchmarks.maskbench ../shared/data/maskbench-dev [--tokenizer llama3_1] [--json]
    python -m benchmarks.maskbench DIR --engines pse,outlines-core,llguidance,xgrammar,lm-format-enforcer --stride 5
    python -m benchmarks.maskbench DIR --pse-engine dfa|grammar|auto   # pse's back end (default auto)
    python -m benchmarks.maskbench DIR --pse-option property_order=any   # a compile option of pse's
    python -m benchmarks.maskbench DIR --engines pse,pse-lark,llguidance  # pse-lark: without llguidance's JSON front end

The protocol (``../shared/data/README.md``): compile the schema; for each test, serialize
``data`` with ``json.dumps(data, indent=None, ensure_ascii=False)``, tokenize it without
special tokens and feed the tokens one by one, checking each against the current mask; at the
end EOS must be allowed. A valid instance must get through, an invalid one must be stopped.
Each schema is scored as one of: passing, compile_error (refused), validation_error (a valid
instance rejected), invalidation_error (an invalid instance accepted), timeout, crash.

Every schema runs in a worker process with a time limit (``--timeout``, covering compile and
tests) and a memory limit (``--memory-gb``), so a hang or an abort is counted, not fatal.
Caches are off: TTFM (time to first mask: compile plus the first mask) is always cold; the
vocabulary and its token trie are built once per worker, before any timing. The per-token
mask time is the time to produce the packed bitmask in each later state.

Peers (``outlines-core``: its own ``build_regex_from_schema`` + ``Index``; ``llguidance``;
``xgrammar``; ``lm-format-enforcer``: ``TokenEnforcer`` + ``JsonSchemaParser``) run the same protocol in the same run, with the same byte-exact vocabulary where
the library takes one. When a peer is not importable, the script re-runs itself with the bench
venv (``bash scripts/setup_bench_env.sh``). Run it from the repository root (``python -m``: it is
a module of the ``benchmarks`` package).
"""

from __future__ import annotations

import argparse
import json
import logging
import multiprocessing as mp
import os
import resource
import sys
import time
import traceback
from pathlib import Path
from typing import Any, Optional

try:
    from ._common import command_line, load_tokenizer, percentiles, rerun_in_bench_env, save_json
except ImportError:  # run as a file: no package, so no relative import
    raise SystemExit("run it from the repository root as a module: python -m benchmarks.maskbench ...") from None

logger = logging.getLogger("maskbench")

ENGINES = ("pse", "pse-lark", "outlines-core", "llguidance", "xgrammar", "lm-format-enforcer")
PEER_MODULES = {
    "outlines-core": "outlines_core", "llguidance": "llguidance", "xgrammar": "xgrammar", "lm-format-enforcer": "lmformatenforcer",
}
STATUSES = ("passing", "compile_error", "validation_error", "invalidation_error", "timeout", "crash")


# ---------------------------------------------------------------- engines (run in the worker)


class Engine:
    """Compile a schema; then a matcher with ``bitmask() -> allowed(token) -> bool``, ``consume``, ``eos_allowed``."""

    def __init__(self, tokenizer: Any) -> None:
        self.tokenizer = tokenizer

    def compile(self, schema: Any) -> Any:
        raise NotImplementedError

    def matcher(self, compiled: Any) -> Any:
        raise NotImplementedError

    def backend_of(self, compiled: Any) -> Optional[str]:
        """pse's back end for a compiled schema ("dfa" or "grammar"); peers have none."""
        return None


class PseEngine(Engine):
    def __init__(self, tokenizer: Any) -> None:
        super().__init__(tokenizer)
        import pse_processors as pse

        self.pse = pse
        self.vocabulary = pse.Vocabulary.from_tokenizer(tokenizer)
        self.options: dict = {"additional_properties": "spec"} if _takes_ap(self.pse) else {}
        self.options.update(json.loads(os.environ.get("PSE_MASKBENCH_OPTIONS", "{}")))  # --pse-option NAME=VALUE
        engine = os.environ.get("PSE_MASKBENCH_ENGINE")  # --pse-engine: auto (default), dfa or grammar
        if engine and hasattr(self.pse, "CompileOptions"):  # 0.2: backend=, "grammar" is "llguidance"
            self.options["backend"] = {"grammar": "llguidance"}.get(engine, engine)
        elif engine:  # 0.1: engine=
            self.options["engine"] = engine
        self.pse.compile({"type": "integer"}, self.vocabulary)  # builds the token trie outside the timings
        if engine != "dfa" and hasattr(self.pse, "Grammar"):  # and llguidance's tokenizer (built once per vocabulary)
            self.pse.compile(self.pse.Grammar('start: "a"'), self.vocabulary)
        self.eos = sorted(self.vocabulary.eos_token_ids)

    def compile(self, schema: Any) -> Any:
        self.pse.clear_memory_cache()
        return self.pse.compile(schema, self.vocabulary, **self.options)

    def matcher(self, compiled: Any) -> "PseMatcher":
        return PseMatcher(compiled, self.eos)

    def backend_of(self, compiled: Any) -> Optional[str]:
        backend = compiled.backend if hasattr(type(compiled), "backend") else compiled.engine  # 0.1: .engine
        return {"llguidance": "grammar"}.get(backend, backend)  # the reports' name for it

    def front_end_of(self, compiled: Any) -> Optional[bool]:
        """Whether llguidance's own JSON Schema front end runs the schema (``compiler/llg_json.py``)."""
        try:
            from pse_processors.compiler import llg_json
        except ImportError:  # a revision before it
            return None
        grammar = getattr(compiled, "pushdown", compiled)  # a hand-off starts on llguidance
        return llg_json.is_wrapped(getattr(grammar, "lark", None) or "")

    def quiesce(self) -> None:
        """--pse-quiet, between schemas and outside every timing: wait for auto's background
        automaton builds, so that they do not run into the next schema's (or engine's) timings."""
        try:
            from pse_processors.matchers.handoff import wait_for_builds
        except ImportError:  # a revision without the hand-off
            return
        wait_for_builds(120)

    def settle(self) -> None:
        """--pse-settle: wait for engine='auto''s background automaton build (handoff.py), so
        that the mask times are the automaton's rather than the grammar engine's warm start."""
        if os.environ.get("PSE_MASKBENCH_SETTLE"):
            from pse_processors.matchers.handoff import wait_for_builds

            wait_for_builds(60)


class PseLarkEngine(PseEngine):
    """Ours with every schema through our own compiler's Lark (llguidance's JSON Schema front end
    off): today's path, to compare verdicts on the schemas the front end takes."""

    def __init__(self, tokenizer: Any) -> None:
        try:
            from pse_processors.compiler import llg_json

            llg_json.wrapped = lambda schema, options: None  # this worker process only
        except ImportError:
            pass
        super().__init__(tokenizer)


def _takes_ap(pse: Any) -> bool:
    import inspect

    options = getattr(pse, "CompileOptions", None)  # 0.2: the options are CompileOptions fields
    if options is not None:
        return "additional_properties" in inspect.signature(options).parameters
    return "additional_properties" in inspect.signature(pse.compile).parameters


class PseMatcher:
    def __init__(self, grammar: Any, eos: list) -> None:
        self.grammar, self.eos, self.state = grammar, eos, grammar.initial_state

    def bitmask(self) -> Any:
        return self.grammar.bitmask(self.state)

    def consume(self, token: int) -> bool:
        nxt = self.grammar.advance(self.state, token)
        if nxt is None:
            return False
        self.state = nxt
        return True


class OutlinesCoreEngine(Engine):
    def __init__(self, tokenizer: Any) -> None:
        super().__init__(tokenizer)
        import pse_processors as pse
        from outlines_core import Vocabulary as OCVocabulary

        vocabulary = pse.Vocabulary.from_tokenizer(tokenizer)
        self.eos = sorted(vocabulary.eos_token_ids)
        by_bytes: dict = {}
        for i, b in enumerate(vocabulary.token_bytes):
            if b is not None:
                by_bytes.setdefault(b, []).append(i)
        self.ocv = OCVocabulary(self.eos[0], by_bytes)
        self.size = vocabulary.size

    def compile(self, schema: Any) -> Any:
        from outlines_core import Index
        from outlines_core.json_schema import build_regex_from_schema

        return Index(build_regex_from_schema(json.dumps(schema)), self.ocv)

    def matcher(self, compiled: Any) -> "OutlinesMatcher":
        return OutlinesMatcher(compiled, self.size, self.eos)


class OutlinesMatcher:
    def __init__(self, index: Any, size: int, eos: list) -> None:
        import numpy as np

        self.np, self.index, self.size, self.eos = np, index, size, eos
        self.state = index.get_initial_state()

    def bitmask(self) -> Any:
        mask = self.np.zeros(self.size, dtype=bool)
        allowed = self.np.array(self.index.get_allowed_tokens(self.state), dtype=self.np.int64)
        mask[allowed[allowed < self.size]] = True
        if self.index.is_final_state(self.state):
            mask[self.eos] = True
        return self.np.packbits(mask, bitorder="little").view(self.np.int32)

    def consume(self, token: int) -> bool:
        nxt = self.index.get_next_state(self.state, token)
        if nxt is None:
            return False
        self.state = nxt
        return True


class LlguidanceEngine(Engine):
    def __init__(self, tokenizer: Any) -> None:
        super().__init__(tokenizer)
        import llguidance
        import llguidance.hf
        import llguidance.numpy

        self.llg = llguidance
        self.lltok = llguidance.hf.from_tokenizer(tokenizer)
        self.eos = [self.lltok.eos_token]

    def compile(self, schema: Any) -> Any:
        grammar = self.llg.LLMatcher.grammar_from_json_schema(json.dumps(schema))
        matcher = self.llg.LLMatcher(self.lltok, grammar)
        if matcher.is_error():
            raise ValueError(matcher.get_error())
        return matcher

    def matcher(self, compiled: Any) -> "LlgMatcher":
        compiled.reset()
        return LlgMatcher(self.llg, compiled, self.lltok.vocab_size)


class LlgMatcher:
    def __init__(self, llg: Any, matcher: Any, size: int) -> None:
        import llguidance.numpy as lnp

        self.lnp, self.matcher = lnp, matcher
        self.mask = lnp.allocate_token_bitmask(1, size)

    def bitmask(self) -> Any:
        self.lnp.fill_next_token_bitmask(self.matcher, self.mask, 0)
        return self.mask[0]

    def consume(self, token: int) -> bool:
        return bool(self.matcher.consume_token(token)) and not self.matcher.is_error()


class XgrammarEngine(Engine):
    def __init__(self, tokenizer: Any) -> None:
        super().__init__(tokenizer)
        import xgrammar as xgr

        self.xgr = xgr
        self.info = xgr.TokenizerInfo.from_huggingface(tokenizer)
        self.eos = list(self.info.stop_token_ids)

    def compile(self, schema: Any) -> Any:
        compiler = self.xgr.GrammarCompiler(self.info, cache_enabled=False)
        return compiler.compile_json_schema(json.dumps(schema))

    def matcher(self, compiled: Any) -> "XgrMatcher":
        return XgrMatcher(self.xgr, compiled, self.info.vocab_size)


class XgrMatcher:
    def __init__(self, xgr: Any, compiled: Any, size: int) -> None:
        self.matcher = xgr.GrammarMatcher(compiled)
        self.mask = xgr.allocate_token_bitmask(1, size)

    def bitmask(self) -> Any:
        self.matcher.fill_next_token_bitmask(self.mask)
        return self.mask[0].numpy()

    def consume(self, token: int) -> bool:
        return bool(self.matcher.accept_token(token))


class LmFormatEnforcerEngine(Engine):
    """lm-format-enforcer's ``TokenEnforcer`` with its ``JsonSchemaParser``, masks as packed bitmasks
    (its ``use_bitmask`` option). Its state is the token sequence, like ours; the first sequence it
    sees is the prompt (one BOS token here)."""

    def __init__(self, tokenizer: Any) -> None:
        super().__init__(tokenizer)
        from .lmfe_tokenizer import lmfe_tokenizer_data

        self.eos = [tokenizer.eos_token_id]
        self.data = lmfe_tokenizer_data(tokenizer, len(tokenizer), use_bitmask=True)
        bos = tokenizer.bos_token_id
        self.prompt = [bos if bos is not None else tokenizer.eos_token_id]

    def compile(self, schema: Any) -> Any:
        from lmformatenforcer import JsonSchemaParser, TokenEnforcer

        return TokenEnforcer(self.data, JsonSchemaParser(schema))

    def matcher(self, compiled: Any) -> "LmfeMatcher":
        return LmfeMatcher(compiled, self.prompt)


class LmfeMatcher:
    def __init__(self, enforcer: Any, prompt: list) -> None:
        self.enforcer, self.tokens = enforcer, list(prompt)

    def bitmask(self) -> Any:
        return self.enforcer.get_allowed_tokens(self.tokens).allowed_tokens.numpy()

    def consume(self, token: int) -> bool:
        self.tokens.append(token)  # it has no rejection of its own: the protocol checks the mask first
        return True


ENGINE_CLASSES = {
    "pse": PseEngine, "pse-lark": PseLarkEngine, "outlines-core": OutlinesCoreEngine, "llguidance": LlguidanceEngine, "xgrammar": XgrammarEngine,
    "lm-format-enforcer": LmFormatEnforcerEngine,
}


def _bit(mask: Any, token: int) -> bool:
    return bool((int(mask[token >> 5]) >> (token & 31)) & 1)


def run_schema(engine: Engine, path: str) -> dict:
    """Score one MaskBench file with ``engine``; runs in the worker."""
    item = json.loads(Path(path).read_text())
    start, start_cpu = time.perf_counter(), time.thread_time()
    try:
        compiled = engine.compile(item["schema"])
        first = engine.matcher(compiled)
        first.bitmask()
    except Exception as exc:  # noqa: BLE001 - a refusal is a result
        return {"status": "compile_error", "error": f"{type(exc).__name__}: {str(exc)[:300]}"}
    ttfm = time.perf_counter() - start
    # The calling thread's CPU time (llguidance builds on it too): on a busy machine the wall
    # time also holds the waits for a core, a few ms each time the worker is preempted.
    ttfm_cpu = time.thread_time() - start_cpu
    getattr(engine, "settle", lambda: None)()
    mask_times: list[float] = []
    status = "passing"
    detail = ""
    for test in item["tests"]:
        text = json.dumps(test["data"], indent=None, ensure_ascii=False)
        tokens = engine.tokenizer.encode(text, add_special_tokens=False)
        matcher = engine.matcher(compiled)
        accepted = True
        for i, token in enumerate(tokens):
            t0 = time.perf_counter()
            mask = matcher.bitmask()
            mask_times.append(time.perf_counter() - t0)
            if not _bit(mask, token) or not matcher.consume(token):
                accepted = False
                where = i
                break
        if accepted:
            mask = matcher.bitmask()
            accepted = any(_bit(mask, e) for e in engine.eos)
            where = len(tokens)
        if test["valid"] and not accepted:
            status, detail = "validation_error", f"{test['description']}: rejected at token {where} of {text[:200]!r}"
            break
        if not test["valid"] and accepted and status == "passing":
            status, detail = "invalidation_error", f"{test['description']}: accepted {text[:200]!r}"
    front_end = getattr(engine, "front_end_of", lambda _: None)(compiled)
    return {"status": status, "ttfm_s": ttfm, "ttfm_cpu_s": ttfm_cpu, "mask_s": mask_times, "error": detail, "engine": engine.backend_of(compiled),
            "front_end": front_end}


def _worker(conn: Any, engine_name: str, tokenizer_name: str, memory_gb: float) -> None:
    os.environ["PSE_PROCESSORS_CACHE_DIR"] = "off"
    logging.basicConfig(level=logging.WARNING)
    engine = ENGINE_CLASSES[engine_name](load_tokenizer(tokenizer_name))
    if memory_gb > 0:  # on top of what the libraries already mapped
        with open("/proc/self/statm") as handle:
            mapped = int(handle.read().split()[0]) * resource.getpagesize()
        limit = mapped + int(memory_gb * (1 << 30))
        resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
    conn.send("ready")
    while True:
        path = conn.recv()
        if path is None:
            return
        if path == "quiesce":
            getattr(engine, "quiesce", lambda: None)()
            conn.send("quiet")
            continue
        try:
            result = run_schema(engine, path)
        except MemoryError:
            result = {"status": "crash", "error": "MemoryError"}
        except Exception as exc:  # noqa: BLE001 - the harness must not die
            result = {"status": "crash", "error": f"{type(exc).__name__}: {exc}\n{traceback.format_exc()[-600:]}"}
        conn.send(result)


class Worker:
    def __init__(self, engine: str, tokenizer: str, memory_gb: float) -> None:
        self.args = (engine, tokenizer, memory_gb)
        self.process: Optional[Any] = None

    def start(self) -> None:
        ctx = mp.get_context("spawn")
        self.conn, child = ctx.Pipe()
        self.process = ctx.Process(target=_worker, args=(child, *self.args), daemon=True)
        self.process.start()
        child.close()  # so that a dead worker reads as EOF
        try:
            ready = self.conn.poll(600) and self.conn.recv() == "ready"
        except EOFError:
            ready = False
        if not ready:
            raise RuntimeError(f"the {self.args[0]} worker did not start (exit code {self.process.exitcode})")

    def run(self, path: str, timeout: float) -> dict:
        if self.process is None or not self.process.is_alive():
            self.start()
        self.conn.send(path)
        try:
            if self.conn.poll(timeout):
                return self.conn.recv()
            self.stop()
            return {"status": "timeout", "error": f"over {timeout:g}s"}
        except (EOFError, ConnectionError, OSError):
            code = self.process.exitcode if self.process is not None else None
            self.stop()
            return {"status": "crash", "error": f"worker died (exit code {code})"}

    def quiesce(self, limit: float = 180.0) -> None:
        """Let the worker finish its background work (untimed); a worker that does not is restarted."""
        if self.process is None or not self.process.is_alive():
            return
        self.conn.send("quiesce")
        try:
            if self.conn.poll(limit) and self.conn.recv() == "quiet":
                return
        except (EOFError, ConnectionError, OSError):
            pass
        self.stop()

    def stop(self) -> None:
        if self.process is not None:
            self.process.kill()
            self.process.join()
            self.process = None


def summarize(results: dict) -> dict:
    counts = {status: 0 for status in STATUSES}
    ttfm, ttfm_cpu, masks = [], [], []
    for result in results.values():
        counts[result["status"]] += 1
        if "ttfm_s" in result:
            ttfm.append(result["ttfm_s"])
            ttfm_cpu.extend([result["ttfm_cpu_s"]] if "ttfm_cpu_s" in result else [])
            masks.extend(result.get("mask_s", []))
    return {"schemas": len(results), **counts, "ttfm_us": percentiles(ttfm), "ttfm_cpu_us": percentiles(ttfm_cpu),
            "mask_us": percentiles(masks)}


def add_backend_splits(summaries: dict, all_results: dict) -> None:
    """Per pse back end ("dfa", "grammar"): pse's latencies on the schemas it ran there, and
    every peer's on the same schemas (``by_pse_backend``); issue 14's mask target is on the
    grammar engine's schemas."""
    pse = all_results.get("pse")
    if pse is None:
        return
    for backend in ("dfa", "grammar"):
        names = {path for path, r in pse.items() if r.get("engine") == backend}
        for engine, results in all_results.items():
            subset = {path: results[path] for path in names if path in results}
            summaries[engine].setdefault("by_pse_backend", {})[backend] = summarize(subset)


def add_front_end_split(summaries: dict, all_results: dict) -> None:
    """On the schemas ``pse`` ran through llguidance's JSON Schema front end: every engine's
    summary there (``by_front_end``) and, beside ``pse-lark`` (today's path), the schemas whose
    verdicts differ (issue 25: there must be none)."""
    pse = all_results.get("pse")
    if pse is None:
        return
    names = {path for path, r in pse.items() if r.get("front_end")}
    for engine, results in all_results.items():
        summaries[engine]["by_front_end"] = summarize({path: results[path] for path in names if path in results})
    lark = all_results.get("pse-lark")
    if lark is not None:
        differ = sorted(Path(p).name for p in names if p in lark and lark[p]["status"] != pse[p]["status"])
        summaries["pse"]["front_end_vs_lark"] = {"schemas": len(names), "verdicts_differ": differ}


def main(argv: Optional[list] = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.maskbench",
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("data", type=Path, help="a MaskBench folder of .json files")
    parser.add_argument("--tokenizer", default="llama3_1", help="llama3_1 (default), smollm2, a fetched name, or a path")
    parser.add_argument("--engines", default="pse", help=f"comma-separated, from {', '.join(ENGINES)}; or 'all'")
    parser.add_argument("--timeout", type=float, default=60.0, help="seconds per schema (compile and tests)")
    parser.add_argument("--memory-gb", type=float, default=8.0, help="address-space limit of a worker")
    parser.add_argument("--stride", type=int, default=1, help="take every N-th schema (sorted by name)")
    parser.add_argument("--limit", type=int, default=0, help="at most this many schemas")
    parser.add_argument("--json", action="store_true", help="print one JSON object (per engine when several)")
    parser.add_argument("--details", type=Path, help="write per-schema results (JSON lines) here")
    parser.add_argument("--save", type=Path, help="also write the summaries, with the command and date, to this JSON file "
                        "(e.g. benchmarks/results/maskbench.json, read by notebooks/benchmarks.ipynb)")
    parser.add_argument("--interleave", action="store_true",
                        help="run every engine on each schema in turn (workers side by side) instead of one engine "
                             "after another: on a busy machine the load then weighs on every engine alike")
    parser.add_argument("--pse-quiet", action="store_true",
                        help="after each schema, outside the timings, wait for pse's background automaton builds: a "
                             "build then never runs into the next schema's timings (one compile at a time)")
    parser.add_argument("--pse-engine", choices=["auto", "dfa", "grammar"], help="pse's back end (default: auto)")
    parser.add_argument("--pse-option", action="append", default=[], metavar="NAME=VALUE",
                        help="a compile option of pse's, e.g. property_order=any (repeatable)")
    parser.add_argument("--pse-settle", action="store_true",
                        help="after pse's first mask, wait for auto's background automaton build before the "
                             "per-token masks (they are then the automaton's, not the warm start's)")
    args = parser.parse_args(argv)
    if args.pse_option:
        os.environ["PSE_MASKBENCH_OPTIONS"] = json.dumps(dict(o.split("=", 1) for o in args.pse_option))  # read by the workers
    if args.pse_engine:
        os.environ["PSE_MASKBENCH_ENGINE"] = args.pse_engine  # read by the workers
    if args.pse_settle:
        os.environ["PSE_MASKBENCH_SETTLE"] = "1"
    engines = list(ENGINES) if args.engines == "all" else [e.strip() for e in args.engines.split(",") if e.strip()]
    unknown = [e for e in engines if e not in ENGINES]
    if unknown:
        parser.error(f"unknown engines {unknown}")
    import importlib.util

    rerun_in_bench_env("maskbench", [e for e in engines if e in PEER_MODULES and importlib.util.find_spec(PEER_MODULES[e]) is None])
    logging.basicConfig(level=logging.INFO, format="%(name)s: %(message)s", stream=sys.stderr)
    files = sorted(str(p) for p in args.data.glob("*.json"))[:: args.stride]
    if args.limit:
        files = files[: args.limit]
    if not files:
        raise SystemExit(f"no .json files in {args.data}")
    summaries: dict = {}
    all_results: dict = {}
    details = open(args.details, "w") if args.details else None
    # One engine after another, or (--interleave) every engine on each schema in turn, so that a
    # busy machine's load changes weigh on every engine alike (the workers stay up side by side).
    rounds = [[(engine, files)] for engine in engines] if not args.interleave else [[(e, [p]) for e in engines] for p in files]
    workers: dict = {}
    seconds = {engine: 0.0 for engine in engines}
    for round_ in rounds:
        for engine, paths in round_:
            worker = workers.get(engine) or workers.setdefault(engine, Worker(engine, args.tokenizer, args.memory_gb))
            results = all_results.setdefault(engine, {})
            began = time.perf_counter()
            for path in paths:
                result = worker.run(path, args.timeout)
                results[path] = result
                if args.pse_quiet:
                    worker.quiesce()
                if details is not None:
                    details.write(json.dumps({"engine": engine, "schema": Path(path).name, "status": result["status"],
                                              "ttfm_s": result.get("ttfm_s"), "ttfm_cpu_s": result.get("ttfm_cpu_s"),
                                              "backend": result.get("engine"),
                                              "front_end": result.get("front_end"),
                                              "error": result.get("error", "")}) + "\n")
                    details.flush()
                if len(results) % 50 == 0:
                    logger.info("%s: %d/%d schemas, %.0fs", engine, len(results), len(files), seconds[engine])
            seconds[engine] += time.perf_counter() - began
            if not args.interleave:
                worker.stop()
    for engine, worker in workers.items():
        worker.stop()
        summaries[engine] = summarize(all_results[engine])
        summaries[engine]["seconds"] = round(seconds[engine], 1)
    add_backend_splits(summaries, all_results)
    add_front_end_split(summaries, all_results)
    if details is not None:
        details.close()
    if args.save:
        save_json(args.save, {
            "source": "written by python -m benchmarks.maskbench --save",
            "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
            "command": command_line("maskbench"),
            "tokenizer": args.tokenizer, "stride": args.stride, "timeout_s": args.timeout, "interleave": args.interleave, "pse_quiet": args.pse_quiet,
            "units": {"ttfm_us": "microseconds", "mask_us": "microseconds"},
            "engines": summaries,
        })
    if args.json:
        print(json.dumps(summaries[engines[0]] if len(engines) == 1 else summaries))
    else:
        print_table(summaries, args)
    return 0


def print_table(summaries: dict, args: Any) -> None:
    header = ["engine", "schemas", *STATUSES, "passing %", "TTFM p50/p90/p99 (ms)", "TTFM CPU p50/p90/p99 (ms)",
              "mask p50/p90/p99 (µs)"]
    rows = []
    for engine, s in summaries.items():
        t, c, m = s["ttfm_us"], s.get("ttfm_cpu_us", {}), s["mask_us"]
        ms = "/".join("-" if t[k] is None else f"{t[k] / 1000:.1f}" for k in ("p50", "p90", "p99"))
        cpu = "/".join("-" if c.get(k) is None else f"{c[k] / 1000:.1f}" for k in ("p50", "p90", "p99"))
        us = "/".join("-" if m[k] is None else f"{m[k]:.0f}" for k in ("p50", "p90", "p99"))
        rows.append([engine, s["schemas"], *(s[k] for k in STATUSES), f"{100 * s['passing'] / s['schemas']:.1f}", ms, cpu, us])
    print(f"MaskBench on {args.data} ({args.tokenizer} tokenizer, timeout {args.timeout:g}s)")
    print("| " + " | ".join(header) + " |")
    print("|" + "---|" * len(header))
    for row in rows:
        print("| " + " | ".join(str(c) for c in row) + " |")
    if any(s.get("by_front_end", {}).get("schemas") for s in summaries.values()):
        print("\nOn the schemas pse ran through llguidance's JSON Schema front end (every engine on the same schemas):")
        print("| engine | schemas | passing | invalid accepted | TTFM p50/p90/p99 (ms) |")
        print("|---|---:|---:|---:|---|")
        for engine, s in summaries.items():
            sub = s["by_front_end"]
            t = sub["ttfm_us"]
            ms = "/".join("-" if t[k] is None else f"{t[k] / 1000:.2f}" for k in ("p50", "p90", "p99"))
            print(f"| {engine} | {sub['schemas']} | {sub['passing']} | {sub['invalidation_error']} | {ms} |")
        compared = summaries.get("pse", {}).get("front_end_vs_lark")
        if compared is not None:
            print(f"pse against pse-lark on those {compared['schemas']}: verdicts differ on {compared['verdicts_differ'] or 'none'}")
    if any("by_pse_backend" in s for s in summaries.values()):
        print("\nOn the schemas each pse back end ran (every engine on the same schemas):")
        print("| pse back end | engine | schemas | passing | TTFM p50/p90/p99 (ms) | mask p50/p90/p99 (µs) |")
        print("|---|---|---:|---:|---|---|")
        for backend in ("dfa", "grammar"):
            for engine, s in summaries.items():
                sub = s.get("by_pse_backend", {}).get(backend)
                if not sub or not sub["schemas"]:
                    continue
                t, m = sub["ttfm_us"], sub["mask_us"]
                ms = "/".join("-" if t[k] is None else f"{t[k] / 1000:.2f}" for k in ("p50", "p90", "p99"))
                us = "/".join("-" if m[k] is None else f"{m[k]:.0f}" for k in ("p50", "p90", "p99"))
                print(f"| {backend} | {engine} | {sub['schemas']} | {sub['passing']} | {ms} | {us} |")


if __name__ == "__main__":
    sys.exit(main())
