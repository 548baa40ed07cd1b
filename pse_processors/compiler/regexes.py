"""Schema → regex, cached in memory and on disk, so that a warm ``compile()`` skips the compiler.

Compiling a large schema and measuring its regex take tens of milliseconds; a cache hit must
take a few. The key covers the schema's JSON text (property order included: it is the
generation order), the compiler options and a digest of the compiler's own source files, so a
changed compiler never reads a regex an older one wrote.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import logging
import threading
from collections import OrderedDict
from pathlib import Path
from typing import Any, Optional

from ..caching.store import write_atomically
from ..constraints.spec import ConstraintSpec, json_schema_of, normalize
from ..json_schema import SchemaOptions, json_schema_to_regex
from ..json_schema.fragments import expanded_length

logger = logging.getLogger(__name__)

_CAPACITY = 256
_memory: "OrderedDict[str, tuple[str, int]]" = OrderedDict()
_lock = threading.Lock()
_compiler_digest: Optional[str] = None


def spec_and_size(constraint: Any, options: SchemaOptions, folder: Optional[Path]) -> tuple[ConstraintSpec, int]:
    """The constraint's spec and its regex's length with counted repetitions written out."""
    try:
        schema, result_type = json_schema_of(constraint)
    except TypeError:  # Regex, Choice, or a wrong type that normalize() reports
        spec = normalize(constraint, options)
        return spec, expanded_length(spec.regex)
    # Lenient mode warns of every dropped keyword at every compile, so it is not cached.
    text = _json_text(schema) if options.strict else None
    if text is None:
        regex = json_schema_to_regex(schema, options)
        return ConstraintSpec("json", regex, result_type), expanded_length(regex)
    key = hashlib.sha256(f"{_digest()}\0{options!r}\0{text}".encode("utf-8", "surrogatepass")).hexdigest()[:40]
    with _lock:
        hit = _memory.get(key)
        if hit is not None:
            _memory.move_to_end(key)
    path = folder / "regexes" / f"{key}.json" if folder is not None else None
    if hit is None and path is not None and path.exists():
        try:
            stored = json.loads(path.read_text(encoding="utf-8"))
            hit = (str(stored["regex"]), int(stored["expanded"]))
        except (OSError, ValueError, KeyError, TypeError) as exc:
            logger.warning("ignoring the corrupt regex cache file %s (%s)", path, exc)
    if hit is None:
        regex = json_schema_to_regex(schema, options)
        hit = (regex, expanded_length(regex))
        if path is not None:
            payload = json.dumps({"regex": hit[0], "expanded": hit[1]}).encode()
            write_atomically(path, lambda handle: handle.write(payload), "regex")
    with _lock:
        _memory[key] = hit
        while len(_memory) > _CAPACITY:
            _memory.popitem(last=False)
    return ConstraintSpec("json", hit[0], result_type), hit[1]


def _json_text(schema: Any) -> Optional[str]:
    """The schema as JSON text, or None when it is not JSON (the compiler then names the problem)."""
    try:
        return json.dumps(schema, ensure_ascii=False, allow_nan=False)
    except (TypeError, ValueError):
        return None


def clear() -> None:
    with _lock:
        _memory.clear()


def _digest() -> str:
    """Digest of the compiler's source: the regex of a schema depends on nothing else."""
    global _compiler_digest
    if _compiler_digest is None:
        from .. import __version__

        digest = hashlib.blake2b(digest_size=16)
        digest.update(__version__.encode())
        package = Path(__file__).resolve().parent
        sources = sorted((package / "json_schema").glob("*.py")) + [package / "constraints.py"]
        try:
            for source in sources:
                digest.update(source.name.encode() + b"\0" + source.read_bytes())
        except OSError:  # sources not on disk (a zipped install): the version alone keys the cache
            logger.debug("compiler sources unreadable; the regex cache is keyed by version only")
        digest.update(repr(sorted(f.name for f in dataclasses.fields(SchemaOptions))).encode())
        _compiler_digest = digest.hexdigest()
    return _compiler_digest
