"""The constraints a user can ask for, normalized to one regex and a stable cache key."""

from __future__ import annotations

import dataclasses
import hashlib
import json
from dataclasses import dataclass
from typing import Any, Optional, Sequence, Union

from .errors import SchemaError
from .json_schema import SchemaOptions, json_schema_to_regex
from .json_schema import fragments as fx


@dataclass(frozen=True)
class Regex:
    """A constraint given as a regular expression over the generated text (full match).

    Example:
        >>> from pse_processors import Regex
        >>> Regex(r"[0-9]{3}-[0-9]{4}").pattern
        '[0-9]{3}-[0-9]{4}'
    """

    pattern: str

    def __post_init__(self) -> None:
        if not isinstance(self.pattern, str) or not self.pattern:
            raise SchemaError("Regex needs a non-empty pattern string", "")


@dataclass(frozen=True)
class Choice:
    """A constraint given as a list of allowed strings: the output is exactly one of them.

    Example:
        >>> from pse_processors import Choice
        >>> Choice(["yes", "no"]).choices
        ('yes', 'no')
    """

    choices: tuple

    def __init__(self, choices: Sequence[str]) -> None:
        if isinstance(choices, str) or not choices or not all(isinstance(c, str) and c for c in choices):
            raise SchemaError("Choice needs a non-empty list of non-empty strings", "")
        object.__setattr__(self, "choices", tuple(choices))


Constraint = Union[dict, bool, str, Regex, Choice, type]


@dataclass(frozen=True)
class ConstraintSpec:
    """A normalized constraint: its kind, regex, cache key and (for Pydantic) result type.

    ``leading_space`` is true when the regex accepts the one optional leading space of a
    dummy-prefix vocabulary (see :meth:`with_dummy_prefix`).
    """

    kind: str  # "json", "regex" or "choice"
    regex: str
    result_type: Any = None
    leading_space: bool = False

    @property
    def key(self) -> str:
        """Cache key: the regex alone determines the automaton."""
        return _key(self.regex)

    def with_dummy_prefix(self) -> "ConstraintSpec":
        """The spec for a vocabulary whose tokenizer prepends a space (Llama-2's ``▁``).

        Such a tokenizer encodes ``{"a": 1}`` as ``▁{`` …, and a model emits its first token
        that way, so the output may start with exactly one extra space: the regex becomes
        ``(?: )?(?:regex)``. :func:`~pse_processors.results.parse_output` removes that space,
        as the tokenizer's decoder does. Nothing else changes: no other leading whitespace.

        Example:
            >>> from pse_processors.constraints import normalize, Regex
            >>> normalize(Regex("[0-9]+")).with_dummy_prefix().regex
            '(?: )?(?:[0-9]+)'
        """
        if self.leading_space:
            return self
        return dataclasses.replace(self, regex=f"(?: )?(?:{self.regex})", leading_space=True)


def _is_pydantic_model(obj: Any) -> bool:
    return isinstance(obj, type) and hasattr(obj, "model_json_schema") and hasattr(obj, "model_validate_json")


def normalize(constraint: Constraint, options: Optional[SchemaOptions] = None) -> ConstraintSpec:
    """Turn a user constraint into a :class:`ConstraintSpec`.

    A ``dict``/``bool`` or a JSON ``str`` is a JSON Schema; a Pydantic model class is its
    ``model_json_schema()``; :class:`Regex` and :class:`Choice` wrap the other kinds.
    """
    options = options or SchemaOptions()
    if isinstance(constraint, Regex):
        return ConstraintSpec("regex", constraint.pattern)
    if isinstance(constraint, Choice):
        regex = fx.alternation(fx.escape(c) for c in constraint.choices)
        return ConstraintSpec("choice", regex)  # type: ignore[arg-type]
    schema, result_type = json_schema_of(constraint)
    return ConstraintSpec("json", json_schema_to_regex(schema, options), result_type)


def json_schema_of(constraint: Constraint) -> tuple:
    """``(schema, result type)`` of a JSON Schema constraint (dict, bool, JSON text or Pydantic model).

    Raises ``TypeError`` for anything else, ``SchemaError`` for text that is not JSON."""
    if _is_pydantic_model(constraint):
        return constraint.model_json_schema(), constraint  # type: ignore[union-attr]
    if isinstance(constraint, (dict, bool)):
        return constraint, None
    if isinstance(constraint, (str, bytes)):
        try:
            return json.loads(constraint), None
        except json.JSONDecodeError as exc:
            raise SchemaError(
                f"a string constraint must be a JSON Schema, and this is not valid JSON ({exc}); "
                "wrap regular expressions in pse_processors.Regex(...)",
                "#",
            ) from exc
    raise TypeError(
        "constraint must be a JSON Schema (dict or str), a Pydantic model class, Regex(...) or "
        f"Choice([...]), not {type(constraint).__name__}"
    )


def _key(*parts: str) -> str:
    digest = hashlib.sha256()
    for part in parts:
        digest.update(part.encode("utf-8", "surrogatepass") + b"\x00")
    return digest.hexdigest()[:32]
