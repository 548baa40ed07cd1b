"""The "Proxy Structuring Engine" API, delegating to the framework's own ``generate``."""

from __future__ import annotations

import logging
from typing import Any, Optional, Sequence

from .cache import compile as compile_grammar
from .constraints import Choice, Constraint, Grammar, Regex
from .grammar import CompiledGrammar

logger = logging.getLogger(__name__)

DEFAULT_MAX_NEW_TOKENS = 256


class StructuringEngine:
    """Constrains a model's ``generate`` to a JSON Schema, Pydantic model, regex or choice list.

    The engine compiles the constraint lazily, once per tokenizer (through the shared cache),
    and calls the model's native ``generate`` with a logits processor added to
    ``logits_processor``; all other ``generate`` arguments pass through unchanged.

    Args:
        constraint: see :func:`pse_processors.compile`.
        adapter: the framework adapter (default: :class:`~pse_processors.PyTorchAdapter`).
        tokenizer: the tokenizer; if omitted, ``generate`` takes ``tokenizer=`` or loads the
            model's own from ``model.name_or_path`` (local files only).
        **compile_options: options of :func:`pse_processors.compile`.

    Example:
        >>> from pse_processors import StructuringEngine, PyTorchAdapter
        >>> from pse_processors.embedded import load_smollm2
        >>> model, tokenizer = load_smollm2()  # doctest: +SKIP
        >>> schema = {"type": "object", "properties": {"name": {"type": "string"}}, "required": ["name"]}
        >>> engine = StructuringEngine.from_json_schema(schema, adapter=PyTorchAdapter())
        >>> input_ids = tokenizer.apply_chat_template(  # doctest: +SKIP
        ...     [{"role": "user", "content": "Extract a name from this text: John Smith is a developer."}],
        ...     add_generation_prompt=True, return_tensors="pt", return_dict=True)["input_ids"]
        >>> outputs = engine.generate(model, input_ids, tokenizer=tokenizer)  # doctest: +SKIP
        >>> engine.parse(outputs)  # doctest: +SKIP
        {'name': 'John Smith'}
    """

    def __init__(self, constraint: Constraint, adapter: Any = None, tokenizer: Any = None, **compile_options: Any) -> None:
        self.constraint = constraint
        self._adapter = adapter
        self.tokenizer = tokenizer
        self.compile_options = compile_options
        self._processors: dict[int, Any] = {}
        self._last_prompt_length = 0
        self._last_processor: Any = None
        if tokenizer is not None:
            self.grammar(tokenizer)  # fail early on a bad schema or tokenizer

    @property
    def adapter(self) -> Any:
        if self._adapter is None:
            from .adapters import PyTorchAdapter

            self._adapter = PyTorchAdapter()
        return self._adapter

    @classmethod
    def from_json_schema(cls, schema: Any, adapter: Any = None, tokenizer: Any = None, **options: Any) -> "StructuringEngine":
        """An engine for a JSON Schema (``dict`` or JSON ``str``)."""
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
        """The compiled grammar for ``tokenizer`` (shared through the process-wide cache)."""
        return compile_grammar(self.constraint, tokenizer, generation_config=generation_config, **self.compile_options)

    def logits_processor(self, tokenizer: Any, generation_config: Any = None) -> Any:
        """The framework's logits processor for this constraint and tokenizer (one per tokenizer)."""
        key = (id(tokenizer), id(generation_config))
        processor = self._processors.get(key)
        if processor is None:
            processor = self.adapter.logits_processor(self.grammar(tokenizer, generation_config))
            self._processors[key] = processor
        return processor

    def generate(self, model: Any, input_ids: Any, *, tokenizer: Any = None, **generate_kwargs: Any) -> Any:
        """Run ``model.generate`` under the constraint and return its output unchanged.

        ``max_new_tokens`` defaults to 256 (transformers' default ``max_length=20`` would cut
        most structures short); ``pad_token_id`` defaults to the tokenizer's pad or EOS. The mask
        is added to the scores in place unless ``output_logits=True`` is asked for.
        """
        tokenizer = tokenizer or self.tokenizer or _load_tokenizer(model)
        model = self.adapter.prepare_model(model)
        input_ids = self.adapter.to_input(input_ids, model)
        processor = self.logits_processor(tokenizer, getattr(model, "generation_config", None))
        processor.reset()  # a new generation, whatever the prompts look like
        # In place is about twice as fast; it is only visible in the raw logits that
        # output_logits=True returns, so the engine uses it unless those are asked for.
        processor.inplace = not (
            generate_kwargs.get("output_logits") or getattr(model.generation_config, "output_logits", False)
        )
        extra = list(generate_kwargs.pop("logits_processor", None) or [])
        if "max_new_tokens" not in generate_kwargs and "max_length" not in generate_kwargs:
            generate_kwargs["max_new_tokens"] = DEFAULT_MAX_NEW_TOKENS
        if generate_kwargs.get("pad_token_id") is None and getattr(model.generation_config, "pad_token_id", None) is None:
            pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id
            generate_kwargs["pad_token_id"] = pad
        generate_kwargs.setdefault("use_cache", self.adapter.use_cache)
        if "attention_mask" not in generate_kwargs:
            import torch

            generate_kwargs["attention_mask"] = torch.ones_like(input_ids)
        from transformers import LogitsProcessorList

        outputs = model.generate(input_ids=input_ids, logits_processor=LogitsProcessorList(extra + [processor]), **generate_kwargs)
        self._last_prompt_length = input_ids.shape[1]
        self._last_processor = processor
        return outputs

    def parse(self, outputs: Any, row: int = 0, prompt_length: Optional[int] = None) -> Any:
        """Parse row ``row`` of the last :meth:`generate` output (a dict, Pydantic instance or str)."""
        if self._last_processor is None:
            raise RuntimeError("call generate() before parse()")
        sequences = getattr(outputs, "sequences", outputs)
        length = self._last_prompt_length if prompt_length is None else prompt_length
        return self._last_processor.parse(sequences[row], prompt_length=length)


def _load_tokenizer(model: Any) -> Any:
    name = getattr(model, "name_or_path", "") or getattr(getattr(model, "config", None), "_name_or_path", "")
    try:
        from transformers import AutoTokenizer

        return AutoTokenizer.from_pretrained(name, local_files_only=True)
    except Exception as exc:  # noqa: BLE001 - any failure means: ask the caller
        raise TypeError(
            f"could not load the tokenizer of {name or 'this model'!r} from local files ({exc}); "
            "pass tokenizer= to StructuringEngine or to generate()"
        ) from exc
