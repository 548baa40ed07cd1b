"""Pickling as a recipe: what travels between processes, and how it is rebuilt.

Matchers, processors and engines pickle as what built them, never as their automata, masks,
device caches, locks or per-row prefix states:

- a :class:`~pse_processors.Vocabulary` as its token bytes (one blob and a length array),
  EOS ids, dummy-prefix flag and fingerprint (about 0.5 MB for a 49k-token vocabulary);
- a :class:`~pse_processors.Matcher` as the constraint and the
  :func:`~pse_processors.compile` options that built it, the back end it runs on (``"dfa"`` or
  ``"llguidance"``, never ``"auto"``, so the rebuilt matcher runs on the same one), and its
  vocabulary. Unpickling calls :func:`~pse_processors.compile`, so it costs a memory-cache
  hit, a disk-cache load, or at worst a fresh compile, and it checks the vocabulary's
  fingerprint;
- a processor as its matcher and its own options. An unpickled processor starts fresh: it
  knows no prefixes (as after ``reset()``), and builds its device masks on first use.

Example:
    >>> import pickle, pse_processors as pse
    >>> vocab = pse.Vocabulary([b"t", b"rue", b"true", b"false", None], eos_token_ids=[4])
    >>> grammar = pse.compile({"type": "boolean"}, vocab)
    >>> pickle.loads(pickle.dumps(grammar)) is grammar  # this process: the memory cache's grammar
    True
"""

from __future__ import annotations

import copyreg
import pickle
from typing import Any, Optional

from ..matchers.automaton import AutomatonMatcher
from ..matchers.budget import BudgetMatcher
from ..matchers.handoff import HandoffMatcher
from ..matchers.llguidance import LLGuidanceMatcher
from ..matchers.unique_items import UniqueItemsMatcher
from .compiler import compile as compile_grammar
from .options import CompileOptions

from ..vocabulary.packing import check_fingerprint, pack_vocabulary  # noqa: F401 - 0.1 pickles name them here
from ..vocabulary.vocabulary import unpack_vocabulary  # noqa: F401 - 0.1 pickles name it here

#: compile() options that a grammar's recipe keeps (EOS ids are in its vocabulary, the engine is its own).
RECIPE_OPTIONS = (
    "whitespace", "indent", "whitespace_pattern", "additional_properties", "property_order", "strict", "max_recursion_depth",
    "any_value_depth", "max_regex_length", "max_compile_seconds", "unknown_formats", "max_states",
)


def rebuild_grammar(
    constraint: Any, vocabulary: Any, engine: str, options: dict, fingerprint: str, spec_key: Optional[str] = None
) -> Any:
    """Unpickle a :class:`~pse_processors.Matcher`: compile its recipe (through the caches).

    ``spec_key`` is the pickled grammar's regex (or Lark grammar) key: a constraint changed
    after it was compiled (a schema dict edited in place), or a version that compiles it
    differently, is refused instead of silently giving other masks."""
    check_fingerprint(vocabulary, fingerprint, "the unpickled grammar's vocabulary")
    backend = {"grammar": "llguidance"}.get(engine, engine)  # pickles of 0.1 name the old back end
    grammar = compile_grammar(constraint, vocabulary, options=CompileOptions(**options, backend=backend))
    check_fingerprint(grammar.vocabulary, fingerprint, "the rebuilt grammar's vocabulary")
    if spec_key is not None and grammar.spec.key != spec_key:
        raise pickle.UnpicklingError(
            "the unpickled grammar's constraint compiles to another regex/grammar than the pickled one did: "
            "the constraint was changed after compile() (e.g. a schema dict edited in place), or this "
            "pse_processors version compiles it differently; compile it again and pickle the new grammar"
        )
    return grammar


def rebuild(cls: type, args: tuple, kwargs: dict) -> Any:
    """Unpickle a processor: construct it again from its grammar and options."""
    return cls(*args, **kwargs)


def reduce_in_graph_processor(processor: Any) -> tuple:
    """``__reduce__`` of the TF and Flax processors: their grammar and the options of their
    in-graph constraint; the device tables are rebuilt on first use."""
    core = processor._core
    options = {"max_new_tokens": core.max_new_tokens, "prompt_length": core.prompt_length, "max_table_bytes": core.max_table_bytes}
    return rebuild, (type(processor), (processor.matcher,), options)


def reduce_matcher(matcher: Any) -> tuple:
    """How a matcher pickles: as its recipe (constraint, compile options, back end, vocabulary).

    Registered with :mod:`copyreg` for every back end below, so the matchers layer never
    imports the compiler that rebuilds them."""
    if matcher.recipe is None:
        raise pickle.PicklingError(
            f"this {type(matcher).__name__} was not built by pse_processors.compile, so it has no recipe to "
            "pickle; build it with pse_processors.compile(constraint, tokenizer, ...)"
        )
    constraint, options = matcher.recipe
    return rebuild_grammar, (
        constraint, matcher.vocabulary, matcher.backend, dict(options), matcher.vocabulary.fingerprint, matcher.spec.key
    )


for _cls in (AutomatonMatcher, LLGuidanceMatcher, HandoffMatcher, UniqueItemsMatcher, BudgetMatcher):
    copyreg.pickle(_cls, reduce_matcher)
