"""Options of the JSON Schema compiler."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

from .orders import POLICIES


@dataclass(frozen=True)
class SchemaOptions:
    """Options of the JSON Schema compiler.

    Args:
        whitespace: ``"default"`` accepts compact JSON and ``json.dumps``' default separators
            (``", "`` and ``": "``: at most one space after ``,`` and ``:``); ``"compact"``
            accepts no whitespace at all; ``"pretty"`` accepts exactly ``json.dumps(...,
            indent=indent)``'s layout.
        indent: spaces per level for ``"pretty"``.
        whitespace_pattern: a custom regex for the whitespace allowed after ``,`` ``:`` ``[``
            ``{`` and before ``]`` ``}`` (keep it bounded, e.g. ``"[ ]{0,2}"``); overrides
            ``whitespace``.
        additional_properties: where a schema lists ``properties`` but says nothing of
            ``additionalProperties``: ``"closed"`` (default) generates only the listed
            properties; ``"spec"`` also accepts other properties, as JSON Schema does (written
            after the listed ones, with keys spelled without escapes).
        property_order: which orders of an object's members are accepted (see ``orders.py``):
            ``"properties"``, the order of ``properties``, extra members after the declared ones;
            ``"required"`` (default), that order or ``required``'s names first, then the optional
            members in the order of ``properties`` (nested objects: in the grammar output only,
            which ``backend="auto"`` then runs), extra members before or after them; ``"any"``, every
            order for objects of at most 4 declared members (larger ones as ``"required"``), extra
            members anywhere.
        strict: ``True`` refuses a keyword that cannot be enforced exactly
            (``UnsupportedSchemaError``); ``False`` logs a warning and drops it instead.
        max_recursion_depth: how many times a recursive ``$ref`` is unrolled.
        any_value_depth: nesting depth of objects/arrays allowed where a schema allows any value.
        max_regex_length: refuse (``CompileLimitError``) a schema whose regex, or whose expansion
            work, grows past this many characters (20x for the work).
        max_compile_seconds: refuse (``CompileLimitError``) a schema whose regex takes longer
            to build.
        unknown_formats: a ``format`` that no JSON Schema draft or OpenAPI defines (``"topic"``,
            ``"path"``): ``"annotation"`` (default) ignores it, as validators do, so it constrains
            nothing; ``"refuse"`` raises ``UnsupportedSchemaError`` naming it. Standard formats that
            are not enforced (``regex``, ``iri``...) are refused either way.

    Example:
        >>> SchemaOptions(unknown_formats="refuse").unknown_formats
        'refuse'
    """

    whitespace: str = "default"
    indent: int = 2
    whitespace_pattern: Optional[str] = None
    additional_properties: str = "closed"
    property_order: str = "required"
    strict: bool = True
    max_recursion_depth: int = 3
    any_value_depth: int = 2
    max_regex_length: int = 700_000
    max_compile_seconds: float = 10.0
    unknown_formats: str = "annotation"

    def __post_init__(self) -> None:
        if self.whitespace not in ("default", "compact", "pretty"):
            raise ValueError(f"whitespace must be 'default', 'compact' or 'pretty', not {self.whitespace!r}")
        if self.additional_properties not in ("closed", "spec"):
            raise ValueError(f"additional_properties must be 'closed' or 'spec', not {self.additional_properties!r}")
        if self.property_order not in POLICIES:
            raise ValueError(f"property_order must be one of {', '.join(map(repr, POLICIES))}, not {self.property_order!r}")
        if self.unknown_formats not in ("annotation", "refuse"):
            raise ValueError(f"unknown_formats must be 'annotation' or 'refuse', not {self.unknown_formats!r}")
        if self.max_recursion_depth < 0 or self.any_value_depth < 0 or self.indent < 0:
            raise ValueError("max_recursion_depth, any_value_depth and indent must be >= 0")
