"""Which back end runs a constraint, and the llguidance stage: the Lark grammar and its matcher.

``CompileOptions(backend=...)``:

- ``"dfa"``: the byte automaton; recursion unrolled to ``max_recursion_depth``, any value
  nested at most ``any_value_depth`` deep. The only one the in-graph (TF, Flax) processors
  can run.
- ``"llguidance"``: the compiler's Lark output run lazily by llguidance
  (:class:`~pse_processors.matchers.llguidance.LLGuidanceMatcher`); recursion is unbounded.
- ``"auto"`` (default): the byte automaton, unless the schema recurses (a recursive
  ``$ref``, or any JSON value, which the automaton could only cut at a fixed depth), the
  automaton would hit a compile limit (``CompileLimitError``), or its regex is long enough
  to take seconds to build (:data:`~pse_processors.defaults.AUTO_MAX_EXPANDED`); then
  llguidance. A :class:`~pse_processors.Grammar` always runs on llguidance. A JSON Schema whose
  automaton is in no cache yet starts on llguidance while the automaton builds in the
  background (:mod:`~pse_processors.matchers.handoff`).

Where llguidance's own JSON Schema front end enforces exactly the language our compiler would
write (:mod:`.llg_json` decides from the schema and the options), the grammar handed to
llguidance embeds the schema (``%json``) instead of our Lark: our compiler does not run, and
llguidance reads no large Lark text. Where llguidance then refuses it, today's path runs.
"""

from __future__ import annotations

import dataclasses
import json
import logging
from typing import Any, Optional

from .. import defaults
from ..caching.lru import SizedLRU
from ..constraints.spec import Constraint, ConstraintSpec, Grammar, normalize, parse_constraint
from ..errors import PSEError, SchemaError
from ..json_schema import SchemaOptions, json_schema_to_grammar
from ..json_schema.rules import terminal_only, unique_items_schema
from ..json_schema.unique_items import UniquePlan, has_unique_items
from ..matchers.base import Matcher
from ..matchers.llguidance import LLGuidanceMatcher
from ..matchers.unique_items import UniqueItemsMatcher
from ..vocabulary.vocabulary import Vocabulary
from . import llg_json
from .finiteness import check_grammar
from .options import BACKENDS

logger = logging.getLogger(__name__)

#: Deprecated (0.1): the back ends under their old names.
ENGINES = ("auto", "dfa", "grammar")
AUTO_MAX_EXPANDED = defaults.AUTO_MAX_EXPANDED
_specs = SizedLRU(max_items=defaults.SPEC_CACHE_ENTRIES)  # schema + options -> (Lark spec, recursive); checked grammars
_matchers = SizedLRU(max_items=defaults.MEMORY_CACHE_ENTRIES)  # (Lark key, vocabulary) -> LLGuidanceMatcher
_front_end_sources = SizedLRU(max_items=defaults.SPEC_CACHE_ENTRIES)  # llg_json grammar -> (parsed, options)


def check_backend(backend: str, constraint: Constraint) -> None:
    """Raise ``ValueError`` for an unknown back end, ``SchemaError`` for a Grammar on ``"dfa"``."""
    if backend not in BACKENDS:
        raise ValueError(f"backend must be one of {', '.join(map(repr, BACKENDS))}, not {backend!r}")
    if backend == "dfa" and isinstance(constraint, Grammar):
        raise SchemaError(
            "a Grammar runs on llguidance only (a context-free grammar has no byte automaton): "
            "use backend='llguidance' or 'auto'",
            "",
        )


def grammar_spec(constraint: Any, options: SchemaOptions, use_front_end: bool = True) -> tuple[ConstraintSpec, bool]:
    """``(spec with its Lark grammar, recursive)`` for ``constraint`` (raw or parsed; cached in memory).

    ``recursive`` is true when the byte automaton could hold the language only cut at a depth.
    ``use_front_end=False``: our compiler's Lark even where llguidance's JSON Schema front end
    would do (see :mod:`.llg_json`)."""
    parsed = parse_constraint(constraint)
    if parsed.kind == "grammar":
        lark = parsed.constraint.lark
        if _specs.get(("grammar", lark)) is None:
            check_grammar(lark)  # a start rule (or a rule it reaches) that can never finish is refused
            _specs.put(("grammar", lark), True)
        return ConstraintSpec("grammar", "", lark=lark), True
    if parsed.kind != "json":
        spec = normalize(parsed.constraint, options)
        return dataclasses.replace(spec, lark=terminal_only(spec.regex)), False
    # The schema's own text: its property order is the generation order (sorted keys would
    # give two schemas that differ only in that order one grammar).
    text = parsed.text if parsed.text is not None else json.dumps(parsed.schema, default=str)
    key = (text, repr(options), use_front_end)
    found = _specs.get(key)
    if found is None:
        # llguidance's front end ignores uniqueItems: only our Lark carries it (to the check beside it)
        fast = llg_json.wrapped(parsed.schema, options) if use_front_end and not has_unique_items(parsed.schema) else None
        if fast is not None:  # no recursion, no any value: the automaton can hold it too
            found = (ConstraintSpec("json", "", lark=fast), False)
            _front_end_sources.put(fast, (parsed, options, key))
        else:
            output = json_schema_to_grammar(parsed.schema, options)
            found = (ConstraintSpec("json", "", lark=output.lark), output.recursive)
        _specs.put(key, found)
    spec, recursive = found
    return dataclasses.replace(spec, result_type=parsed.result_type), recursive


def llguidance_matcher(spec: ConstraintSpec, vocabulary: Vocabulary) -> Matcher:
    """The :class:`~pse_processors.matchers.llguidance.LLGuidanceMatcher` of ``spec``, shared per (grammar, vocabulary)
    (inside a :class:`~pse_processors.matchers.unique_items.UniqueItemsMatcher` where arrays keep unique items)."""
    source = _front_end_sources.get(spec.lark) if spec.lark is not None and llg_json.is_wrapped(spec.lark) else None
    if vocabulary.dummy_prefix:  # Llama-2-style ▁ prefix: one optional leading space (see constraints/spec.py)
        spec = spec.with_dummy_prefix()
    key = (spec.key, vocabulary.fingerprint)
    matcher = _matchers.get(key)
    if matcher is None:
        try:
            matcher = LLGuidanceMatcher(spec.lark, vocabulary, spec)  # type: ignore[arg-type]
            unique = unique_items_schema(spec.lark)
            if unique is not None:  # uniqueItems: a check of the values beside the grammar
                matcher = UniqueItemsMatcher(matcher, UniquePlan(unique))
            matcher.mask_id(matcher.initial_state)  # the first mask; raises now if the tokenizer cannot start
        except PSEError:
            if source is None:
                raise
            # llguidance's front end refused the schema: our compiler's grammar (and its errors) from now on
            logger.info("llguidance's JSON Schema front end refused a schema; compiling it to Lark")
            parsed, options, fast_key = source
            found = grammar_spec(parsed, options, use_front_end=False)
            _specs.put(fast_key, found)
            return llguidance_matcher(dataclasses.replace(found[0], result_type=spec.result_type), vocabulary)
        matcher = _matchers.setdefault(key, matcher)
    if matcher.spec != spec:  # same grammar, other result type (e.g. two Pydantic classes)
        matcher = matcher.with_spec(spec)
    return matcher


def clear() -> None:
    _specs.clear()
    _matchers.clear()
    _front_end_sources.clear()


def wants_llguidance(constraint: Any, options: SchemaOptions) -> Optional[tuple[ConstraintSpec, bool]]:
    """For ``"auto"``: the grammar spec when the constraint recurses, else ``None`` (try the automaton)."""
    if parse_constraint(constraint).kind in ("regex", "choice"):
        return None
    found = grammar_spec(constraint, options)
    return found if found[1] else None


# Deprecated (0.1) names of this module's functions.
pushdown_grammar = llguidance_matcher
wants_grammar = wants_llguidance
