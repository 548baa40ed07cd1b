"""One process-wide grammar cache, backed by an on-disk cache of grammar tables.

- In memory: key (regex, vocabulary fingerprint) → :class:`CompiledGrammar`, so every
  processor for the same constraint and tokenizer shares one grammar and its masks.
- On disk: ``$PSE_PROCESSORS_CACHE_DIR`` (default: the user cache directory, e.g.
  ``~/.cache/pse-processors``) holds each schema's regex (``regexes/``, see
  :mod:`~pse_processors.compiler.regexes`) and each regex's byte automaton (``grammars/``, ``.npz``
  files, no pickle; tables over 16 MB in a memory-mapped ``.npy`` beside them). Set the
  variable to ``off`` (or ``0``, or an empty string) to disable it. A file that fails
  validation is recompiled and replaced.
"""

from __future__ import annotations

import hashlib
import logging
import os
import sys
import threading
from collections import OrderedDict
from pathlib import Path
from typing import Any, Iterable, Optional

from ..caching.store import write_atomically
from ..matchers.byte_automaton import ByteAutomaton
from ..constraints.spec import Constraint
from ..errors import CompileLimitError
from ..matchers.automaton import CompiledGrammar
from ..json_schema import SchemaOptions
from .options import CompileOptions, options_from
from . import backends as engine_choice
from . import regexes as regex_cache
from .regexes import spec_and_size
from ..constraints.schema import Schema
from ..vocabulary.token_trie import trie_for
from ..vocabulary.vocabulary import Vocabulary

logger = logging.getLogger(__name__)

CACHE_ENV = "PSE_PROCESSORS_CACHE_DIR"
_FORMAT = 7  # bump whenever the automaton files or the way they are built change
_MEMORY_CAPACITY = 64
_MEMORY_BYTES = 1 << 30  # large automata take ~100 MB each: bound the cache by size too
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
    regex_cache.clear()
    engine_choice.clear()


def compile(  # noqa: A001 - the public name the docs promise
    constraint: Constraint,
    tokenizer: Any,
    *,
    options: Optional[CompileOptions] = None,
    eos_token_ids: Optional[Iterable[int]] = None,
    generation_config: Any = None,
    **option_kwargs: Any,
) -> CompiledGrammar:
    """Compile ``constraint`` for ``tokenizer``, through the memory and disk caches.

    Args:
        constraint: a JSON Schema (dict or JSON string, or a :class:`~pse_processors.Schema`), a
            Pydantic model class, ``Regex("...")``, ``Choice([...])`` or ``Grammar("...")``.
        tokenizer: a Hugging Face tokenizer, a tiktoken ``Encoding`` or a
            :class:`~pse_processors.Vocabulary`.
        options: a :class:`~pse_processors.CompileOptions` (the JSON Schema compiler's options,
            the limits and the back end).
        eos_token_ids: extra EOS ids, added to the tokenizer's and ``generation_config``'s.
        generation_config: a ``GenerationConfig`` whose ``eos_token_id`` also ends generation.
        **option_kwargs: single options of :class:`~pse_processors.CompileOptions` by name
            (``whitespace="compact"``, ``backend="dfa"``...), applied over ``options``.

    Example:
        >>> import pse_processors as pse
        >>> vocab = pse.Vocabulary([b"t", b"rue", b"true", b"false", None], eos_token_ids=[4])
        >>> matcher = pse.compile({"type": "boolean"}, vocab)
        >>> matcher.accepts([0, 1, 4]), matcher is pse.compile({"type": "boolean"}, vocab, options=pse.CompileOptions())
        (True, True)
    """
    opts = options_from(options, option_kwargs)
    if isinstance(constraint, Schema):
        constraint = constraint.constraint
    schema_options = opts.schema_options()
    engine = {"llguidance": "grammar"}.get(opts.backend, opts.backend)
    engine_choice.check_engine(engine, constraint)
    grammar = _compile(constraint, tokenizer, schema_options, eos_token_ids, generation_config, opts.max_states, engine)
    # What a pickle of the grammar holds (see recipes.py). A cached grammar keeps the latest
    # recipe: any constraint that compiles to it rebuilds it.
    grammar.recipe = (constraint, opts.recipe())
    return grammar


def _compile(
    constraint: Constraint, tokenizer: Any, options: SchemaOptions, eos_token_ids: Optional[Iterable[int]],
    generation_config: Any, max_states: int, engine: str,
) -> CompiledGrammar:
    """:func:`compile` after its arguments are checked."""
    if engine == "dfa":
        return _compile_dfa(constraint, tokenizer, options, eos_token_ids, generation_config, max_states)
    chosen = engine_choice.grammar_spec(constraint, options) if engine == "grammar" else (
        engine_choice.wants_grammar(constraint, options)
    )
    if chosen is None:
        try:
            return _compile_dfa(
                constraint, tokenizer, options, eos_token_ids, generation_config, max_states, engine_choice.AUTO_MAX_EXPANDED,
                warm_start=True,
            )
        except CompileLimitError as exc:
            logger.info("the byte automaton is over a limit (%s): running the constraint on the grammar engine", exc)
            chosen = engine_choice.grammar_spec(constraint, options)
    vocabulary = Vocabulary.from_tokenizer(tokenizer, eos_token_ids, generation_config)
    return engine_choice.pushdown_grammar(chosen[0], vocabulary)


def _compile_dfa(
    constraint: Constraint, tokenizer: Any, options: SchemaOptions, eos_token_ids: Optional[Iterable[int]],
    generation_config: Any, max_states: int, max_expanded: Optional[int] = None, warm_start: bool = False,
) -> CompiledGrammar:
    """The byte-automaton back end of :func:`compile` (``max_expanded``: see ``engine_choice.AUTO_MAX_EXPANDED``).

    ``warm_start`` (``engine="auto"``): a JSON Schema whose automaton is neither in memory nor
    on disk starts on the grammar engine while the automaton builds (see ``handoff.py``)."""
    max_regex_length = options.max_regex_length
    folder = cache_dir()
    spec, expanded = spec_and_size(constraint, options, folder)
    if max_expanded is not None and expanded > max_expanded and spec.kind == "json":
        raise CompileLimitError(
            f"the automaton's regex has {expanded:,} characters written out, over engine='auto''s "
            f"{max_expanded:,}: building it would take seconds"
        )
    if expanded > 2.5 * max_regex_length:  # counted repetitions are written out by the automaton builder
        raise CompileLimitError(
            f"the constraint's regex, with its counted repetitions written out, has {expanded:,} characters, "
            f"over 2.5x max_regex_length ({max_regex_length:,}): its automaton would take too long and too "
            "much memory to build. Lower maxLength/maxItems bounds or raise max_regex_length."
        )
    if len(spec.regex) > max_regex_length:  # Regex constraints; schemas are checked while compiling
        raise CompileLimitError(
            f"the constraint compiles to a regex of {len(spec.regex):,} characters, over the limit of "
            f"{max_regex_length:,} (max_regex_length): its automaton could exhaust memory. Lower "
            "max_recursion_depth or any_value_depth, bound fewer repetitions, or raise max_regex_length."
        )
    vocabulary = Vocabulary.from_tokenizer(tokenizer, eos_token_ids, generation_config)
    if vocabulary.dummy_prefix:  # Llama-2-style ▁ prefix: one optional leading space (see constraints.py)
        spec = spec.with_dummy_prefix()
    key = hashlib.sha256(f"{_FORMAT}\0{_version()}\0{spec.key}\0{vocabulary.fingerprint}".encode()).hexdigest()[:40]
    with _lock:
        grammar = _memory.get(key)
        if grammar is not None:
            _memory.move_to_end(key)
    if grammar is not None:
        if hasattr(grammar, "automaton_grammar"):  # a warm start (handoff.py)
            if warm_start:
                return grammar if grammar.spec == spec else grammar.with_spec(spec)
            grammar = grammar.automaton_grammar()  # engine="dfa" asks for the automaton itself
        if grammar.spec != spec:  # same automaton, other result type (e.g. two Pydantic classes)
            shared = grammar
            grammar = CompiledGrammar(shared.automaton, shared.trie, vocabulary, spec)
            grammar.tables_file = shared.tables_file
        return grammar
    grammar = None
    if warm_start and spec.kind == "json":
        path = _automaton_path(spec.regex, folder)[0]
        if path is None or not path.exists():
            grammar = _warm_start(constraint, options, vocabulary, spec, key, max_states, folder)
    if grammar is None:
        grammar = _automaton_grammar(spec, vocabulary, key, max_states, folder)
    with _lock:
        _memory[key] = grammar
        while len(_memory) > 1 and (
            len(_memory) > _MEMORY_CAPACITY or sum(_nbytes(g) for g in _memory.values()) > _MEMORY_BYTES
        ):
            _memory.popitem(last=False)
    return grammar


def _automaton_grammar(spec: Any, vocabulary: Vocabulary, key: str, max_states: int, folder: Optional[Path]) -> CompiledGrammar:
    """The byte automaton's grammar for ``spec`` (loaded from disk or built), its first mask computed."""
    automaton = _load_or_build(spec.regex, max_states, folder)
    grammar = CompiledGrammar(automaton, trie_for(vocabulary, folder), vocabulary, spec)
    if folder is not None:  # the dense tables of the jit/XLA processors, materialized on demand
        grammar.tables_file = (folder / "tables" / f"{key}.npz", {"format": _FORMAT, "key": key})
    grammar.mask_id(grammar.initial_state)  # the first mask; raises now if the tokenizer cannot start
    return grammar


def _warm_start(
    constraint: Constraint, options: SchemaOptions, vocabulary: Vocabulary, spec: Any, key: str, max_states: int,
    folder: Optional[Path],
) -> Optional[CompiledGrammar]:
    """A :class:`~pse_processors.matchers.handoff.HandoffGrammar`, or ``None`` when the grammar
    engine cannot run the schema (then the caller builds the automaton now)."""
    from ..errors import PSEError
    from ..matchers.handoff import HandoffGrammar

    try:
        grammar_spec, _ = engine_choice.grammar_spec(constraint, options)
        pushdown = engine_choice.pushdown_grammar(grammar_spec, vocabulary)
    except PSEError as exc:
        logger.info("the grammar engine cannot start this schema (%s): building its automaton now", exc)
        return None
    return HandoffGrammar(pushdown, spec, lambda: _automaton_grammar(spec, vocabulary, key, max_states, folder))


def _nbytes(grammar: CompiledGrammar) -> int:
    automaton = getattr(grammar, "automaton", None)  # a HandoffGrammar has none of its own
    return 0 if automaton is None else automaton.nbytes


def _version() -> str:
    from .. import __version__

    return __version__


def _automaton_path(regex: str, folder: Optional[Path]) -> tuple[Any, dict]:
    """(the disk cache file of ``regex``'s automaton or ``None``, the metadata it must carry)."""
    key = hashlib.sha256(f"{_FORMAT}\0{_version()}\0{regex}".encode()).hexdigest()[:40]
    path = folder / "grammars" / f"{key}.npz" if folder is not None else None
    meta = {"format": _FORMAT, "key": key, "regex_sha256": hashlib.sha256(regex.encode()).hexdigest()}
    return path, meta


def _load_or_build(regex: str, max_states: int, folder: Optional[Path]) -> ByteAutomaton:
    """The regex's byte automaton, from the disk cache or built (it does not depend on the vocabulary)."""
    path, meta = _automaton_path(regex, folder)
    if path is not None and path.exists():
        try:
            automaton = ByteAutomaton.load(path, meta)
            if automaton.num_states <= max_states:
                return automaton
        except Exception as exc:  # noqa: BLE001 - any unreadable file is recompiled
            logger.warning("ignoring the corrupt grammar cache file %s (%s); recompiling", path, exc)
    automaton = ByteAutomaton.build(regex, max_states=max_states)
    if path is not None:
        write_atomically(path, lambda handle: automaton.save(handle, meta, sidecar=path.with_suffix(".npy")), "grammar")
    return automaton
