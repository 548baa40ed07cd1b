"""``pse-processors generate``: one constrained generation, the validated result on stdout.

    pse-processors generate --schema person.json --prompt "Alice is 31 and lives in Oslo."
    pse-processors generate --choices positive negative --prompt "Sentiment of: I loved it"

    pse-processors generate --schema answer.json --reasoning --think-budget 64 --prompt "Is 97 prime?"
    pse-processors generate --tools tools.json --tool-format hermes --prompt "Weather in Paris?"

JSON Schema and Pydantic results are printed as one line of JSON; ``--regex``, ``--choices`` and ``--grammar``
results as the plain text; with ``--reasoning``, ``--delimited`` or ``--tools`` (see
:mod:`.structure_args`) one line of JSON: ``{"reasoning", "text", "spans", "tool_calls", "answer", "segments"}``.
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from .. import defaults
from ..constraints.spec import Choice, Grammar, Regex
from ..runners import RowError, Settings, available
from .constraint_args import add_constraint_arguments, compile_options, to_json_value
from .errors import CommandFailed, UsageError
from .frameworks import load_runner
from .progress import Progress
from .structure_args import add_structure_arguments, constraint_of


def add_model_arguments(parser: argparse.ArgumentParser, max_new_tokens: int = defaults.MAX_NEW_TOKENS) -> None:
    """``--model``, ``--framework`` and the generation settings, shared with ``extract``."""
    group = parser.add_argument_group("model and generation")
    group.add_argument(
        "--model", "--model-dir", dest="model", metavar="DIR",
        help="a local model folder (save_pretrained layout); default: the embedded SmolLM2-135M-Instruct",
    )
    group.add_argument("--framework", choices=available(), default="torch", help="default: torch")
    group.add_argument("--max-new-tokens", type=int, default=max_new_tokens, metavar="N", help=f"default: {max_new_tokens}")
    group.add_argument("--temperature", type=float, default=0.0, metavar="T", help="0 (default) is greedy decoding")
    group.add_argument("--seed", type=int, metavar="S", help="random seed for sampling")
    group.add_argument(
        "--threads", type=int, metavar="N",
        help="CPU threads for PyTorch (default: its own choice; 1 is often faster on a busy machine)",
    )


def settings_of(args: argparse.Namespace) -> Settings:
    if args.max_new_tokens < 1:
        raise UsageError("--max-new-tokens must be at least 1")
    if args.temperature < 0:
        raise UsageError("--temperature must be 0 (greedy) or more")
    return Settings(max_new_tokens=args.max_new_tokens, temperature=args.temperature, seed=args.seed)


def add_parser(commands: Any, parents: list) -> None:
    parser = commands.add_parser(
        "generate", parents=parents, help="generate one output that satisfies a constraint; print it",
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--prompt", required=True, help="the user message (a chat template is applied when the model has one)")
    add_constraint_arguments(parser, required=False)  # --tools alone is a constraint too
    add_structure_arguments(parser)
    add_model_arguments(parser)
    parser.set_defaults(run=run)


def generate_one(args: argparse.Namespace, prompt: str, constraint: Any) -> int:
    """Generate for ``prompt`` and print the result; shared with the single-text ``extract``."""
    settings = settings_of(args)
    progress = Progress(args.quiet)
    runner = load_runner(args.framework, args.model, progress, args.threads)
    with progress.task("compiling the constraint"):
        prepared = runner.prepare(constraint, compile_options(args))
    with progress.task("generating", delay=0.0):
        [result] = runner.generate(prepared, [prompt], settings)
    if isinstance(result, RowError):
        raise CommandFailed(str(result))
    print_result(result, constraint)
    return 0


def print_result(result: Any, constraint: Any) -> None:
    if isinstance(constraint, (Regex, Choice, Grammar)):
        sys.stdout.write(f"{result}\n")
    else:
        sys.stdout.write(json.dumps(to_json_value(result), ensure_ascii=False) + "\n")
    sys.stdout.flush()


def run(args: argparse.Namespace) -> int:
    return generate_one(args, args.prompt, constraint_of(args))
