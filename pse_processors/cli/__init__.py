"""The ``pse-processors`` command line (also ``python -m pse_processors``).

    pse-processors generate --schema person.json --prompt "Alice is 31."
    pse-processors extract --input docs.jsonl --output out.jsonl --schema person.json [--resume]
    pse-processors extract --input docs.jsonl --output out.jsonl --schema person.json --ray [ADDRESS]
    pse-processors compile --schema person.json [--tokenizer llama3_1]
    pse-processors cache info | cache clear
    pse-processors demo

Results go to stdout, progress bars and messages to stderr. Exit codes: 0 success, 2 bad usage
or a bad constraint (the message names the cause and the JSON pointer), 1 any other failure.
Each verb lives in its own module; :func:`main` only dispatches and maps errors to exit codes.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
import traceback
from typing import Optional, Sequence

from . import cache_cmd, compile_cmd, demo, extract, generate
from .demo import DEMO_SCHEMA, DEMO_TEXT
from .errors import EXIT_FAILURE, exit_code

__all__ = ["DEMO_SCHEMA", "DEMO_TEXT", "build_parser", "main"]

VERBS = (generate, extract, compile_cmd, cache_cmd, demo)


def build_parser() -> argparse.ArgumentParser:
    """The parser: global options, then one sub-command per verb module.

    Example:
        >>> args = build_parser().parse_args(["compile", "--regex", "[0-9]+", "--quiet"])
        >>> args.command, args.regex, args.quiet
        ('compile', '[0-9]+', True)
    """
    # Global options are accepted before or after the verb.
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("-q", "--quiet", action="store_true", default=argparse.SUPPRESS, help="no progress bars")
    common.add_argument("-v", "--verbose", action="store_true", default=argparse.SUPPRESS, help="log progress; tracebacks")
    parser = argparse.ArgumentParser(
        prog="pse-processors", description=__doc__.splitlines()[0], parents=[common],
        epilog="`pse-processors VERB --help` describes each verb.",
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="VERB")
    for verb in VERBS:
        verb.add_parser(commands, [common])
    return parser


def main(argv: Optional[Sequence[str]] = None) -> int:
    """Run the command line; return its exit code."""
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    args = build_parser().parse_args(argv)  # exits 2 on bad usage, with argparse's message
    args.quiet = getattr(args, "quiet", False)
    args.verbose = getattr(args, "verbose", False)
    logging.basicConfig(
        level=logging.INFO if args.verbose else logging.WARNING, format="%(levelname)s %(name)s: %(message)s"
    )
    try:
        return args.run(args)
    except KeyboardInterrupt:
        sys.stderr.write("pse-processors: interrupted\n")
        return 130
    except BrokenPipeError:  # `... | head`: the reader left
        return EXIT_FAILURE
    except Exception as exc:  # noqa: BLE001 - every error becomes a message and an exit code
        code = exit_code(exc)
        if args.verbose:
            traceback.print_exc()
        kind = "bad constraint: " if code == 2 and not type(exc).__module__.endswith("cli.errors") else ""
        # One line: a message from a back end may span several (a caret under a grammar line).
        detail = " ".join(line.strip() for line in str(exc).splitlines() if line.strip()) or type(exc).__name__
        if code == EXIT_FAILURE and type(exc).__module__ != "pse_processors.cli.errors":
            detail = f"{type(exc).__name__}: {detail}"
            if not args.verbose:
                detail += " (run with --verbose for the traceback)"
        sys.stderr.write(f"pse-processors {args.command}: error: {kind}{detail}\n")
        return code
