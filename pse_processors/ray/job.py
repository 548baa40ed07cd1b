"""``extract``: a Ray Dataset in, the same rows out with ``value``, ``valid`` and ``error`` columns."""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any, Optional, Union

import ray.data

from .. import defaults
from ..compiler.options import CompileOptions, options_from
from ..constraints.structure import StructuredConstraint
from ..errors import PSEError
from ..json_schema import json_schema_to_grammar
from .extractor import PSEExtractor, check_arguments, schema_key, validator_for

logger = logging.getLogger(__name__)


def extract(
    dataset: "ray.data.Dataset",
    schema: Any = None,
    *,
    prompt_template: str,
    column: str = "text",
    schema_column: Optional[str] = None,
    model: Union[str, Path, None] = None,
    concurrency: int = 1,
    batch_size: int = 8,
    max_new_tokens: int = defaults.MAX_NEW_TOKENS,
    temperature: float = 0.0,
    seed: Optional[int] = None,
    threads: Optional[int] = None,
    num_cpus: float = 1,
    value_column: str = "value",
    ray_remote_args: Optional[dict] = None,
    extractor: type = PSEExtractor,
    options: Optional[CompileOptions] = None,
    **compile_options: Any,
) -> "ray.data.Dataset":
    """Structured extraction over ``dataset`` on Ray: each row gets ``value`` (JSON text that
    satisfies the schema), ``valid`` (checked with jsonschema) and ``error`` (why the row failed).

    Lazy, like every Ray Data transform: nothing runs until the result is consumed
    (``take``, ``write_json``, ``iter_rows``...). ``concurrency`` actors each load the model
    once and compile each schema once (see :class:`PSEExtractor` for the arguments they share).
    Rows come back in input order only when
    ``ray.data.DataContext.get_current().execution_options.preserve_order`` is true.

    Args:
        dataset: the rows; ``column`` holds each row's text.
        schema: the JSON Schema (a dict, JSON text, or a Pydantic model class), or None when
            ``schema_column`` gives each row's schema (as JSON text; ``schema`` is then the
            default for null cells); or a :class:`~pse_processors.Reasoning`,
            :class:`~pse_processors.Delimited` or :class:`~pse_processors.Tools` (structure in
            free text), whose ``value`` is the parse result as a JSON object (see :class:`PSEExtractor`).
        model: a transformers model folder that every node can read (shared storage); None:
            the embedded SmolLM2-135M-Instruct.
        concurrency: the number of actors (model copies).
        batch_size: rows per ``generate`` call.
        num_cpus: CPUs reserved per actor (and torch's default thread count there).
        ray_remote_args: more options for the actors, e.g. ``{"max_restarts": 3}``; by default
            Ray Data restarts a dead actor and retries its batches.
        extractor: the actor class: :class:`PSEExtractor` or a subclass (to add columns, log, time...).
        options, **compile_options: how the schemas are compiled: a
            :class:`~pse_processors.CompileOptions` and/or its fields by name (``strict=False``,
            ``backend="dfa"``...; ``engine=`` is the deprecated name of ``backend=``), read once
            here and shipped to the actors.

    Raises:
        ValueError: no schema, a template without ``{text}``, a schema that is not JSON Schema
            or that has a keyword the compiler cannot enforce (with ``strict=True``).
        TypeError: an unknown compile option.

    Example:
        >>> import ray, pse_processors.ray as pse_ray  # doctest: +SKIP
        >>> ray.init(num_cpus=2)  # doctest: +SKIP
        >>> docs = ray.data.from_items([{"id": 1, "text": "Bob, 42, lives in Paris."}])  # doctest: +SKIP
        >>> schema = {"type": "object", "properties": {"age": {"type": "integer"}}, "required": ["age"]}
        >>> out = pse_ray.extract(docs, schema, prompt_template="Extract as JSON: {text}", concurrency=2)  # doctest: +SKIP
        >>> out.write_json("/shared/out")  # doctest: +SKIP
    """
    check_arguments(schema, prompt_template, schema_column, max_new_tokens)
    options = options_from(options, compile_options)  # checked (and any deprecation warned) once, here
    if concurrency < 1 or batch_size < 1:
        raise ValueError("concurrency and batch_size must be at least 1")
    if schema is not None and not isinstance(schema, StructuredConstraint):  # a structure is compiled by the actors
        schema = schema_key(schema)  # JSON text: checked here, and no Pydantic class to ship to the actors
        try:
            validator_for(json.loads(schema))
        except Exception as exc:  # jsonschema.SchemaError: the job's schema is not a JSON Schema
            raise ValueError(f"the schema is not a valid JSON Schema: {getattr(exc, 'message', exc)}") from None
        try:  # our compiler's refusals (a keyword it cannot enforce), without a tokenizer: milliseconds
            json_schema_to_grammar(json.loads(schema), options.schema_options())
        except PSEError as exc:
            raise ValueError(f"the schema cannot be enforced: {exc}") from None
    if model is not None:
        model = str(Path(model).expanduser())
    if not (isinstance(extractor, type) and issubclass(extractor, PSEExtractor)):
        raise ValueError(f"extractor must be PSEExtractor or a subclass, not {extractor!r}")
    return dataset.map_batches(
        extractor,
        batch_format="pyarrow",
        batch_size=batch_size,
        compute=ray.data.ActorPoolStrategy(size=concurrency),
        num_cpus=num_cpus,
        fn_constructor_kwargs={
            "schema": schema, "prompt_template": prompt_template, "column": column, "schema_column": schema_column,
            "model": model, "max_new_tokens": max_new_tokens, "temperature": temperature, "seed": seed,
            "threads": threads, "value_column": value_column, "options": options,
        },
        **(ray_remote_args or {}),
    )
