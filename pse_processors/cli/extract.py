"""``pse-processors extract``: structured extraction over a JSON Lines file (or one text).

    pse-processors extract --input docs.jsonl --output out.jsonl --schema invoice.json \\
        --prompt-template "Extract the invoice fields as JSON from this text: {text}" --batch-size 8
    pse-processors extract --input docs.jsonl --output out.jsonl --schema invoice.json --resume
    pse-processors extract --input docs.jsonl --output out.jsonl --schema invoice.json --ray   # on Ray
    pse-processors extract "Bob, 42, lives in Paris." --schema person.json     # one text

Each input line is a JSON object whose ``text`` field (``--text-field``) is the document, or a
JSON string. The output has one line per input line, in order: ``{"line": n, "value": ...}``,
or ``{"line": n, "error": "..."}`` for a line that is not JSON, lacks the field, is too long for
the model, or whose output was cut off by ``--max-new-tokens``; the run goes on. An input
object's ``id`` is copied. Lines are appended and flushed one batch at a time: after an
interruption, ``--resume`` continues where the output stops. ``--ray [ADDRESS]`` runs the
same job on Ray Data (a local Ray, or a cluster), with the same output. With ``--reasoning``,
``--delimited`` or ``--tools`` each value is ``{"reasoning", "text", "spans", "tool_calls",
"answer", "segments"}``.
"""

from __future__ import annotations

import argparse
import logging
import os
from itertools import islice
from pathlib import Path
from typing import Any, Iterator

from ..runners import RowError, fill_template
from . import ray_extract
from .constraint_args import add_constraint_arguments, compile_options, to_json_value
from .errors import UsageError
from .frameworks import load_runner
from .generate import add_model_arguments, generate_one, settings_of
from .jsonl import InputRow, count_lines, output_record, read_rows, recover
from .progress import Progress
from .structure_args import add_structure_arguments, constraint_of

logger = logging.getLogger(__name__)

DEFAULT_TEMPLATE = "Extract the information from this text as JSON.\n\n{text}"


def add_parser(commands: Any, parents: list) -> None:
    parser = commands.add_parser(
        "extract", parents=parents, help="extract structured data from each line of a JSONL file (or one text)",
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("text", nargs="?", help="one text to extract from (instead of --input); printed to stdout")
    files = parser.add_argument_group("batch mode")
    files.add_argument("--input", metavar="FILE", help="JSON Lines input, one document per line")
    files.add_argument("--output", metavar="FILE", help="JSON Lines output, one record per input line")
    files.add_argument("--text-field", default="text", metavar="NAME", help="the input objects' text field (default: text)")
    files.add_argument(
        "--prompt-template", metavar="TEMPLATE",
        help="the prompt, with {text} where the document goes (default: %r)" % DEFAULT_TEMPLATE,
    )
    files.add_argument("--batch-size", type=int, default=4, metavar="N", help="rows per generate call (default: 4)")
    resume = files.add_mutually_exclusive_group()
    resume.add_argument("--resume", action="store_true", help="continue an interrupted run's --output")
    resume.add_argument("--overwrite", action="store_true", help="replace an existing --output")
    ray_extract.add_arguments(files)
    add_constraint_arguments(parser, required=False)  # --tools alone is a constraint too
    add_structure_arguments(parser)
    add_model_arguments(parser)
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    if args.input is None:
        if args.text is None:
            raise UsageError("give --input FILE and --output FILE (batch mode), or one TEXT")
        if args.output is not None:
            raise UsageError("--output needs --input (a single TEXT is printed to stdout)")
        prompt = args.text if args.prompt_template is None else fill_template(args.prompt_template, args.text)
        return generate_one(args, prompt, constraint_of(args))
    if args.text is not None:
        raise UsageError("give either --input FILE or one TEXT, not both")
    return run_batch(args)


def run_batch(args: argparse.Namespace) -> int:
    template = DEFAULT_TEMPLATE if args.prompt_template is None else args.prompt_template
    if "{text}" not in template:
        raise UsageError("--prompt-template must contain {text}, where each document goes")
    if args.batch_size < 1:
        raise UsageError("--batch-size must be at least 1")
    if args.output is None:
        raise UsageError("--input needs --output FILE")
    source, target = Path(args.input), Path(args.output)
    if not source.is_file():
        raise UsageError(f"--input {args.input!r}: no such file")
    if source.resolve() == target.resolve():
        raise UsageError("--output must not be the --input file")
    settings = settings_of(args)
    constraint = constraint_of(args)
    if args.ray is not None:
        ray_extract.check(args, constraint)
    total = count_lines(source)
    done = _prepare_output(target, args.resume, args.overwrite)
    if done > total:
        raise UsageError(f"--output {args.output!r} has {done} records but --input has {total} lines: another input?")
    progress = Progress(args.quiet)
    if done == total:
        logger.info("%s already holds all %d records", target, total)
        return 0
    if args.ray is not None:
        if args.model is not None and not Path(args.model).expanduser().is_dir():
            raise UsageError(f"--model {args.model!r} is not a folder (give a local model folder, e.g. from save_pretrained)")
        with target.open("ab") as sink, progress.rows(total, initial=done) as bar:
            failed = ray_extract.run(args, source, sink, done, constraint, template, settings, compile_options(args), bar)
        logger.info("wrote %d records to %s (%d with an error)", total - done, target, failed)
        return 0
    runner = load_runner(args.framework, args.model, progress, args.threads)
    with progress.task("compiling the constraint"):
        prepared = runner.prepare(constraint, compile_options(args))
    failed = 0
    with target.open("ab") as sink, progress.rows(total, initial=done) as bar:
        for batch in _batches(read_rows(source, args.text_field, skip=done), args.batch_size):
            good = [row for row in batch if row.error is None]
            results = dict(zip((row.line for row in good), runner.generate(
                prepared, [fill_template(template, row.text or "") for row in good], settings,
            ))) if good else {}
            lines = []
            for row in batch:
                result = results.get(row.line)
                if row.error is not None or isinstance(result, RowError):
                    failed += 1
                    lines.append(output_record(row, error=row.error or str(result)))
                else:
                    lines.append(output_record(row, value=to_json_value(result)))
            sink.write(b"".join(lines))  # whole lines only; a kill leaves at most one partial line
            sink.flush()
            os.fsync(sink.fileno())
            bar.update(len(batch))
            bar.set_postfix(errors=failed, refresh=False)
    logger.info("wrote %d records to %s (%d with an error)", total - done, target, failed)
    return 0


def _prepare_output(target: Path, resume: bool, overwrite: bool) -> int:
    """Lines already done in ``target`` (0 for a new or replaced output)."""
    if target.is_dir():
        raise UsageError(f"--output {str(target)!r} is a folder")
    if not target.exists() or target.stat().st_size == 0:
        target.parent.mkdir(parents=True, exist_ok=True)
        target.touch()
        return 0
    if resume:
        return recover(target)
    if overwrite:
        target.write_bytes(b"")
        return 0
    raise UsageError(f"--output {str(target)!r} exists: pass --resume to continue it, or --overwrite to replace it")


def _batches(rows: Iterator[InputRow], size: int) -> Iterator[list[InputRow]]:
    while True:
        batch = list(islice(rows, size))
        if not batch:
            return
        yield batch
