"""``Schema``: a JSON Schema as a typed value, for the Proxy Structuring Engine API."""

from __future__ import annotations

import json
from typing import Any, Mapping, Union

from ..errors import SchemaError


class Schema:
    """A JSON Schema (or a Pydantic model class), checked once and typed.

    It is what ``from proxy_structuring_engine import Schema`` gives. Everything that takes a
    JSON Schema also takes a ``Schema``: :meth:`StructuringEngine.from_json_schema
    <pse_processors.StructuringEngine.from_json_schema>`, :func:`pse_processors.compile` and the
    logits processors. A ``Schema`` made from a Pydantic model keeps it, so
    :meth:`StructuringEngine.parse <pse_processors.StructuringEngine.parse>` returns instances.

    Args:
        definition: a JSON Schema as a ``dict``, a boolean, or JSON text; or a Pydantic model class.
        title: an optional name, for messages and ``repr``.

    Raises:
        SchemaError: ``definition`` is not JSON, or not a schema (an object or a boolean).

    Example:
        >>> from pse_processors import Schema
        >>> schema = Schema('{"type": "object", "properties": {"name": {"type": "string"}}}', title="person")
        >>> schema.json_schema["properties"]
        {'name': {'type': 'string'}}
        >>> schema
        Schema(title='person', type='object')
    """

    __slots__ = ("constraint", "title")

    def __init__(self, definition: Union[Mapping[str, Any], bool, str, type], *, title: str = "") -> None:
        if isinstance(definition, Schema):
            definition, title = definition.constraint, title or definition.title
        if isinstance(definition, (str, bytes)):
            try:
                definition = json.loads(definition)
            except json.JSONDecodeError as exc:
                raise SchemaError(f"Schema: the text is not JSON ({exc})") from exc
        if isinstance(definition, type):
            if not callable(getattr(definition, "model_json_schema", None)):
                raise SchemaError(f"Schema: {definition.__name__} is not a Pydantic model class")
        elif isinstance(definition, Mapping):
            definition = dict(definition)
        elif not isinstance(definition, bool):
            raise SchemaError(f"Schema: a JSON Schema is an object or a boolean, not {type(definition).__name__}")
        self.constraint: Any = definition
        self.title = title

    @classmethod
    def from_pydantic(cls, model_class: type, *, title: str = "") -> "Schema":
        """The schema of a Pydantic model class (parsed outputs are instances of it)."""
        return cls(model_class, title=title or model_class.__name__)

    @property
    def json_schema(self) -> Union[dict, bool]:
        """The JSON Schema itself (a Pydantic model's ``model_json_schema()``)."""
        if isinstance(self.constraint, type):
            return self.constraint.model_json_schema()
        return self.constraint

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Schema) and self.constraint == other.constraint

    __hash__ = None  # type: ignore[assignment]  # a dict inside: not hashable

    def __repr__(self) -> str:
        kind = self.constraint.__name__ if isinstance(self.constraint, type) else (
            self.constraint.get("type", "any") if isinstance(self.constraint, dict) else self.constraint
        )
        return f"Schema(title={self.title!r}, type={kind!r})"
