"""Conformance on the official JSON-Schema-Test-Suite (draft 2020-12), per keyword.

    python -m benchmarks.conformance tests/data/json-schema-test-suite [--backend dfa|llguidance|auto]

For each test group whose schema compiles (JSON Schema semantics for additionalProperties),
every test instance is serialized with ``json.dumps`` and fed byte by byte through the
automaton. An invalid instance must be rejected (anything else is a bug, and
``tests/json_schema/test_conformance.py`` fails on it); a valid one should be accepted, and the table
counts how often it is (the automaton accepts a documented subset of the valid spellings).
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from dataclasses import dataclass, field
from pathlib import Path

import pse_processors as pse
from pse_processors.errors import PSEError

BYTES = pse.Vocabulary([bytes([b]) for b in range(256)] + [None], eos_token_ids=[256])


@dataclass
class KeywordResult:
    groups: int = 0
    refused: int = 0
    valid: int = 0
    valid_accepted: int = 0
    invalid: int = 0
    invalid_rejected: int = 0
    escapes: list = field(default_factory=list)  # invalid instances accepted: must stay empty
    refusals: list = field(default_factory=list)


def run(folder: Path, backend: str = "dfa") -> dict:
    """keyword file name -> KeywordResult, over ``folder/tests/draft2020-12/*.json``, on ``backend``."""
    files = sorted((folder / "tests" / "draft2020-12").glob("*.json"))
    if not files:
        raise FileNotFoundError(f"no draft 2020-12 tests under {folder}")
    results: dict = {}
    for path in files:
        result = results[path.stem] = KeywordResult()
        for group in json.loads(path.read_text()):
            result.groups += 1
            try:
                grammar = pse.compile(group["schema"], BYTES, additional_properties="spec", backend=backend)
            except PSEError as exc:
                result.refused += 1
                result.refusals.append(f"{group['description']}: {type(exc).__name__}: {exc}")
                continue
            for test in group["tests"]:
                text = json.dumps(test["data"])
                accepted = grammar.accepts(list(text.encode("utf-8")) + [256])
                if test["valid"]:
                    result.valid += 1
                    result.valid_accepted += accepted
                else:
                    result.invalid += 1
                    result.invalid_rejected += not accepted
                    if accepted:
                        result.escapes.append(f"{group['description']} / {test['description']}: {text}")
    return results


def markdown(results: dict) -> str:
    lines = [
        "| keyword file | groups | refused | valid accepted | invalid rejected |",
        "|---|---:|---:|---:|---:|",
    ]
    total = KeywordResult()
    for name, r in results.items():
        lines.append(f"| {name} | {r.groups} | {r.refused} | {r.valid_accepted}/{r.valid} | {r.invalid_rejected}/{r.invalid} |")
        for attr in ("groups", "refused", "valid", "valid_accepted", "invalid", "invalid_rejected"):
            setattr(total, attr, getattr(total, attr) + getattr(r, attr))
    lines.append(
        f"| **all** | {total.groups} | {total.refused} | {total.valid_accepted}/{total.valid} | "
        f"{total.invalid_rejected}/{total.invalid} |"
    )
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.conformance",
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("folder", type=Path, help="the JSON-Schema-Test-Suite checkout")
    parser.add_argument("--refusals", action="store_true", help="list every refused group")
    parser.add_argument("--backend", default="dfa", choices=["dfa", "llguidance", "auto"], help="the back end (default: dfa)")
    parser.add_argument("--engine", choices=["dfa", "grammar", "auto"], help=argparse.SUPPRESS)  # 0.1: --backend
    args = parser.parse_args()
    logging.basicConfig(level=logging.ERROR)
    backend = {"grammar": "llguidance"}.get(args.engine, args.engine) if args.engine else args.backend
    results = run(args.folder, backend)
    print(markdown(results))
    escapes = [e for r in results.values() for e in r.escapes]
    for escape in escapes:
        print("INVALID ACCEPTED:", escape)
    if args.refusals:
        for name, r in results.items():
            for refusal in r.refusals:
                print(f"{name}: {refusal}")
    return 1 if escapes else 0


if __name__ == "__main__":
    sys.exit(main())
