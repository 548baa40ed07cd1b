"""The "Proxy Structuring Engine" API: one engine, four framework adapters and custom ones.

The engine compiles (one :class:`~pse_processors.CompileOptions`, one matcher per tokenizer);
the adapters (:mod:`pse_processors.adapters`, a layer below) only run the framework's own
generation with its logits processor, or the engine's decode loop for a custom adapter. They
never import the engine: it hands itself to :meth:`FrameworkAdapter.generate
<pse_processors.adapters.FrameworkAdapter.generate>`, which asks it for the matcher and hands
back a :class:`~pse_processors.adapters.base.Generation` that :meth:`StructuringEngine.parse` reads.
"""

from __future__ import annotations

import dataclasses
import logging
import warnings
from typing import Any, Iterable, Optional, Sequence

import numpy as np

from . import defaults
from .adapters.base import FrameworkAdapter, Generation
from .compiler.compiler import compile as compile_constraint
from .compiler.options import CompileOptions, options_from
from .constraints.schema import Schema
from .constraints.spec import Choice, Constraint, Grammar, Regex, parse_constraint
from .matchers import Matcher
from .runtime.results import parse_output

logger = logging.getLogger(__name__)


class StructuringEngine:
    """Constrains a model's ``generate`` to a JSON Schema, Pydantic model, regex, choice list or grammar.

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
        options: a :class:`~pse_processors.CompileOptions`. When its back end is left at
            ``"auto"``, the adapter's own applies (``"dfa"`` for the in-graph TensorFlow and JAX
            adapters).
        **compile_options: single options of ``CompileOptions`` by name, over ``options``.

    Raises:
        TypeError: ``constraint`` is no constraint, ``adapter`` is not a ``FrameworkAdapter``
            instance (``adapter="torch"`` says to pass ``PyTorchAdapter()``), or an option is unknown.
        SchemaError: the constraint is malformed (with ``tokenizer``, compile errors too).

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

    def __init__(
        self,
        constraint: Constraint,
        adapter: Optional[FrameworkAdapter] = None,
        tokenizer: Any = None,
        *,
        options: Optional[CompileOptions] = None,
        **compile_options: Any,
    ) -> None:
        self.constraint = constraint.constraint if isinstance(constraint, Schema) else constraint
        parse_constraint(self.constraint)  # a TypeError or SchemaError now, not at generate()
        self._adapter = _checked_adapter(adapter)
        self.tokenizer = tokenizer
        self.options = options_from(options, compile_options)
        #: What the last :meth:`generate` produced, for :meth:`parse`.
        self.last_generation: Optional[Generation] = None
        if tokenizer is not None:
            self.matcher(tokenizer)  # fail early on a bad schema or tokenizer

    def __reduce__(self) -> tuple:
        """Pickle as the recipe: constraint, adapter, tokenizer, compile options (no matcher, processor or
        last output), and the vocabulary fingerprint to check the unpickled tokenizer against."""
        fingerprint = None if self.tokenizer is None else self.matcher(self.tokenizer).vocabulary.fingerprint
        return _rebuild_engine, (type(self), self.constraint, self._adapter, self.tokenizer, self.options, fingerprint)

    @property
    def adapter(self) -> FrameworkAdapter:
        if self._adapter is None:
            from .adapters.torch import PyTorchAdapter

            self._adapter = PyTorchAdapter()
        return self._adapter

    @property
    def compile_options(self) -> dict:
        """Deprecated (0.1): the options as a dict; use :attr:`options`."""
        warnings.warn("StructuringEngine.compile_options is deprecated: use .options", DeprecationWarning, stacklevel=2)
        return dataclasses.asdict(self.options)

    @classmethod
    def from_json_schema(cls, schema: Any, adapter: Any = None, tokenizer: Any = None, **options: Any) -> "StructuringEngine":
        """An engine for a JSON Schema (``dict``, ``bool``, JSON ``str`` or :class:`~pse_processors.Schema`).

        Raises:
            TypeError: ``schema`` is not a JSON Schema (the other constraints have their own ``from_*``).
            SchemaError: a string that is not JSON.
        """
        if isinstance(schema, (Regex, Choice, Grammar)) or (isinstance(schema, type) and not isinstance(schema, Schema)):
            raise TypeError(
                f"from_json_schema takes a JSON Schema (dict, JSON str or Schema), not {type(schema).__name__}: "
                "use from_regex, from_choices, from_grammar or from_pydantic for the other constraints"
            )
        return cls(schema, adapter, tokenizer, **options)

    @classmethod
    def from_pydantic(cls, model_class: type, adapter: Any = None, tokenizer: Any = None, **options: Any) -> "StructuringEngine":
        """An engine for a Pydantic model class; :meth:`parse` returns an instance of it.

        Raises:
            TypeError: ``model_class`` is not a Pydantic model class.
        """
        if not (isinstance(model_class, type) and hasattr(model_class, "model_json_schema")):
            raise TypeError(f"from_pydantic takes a Pydantic model class, not {model_class!r}")
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
        """An engine whose output is a sentence of the Lark grammar ``lark`` (run by llguidance)."""
        return cls(Grammar(lark), adapter, tokenizer, **options)

    def matcher(
        self, tokenizer: Any, generation_config: Any = None, *, eos_token_ids: Optional[Iterable[int]] = None
    ) -> Matcher:
        """The compiled :class:`~pse_processors.Matcher` for ``tokenizer`` (shared through the
        process-wide cache), on the adapter's back end unless the options name one."""
        options = self.options
        if options.backend == defaults.BACKEND and self.adapter.backend != defaults.BACKEND:
            options = options.merge(backend=self.adapter.backend)
        return compile_constraint(
            self.constraint, tokenizer, options=options, generation_config=generation_config, eos_token_ids=eos_token_ids
        )

    def grammar(self, tokenizer: Any, generation_config: Any = None) -> Matcher:
        """Deprecated (0.1): :meth:`matcher`."""
        warnings.warn("StructuringEngine.grammar() is deprecated: use .matcher()", DeprecationWarning, stacklevel=2)
        return self.matcher(tokenizer, generation_config)

    def logits_processor(
        self,
        tokenizer: Any,
        generation_config: Any = None,
        *,
        prompt_length: Optional[int] = None,
        max_new_tokens: Optional[int] = None,
    ) -> Any:
        """The adapter's logits processor for this constraint and tokenizer (see
        :meth:`FrameworkAdapter.logits_processor <pse_processors.adapters.FrameworkAdapter.logits_processor>`:
        the TensorFlow processor takes ``prompt_length``, the JAX one ``max_new_tokens``)."""
        return self.adapter.logits_processor(
            self.matcher(tokenizer, generation_config), prompt_length=prompt_length, max_new_tokens=max_new_tokens
        )

    def generate(self, model: Any, input_ids: Any, *, tokenizer: Any = None, **generate_kwargs: Any) -> Any:
        """Generate under the constraint with the adapter's framework; return its output.

        The tokenizer is ``tokenizer=``, else the engine's, else the model's own
        (:meth:`FrameworkAdapter.find_tokenizer <pse_processors.adapters.FrameworkAdapter.find_tokenizer>`:
        ``model.name_or_path`` naming a local folder). The built-in adapters call the model's
        native ``generate`` (every other argument passes through) and return its output:
        a tensor of ids for PyTorch (or its ``GenerateOutput`` when asked) and TensorFlow, the
        ``sequences`` array for JAX. ``max_new_tokens`` defaults to
        :data:`pse_processors.defaults.MAX_NEW_TOKENS` (transformers' default ``max_length=20``
        would cut most structures short). A custom adapter runs the engine's own decode loop and
        returns int64 numpy ids.

        Raises:
            TypeError: no tokenizer was given and the model's cannot be found.
        """
        adapter = self.adapter
        if tokenizer is None:
            tokenizer = self.tokenizer
        if tokenizer is None:
            tokenizer = adapter.find_tokenizer(model)
        generation = adapter.generate(self, model, input_ids, tokenizer, **generate_kwargs)
        if not isinstance(generation, Generation):  # a custom adapter of 0.1 returns the outputs only
            width = int(np.asarray(getattr(input_ids, "shape", np.shape(input_ids)))[-1])
            generation = Generation(generation, self.matcher(tokenizer), width)
        self.last_generation = generation
        return generation.outputs

    def parse(self, outputs: Any, row: int = 0, prompt_length: Optional[int] = None) -> Any:
        """Parse row ``row`` of the last :meth:`generate` output (a dict, Pydantic instance or str).

        ``outputs`` may also be generated text (a ``str``, or a list of them as ``batch_decode``
        returns): it is checked against the constraint just the same, with the last generation's
        matcher or, before any, the engine's tokenizer's.

        Raises:
            InvalidOutputError: the row is incomplete (cut by ``max_new_tokens``) or does not
                satisfy the constraint.
        """
        text = _text_of(outputs, row)
        last = self.last_generation
        if text is not None:
            if last is not None and last.matcher is not None:
                return parse_output(last.matcher, text)
            if self.tokenizer is not None:
                return parse_output(self.matcher(self.tokenizer), text)
            raise RuntimeError("call generate() before parse(), or give the engine a tokenizer")
        if last is None or last.matcher is None:
            raise RuntimeError("call generate() before parse()")
        sequences = getattr(outputs, "sequences", outputs)
        length = last.prompt_length if prompt_length is None else prompt_length
        ids = _row_as_numpy(sequences, row)
        return parse_output(last.matcher, ids[length:], ids[:length] if length else None)


def _text_of(outputs: Any, row: int) -> Any:
    """The generated text in ``outputs`` (one text, or row ``row`` of a list of them), else None."""
    if isinstance(outputs, (str, bytes, bytearray)):
        return outputs
    if isinstance(outputs, (list, tuple)) and outputs and all(isinstance(o, (str, bytes)) for o in outputs):
        return outputs[row]
    return None


def _checked_adapter(adapter: Any) -> Optional[FrameworkAdapter]:
    """``adapter`` if it is a :class:`FrameworkAdapter` instance (or None: PyTorch); a TypeError that says how otherwise."""
    if adapter is None or isinstance(adapter, FrameworkAdapter):
        return adapter
    names = {"torch": "PyTorchAdapter", "pytorch": "PyTorchAdapter", "tf": "TensorFlowAdapter",
             "tensorflow": "TensorFlowAdapter", "jax": "JAXAdapter", "flax": "JAXAdapter", "mlx": "MLXAdapter"}
    if isinstance(adapter, str) and adapter.lower() in names:
        name = names[adapter.lower()]
        hint = f": pass adapter={name}() (from pse_processors.adapters import {name})"
    elif isinstance(adapter, type) and issubclass(adapter, FrameworkAdapter):
        hint = f": pass an instance, adapter={adapter.__name__}()"
    else:
        hint = ": PyTorchAdapter(), TensorFlowAdapter(), JAXAdapter(), MLXAdapter() or a FrameworkAdapter subclass's instance"
    raise TypeError(f"adapter must be a FrameworkAdapter, not {adapter!r}{hint}")


def _rebuild_engine(
    cls: type, constraint: Any, adapter: Any, tokenizer: Any, options: Any, fingerprint: Optional[str]
) -> StructuringEngine:
    from .vocabulary.packing import check_fingerprint

    if isinstance(options, CompileOptions):
        engine = cls(constraint, adapter, tokenizer, options=options)
    else:  # a 0.1 pickle: the options as a dict of compile() keywords
        engine = cls(constraint, adapter, tokenizer, **options)
    if fingerprint is not None:
        check_fingerprint(engine.matcher(tokenizer).vocabulary, fingerprint, "the unpickled engine's tokenizer")
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
