"""Which back end runs a constraint: the byte automaton (``"dfa"``) or the grammar engine.

``compile(..., engine=...)``:

- ``"dfa"``: today's byte automaton; recursion unrolled to ``max_recursion_depth``, any
  value nested at most ``any_value_depth`` deep. The only one the in-graph (TF, Flax)
  processors can run.
- ``"grammar"``: the compiler's grammar output run lazily by llguidance
  (:class:`~pse_processors.matchers.llguidance.PushdownGrammar`); recursion is unbounded.
- ``"auto"`` (default): the byte automaton, unless the schema recurses (a recursive
  ``$ref``, or any JSON value, which the automaton could only cut at a fixed depth), the
  automaton would hit a compile limit (``CompileLimitError``), or its regex is long enough
  to take seconds to build (:data:`AUTO_MAX_EXPANDED`); then the grammar engine. A
  :class:`~pse_processors.Grammar` always runs on the grammar engine. A JSON Schema whose
  automaton is in no cache yet starts on the grammar engine while the automaton builds in
  the background (:mod:`~pse_processors.matchers.handoff`).
"""

from __future__ import annotations

import dataclasses
import json
import logging
import threading
from collections import OrderedDict
from typing import Any, Optional

from ..constraints.spec import Choice, Constraint, ConstraintSpec, Grammar, Regex, json_schema_of, normalize
from ..errors import SchemaError
from ..json_schema import SchemaOptions, json_schema_to_grammar
from ..json_schema.rules import terminal_only
from ..vocabulary.vocabulary import Vocabulary

logger = logging.getLogger(__name__)

ENGINES = ("auto", "dfa", "grammar")
#: ``"auto"`` runs a schema on the grammar engine when its regex, with counted repetitions
#: written out, is longer: such automata take seconds to build (a 240k-character one took
#: 156 s on a loaded 2-core machine, its grammar 0.34 s; MaskBench dev schemas under 8k took
#: 0.1-2 s), while the grammar engine compiles in milliseconds and gives the same masks.
AUTO_MAX_EXPANDED = 50_000
_SPECS: "OrderedDict[str, tuple[ConstraintSpec, bool]]" = OrderedDict()
_GRAMMARS: "OrderedDict[tuple, Any]" = OrderedDict()
_CAPACITY = 64
_lock = threading.Lock()


def check_engine(engine: str, constraint: Constraint) -> None:
    """Raise ``ValueError`` for an unknown engine, ``SchemaError`` for a Grammar on ``"dfa"``."""
    if engine not in ENGINES:
        raise ValueError(f"engine must be one of {', '.join(map(repr, ENGINES))}, not {engine!r}")
    if engine == "dfa" and isinstance(constraint, Grammar):
        raise SchemaError(
            "a Grammar runs on the grammar engine only (a context-free grammar has no byte automaton): "
            "use engine='grammar' or 'auto'",
            "",
        )


def grammar_spec(constraint: Constraint, options: SchemaOptions) -> tuple[ConstraintSpec, bool]:
    """``(spec with its Lark grammar, recursive)`` for ``constraint`` (cached in memory).

    ``recursive`` is true when the byte automaton could hold the language only cut at a depth."""
    if isinstance(constraint, Grammar):
        return ConstraintSpec("grammar", "", lark=constraint.lark), True
    if isinstance(constraint, (Regex, Choice)):
        spec = normalize(constraint, options)
        return dataclasses.replace(spec, lark=terminal_only(spec.regex)), False
    schema, result_type = json_schema_of(constraint)
    key = json.dumps([schema, dataclasses.asdict(options)], sort_keys=True, default=str)
    with _lock:
        found = _SPECS.get(key)
        if found is not None:
            _SPECS.move_to_end(key)
    if found is None:
        output = json_schema_to_grammar(schema, options)
        found = (ConstraintSpec("json", "", lark=output.lark), output.recursive)
        with _lock:
            _SPECS[key] = found
            while len(_SPECS) > _CAPACITY:
                _SPECS.popitem(last=False)
    spec, recursive = found
    return dataclasses.replace(spec, result_type=result_type), recursive


def pushdown_grammar(spec: ConstraintSpec, vocabulary: Vocabulary) -> Any:
    """The :class:`~pse_processors.matchers.llguidance.PushdownGrammar` of ``spec``, shared per (grammar, vocabulary)."""
    from ..matchers.llguidance import PushdownGrammar

    if vocabulary.dummy_prefix:  # Llama-2-style ▁ prefix: one optional leading space (see constraints.py)
        spec = spec.with_dummy_prefix()
    key = (spec.key, vocabulary.fingerprint)
    with _lock:
        grammar = _GRAMMARS.get(key)
        if grammar is not None:
            _GRAMMARS.move_to_end(key)
    if grammar is None:
        grammar = PushdownGrammar(spec.lark, vocabulary, spec)  # type: ignore[arg-type]
        grammar.mask_id(grammar.initial_state)  # the first mask; raises now if the tokenizer cannot start
        with _lock:
            grammar = _GRAMMARS.setdefault(key, grammar)
            while len(_GRAMMARS) > _CAPACITY:
                _GRAMMARS.popitem(last=False)
    if grammar.spec != spec:  # same grammar, other result type (e.g. two Pydantic classes)
        grammar = grammar.with_spec(spec)
    return grammar


def clear() -> None:
    with _lock:
        _SPECS.clear()
        _GRAMMARS.clear()


def wants_grammar(constraint: Constraint, options: SchemaOptions) -> Optional[tuple[ConstraintSpec, bool]]:
    """For ``"auto"``: the grammar spec when the constraint recurses, else ``None`` (try the automaton)."""
    if isinstance(constraint, (Regex, Choice)):
        return None
    found = grammar_spec(constraint, options)
    return found if found[1] else None
