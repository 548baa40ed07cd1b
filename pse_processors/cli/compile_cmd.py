"""``pse-processors compile``: check that a constraint compiles for a tokenizer, report its size and
time, and warm the disk cache: it writes every file a later ``generate`` loads (the schema's regex,
the byte automaton, once built, and the token trie; ``--tables`` adds the TF/Flax dense tables),
so that a later process compiles nothing. ``cached files`` lists them.

    pse-processors compile --schema invoice.json                      # the embedded SmolLM2 tokenizer
    pse-processors compile --schema invoice.json --tokenizer llama3_1 --backend dfa --tables --json

A refused schema exits with code 2 and lists every refused keyword with its JSON pointer.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import logging
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

from ..caching.store import DiskStore, cache_dir, disk_store
from ..compiler import Compiler
from ..compiler.regexes import spec_and_size
from ..errors import UnsupportedSchemaError
from ..json_schema import SchemaOptions
from ..matchers.automaton import AutomatonMatcher
from ..matchers.llguidance import LLGuidanceMatcher
from ..vocabulary.vocabulary import Vocabulary
from .constraint_args import add_constraint_arguments, compile_options, load_constraint
from .errors import UsageError
from .progress import Progress

_COMPILER_LOGGER = "pse_processors.json_schema"
#: The report's ``engine`` field keeps the 0.1 names of the back ends.
_REPORTED_NAMES = {"llguidance": "grammar"}


def add_parser(commands: Any, parents: list) -> None:
    parser = commands.add_parser(
        "compile", parents=parents, help="compile a constraint for a tokenizer, report it, warm the disk cache",
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    add_constraint_arguments(parser)
    parser.add_argument(
        "--tokenizer", metavar="DIR|NAME", default="smollm2",
        help="a tokenizer folder, or a name of pse_processors.assets (smollm2, llama3_1, qwen3, gemma3, llama2); "
        "default: smollm2, the embedded model's",
    )
    parser.add_argument(
        "--tables", action="store_true",
        help="also build (and cache) the dense token tables that the TensorFlow/Flax processors use, "
        "and count every reachable state and distinct mask (needs the byte automaton: --backend dfa or auto)",
    )
    parser.add_argument("--json", action="store_true", help="print the report as JSON")
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    constraint = load_constraint(args)
    options = compile_options(args)
    schema_options = options.schema_options()
    progress = Progress(args.quiet)
    report: dict = {}
    start = time.perf_counter()
    with progress.task("compiling the constraint to a regex"):
        try:  # before loading a tokenizer: a refused schema fails fast, with every refusal listed
            spec, expanded = spec_and_size(constraint, schema_options, disk_store())
        except UnsupportedSchemaError as exc:
            _report_refusals(exc, constraint, schema_options)
            raise
    report["kind"] = "pydantic" if isinstance(constraint, type) else spec.kind
    report["regex_chars"] = len(spec.regex)
    report["regex_chars_expanded"] = expanded
    report["regex_seconds"] = round(time.perf_counter() - start, 4)
    dropped = _refusals(constraint, schema_options) if args.lenient else []
    if dropped:
        report["dropped_keywords"] = dropped
    with progress.task(f"loading the {args.tokenizer} tokenizer"):
        compiler = Compiler(Vocabulary.from_tokenizer(_load_tokenizer(args.tokenizer)), options)
    begin = time.perf_counter()
    # warm() also waits for backend="auto"'s automaton, so that the cache holds what a later process loads.
    with progress.task(f"compiling for the {options.backend} backend"):
        matcher, files = compiler.warm(constraint)
    report["compile_seconds"] = round(time.perf_counter() - begin, 4)
    report["engine"] = _REPORTED_NAMES.get(matcher.backend, matcher.backend)
    report["vocab_size"] = matcher.vocab_size
    if isinstance(matcher, AutomatonMatcher):
        report["automaton_states"] = matcher.num_states
    elif isinstance(matcher, LLGuidanceMatcher):  # states are created lazily: the grammar's size says more
        report["grammar_chars"] = len(matcher.lark)
        report["grammar_rules"] = sum(1 for line in matcher.lark.splitlines() if line[:1].isalpha() and ":" in line)
    if args.tables:
        if not isinstance(matcher, AutomatonMatcher):
            raise UsageError(
                "--tables builds the TensorFlow/Flax tables of the byte automaton, and this constraint runs on "
                f"{matcher.backend}: add --backend dfa"
            )
        begin = time.perf_counter()
        with progress.task("building the dense token tables"):
            matcher, files = compiler.warm(constraint, dense=True)
            tables = matcher.dense_automaton
        reachable = tables.transitions[(tables.transitions >= 0).any(axis=1)] >= 0
        report["tables_seconds"] = round(time.perf_counter() - begin, 4)
        report["reachable_states"] = int(reachable.shape[0])
        report["token_classes"] = tables.num_classes
        report["distinct_masks"] = int(np.unique(reachable, axis=0).shape[0]) if reachable.size else 0
    report["total_seconds"] = round(time.perf_counter() - start, 4)
    folder = cache_dir()
    store = DiskStore(folder) if folder is not None else None
    report["disk_cache"] = str(folder) if store is not None and store.usable else None
    if store is not None and not store.usable:
        report["disk_cache_refused"] = store.refused
    report["cached_files"] = {name: str(path) for name, path in files.items()}
    _print(report, args.json)
    return 0


def _load_tokenizer(value: str) -> Any:
    from ..assets import TOKENIZER_NAMES, load_tokenizer

    path = Path(value).expanduser()
    if path.is_dir():
        from transformers import AutoTokenizer

        return AutoTokenizer.from_pretrained(path)
    if value in TOKENIZER_NAMES:
        try:
            return load_tokenizer(value)
        except FileNotFoundError as exc:
            raise UsageError(str(exc)) from None
    raise UsageError(f"--tokenizer {value!r} is neither a folder nor one of {', '.join(TOKENIZER_NAMES)}")


class _Collect(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.refusals: list[dict] = []

    def emit(self, record: logging.LogRecord) -> None:
        if str(record.msg).startswith("lenient mode: ignoring") and len(record.args or ()) == 3:
            keyword, pointer, reason = record.args  # type: ignore[misc]
            self.refusals.append({"keyword": keyword, "pointer": pointer, "reason": str(reason).strip(" ()")})


def _refusals(constraint: Any, options: SchemaOptions) -> list[dict]:
    """Every keyword the compiler cannot enforce, from a lenient compile that drops and logs them."""
    compiler_logger = logging.getLogger(_COMPILER_LOGGER)
    handler, level, propagate = _Collect(), compiler_logger.level, compiler_logger.propagate
    compiler_logger.addHandler(handler)
    compiler_logger.setLevel(logging.WARNING)
    compiler_logger.propagate = False  # collected here, printed by the caller
    try:
        spec_and_size(constraint, dataclasses.replace(options, strict=False), None)
    except Exception:  # noqa: BLE001 - another problem; the strict error is what gets reported
        pass
    finally:
        compiler_logger.removeHandler(handler)
        compiler_logger.setLevel(level)
        compiler_logger.propagate = propagate
    return handler.refusals


def _report_refusals(error: UnsupportedSchemaError, constraint: Any, options: SchemaOptions) -> None:
    refusals = _refusals(constraint, options) or [{"keyword": error.keyword, "pointer": error.pointer or "#", "reason": ""}]
    if len(refusals) > 1:
        sys.stderr.write(f"{len(refusals)} keywords cannot be enforced (or pass --lenient to drop them):\n")
        for refusal in refusals:
            reason = f": {refusal['reason']}" if refusal["reason"] else ""
            sys.stderr.write(f"  {refusal['keyword']!r} at {refusal['pointer']}{reason}\n")


def _print(report: dict, as_json: bool) -> None:
    if as_json:
        sys.stdout.write(json.dumps(report) + "\n")
        return
    for key, value in report.items():
        if key == "dropped_keywords":
            value = ", ".join(f"{d['keyword']!r} at {d['pointer']}" for d in value)
        elif key == "cached_files":
            value = ", ".join(name.replace("_", " ") for name in value) or "none"
        sys.stdout.write(f"{key.replace('_', ' ')}: {value}\n")
