"""The per-actor worker: loads the model once, compiles each schema once, extracts batches.

It runs the PyTorch runner of :mod:`pse_processors.runners` (chat template, left-padded batched
``generate``, context and cut-off checks), as ``pse-processors extract`` does, so both produce
the same values.
"""

from __future__ import annotations

import json
import logging
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Optional, Union

import pyarrow as pa

from .. import defaults
from ..caching.lru import SizedLRU
from ..compiler.options import CompileOptions, options_from
from ..constraints.structure import StructuredConstraint
from ..runners import RowError, Settings, fill_template
from ..runners.values import json_value

logger = logging.getLogger(__name__)

#: Compiled schemas kept per actor (per-row schemas can be many; each holds mask tables).
MAX_SCHEMAS = 32
#: The cache key of the job's Reasoning/Delimited/Tools constraint (no JSON text is ever this).
STRUCTURED_KEY = "\0structure"


@dataclass
class _Compiled:
    """A schema compiled for the actor's tokenizer, or why it cannot be."""

    schema: Any = None
    processor: Any = None
    validator: Any = None
    error: Optional[str] = None


class PSEExtractor:
    """A callable class for ``Dataset.map_batches``: adds ``value`` (JSON text), ``valid`` and
    ``error`` columns.

    Ray builds one instance per actor, so the model is loaded and each schema compiled once per
    actor (the compiled tables come from the disk cache, ``PSE_PROCESSORS_CACHE_DIR``, when
    another actor on the node compiled them first). Each row's ``column`` fills ``{text}`` in
    ``prompt_template``; the chat template is applied when the tokenizer has one. A row that is
    missing its text or schema, whose prompt is over the model's context, whose schema cannot be
    compiled, or whose output was cut off by ``max_new_tokens`` gets ``value=None``,
    ``valid=False`` and its ``error``; the job goes on. Use ``batch_format="pyarrow"``.

    A :class:`~pse_processors.Reasoning`, :class:`~pse_processors.Delimited` or
    :class:`~pse_processors.Tools` as ``schema`` puts structure inside free text: each ``value`` is
    then ``{"reasoning", "text", "spans", "tool_calls", "answer", "segments"}`` as JSON text
    (:mod:`pse_processors.runners.values`), checked by the constraint's matcher (``valid`` is true).

    Args:
        schema: the JSON Schema of every row (a dict, or its JSON text), or a Reasoning/Delimited/Tools;
            None with ``schema_column``.
        prompt_template: the prompt, with ``{text}`` where each row's text goes.
        column: the column that holds each row's text.
        schema_column: a column with each row's JSON Schema (JSON text); ``schema`` is then the
            default for rows whose cell is null.
        model: a local transformers model folder (visible to every node); None: the embedded SmolLM2.
        max_new_tokens, temperature, seed: generation settings (temperature 0 is greedy).
        threads: torch CPU threads per actor (None: torch's default, which Ray sets to the
            actor's ``num_cpus``).
        value_column: the name of the output value column.
        options, **compile_options: how each schema is compiled: a
            :class:`~pse_processors.CompileOptions` and/or its fields by name (``strict=False``,
            ``whitespace="compact"``, ``backend="dfa"``...), as for :func:`pse_processors.compile`
            (``engine=`` is the deprecated name of ``backend=``).

    Example:
        >>> import ray
        >>> from pse_processors.ray import PSEExtractor
        >>> docs = ray.data.from_items([{"text": "Alice is 31."}])  # doctest: +SKIP
        >>> out = docs.map_batches(  # doctest: +SKIP
        ...     PSEExtractor, batch_format="pyarrow", batch_size=8, compute=ray.data.ActorPoolStrategy(size=2),
        ...     fn_constructor_kwargs={"schema": {"type": "object"}, "prompt_template": "As JSON: {text}"},
        ... )
    """

    def __init__(
        self,
        schema: Any = None,
        *,
        prompt_template: str,
        column: str = "text",
        schema_column: Optional[str] = None,
        model: Union[str, Path, None] = None,
        max_new_tokens: int = defaults.MAX_NEW_TOKENS,
        temperature: float = 0.0,
        seed: Optional[int] = None,
        threads: Optional[int] = None,
        value_column: str = "value",
        options: Optional[CompileOptions] = None,
        **compile_options: Any,
    ) -> None:
        from ..runners.torch_runner import Runner

        check_arguments(schema, prompt_template, schema_column, max_new_tokens)
        self.template = prompt_template
        self.column = column
        self.schema_column = schema_column
        self.value_column = value_column
        self.settings = Settings(max_new_tokens=max_new_tokens, temperature=temperature, seed=seed)
        self.options = options_from(options, compile_options)
        self.runner = Runner(None if model is None else Path(model), threads=threads)
        self._compiled = SizedLRU(max_items=MAX_SCHEMAS)  # schema key -> _Compiled
        self.default_key: Optional[str] = None
        self.structured = schema if isinstance(schema, StructuredConstraint) else None
        if schema is not None:
            self.default_key = STRUCTURED_KEY if self.structured is not None else schema_key(schema)
            compiled = self._compile(self.default_key)
            if compiled.error is not None:  # the job's own schema: fail at once, not on every row
                raise ValueError(f"the schema cannot be used: {compiled.error}")

    def __call__(self, batch: pa.Table) -> pa.Table:
        rows = batch.num_rows
        values: list[Optional[str]] = [None] * rows
        valid = [False] * rows
        errors: list[Optional[str]] = [None] * rows
        texts = batch.column(self.column).to_pylist() if self.column in batch.column_names else [None] * rows
        groups: "OrderedDict[str, list[int]]" = OrderedDict()  # schema -> its rows, one generate per group
        for index, key in enumerate(self._schema_keys(batch, errors)):
            text = texts[index]
            if errors[index] is not None:
                continue
            if not isinstance(text, str):
                errors[index] = (
                    f"the row has no {self.column!r} text" if text is None
                    else f"the {self.column!r} cell is a {type(text).__name__}, not a string"
                )
                continue
            groups.setdefault(key, []).append(index)
        for key, members in groups.items():
            compiled = self._compile(key)
            if compiled.error is not None:
                for index in members:
                    errors[index] = compiled.error
                continue
            prompts = [fill_template(self.template, texts[index]) for index in members]
            for index, result in zip(members, self.runner.generate(compiled.processor, prompts, self.settings)):
                if isinstance(result, RowError):
                    errors[index] = str(result)
                    continue
                if compiled.validator is None:  # structure in free text: the matcher checked it whole
                    values[index], valid[index] = json.dumps(json_value(result), ensure_ascii=False), True
                    continue
                values[index] = json.dumps(result, ensure_ascii=False)
                problem = next(iter(compiled.validator.iter_errors(result)), None)
                valid[index] = problem is None
                if problem is not None:  # the constraint held but jsonschema disagrees (e.g. strict=False)
                    errors[index] = f"jsonschema: {problem.message}"
        for name, data, kind in (
            (self.value_column, values, pa.string()), ("valid", valid, pa.bool_()), ("error", errors, pa.string()),
        ):
            column = pa.array(data, type=kind)
            if name in batch.column_names:
                batch = batch.set_column(batch.column_names.index(name), name, column)
            else:
                batch = batch.append_column(name, column)
        return batch

    def _schema_keys(self, batch: pa.Table, errors: list[Optional[str]]) -> list[Optional[str]]:
        """Each row's schema as canonical JSON text (the cache key); a bad cell sets the row's error."""
        rows = batch.num_rows
        if self.schema_column is None:
            return [self.default_key] * rows
        if self.schema_column not in batch.column_names:
            cells: list[Any] = [None] * rows
        else:
            cells = batch.column(self.schema_column).to_pylist()
        keys: list[Optional[str]] = []
        for index, cell in enumerate(cells):
            key = self.default_key
            if cell is not None:
                try:
                    key = schema_key(cell)
                except ValueError as exc:
                    errors[index] = f"bad schema: {exc}"
            elif key is None:
                errors[index] = f"the row has no {self.schema_column!r} schema"
            keys.append(key)
        return keys

    def _compile(self, key: str) -> _Compiled:
        compiled = self._compiled.get(key)
        if compiled is not None:
            return compiled
        structured = key == STRUCTURED_KEY
        compiled = _Compiled(schema=self.structured if structured else json.loads(key))
        try:
            compiled.validator = None if structured else validator_for(compiled.schema)
            compiled.processor = self.runner.prepare(compiled.schema, self.options)
        except Exception as exc:  # noqa: BLE001 - any reason a row's schema fails becomes that row's error
            compiled.error = f"bad schema: {type(exc).__name__}: {exc}"
            logger.info("schema not compiled: %s", compiled.error)
        self._compiled.put(key, compiled)
        return compiled


def schema_key(schema: Any) -> str:
    """A schema (dict, bool, Pydantic class, or JSON text) as canonical JSON text.

    Example:
        >>> schema_key('{"type": "integer", "minimum": 0}') == schema_key({"minimum": 0, "type": "integer"})
        True
        >>> schema_key("[1")
        Traceback (most recent call last):
        ...
        ValueError: the schema is not JSON text (Expecting ',' delimiter at column 3)
    """
    dump = getattr(schema, "model_json_schema", None)
    if callable(dump):
        schema = dump()
    if isinstance(schema, (str, bytes)):
        try:
            schema = json.loads(schema)
        except ValueError as exc:
            raise ValueError(f"the schema is not JSON text ({getattr(exc, 'msg', exc)} at column {getattr(exc, 'colno', '?')})") from None
    if not isinstance(schema, (dict, bool)):
        raise ValueError(f"a JSON Schema is an object or a boolean, not a {type(schema).__name__}")
    return json.dumps(schema, sort_keys=True, ensure_ascii=False)


def validator_for(schema: Any) -> Any:
    """A jsonschema validator for ``schema`` (its ``$schema`` draft, else 2020-12), after checking it."""
    import jsonschema

    cls = jsonschema.validators.validator_for(schema, default=jsonschema.Draft202012Validator)
    cls.check_schema(schema)
    return cls(schema)


def check_arguments(schema: Any, prompt_template: str, schema_column: Optional[str], max_new_tokens: int) -> None:
    """Refuse a job that no row could succeed in, before any actor starts."""
    if schema is None and schema_column is None:
        raise ValueError("give a schema, or a schema_column with each row's schema")
    if isinstance(schema, StructuredConstraint) and schema_column is not None:
        raise ValueError("schema_column gives JSON Schemas: a Reasoning, Delimited or Tools is the whole job's constraint")
    if not isinstance(prompt_template, str) or "{text}" not in prompt_template:
        raise ValueError("prompt_template must contain {text}, where each row's text goes")
    if max_new_tokens < 1:
        raise ValueError("max_new_tokens must be at least 1")
