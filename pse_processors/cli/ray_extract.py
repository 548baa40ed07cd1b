"""``pse-processors extract --ray [ADDRESS]``: the batch extract as a Ray Data job.

The input is read here and the good lines go to Ray as rows ``{"line", "text"}``; actors run
:class:`pse_processors.ray.PSEExtractor`. Results stream back in input order
(``preserve_order``) and are written in the local extract's format, so ``--resume`` works the
same. Without ADDRESS a local Ray starts; ``auto`` or ``HOST:PORT`` joins a cluster, whose
nodes must have this package and the ``--model`` folder (shared storage).
"""

from __future__ import annotations

import argparse
import json
import logging
import os
from pathlib import Path
from typing import Any, BinaryIO, Iterator

from ..compiler.options import CompileOptions
from ..constraints.spec import Choice, Grammar, Regex
from ..runners import Settings
from .errors import UsageError
from .jsonl import InputRow, output_record, read_rows

logger = logging.getLogger(__name__)

LOCAL = "local"  # the --ray value when no ADDRESS is given


def add_arguments(group: Any) -> None:
    group.add_argument(
        "--ray", nargs="?", const=LOCAL, metavar="ADDRESS",
        help="run on Ray: a local Ray without ADDRESS, or a cluster ('auto' or HOST:PORT); needs the [ray] extra",
    )
    group.add_argument("--ray-actors", type=int, default=1, metavar="N", help="with --ray: model copies (actors; default 1)")


def check(args: argparse.Namespace, constraint: Any) -> None:
    """Refuse what the Ray path cannot do before reading anything."""
    if args.framework != "torch":
        raise UsageError("--ray runs the PyTorch model: use it with --framework torch")
    if isinstance(constraint, (Regex, Choice, Grammar)):
        raise UsageError("--ray extracts JSON: give --schema or --pydantic (or --reasoning/--delimited/--tools)")
    if args.ray_actors < 1:
        raise UsageError("--ray-actors must be at least 1")
    try:
        import pse_processors.ray  # noqa: F401
    except ImportError:
        raise UsageError("--ray needs Ray Data, which is not installed: pip install 'pse-processors[ray]'") from None


def run(
    args: argparse.Namespace, source: Path, sink: BinaryIO, done: int, constraint: Any, template: str,
    settings: Settings, options: CompileOptions, bar: Any,
) -> int:
    """Extract ``source``'s lines after the first ``done`` on Ray, appending records to ``sink``.
    Returns how many records carry an error."""
    import ray

    from ..ray import extract

    rows = list(read_rows(source, args.text_field, skip=done))
    good = [{"line": row.line, "text": row.text} for row in rows if row.error is None]
    started = not ray.is_initialized()
    if started:
        ray.init(
            address=None if args.ray == LOCAL else args.ray, include_dashboard=False, log_to_driver=args.verbose,
            logging_level=logging.INFO if args.verbose else logging.ERROR,
        )
    if not args.verbose:  # Ray Data logs each dataset's plan and timing at INFO on stderr
        logging.getLogger("ray.data").setLevel(logging.ERROR)
    try:
        context = ray.data.DataContext.get_current()
        context.execution_options.preserve_order = True  # records are written in input order
        context.enable_progress_bars = False  # our own bar counts rows
        results: Iterator[dict] = iter(())
        if good:
            dataset = extract(
                ray.data.from_items(good), constraint, prompt_template=template,
                model=None if args.model is None else os.path.abspath(os.path.expanduser(args.model)),
                concurrency=args.ray_actors, batch_size=args.batch_size, max_new_tokens=settings.max_new_tokens,
                temperature=settings.temperature, seed=settings.seed, threads=args.threads, options=options,
            )
            results = iter(dataset.iter_rows())
        return _write(rows, results, sink, args.batch_size, bar)
    finally:
        if started:
            ray.shutdown()


def _write(rows: list[InputRow], results: Iterator[dict], sink: BinaryIO, every: int, bar: Any) -> int:
    failed, pending = 0, []
    for row in rows:
        error, value = row.error, None
        if error is None:
            result = next(results)
            if result["line"] != row.line:  # preserve_order guarantees this; a mismatch would corrupt --resume
                raise RuntimeError(f"Ray returned line {result['line']} where line {row.line} was due")
            if result["value"] is None:
                error = result["error"]
            else:
                value = json.loads(result["value"])
        failed += error is not None
        record = output_record(row, error=error) if error is not None else output_record(row, value=value)
        pending.append(record)
        if len(pending) >= every:
            _flush(sink, pending, bar)
    _flush(sink, pending, bar)
    for extra in results:  # also ends Ray's iterator before ray.shutdown()
        raise RuntimeError(f"Ray returned line {extra['line']} twice or out of range")
    return failed


def _flush(sink: BinaryIO, pending: list[bytes], bar: Any) -> None:
    if not pending:
        return
    sink.write(b"".join(pending))  # whole lines only, as the local extract
    sink.flush()
    os.fsync(sink.fileno())
    bar.update(len(pending))
    pending.clear()
