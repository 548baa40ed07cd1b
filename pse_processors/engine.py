"""The "Proxy Structuring Engine" API: one engine, four framework adapters and custom ones.

The built-in adapters (:mod:`pse_processors.adapters`) delegate to the framework's own
``generate`` with the framework's logits processor; a custom adapter gets the engine's own
decode loop.
"""

from __future__ import annotations

import logging
from typing import Any, Optional, Sequence

import numpy as np

from .compiler.compiler import compile as compile_grammar
from .constraints.spec import Choice, Constraint, Grammar, Regex
from .matchers.automaton import CompiledGrammar
from .runtime.results import parse_output
from .constraints.schema import Schema

logger = logging.getLogger(__name__)

DEFAULT_MAX_NEW_TOKENS = 256


class StructuringEngine:
    """Constrains a model's ``generate`` to a JSON Schema, Pydantic model, regex or choice list.

    The engine compiles the constraint lazily, once per tokenizer (through the shared cache).
    With a built-in adapter it calls the model's native ``generate`` with the framework's logits
    processor added to ``logits_processor``; all other ``generate`` arguments pass through
    unchanged. With a custom :class:`~pse_processors.adapters.FrameworkAdapter` it runs its
    own decode loop.

    Args:
        constraint: see :func:`pse_processors.compile`; a :class:`~pse_processors.Schema` too.
        adapter: the framework adapter (default: :class:`~pse_processors.PyTorchAdapter`):
            ``PyTorchAdapter``, ``TensorFlowAdapter``, ``JAXAdapter``, ``MLXAdapter`` or a
            subclass of ``FrameworkAdapter``.
        tokenizer: the tokenizer; if omitted, ``generate`` takes ``tokenizer=`` or loads the
            model's own from ``model.name_or_path`` (local files only).
        **compile_options: options of :func:`pse_processors.compile`.

    Example:
        >>> from proxy_structuring_engine import StructuringEngine, Schema
        >>> from proxy_structuring_engine.adapters import PyTorchAdapter
        >>> from pse_processors.embedded import load_smollm2
        >>> model, tokenizer = load_smollm2()  # doctest: +SKIP
        >>> schema = Schema({"type": "object", "properties": {"name": {"type": "string"}}, "required": ["name"]})
        >>> engine = StructuringEngine.from_json_schema(schema, adapter=PyTorchAdapter())
        >>> input_ids = tokenizer.encode(  # doctest: +SKIP
        ...     "Extract a name from this text: John Smith is a developer.", return_tensors="pt")
        >>> outputs = engine.generate(model, input_ids)  # doctest: +SKIP
        >>> engine.parse(outputs)  # doctest: +SKIP
        {'name': 'John Smith'}
    """

    def __init__(self, constraint: Constraint, adapter: Any = None, tokenizer: Any = None, **compile_options: Any) -> None:
        self.constraint = constraint.constraint if isinstance(constraint, Schema) else constraint
        self._adapter = adapter
        self.tokenizer = tokenizer
        self.compile_options = compile_options
        self._processors: dict[int, Any] = {}
        self._last_prompt_length = 0
        self._last_processor: Any = None
        self._last_grammar: Optional[CompiledGrammar] = None
        if tokenizer is not None:
            self.grammar(tokenizer)  # fail early on a bad schema or tokenizer

    def __reduce__(self) -> tuple:
        """Pickle as the recipe: constraint, adapter, tokenizer, compile options (no grammar, processor or
        last output), and the vocabulary fingerprint to check the unpickled tokenizer against."""
        fingerprint = None if self.tokenizer is None else self.grammar(self.tokenizer).vocabulary.fingerprint
        return _rebuild_engine, (type(self), self.constraint, self._adapter, self.tokenizer, self.compile_options, fingerprint)

    @property
    def adapter(self) -> Any:
        if self._adapter is None:
            from .adapters.torch import PyTorchAdapter

            self._adapter = PyTorchAdapter()
        return self._adapter

    @classmethod
    def from_json_schema(cls, schema: Any, adapter: Any = None, tokenizer: Any = None, **options: Any) -> "StructuringEngine":
        """An engine for a JSON Schema (``dict``, JSON ``str`` or :class:`~pse_processors.Schema`)."""
        return cls(schema, adapter, tokenizer, **options)

    @classmethod
    def from_pydantic(cls, model_class: type, adapter: Any = None, tokenizer: Any = None, **options: Any) -> "StructuringEngine":
        """An engine for a Pydantic model class; :meth:`parse` returns an instance of it."""
        return cls(model_class, adapter, tokenizer, **options)

    @classmethod
    def from_regex(cls, pattern: str, adapter: Any = None, tokenizer: Any = None, **options: Any) -> "StructuringEngine":
        """An engine whose output fully matches ``pattern``."""
        return cls(Regex(pattern), adapter, tokenizer, **options)

    @classmethod
    def from_choices(cls, choices: Sequence[str], adapter: Any = None, tokenizer: Any = None, **options: Any) -> "StructuringEngine":
        """An engine whose output is exactly one of ``choices``."""
        return cls(Choice(choices), adapter, tokenizer, **options)

    @classmethod
    def from_grammar(cls, lark: str, adapter: Any = None, tokenizer: Any = None, **options: Any) -> "StructuringEngine":
        """An engine whose output is a sentence of the Lark grammar ``lark`` (the grammar engine)."""
        return cls(Grammar(lark), adapter, tokenizer, **options)

    def grammar(self, tokenizer: Any, generation_config: Any = None) -> CompiledGrammar:
        """The compiled grammar for ``tokenizer`` (shared through the process-wide cache), on the
        adapter's back end unless ``engine=`` was given to the engine."""
        options = {"engine": getattr(self.adapter, "grammar_engine", "auto"), **self.compile_options}
        return compile_grammar(self.constraint, tokenizer, generation_config=generation_config, **options)

    def logits_processor(self, tokenizer: Any, generation_config: Any = None) -> Any:
        """The PyTorch adapter's logits processor for this constraint and tokenizer (one per tokenizer).

        The TensorFlow, JAX and MLX adapters make theirs in ``generate`` (they depend on the
        prompt width or the tokenizer wrapper): see their ``logits_processor`` methods."""
        key = (id(tokenizer), id(generation_config))
        processor = self._processors.get(key)
        if processor is None:
            processor = self.adapter.logits_processor(self.grammar(tokenizer, generation_config))
            self._processors[key] = processor
        return processor

    def generate(self, model: Any, input_ids: Any, *, tokenizer: Any = None, **generate_kwargs: Any) -> Any:
        """Generate under the constraint with the adapter's framework; return its output.

        The tokenizer is ``tokenizer=``, else the engine's, else the model's own
        (:meth:`FrameworkAdapter.find_tokenizer <pse_processors.adapters.FrameworkAdapter.find_tokenizer>`:
        ``model.name_or_path`` naming a local folder). The built-in adapters call the model's
        native ``generate`` (every other argument passes through) and return its output:
        a tensor of ids for PyTorch (or its ``GenerateOutput`` when asked) and TensorFlow, the
        ``sequences`` array for JAX. ``max_new_tokens`` defaults to 256 (transformers' default
        ``max_length=20`` would cut most structures short). A custom adapter runs the engine's
        own decode loop and returns int64 numpy ids.

        Raises:
            TypeError: no tokenizer was given and the model's cannot be found.
        """
        adapter = self.adapter
        if tokenizer is None:
            tokenizer = self.tokenizer
        if tokenizer is None:
            tokenizer = adapter.find_tokenizer(model)
        return adapter.generate(self, model, input_ids, tokenizer, **generate_kwargs)

    def _record(self, grammar: CompiledGrammar, prompt_length: int, processor: Any = None) -> None:
        """Remember what :meth:`parse` needs about the last generation (called by the adapters)."""
        self._last_grammar = grammar
        self._last_prompt_length = int(prompt_length)
        self._last_processor = processor

    def parse(self, outputs: Any, row: int = 0, prompt_length: Optional[int] = None) -> Any:
        """Parse row ``row`` of the last :meth:`generate` output (a dict, Pydantic instance or str).

        Raises:
            InvalidOutputError: the row is incomplete (cut by ``max_new_tokens``) or invalid.
        """
        if self._last_grammar is None:
            raise RuntimeError("call generate() before parse()")
        sequences = getattr(outputs, "sequences", outputs)
        length = self._last_prompt_length if prompt_length is None else prompt_length
        return parse_output(self._last_grammar, _row_as_numpy(sequences, row)[length:])


def _rebuild_engine(
    cls: type, constraint: Any, adapter: Any, tokenizer: Any, compile_options: dict, fingerprint: Optional[str]
) -> "StructuringEngine":
    from .compiler.recipes import check_fingerprint

    engine = cls(constraint, adapter, tokenizer, **compile_options)
    if fingerprint is not None:
        check_fingerprint(engine.grammar(tokenizer).vocabulary, fingerprint, "the unpickled engine's tokenizer")
    return engine


def _row_as_numpy(sequences: Any, row: int) -> np.ndarray:
    """One row of a torch / TensorFlow / JAX / MLX / numpy batch of ids, as numpy."""
    value = sequences[row]
    if hasattr(value, "detach"):  # torch
        value = value.detach().cpu().numpy()
    elif hasattr(value, "numpy") and callable(value.numpy):  # TensorFlow
        value = value.numpy()
    elif not isinstance(value, np.ndarray) and hasattr(value, "tolist"):  # MLX and other array types
        value = value.tolist()
    return np.asarray(value).reshape(-1)
