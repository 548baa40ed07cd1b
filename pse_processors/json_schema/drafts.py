"""Differences between JSON Schema drafts that change what a schema accepts.

Drafts 3 to 7 ignore every keyword next to a ``$ref`` ("All other properties in a "$ref"
object MUST be ignored", draft 7, section 8.3); from draft 2019-09 on they apply alongside
it. A schema says its draft in the root ``$schema``; without one, the current rules apply.
"""

from __future__ import annotations

import re
from typing import Any

from .keywords import ANNOTATIONS

_LEGACY = re.compile(r"json-schema\.org/draft-0[3-7]/schema")
# Keywords whose values are data, never schemas.
_DATA = frozenset({"enum", "const", "default", "examples", "example", "required", "type"})
# Keywords whose values map names to schemas (a name such as "$ref" there is a property name).
_MAPS = frozenset({"properties", "patternProperties", "definitions", "$defs", "dependencies", "dependentSchemas"})


def ignores_ref_siblings(schema: Any) -> bool:
    """Whether the root ``$schema`` names draft 3, 4, 6 or 7.

    Example:
        >>> ignores_ref_siblings({"$schema": "http://json-schema.org/draft-07/schema#"})
        True
        >>> ignores_ref_siblings({"$schema": "https://json-schema.org/draft/2020-12/schema"}), ignores_ref_siblings({})
        (False, False)
    """
    return isinstance(schema, dict) and isinstance(schema.get("$schema"), str) and bool(_LEGACY.search(schema["$schema"]))


def drop_ref_siblings(schema: Any) -> Any:
    """A copy of ``schema`` where every ``$ref`` object keeps only its ``$ref`` (and annotations
    such as ``definitions``, where other references may point), as drafts 3-7 read it.

    Example:
        >>> drop_ref_siblings({"properties": {"a": {"$ref": "#/definitions/x", "type": "string"}},
        ...                    "definitions": {"x": {"type": "object"}}})["properties"]
        {'a': {'$ref': '#/definitions/x'}}
    """
    if isinstance(schema, list):
        return [drop_ref_siblings(item) for item in schema]
    if not isinstance(schema, dict):
        return schema
    out: dict = {}
    for key, value in schema.items():
        if key in _DATA:
            out[key] = value
        elif key in _MAPS and isinstance(value, dict):
            out[key] = {name: drop_ref_siblings(sub) for name, sub in value.items()}
        else:
            out[key] = drop_ref_siblings(value)
    if "$ref" in out:
        out = {key: value for key, value in out.items() if key == "$ref" or key in ANNOTATIONS}
    return out
