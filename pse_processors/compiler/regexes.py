"""Schema → regex, cached in memory and on disk, so that a warm ``compile()`` skips the compiler.

Compiling a large schema and measuring its regex take tens of milliseconds; a cache hit must
take a few. The key (the entry's binding, checked on load: see
:mod:`~pse_processors.caching.store`) covers the schema's JSON text (property order included:
it is the generation order), the compiler options and a digest of the compiler's own source
files, so a changed compiler never reads a regex an older one wrote.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import logging
from pathlib import Path
from typing import Any, Optional

from .. import defaults
from ..caching.lru import SizedLRU
from ..caching.store import CacheEntry, DiskStore, entry_binding
from ..constraints.spec import ConstraintSpec, ParsedConstraint, normalize, parse_constraint
from ..json_schema import SchemaOptions, json_schema_to_regex
from ..json_schema.fragments import expanded_length

logger = logging.getLogger(__name__)

_memory = SizedLRU(max_items=defaults.SPEC_CACHE_ENTRIES)  # key -> (regex, expanded length)
_compiler_digest: Optional[str] = None
_FORMAT = 2  # of the regexes/ files


def spec_and_size(constraint: Any, options: SchemaOptions, store: Any) -> tuple[ConstraintSpec, int]:
    """The constraint's spec and its regex's length with counted repetitions written out.

    ``constraint`` may be parsed already (:class:`~pse_processors.constraints.spec.ParsedConstraint`);
    ``store`` is the :class:`~pse_processors.caching.store.DiskStore` (a folder path is accepted too), or ``None``."""
    if isinstance(store, Path):
        store = DiskStore(store)
    parsed = _parsed(constraint)
    if parsed is None:  # Regex, Choice, or a wrong type that normalize() reports
        spec = normalize(constraint.constraint if isinstance(constraint, ParsedConstraint) else constraint, options)
        return spec, expanded_length(spec.regex)
    schema, result_type = parsed.schema, parsed.result_type
    # Lenient mode warns of every dropped keyword at every compile, so it is not cached.
    text = parsed.text if options.strict else None
    if text is None:
        regex = json_schema_to_regex(schema, options)
        return ConstraintSpec("json", regex, result_type), expanded_length(regex)
    key = _binding(text, options)
    hit = _memory.get(key)
    entry = store.entry("regexes", key, ".json") if store is not None else None
    if hit is None and entry is not None:
        payload = entry.load("regex")
        if payload is not None:
            try:
                stored = json.loads(payload)
                hit = (str(stored["regex"]), int(stored["expanded"]))
            except (ValueError, KeyError, TypeError) as exc:
                logger.warning("ignoring the corrupt regex cache file %s (%s)", entry.path, exc)
    if hit is None:
        regex = json_schema_to_regex(schema, options)
        hit = (regex, expanded_length(regex))
        if entry is not None:
            data = json.dumps({"regex": hit[0], "expanded": hit[1]}).encode()
            entry.save(lambda handle: handle.write(data), "regex")
    _memory.put(key, hit)
    return ConstraintSpec("json", hit[0], result_type), hit[1]


def cache_entry(constraint: Any, options: SchemaOptions, store: DiskStore, write: bool = False) -> Optional[CacheEntry]:
    """The ``regexes/`` entry of ``constraint`` (``write``: written first if missing); ``None`` for
    what is not cached (not a JSON Schema; lenient mode)."""
    parsed = _parsed(constraint)
    if parsed is None or not options.strict or parsed.text is None:
        return None
    entry = store.entry("regexes", _binding(parsed.text, options), ".json")
    if write and not entry.path.exists():
        hit = _memory.get(entry.binding)
        if hit is None:
            spec, expanded = spec_and_size(parsed, options, None)
            hit = (spec.regex, expanded)
        data = json.dumps({"regex": hit[0], "expanded": hit[1]}).encode()
        entry.save(lambda handle: handle.write(data), "regex")
    return entry


def _binding(text: str, options: SchemaOptions) -> str:
    """What a schema's regex depends on: the compiler's source, the options, the schema's JSON text."""
    return entry_binding("regexes", _FORMAT, _digest(), repr(options), text)


def _parsed(constraint: Any) -> Optional[ParsedConstraint]:
    """The parsed JSON Schema constraint, or ``None`` for the other kinds (and non-constraints)."""
    try:
        parsed = parse_constraint(constraint)
    except TypeError:
        return None
    return parsed if parsed.kind == "json" else None


def clear() -> None:
    _memory.clear()


def _digest() -> str:
    """Digest of the compiler's source: the regex of a schema depends on nothing else."""
    global _compiler_digest
    if _compiler_digest is None:
        from ..version import __version__

        digest = hashlib.blake2b(digest_size=16)
        digest.update(__version__.encode())
        package = Path(__file__).resolve().parents[1]
        sources = sorted((package / "json_schema").glob("*.py")) + [package / "constraints" / "spec.py"]
        try:
            for source in sources:
                digest.update(source.name.encode() + b"\0" + source.read_bytes())
        except OSError:  # sources not on disk (a zipped install): the version alone keys the cache
            logger.debug("compiler sources unreadable; the regex cache is keyed by version only")
        digest.update(repr(sorted(f.name for f in dataclasses.fields(SchemaOptions))).encode())
        _compiler_digest = digest.hexdigest()
    return _compiler_digest
