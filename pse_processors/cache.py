"""One process-wide grammar cache, backed by an on-disk cache of grammar tables.

- In memory: key (regex, vocabulary fingerprint) → :class:`CompiledGrammar`, so every
  processor for the same constraint and tokenizer shares one grammar and its masks.
- On disk: ``$PSE_PROCESSORS_CACHE_DIR`` (default: the user cache directory, e.g.
  ``~/.cache/pse-processors``) holds the grammar tables as ``.npz`` files (no pickle). Set the
  variable to ``off`` (or ``0``, or an empty string) to disable it. A file that fails
  validation is recompiled and replaced.
"""

from __future__ import annotations

import hashlib
import logging
import os
import sys
import tempfile
import threading
import time
from collections import OrderedDict
from pathlib import Path
from typing import Any, Iterable, Optional

from .constraints import Constraint, normalize
from .errors import CompileLimitError, SchemaError, UnsatisfiableConstraintError
from .grammar import CompiledGrammar
from .json_schema import SchemaOptions
from .tables import GrammarTables, build_tables
from .vocabulary import Vocabulary

logger = logging.getLogger(__name__)

CACHE_ENV = "PSE_PROCESSORS_CACHE_DIR"
_FORMAT = 3  # bump whenever the tables or the way they are built change
_SENTINEL = "\U0010FFFF".encode()  # a noncharacter; see _build_index
_SENTINEL_LEAD = 0xF4  # UTF-8 lead byte of U+100000..U+10FFFF
_MEMORY_CAPACITY = 64
_memory: "OrderedDict[str, CompiledGrammar]" = OrderedDict()
_lock = threading.Lock()


def user_cache_dir() -> Path:
    """The platform's per-user cache folder for this package."""
    if sys.platform == "darwin":
        base = Path.home() / "Library" / "Caches"
    elif os.name == "nt":
        base = Path(os.environ.get("LOCALAPPDATA", Path.home() / "AppData" / "Local"))
    else:
        base = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    return base / "pse-processors"


def cache_dir() -> Optional[Path]:
    """The on-disk cache folder, or ``None`` when ``PSE_PROCESSORS_CACHE_DIR`` disables it."""
    value = os.environ.get(CACHE_ENV)
    if value is None:
        return user_cache_dir()
    if value.strip().lower() in ("", "0", "off", "false", "none"):
        return None
    return Path(value).expanduser()


def clear_memory_cache() -> None:
    """Forget every grammar compiled in this process (the disk cache is kept)."""
    with _lock:
        _memory.clear()


def compile(  # noqa: A001 - the public name the docs promise
    constraint: Constraint,
    tokenizer: Any,
    *,
    eos_token_ids: Optional[Iterable[int]] = None,
    generation_config: Any = None,
    whitespace: str = "default",
    max_recursion_depth: int = 3,
    any_value_depth: int = 2,
    max_regex_length: int = 200_000,
) -> CompiledGrammar:
    """Compile ``constraint`` for ``tokenizer``, through the memory and disk caches.

    Args:
        constraint: a JSON Schema (dict or JSON string), a Pydantic model class,
            ``Regex("...")`` or ``Choice([...])``.
        tokenizer: a Hugging Face tokenizer or a :class:`~pse_processors.Vocabulary`.
        eos_token_ids: extra EOS ids, added to the tokenizer's and ``generation_config``'s.
        generation_config: a ``GenerationConfig`` whose ``eos_token_id`` also ends generation.
        whitespace, max_recursion_depth, any_value_depth: JSON Schema compiler options,
            see :class:`~pse_processors.json_schema.SchemaOptions`.
        max_regex_length: refuse constraints whose regex is longer, with
            :class:`~pse_processors.CompileLimitError`. outlines-core aborts the whole process
            when its automaton outgrows memory (a 780k-character regex from a real schema
            asked for 8 GB at once), so very large constraints are refused before that.

    Example:
        >>> import pse_processors as pse
        >>> vocab = pse.Vocabulary([b"t", b"rue", b"true", b"false", None], eos_token_ids=[4])
        >>> grammar = pse.compile({"type": "boolean"}, vocab)
        >>> grammar.accepts([0, 1, 4]), grammar is pse.compile({"type": "boolean"}, vocab)
        (True, True)
    """
    options = SchemaOptions(
        whitespace=whitespace, max_recursion_depth=max_recursion_depth, any_value_depth=any_value_depth,
        max_regex_length=max_regex_length,
    )
    spec = normalize(constraint, options)
    if len(spec.regex) > max_regex_length:  # Regex constraints; schemas are checked while compiling
        raise CompileLimitError(
            f"the constraint compiles to a regex of {len(spec.regex):,} characters, over the limit of "
            f"{max_regex_length:,} (max_regex_length): its automaton could exhaust memory. Lower "
            "max_recursion_depth or any_value_depth, bound fewer repetitions, or raise max_regex_length."
        )
    vocabulary = Vocabulary.from_tokenizer(tokenizer, eos_token_ids, generation_config)
    key = hashlib.sha256(f"{_FORMAT}\0{_version()}\0{spec.key}\0{vocabulary.fingerprint}".encode()).hexdigest()[:40]
    with _lock:
        grammar = _memory.get(key)
        if grammar is not None:
            _memory.move_to_end(key)
            if grammar.spec != spec:  # same automaton, other result type (e.g. two Pydantic classes)
                grammar = CompiledGrammar(grammar.tables, vocabulary, spec)
            return grammar
    grammar = CompiledGrammar(_load_or_build(key, spec.regex, vocabulary), vocabulary, spec)
    with _lock:
        _memory[key] = grammar
        while len(_memory) > _MEMORY_CAPACITY:
            _memory.popitem(last=False)
    return grammar


def _build_index(regex: str, vocabulary: Vocabulary) -> Any:
    """Build the outlines-core index of ``regex`` followed by an end sentinel character.

    outlines-core 0.2.14 drops a token whose last byte follows a complete match (after
    ``0`` in ``0(\\.5)?``, the single-byte token ``.`` is missing). Appending a sentinel
    character U+10FFFF means no complete match exists before the end, so no token is dropped.
    The sentinel gets a token id of its own (the vocabulary size); real tokens holding its
    lead byte 0xF4 (only plane-16 private-use characters use it) are left out, so no real
    token can spell the sentinel. "Accepting" becomes "the sentinel leads to a final state".
    """
    from outlines_core import Index
    from outlines_core import Vocabulary as OCVocabulary

    by_bytes: dict[bytes, list[int]] = {}
    for token_id, token in enumerate(vocabulary.token_bytes):
        if token is not None and _SENTINEL_LEAD not in token:
            by_bytes.setdefault(token, []).append(token_id)
    by_bytes.setdefault(_SENTINEL, []).append(vocabulary.size)  # id of the sentinel: vocab size
    start = time.perf_counter()
    try:
        index = Index(f"(?:{regex})\\x{{10FFFF}}", OCVocabulary(vocabulary.size + 1, by_bytes))
    except ValueError as exc:
        message = str(exc)
        if "incompatible with the regex" in message:
            raise UnsatisfiableConstraintError(
                "the tokenizer cannot spell the constraint: either no text satisfies it, or some token "
                "leads to a point where no token can continue "
                f"(outlines-core: {message.split('. ')[1] if '. ' in message else message})"
            ) from exc
        if "DFA" in message or "regex" in message.lower():
            raise SchemaError(f"the constraint's regex cannot be compiled: {message}", "") from exc
        raise CompileLimitError(f"the automaton could not be built: {message}") from exc
    logger.info("compiled an index in %.2fs", time.perf_counter() - start)
    return index


def _version() -> str:
    from . import __version__

    return __version__


def _load_or_build(key: str, regex: str, vocabulary: Vocabulary) -> GrammarTables:
    folder = cache_dir()
    path = folder / "grammars" / f"{key}.npz" if folder is not None else None
    meta = {"format": _FORMAT, "key": key, "regex_sha256": hashlib.sha256(regex.encode()).hexdigest()}
    if path is not None and path.exists():
        try:
            return GrammarTables.load(path, meta, vocabulary.size)
        except Exception as exc:  # noqa: BLE001 - any unreadable file is recompiled
            logger.warning("ignoring the corrupt grammar cache file %s (%s); recompiling", path, exc)
    tables = build_tables(_build_index(regex, vocabulary), vocabulary.size)
    if path is not None:
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            with tempfile.NamedTemporaryFile(dir=path.parent, delete=False, suffix=".tmp") as handle:
                tables.save(handle, meta)
            os.replace(handle.name, path)
        except OSError as exc:
            logger.warning("could not write the grammar cache file %s: %s", path, exc)
    return tables
