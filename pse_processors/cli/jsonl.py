"""JSON Lines input and resumable output for ``extract``.

The output is appended one complete line at a time and flushed, so after a crash or a kill it
holds some complete lines, then at most one partial line. :func:`recover` cuts that partial
line off and returns how many input lines are done, so ``--resume`` neither redoes nor
duplicates a line.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator, Optional, Union

from .errors import UsageError


@dataclass(frozen=True)
class InputRow:
    """One input line: its 1-based number, and its text or the reason it is unusable."""

    line: int
    text: Optional[str] = None
    error: Optional[str] = None
    id: Union[str, int, None] = None


def count_lines(path: Path) -> int:
    """Lines in ``path``, counting a last line without a newline.

    Example:
        >>> import tempfile
        >>> p = Path(tempfile.mkdtemp()) / "x.jsonl"; _ = p.write_bytes(b'{"a": 1}\\n{"a": 2}')
        >>> count_lines(p)
        2
    """
    count, last = 0, b"\n"
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            count += block.count(b"\n")
            last = block[-1:]
    return count + (last != b"\n")


def read_rows(path: Path, field: str, skip: int = 0) -> Iterator[InputRow]:
    """The input rows after the first ``skip``: a JSON object's ``field`` (a string), or a JSON string.

    Lines that are not UTF-8, not JSON, lack the field, or are empty give a row with ``error``.

    Example:
        >>> import tempfile
        >>> p = Path(tempfile.mkdtemp()) / "in.jsonl"
        >>> _ = p.write_text('{"text": "a", "id": 7}\\nnot json\\n{"body": "b"}\\n"c"\\n')
        >>> [(r.line, r.text, r.id, r.error is None) for r in read_rows(p, "text")]
        [(1, 'a', 7, True), (2, None, None, False), (3, None, None, False), (4, 'c', None, True)]
    """
    with path.open("rb") as handle:
        for number, raw in enumerate(handle, start=1):
            if number <= skip:
                continue
            yield parse_row(number, raw, field)


def parse_row(number: int, raw: bytes, field: str) -> InputRow:
    try:
        line = raw.decode("utf-8").strip()
    except UnicodeDecodeError as exc:
        return InputRow(number, error=f"line {number} is not UTF-8 ({exc.reason} at byte {exc.start})")
    if not line:
        return InputRow(number, error=f"line {number} is empty")
    try:
        value = json.loads(line)
    except json.JSONDecodeError as exc:
        return InputRow(number, error=f"line {number} is not JSON ({exc.msg} at column {exc.colno})")
    if isinstance(value, str):
        return InputRow(number, text=value)
    if not isinstance(value, dict):
        return InputRow(number, error=f"line {number} is a JSON {type(value).__name__}, not an object with a {field!r} field")
    row_id = value.get("id")
    row_id = row_id if isinstance(row_id, (str, int)) and not isinstance(row_id, bool) else None
    if field not in value:
        return InputRow(number, id=row_id, error=f"line {number} has no {field!r} field")
    text = value[field]
    if not isinstance(text, str):
        return InputRow(number, id=row_id, error=f"line {number}: the {field!r} field is a {type(text).__name__}, not a string")
    return InputRow(number, text=text, id=row_id)


def output_record(row: InputRow, value: object = None, error: Optional[str] = None) -> bytes:
    """One output line: ``{"line": n, ["id": ...,] "value": ...}`` or ``{... "error": "..."}``."""
    record: dict = {"line": row.line}
    if row.id is not None:
        record["id"] = row.id
    if error is not None:
        record["error"] = error
    else:
        record["value"] = value
    return (json.dumps(record, ensure_ascii=False) + "\n").encode("utf-8")


def recover(path: Path) -> int:
    """Prepare an interrupted output for appending; return how many input lines it has done.

    Complete lines must be the records of input lines 1, 2, ... in order. A partial last line
    (or any line from the first unreadable one on) is cut off, so that line is done again.

    Example:
        >>> import tempfile
        >>> p = Path(tempfile.mkdtemp()) / "out.jsonl"
        >>> _ = p.write_bytes(b'{"line": 1, "value": 1}\\n{"line": 2, "value": 2}\\n{"line": 3, "va')
        >>> recover(p), p.read_bytes()
        (2, b'{"line": 1, "value": 1}\\n{"line": 2, "value": 2}\\n')
    """
    done, keep = 0, 0
    with path.open("rb") as handle:
        for raw in handle:
            if not raw.endswith(b"\n"):
                break  # the partial line of an interrupted write
            try:
                record = json.loads(raw)
            except ValueError:
                break
            if not isinstance(record, dict) or ("value" not in record and "error" not in record):
                break
            if record.get("line") != done + 1:
                raise UsageError(
                    f"{path}: line {done + 1} is the record of input line {record.get('line')!r}, not "
                    f"{done + 1}; is it the output of another input? (use --overwrite to start again)"
                )
            done += 1
            keep += len(raw)
    if keep != path.stat().st_size:
        with path.open("r+b") as handle:
            handle.truncate(keep)
            handle.flush()
            os.fsync(handle.fileno())
    return done
