"""Pickling as a recipe: what travels between processes, and how it is rebuilt.

Grammars, processors and engines pickle as what built them, never as their tables, masks,
device caches, locks or per-row prefix states:

- a :class:`~pse_processors.Vocabulary` as its token bytes (one blob and a length array),
  EOS ids, dummy-prefix flag and fingerprint (about 0.5 MB for a 49k-token vocabulary);
- a :class:`~pse_processors.CompiledGrammar` as the constraint and the
  :func:`~pse_processors.compile` options that built it, the engine it runs on (``"dfa"`` or
  ``"grammar"``, never ``"auto"``, so the rebuilt grammar runs on the same one), and its
  vocabulary. Unpickling calls :func:`~pse_processors.compile`, so it costs a memory-cache
  hit, a disk-cache load, or at worst a fresh compile, and it checks the vocabulary's
  fingerprint;
- a processor as its grammar and its own options. An unpickled processor starts fresh: it
  knows no prefixes (as after ``reset()``), and builds its device masks on first use.

Example:
    >>> import pickle, pse_processors as pse
    >>> vocab = pse.Vocabulary([b"t", b"rue", b"true", b"false", None], eos_token_ids=[4])
    >>> grammar = pse.compile({"type": "boolean"}, vocab)
    >>> pickle.loads(pickle.dumps(grammar)) is grammar  # this process: the memory cache's grammar
    True
"""

from __future__ import annotations

import pickle
from typing import Any, Optional

import numpy as np

from ..errors import VocabularyError

#: compile() options that a grammar's recipe keeps (EOS ids are in its vocabulary, the engine is its own).
RECIPE_OPTIONS = (
    "whitespace", "indent", "whitespace_pattern", "additional_properties", "strict", "max_recursion_depth",
    "any_value_depth", "max_regex_length", "max_compile_seconds", "unknown_formats", "max_states",
)


def pack_vocabulary(token_bytes: tuple) -> tuple[bytes, bytes]:
    """``(blob, lengths)``: every token's bytes joined, and little-endian int32 lengths (-1: ``None``)."""
    lengths = np.fromiter((-1 if b is None else len(b) for b in token_bytes), dtype="<i4", count=len(token_bytes))
    return b"".join(b for b in token_bytes if b is not None), lengths.tobytes()


def unpack_vocabulary(blob: bytes, lengths: bytes, eos_token_ids: list, dummy_prefix: bool, fingerprint: str) -> Any:
    """The :class:`~pse_processors.Vocabulary` that :func:`pack_vocabulary` packed; checks its fingerprint."""
    from ..vocabulary.vocabulary import Vocabulary

    tokens: list[Optional[bytes]] = []
    offset = 0
    for length in np.frombuffer(lengths, dtype="<i4").tolist():
        if length < 0:
            tokens.append(None)
        else:
            tokens.append(blob[offset : offset + length])
            offset += length
    vocabulary = Vocabulary(tokens, eos_token_ids, dummy_prefix=dummy_prefix)
    check_fingerprint(vocabulary, fingerprint, "the unpickled vocabulary")
    return vocabulary


def check_fingerprint(vocabulary: Any, expected: str, what: str) -> None:
    """Raise ``VocabularyError`` when ``vocabulary`` is not the one whose fingerprint was pickled."""
    if vocabulary.fingerprint != expected:
        raise VocabularyError(
            f"{what} has fingerprint {vocabulary.fingerprint}, but the pickle was made for a vocabulary with "
            f"fingerprint {expected}: the data were altered, or this pse_processors version fingerprints "
            "vocabularies differently; pickle the object again with this version"
        )


def rebuild_grammar(
    constraint: Any, vocabulary: Any, engine: str, options: dict, fingerprint: str, spec_key: Optional[str] = None
) -> Any:
    """Unpickle a :class:`~pse_processors.CompiledGrammar`: compile its recipe (through the caches).

    ``spec_key`` is the pickled grammar's regex (or Lark grammar) key: a constraint changed
    after it was compiled (a schema dict edited in place), or a version that compiles it
    differently, is refused instead of silently giving other masks."""
    from .compiler import compile as compile_grammar

    check_fingerprint(vocabulary, fingerprint, "the unpickled grammar's vocabulary")
    from .options import CompileOptions

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
    return rebuild, (type(processor), (processor.grammar,), options)
