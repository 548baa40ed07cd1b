"""Stage 2: the compiler, the only compile path. ``compile()`` is defined here and re-exported.

:class:`Compiler` takes one vocabulary and one :class:`~pse_processors.CompileOptions`; it
parses a constraint once, picks its back end (``backends.py``), and returns a matcher. It owns
the caches, all of them :class:`~pse_processors.caching.lru.SizedLRU` instances and one
:class:`~pse_processors.caching.store.DiskStore`:

- in memory, (automaton key, vocabulary fingerprint) -> the byte-automaton matcher, so every
  processor for the same constraint and tokenizer shares one matcher and its masks (and the
  stages' own: schema -> regex in ``regexes.py``, schema -> Lark and Lark -> llguidance
  matcher in ``backends.py``);
- on disk, each schema's regex (``regexes/``), each regex's byte automaton (``grammars/``),
  dense automata (``tables/``) and token tries (``tries/``), each file bound to its inputs and
  sealed: see :mod:`~pse_processors.caching.store`. :meth:`Compiler.warm` writes them all.
"""

from __future__ import annotations

import io
import logging
import time
from pathlib import Path
from typing import Any, Callable, Iterable, Optional

from .. import defaults
from ..caching.lru import SizedLRU
from ..caching.store import CacheEntry, DiskStore, disk_store, entry_binding
from ..caching.store import cache_dir, user_cache_dir  # noqa: F401 - re-exported
from ..constraints.schema import Schema
from ..constraints.spec import Constraint, ConstraintSpec, ParsedConstraint, parse_constraint
from ..constraints.structure import StructuredConstraint
from ..errors import CompileLimitError, PSEError
from ..json_schema import SchemaOptions
from ..matchers.automaton import AutomatonMatcher
from ..matchers.base import Matcher
from ..matchers.byte_automaton import ByteAutomaton
from ..matchers.handoff import HandoffMatcher
from ..vocabulary import token_trie
from ..vocabulary.vocabulary import Vocabulary
from . import backends, regexes, structures
from .options import CompileOptions, options_from

logger = logging.getLogger(__name__)

CACHE_ENV = defaults.CACHE_ENV
_FORMAT = 9  # bump whenever the automaton files or the way they are built change
# Large automata take ~100 MB each: bounded by size as well as by count.
_memory = SizedLRU(
    defaults.MEMORY_CACHE_BYTES, lambda matcher: matcher.nbytes if isinstance(matcher, AutomatonMatcher) else 0,
    max_items=defaults.MEMORY_CACHE_ENTRIES,
)


class Compiler:
    """Compiles constraints for one vocabulary with one set of options.

    Example:
        >>> import pse_processors as pse
        >>> from pse_processors.compiler import Compiler
        >>> vocab = pse.Vocabulary([b"t", b"rue", b"true", b"false", None], eos_token_ids=[4])
        >>> compiler = Compiler(vocab, pse.CompileOptions(backend="dfa"))
        >>> matcher = compiler.compile({"type": "boolean"})
        >>> matcher.backend, matcher.accepts([0, 1, 4]), matcher is compiler.compile({"type": "boolean"})
        ('dfa', True, True)
    """

    def __init__(
        self, vocabulary: Vocabulary, options: Optional[CompileOptions] = None, *, handoff_after: Optional[int] = None
    ) -> None:
        if not isinstance(vocabulary, Vocabulary):
            raise TypeError(f"Compiler needs a Vocabulary (Vocabulary.from_tokenizer(...)), not {type(vocabulary).__name__}")
        self.vocabulary = vocabulary
        self.options = options_from(options, {})
        #: ``backend="auto"``'s warm start builds the automaton at once (``None``), or once llguidance
        #: has computed this many masks of the schema (:meth:`HandoffMatcher.start_build
        #: <pse_processors.matchers.handoff.HandoffMatcher.start_build>`): the vLLM processor's choice,
        #: where most new schemas serve a few requests. Not part of any cache key: a compile without
        #: it that finds a deferred matcher in memory starts its build.
        self.handoff_after = handoff_after
        self._schema_options: SchemaOptions = self.options.schema_options()

    def compile(self, constraint: Constraint) -> Matcher:
        """The matcher of ``constraint`` (through the memory and disk caches)."""
        if isinstance(constraint, Schema):
            constraint = constraint.constraint
        backends.check_backend(self.options.backend, constraint)
        if isinstance(constraint, StructuredConstraint):  # Reasoning, Delimited, Tools: see structures.py
            matcher = structures.compile_structure(constraint, self.vocabulary, self.options, self._inner_automaton)
        else:
            matcher = self._compile(constraint)
        # What a pickle of the matcher holds (see recipes.py). A cached matcher keeps the latest
        # recipe: any constraint that compiles to it rebuilds it.
        matcher.recipe = (constraint, self.options.recipe())
        return matcher

    def warm(self, constraint: Constraint, *, dense: bool = False) -> tuple[Matcher, dict[str, Path]]:
        """Compile ``constraint`` and leave in the disk cache every file a later compile of it loads.

        ``backend="auto"``'s hand-off is settled: its automaton is built and written, so a later
        process loads it instead of starting on llguidance. ``dense=True`` also builds and
        writes the dense automaton of the in-graph (TF/Flax) processors. Returns the matcher that
        later steps run on and the cache files now on disk for it, by name (``regex``,
        ``automaton``, ``token_trie``, ``dense_automaton``; none when the cache is off or
        refused, or for llguidance, which compiles in milliseconds and keeps nothing on disk).

        Example:
            >>> import pse_processors as pse
            >>> from pse_processors.compiler import Compiler
            >>> vocab = pse.Vocabulary([b"t", b"rue", b"true", b"false", None], eos_token_ids=[4])
            >>> matcher, files = Compiler(vocab).warm({"type": "boolean"})
            >>> matcher.backend, sorted(files)
            ('dfa', ['automaton', 'regex', 'token_trie'])
        """
        if isinstance(constraint, Schema):
            constraint = constraint.constraint
        matcher = self.compile(constraint)
        try:
            matcher = matcher.settled()
        except PSEError as exc:  # the hand-off stays on llguidance for good
            logger.warning("the byte automaton could not be built (%s): this constraint runs on llguidance", exc)
        store = disk_store()
        entries: dict[str, Optional[CacheEntry]] = {}
        if store is not None and isinstance(matcher, AutomatonMatcher) and matcher.spec.structure is None:
            # llguidance keeps nothing on disk; a structure's inner automata are written as they are built
            entries["regex"] = regexes.cache_entry(constraint, self._schema_options, store, write=True)
            # Written again if missing: the matcher may come from memory, compiled with the cache off.
            entries["automaton"] = _automaton_entry(matcher.spec.regex, store)
            _save_automaton(entries["automaton"], matcher.automaton, write_only_missing=True)
            entries["token_trie"] = token_trie.cache_entry(self.vocabulary, store)
            if not entries["token_trie"].path.exists():
                entries["token_trie"].save(lambda handle: matcher.trie.save(handle, self.vocabulary.fingerprint), "trie")
            if matcher.dense_file is None:
                key = entry_binding("tables", _FORMAT, matcher.spec.key, self.vocabulary.fingerprint)
                matcher.dense_file = (store.entry("tables", key, ".npz"), {"format": _FORMAT, "binding": key})
            entries["dense_automaton"] = matcher.dense_file[0]
        if dense and isinstance(matcher, AutomatonMatcher):
            matcher.dense_automaton  # noqa: B018 - built (or loaded) and written
        return matcher, {name: e.path for name, e in entries.items() if e is not None and e.path.exists()}

    def _compile(self, constraint: Constraint) -> Matcher:
        backend, options = self.options.backend, self._schema_options
        try:
            parsed: Any = parse_constraint(constraint)
        except TypeError:
            parsed = constraint  # not a constraint: the regex stage names the type
        if backend == "dfa":
            return self._automaton(parsed)
        chosen = backends.grammar_spec(parsed, options) if backend == "llguidance" else backends.wants_llguidance(parsed, options)
        if chosen is None:
            try:
                return self._automaton(parsed, defaults.AUTO_MAX_EXPANDED, warm_start=True)
            except CompileLimitError as exc:
                logger.info("the byte automaton is over a limit (%s): running the constraint on llguidance", exc)
                chosen = backends.grammar_spec(parsed, options)
        return backends.llguidance_matcher(chosen[0], self.vocabulary)

    def _inner_automaton(self, parsed: Any, auto: bool) -> ByteAutomaton:
        """The byte automaton of a constraint inside a structure (``auto``: ``backend="auto"``'s limit),
        through the same limits and disk cache as on its own."""
        store = disk_store()
        spec = self._checked_spec(parsed, defaults.AUTO_MAX_EXPANDED if auto else None, store)
        return _load_or_build(spec.regex, self.options.max_states, store)

    def _checked_spec(self, parsed: Any, max_expanded: Optional[int], store: Optional[DiskStore]) -> ConstraintSpec:
        """The constraint's spec, once its regex is within the limits (``CompileLimitError`` otherwise)."""
        max_regex_length = self.options.max_regex_length
        spec, expanded = regexes.spec_and_size(parsed, self._schema_options, store)
        if max_expanded is not None and expanded > max_expanded and spec.kind == "json":
            raise CompileLimitError(
                f"the automaton's regex has {expanded:,} characters written out, over backend='auto''s "
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
        return spec

    def _automaton(self, parsed: Any, max_expanded: Optional[int] = None, warm_start: bool = False) -> Matcher:
        """The byte-automaton matcher (``max_expanded``: ``backend="auto"``'s limit).

        ``warm_start`` (``backend="auto"``): a JSON Schema whose automaton is neither in memory nor
        on disk starts on llguidance while the automaton builds (see ``matchers/handoff.py``)."""
        store = disk_store()
        spec = self._checked_spec(parsed, max_expanded, store)
        vocabulary = self.vocabulary
        if vocabulary.dummy_prefix:  # Llama-2-style ▁ prefix: one optional leading space (see constraints/spec.py)
            spec = spec.with_dummy_prefix()
        key = entry_binding("tables", _FORMAT, spec.key, vocabulary.fingerprint)  # also the dense automaton's
        matcher = _memory.get(key)
        if matcher is not None:
            if isinstance(matcher, HandoffMatcher):
                if warm_start:
                    if self.handoff_after is None:  # this caller wants the automaton now
                        matcher.start_build()
                    return matcher if matcher.spec == spec else matcher.with_spec(spec)
                matcher = matcher.settled()  # backend="dfa" asks for the automaton itself
            if matcher.spec != spec:  # same automaton, other result type (e.g. two Pydantic classes)
                shared = matcher
                matcher = AutomatonMatcher(shared.automaton, shared.trie, vocabulary, spec)
                matcher.dense_file = shared.dense_file
            return matcher
        matcher = None
        if warm_start and spec.kind == "json":
            entry = _automaton_entry(spec.regex, store)
            if entry is None or not entry.exists():
                matcher = self._warm_start(parsed, spec, key, store)
        if matcher is None:
            matcher = self._automaton_matcher(spec, key, store)
        _memory.put(key, matcher)
        return matcher

    def _automaton_matcher(self, spec: ConstraintSpec, key: str, store: Optional[DiskStore]) -> AutomatonMatcher:
        """The byte automaton's matcher for ``spec`` (loaded from disk or built), its first mask computed."""
        automaton = _load_or_build(spec.regex, self.options.max_states, store)
        matcher = AutomatonMatcher(automaton, token_trie.trie_for(self.vocabulary, store), self.vocabulary, spec)
        if store is not None:  # the dense automaton of the jit/XLA processors, materialized on demand
            matcher.dense_file = (store.entry("tables", key, ".npz"), {"format": _FORMAT, "binding": key})
        matcher.mask_id(matcher.initial_state)  # the first mask; raises now if the tokenizer cannot start
        return matcher

    def _warm_start(self, parsed: Any, spec: ConstraintSpec, key: str, store: Optional[DiskStore]) -> Optional[Matcher]:
        """A :class:`~pse_processors.matchers.handoff.HandoffMatcher`, or ``None`` when llguidance
        cannot run the schema (then the caller builds the automaton now)."""
        try:
            grammar_spec, _ = backends.grammar_spec(parsed, self._schema_options)
            first = backends.llguidance_matcher(grammar_spec, self.vocabulary)
        except PSEError as exc:
            logger.info("llguidance cannot start this schema (%s): building its automaton now", exc)
            return None
        build = _after_grace(lambda: self._automaton_matcher(spec, key, store))
        return HandoffMatcher(first, spec, build, build_after=self.handoff_after)


#: A warm start's background build waits this long first: the caller's first mask (the end of
#: ``compile``, then ``bitmask``) would otherwise wait for the GIL behind the build, up to the
#: 5 ms switch interval each time (10-15 ms per first mask on MaskBench, a busy 2-core machine).
_BUILD_GRACE_S = 0.02


def _after_grace(build: Callable[[], Matcher]) -> Callable[[], Matcher]:
    def delayed() -> Matcher:
        time.sleep(_BUILD_GRACE_S)
        return build()

    return delayed


def compile(  # noqa: A001 - the public name the docs promise
    constraint: Constraint,
    tokenizer: Any,
    *,
    options: Optional[CompileOptions] = None,
    eos_token_ids: Optional[Iterable[int]] = None,
    generation_config: Any = None,
    **option_kwargs: Any,
) -> Matcher:
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
    backends.check_backend(opts.backend, constraint)  # before the tokenizer is read: the cheaper error first
    vocabulary = Vocabulary.from_tokenizer(tokenizer, eos_token_ids, generation_config)
    return Compiler(vocabulary, opts).compile(constraint)


def clear_memory_cache() -> None:
    """Forget every matcher compiled in this process (the disk cache is kept)."""
    _memory.clear()
    regexes.clear()
    backends.clear()
    structures.clear()


def _automaton_entry(regex: str, store: Optional[DiskStore]) -> Optional[CacheEntry]:
    """The ``grammars/`` entry of ``regex``'s byte automaton (it does not depend on the vocabulary)."""
    return None if store is None else store.entry("grammars", entry_binding("grammars", _FORMAT, regex), ".npz")


def _load_or_build(regex: str, max_states: int, store: Optional[DiskStore]) -> ByteAutomaton:
    """The regex's byte automaton, from the disk cache or built (it does not depend on the vocabulary)."""
    entry = _automaton_entry(regex, store)
    if entry is None:
        return ByteAutomaton.build(regex, max_states=max_states)
    meta = {"format": _FORMAT, "binding": entry.binding}
    sidecar = entry.path.with_suffix(".npy")  # a table over 16 MB, memory-mapped
    payload = entry.load("grammar")
    if payload is not None:
        try:
            if sidecar.exists():
                entry.store.check_file(sidecar)
            automaton = ByteAutomaton.load(io.BytesIO(payload), meta, sidecar=sidecar)
            if automaton.num_states <= max_states:
                return automaton
        except Exception as exc:  # noqa: BLE001 - any unreadable file is recompiled
            logger.warning("ignoring the corrupt grammar cache file %s (%s); recompiling", entry.path, exc)
    automaton = ByteAutomaton.build(regex, max_states=max_states)
    _save_automaton(entry, automaton)
    return automaton


def _save_automaton(entry: CacheEntry, automaton: ByteAutomaton, write_only_missing: bool = False) -> None:
    if write_only_missing and entry.path.exists():
        return
    meta = {"format": _FORMAT, "binding": entry.binding}
    entry.save(lambda handle: automaton.save(handle, meta, sidecar=entry.path.with_suffix(".npy")), "grammar")


__all__ = ["CACHE_ENV", "Compiler", "ParsedConstraint", "cache_dir", "clear_memory_cache", "compile", "user_cache_dir"]
