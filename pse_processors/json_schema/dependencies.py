"""``dependentRequired``, ``dependentSchemas`` and draft 4-7 ``dependencies``: conditionals on a key's presence.

"If the object has the key ``t``, it also has the keys ``names`` and matches the schemas
``S``" is split on ``t``'s presence into disjoint variants: ``t`` absent (``properties: {t:
false}``), or ``t`` present (``required`` gains ``t`` and ``names``, and ``S`` joins the object
through ``allOf``). Each trigger doubles the variants, so at most :data:`MAX_TRIGGERS` of them
are split; more are refused by name.

Example:
    >>> schema = {"type": "object", "dependentSchemas": {"card": {"required": ["billing"]}}}
    >>> for variant in dependency_variants(schema, dependencies_of(schema, "#")):
    ...     print(variant)
    {'type': 'object', 'properties': {'card': False}}
    {'allOf': [{'type': 'object', 'required': ['card']}, {'required': ['billing']}]}
"""

from __future__ import annotations

from typing import Any, Callable

from ..errors import SchemaError

KEYWORDS = ("dependentRequired", "dependentSchemas", "dependencies")
MAX_TRIGGERS = 4  # 2**4 variants of the object


def dependencies_of(schema: dict, pointer: str) -> dict:
    """``trigger -> (names it requires, schemas the object must then match)``, the ones that assert something.

    Raises:
        SchemaError: a keyword that is not an object, a ``dependentRequired`` entry that is not
            a list of strings, a ``dependentSchemas`` entry that is not a schema.
    """
    found: dict = {}
    for keyword in KEYWORDS:
        value = schema.get(keyword)
        if value is None:
            continue
        if not isinstance(value, dict):
            raise SchemaError(f"{keyword} must be an object", pointer)
        for trigger, needed in value.items():
            names, schemas = found.setdefault(trigger, ([], []))
            if isinstance(needed, list) and keyword != "dependentSchemas":
                if not all(isinstance(name, str) for name in needed):
                    raise SchemaError(f"{keyword}/{trigger} must be an array of strings", pointer)
                names.extend(needed)
            elif keyword == "dependentRequired":
                raise SchemaError(f"dependentRequired/{trigger} must be an array of strings", pointer)
            elif isinstance(needed, (dict, bool)):
                if needed is not True and needed != {}:
                    schemas.append(needed)
            else:
                raise SchemaError(f"{keyword}/{trigger} must be a schema", pointer)
    return {trigger: (names, schemas) for trigger, (names, schemas) in found.items() if names or schemas}


def dependency_variants(schema: dict, dependencies: dict) -> list:
    """The disjoint variants of ``schema`` (an object's keywords) for :func:`dependencies_of`'s result.

    A variant with dependent schemas is ``{"allOf": [object variant, *schemas]}`` (compile it
    whole); one without is the object's keywords alone."""
    base = {k: v for k, v in schema.items() if k not in KEYWORDS}
    variants: list = [(base, [])]
    for trigger, (names, schemas) in dependencies.items():
        split = []
        for variant, extra in variants:
            required = list(variant.get("required", []))
            if trigger not in required:
                split.append((dict(variant, properties=dict(variant.get("properties", {}), **{trigger: False})), extra))
            split.append((dict(variant, required=list(dict.fromkeys(required + [trigger] + names))), extra + schemas))
        variants = split
    return [variant if not extra else {"allOf": [dict(variant, type="object"), *extra]} for variant, extra in variants]


def negate_dependency(key: str, value: Any, negate: Callable) -> tuple:
    """``(terms, exact)``: the objects that fail ``key: value`` (a key present without what it
    needs), for :mod:`.negation`; ``negate`` negates a sub-schema into a ``Negation``."""
    terms: list = []
    exact = True
    for trigger, needed in value.items():
        if isinstance(needed, list) and key != "dependentSchemas":
            terms.extend({"type": "object", "required": [trigger], "properties": {n: False}} for n in needed)
        elif isinstance(needed, (dict, bool)) and key != "dependentRequired":
            inner = negate(needed)
            terms.extend({"allOf": [{"type": "object", "required": [trigger]}, term]} for term in inner.terms)
            exact = exact and inner.exact
        else:
            exact = False
    return terms, exact
