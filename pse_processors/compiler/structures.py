"""Compiling structure in free text (:class:`~pse_processors.Reasoning`, :class:`~pse_processors.Delimited`,
:class:`~pse_processors.Tools`): the back-end choice, both back ends, the budget and prompt wrapper.

- ``backend="dfa"``: ONE byte automaton for the whole construct (``matchers/compose.py``): the
  inner constraints' automata (as each compiles on its own, through the disk cache), markers
  (special tokens as symbol columns ``256 + k``) and free-text pieces. A
  :class:`~pse_processors.Grammar` inside has no automaton and is refused by name.
- ``backend="llguidance"``: one grammar, a sub-grammar per inner constraint
  (:mod:`.structure_lark`).
- ``backend="auto"``: the automaton when every inner constraint would be one under ``"auto"``
  (no recursion, no Grammar) and it builds within the limits; otherwise llguidance.

A :class:`~pse_processors.Reasoning` gets its prompt detection (``matchers/prompts.py``) and, with
``max_tokens``, the thinking budget (``matchers/budget.py``), over either back end. Matchers are
kept in memory per (construct, options, vocabulary), like every other constraint.

Example:
    >>> import pse_processors as pse
    >>> vocab = pse.Vocabulary([bytes([b]) for b in range(256)] + [None], eos_token_ids=[256])
    >>> matcher = pse.compile(pse.Delimited(pse.Choice(["yes", "no"])), vocab)
    >>> matcher.backend, matcher.spec.kind, matcher.accepts(list(b"ok ```json\\nyes\\n``` fine") + [256])
    ('dfa', 'delimited', True)
"""

from __future__ import annotations

import copy
import logging
from typing import Any, Callable

from .. import defaults
from ..caching.lru import SizedLRU
from ..caching.store import disk_store
from ..constraints.freetext import lower_structure
from ..constraints.spec import ConstraintSpec, parse_constraint
from ..constraints.structure import Alt, Capture, FreeText, Inner, Lit, Lowered, Node, Rep, Seq, StructuredConstraint
from ..errors import CompileLimitError, SchemaError
from ..matchers import compose
from ..matchers.automaton import AutomatonMatcher
from ..matchers.base import Matcher
from ..matchers.budget import BudgetMatcher
from ..matchers.byte_automaton import ByteAutomaton
from ..matchers.llguidance import LLGuidanceMatcher
from ..matchers.prompts import PromptScanner
from ..vocabulary import token_trie
from . import backends
from .structure_lark import inner_order, structure_grammar, top_level_grammar

logger = logging.getLogger(__name__)

_memory = SizedLRU(
    defaults.MEMORY_CACHE_BYTES, lambda m: m.nbytes if isinstance(m, (AutomatonMatcher, BudgetMatcher)) else 0,
    max_items=defaults.MEMORY_CACHE_ENTRIES,
)


def clear() -> None:
    _memory.clear()


def compile_structure(
    constraint: StructuredConstraint, vocabulary: Any, options: Any, inner_automaton: Callable[[Any, bool], ByteAutomaton],
) -> Matcher:
    """The matcher of ``constraint`` for ``vocabulary`` under ``options`` (a CompileOptions).

    ``inner_automaton(parsed, auto)`` is the compiler's own path to an inner constraint's byte
    automaton (its limits and disk cache; ``auto``: ``backend="auto"``'s limit applies)."""
    lowered = lower_structure(constraint, vocabulary)
    schema_options = options.schema_options()
    grammar_inside = [i for i in lowered.inners() if parse_constraint(i.constraint).kind == "grammar"]
    backend = options.backend
    if backend == "dfa" and grammar_inside:
        raise SchemaError(
            f"a Grammar inside {type(constraint).__name__} runs on llguidance only (a context-free grammar has no "
            "byte automaton): use backend='llguidance' or 'auto'", None,  # type: ignore[arg-type]
        )
    if backend == "auto" and (grammar_inside or any(_recursive(i, schema_options) for i in lowered.inners())):
        backend = "llguidance"
    base_key = repr((schema_options, options.max_states))
    requested = (lowered.key, base_key, vocabulary.fingerprint, options.backend)
    found = _memory.get(requested)
    if found is not None:
        return found
    if backend in ("dfa", "auto"):
        spec = ConstraintSpec(lowered.kind, "", structure=lowered, structure_options=base_key + "|dfa")
        try:
            matcher = _wrapped(_automaton_matcher(lowered, spec, vocabulary, options, inner_automaton, backend == "auto"), lowered)
        except CompileLimitError as exc:
            if backend == "dfa":
                raise
            logger.info("the structure's automaton is over a limit (%s): running it on llguidance", exc)
        else:
            return _memory.setdefault(requested, matcher)
    larks = [_mapped_errors(i, lambda i=i: backends.grammar_spec(i.constraint, schema_options)[0].lark) for i in inner_order(lowered.root)]
    main, subs = structure_grammar(lowered.root, larks)
    grammar = top_level_grammar(main, subs)
    spec = ConstraintSpec(lowered.kind, "", lark=grammar, structure=lowered, structure_options=base_key + "|llguidance")
    base = LLGuidanceMatcher(grammar, vocabulary, spec, symbols=lowered.symbols)
    base.mask_id(base.initial_state)  # the first mask; raises now if the tokenizer cannot start
    return _memory.setdefault(requested, _wrapped(base, lowered))


def _recursive(inner: Inner, schema_options: Any) -> bool:
    """Whether ``backend="auto"`` would run this inner constraint on llguidance (it recurses)."""
    parsed = parse_constraint(inner.constraint)
    if parsed.kind != "json":
        return False
    return _mapped_errors(inner, lambda: backends.wants_llguidance(parsed, schema_options)) is not None


def _automaton_matcher(
    lowered: Lowered, spec: ConstraintSpec, vocabulary: Any, options: Any, inner_automaton: Callable, auto: bool
) -> AutomatonMatcher:
    """The construct's byte-automaton matcher (symbols: the marker tokens, as columns 256 + k)."""
    columns = {token: 256 + k for k, token in enumerate(lowered.symbols)}
    automata: dict[str, ByteAutomaton] = {}

    def piece(node: Node) -> Any:
        if isinstance(node, Lit):
            return compose.literal([b for u in node.units for b in (u if isinstance(u, bytes) else [columns[u]])])
        if isinstance(node, FreeText):
            return compose.text(node.until, node.forbid, node.first_not)
        if isinstance(node, Inner):
            if node.text not in automata:
                parsed = parse_constraint(node.constraint)
                automata[node.text] = _mapped_errors(node, lambda: inner_automaton(parsed, auto))
            return compose.from_automaton(automata[node.text])
        if isinstance(node, Capture):
            return piece(node.item)
        if isinstance(node, Seq):
            return compose.Seq(*(piece(item) for item in node.items))
        if isinstance(node, Alt):
            return compose.Alt(*(piece(item) for item in node.items))
        if isinstance(node, Rep):
            return compose.Repeat(piece(node.item), node.low, node.high)
        raise TypeError(f"not a structure node: {node!r}")

    automaton = compose.compose(piece(lowered.root), len(lowered.symbols), options.max_states)
    trie = token_trie.trie_for(vocabulary, disk_store()).with_symbols(lowered.symbols)
    matcher = AutomatonMatcher(automaton, trie, vocabulary, spec)
    matcher.mask_id(matcher.initial_state)  # the first mask; raises now if the tokenizer cannot start
    return matcher


def _wrapped(matcher: Matcher, lowered: Lowered) -> Matcher:
    """A reasoning block's prompt detection and, with a budget, the budget wrapper."""
    markers = lowered.reasoning
    if markers is None:
        return matcher
    if markers.max_tokens is not None:
        return BudgetMatcher(matcher, markers)
    matcher.prompt_scanner = PromptScanner(matcher, markers)
    return matcher


def _mapped_errors(inner: Inner, build: Callable[[], Any]) -> Any:
    """``build()``, with a tool call's schema errors pointing under the tool (``#/tools/NAME/parameters...``)."""
    try:
        return build()
    except SchemaError as exc:
        if inner.role != "call" or not exc.pointer:
            raise
        for prefix, name in _tool_prefixes(inner).items():
            if exc.pointer == prefix or exc.pointer.startswith(prefix + "/"):
                moved = copy.copy(exc)
                pointer = f"#/tools/{name}/parameters{exc.pointer[len(prefix):]}"
                moved.pointer = pointer
                moved.args = (str(exc).replace(f"(at {exc.pointer})", f"(at {pointer})"),)
                raise moved from exc
        raise


def _tool_prefixes(inner: Inner) -> dict[str, str]:
    """Where each tool's parameters sit in a call's schema."""
    schema = inner.constraint
    wrappers = schema.get("anyOf", [schema]) if isinstance(schema, dict) else []
    found = {}
    for index, wrapper in enumerate(wrappers):
        name = wrapper.get("properties", {}).get("name", {}).get("const")
        at = f"#/properties/{inner.key}" if len(wrappers) == 1 else f"#/anyOf/{index}/properties/{inner.key}"
        found[at] = name
    return found

