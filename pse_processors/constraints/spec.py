"""The constraints a user can ask for, normalized to one regex and a stable cache key."""

from __future__ import annotations

import dataclasses
import hashlib
import json
import re
from dataclasses import dataclass
from typing import Any, Optional, Sequence, Union

from ..errors import SchemaError
from ..json_schema import SchemaOptions, json_schema_to_regex
from ..json_schema import fragments as fx
from ..json_schema.document import MAX_DEPTH, check_depth, lone_surrogate
from .regex_check import check_regex
from .regex_sentinels import without_sentinels
from .structure import StructuredConstraint


@dataclass(frozen=True)
class Regex:
    """A constraint given as a regular expression over the generated text (full match).

    The syntax is Rust's ``regex`` crate (what both back ends parse); the output matches the whole
    pattern, as with ``re.fullmatch``, so ``^``/``\\A`` at the start and ``$``/``\\z``/``\\Z`` at the
    end are accepted and change nothing. A malformed pattern, and a construct no back end can
    enforce exactly (look-arounds, back-references, ``\\b``, an anchor inside the pattern), are
    refused when the constraint is compiled (see :mod:`~pse_processors.constraints.regex_check`).

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
        for index, choice in enumerate(choices):
            where = lone_surrogate(choice)
            if where is not None:
                raise SchemaError(
                    f"Choice item {index} ({choice!r}) holds a lone surrogate U+{ord(choice[where]):04X} at "
                    f"position {where}: no UTF-8 text can contain it", None,  # type: ignore[arg-type]
                )
        object.__setattr__(self, "choices", tuple(choices))


@dataclass(frozen=True)
class Grammar:
    """A constraint given as a context-free grammar in Lark syntax, with regex terminals.

    The output is a complete sentence of the grammar's ``start`` rule. The dialect is
    llguidance's: rules ``name: a b | c``, quoted strings, ``/regex/`` terminals, ``?``
    ``*`` ``+`` and ``(...)`` groups, ``%ignore``. Grammars run on the grammar engine
    (torch and MLX processors); a grammar that cannot be run raises ``SchemaError`` naming
    its line when it is compiled. Terminals are matched greedily (longest match), so write
    terminals that do not run into each other, e.g. not ``/a+/ /a/``.

    Example:
        >>> from pse_processors import Grammar
        >>> Grammar('start: expr\\nexpr: NUMBER ("+" NUMBER)*\\nNUMBER: /[0-9]+/').lark.splitlines()[0]
        'start: expr'
    """

    lark: str

    def __post_init__(self) -> None:
        if not isinstance(self.lark, str) or not self.lark.strip():
            raise SchemaError("Grammar needs a non-empty Lark grammar string", "")
        where = lone_surrogate(self.lark)
        if where is not None:
            line = self.lark.count("\n", 0, where) + 1
            raise SchemaError(
                f"the Grammar holds a lone surrogate U+{ord(self.lark[where]):04X} on line {line}: no UTF-8 "
                "text can contain it", None,  # type: ignore[arg-type]
            )


Constraint = Union[dict, bool, str, Regex, Choice, Grammar, type, StructuredConstraint]


@dataclass(frozen=True)
class ConstraintSpec:
    """A normalized constraint: its kind, regex, cache key and (for Pydantic) result type.

    ``leading_space`` is true when the regex accepts the one optional leading space of a
    dummy-prefix vocabulary (see :meth:`with_dummy_prefix`).
    """

    kind: str  # "json", "regex", "choice" or "grammar"; "reasoning", "delimited" or "tools" (structure)
    regex: str
    result_type: Any = None
    leading_space: bool = False
    #: The Lark grammar run by the grammar engine (``None``: the regex runs on the byte automaton).
    lark: Optional[str] = None
    #: Structure in free text: the :class:`~pse_processors.constraints.structure.Lowered` tree
    #: that the matcher runs and ``parse`` splits by (``None`` for the other kinds).
    structure: Any = None
    #: What else the structure's matcher depends on (the compile options of its inner constraints).
    structure_options: str = ""

    @property
    def key(self) -> str:
        """Cache key: the regex alone determines the automaton (the grammar, for the grammar engine)."""
        if self.structure is not None:
            return _key("structure", self.structure.key, self.structure_options, self.lark or "")
        return _key(self.regex) if self.lark is None else _key("lark", self.lark)

    def with_dummy_prefix(self) -> "ConstraintSpec":
        """The spec for a vocabulary whose tokenizer prepends a space (Llama-2's ``▁``).

        Such a tokenizer encodes ``{"a": 1}`` as ``▁{`` …, and a model emits its first token
        that way, so the output may start with exactly one extra space: the regex becomes
        ``(?: )?(?:regex)``. :func:`~pse_processors.runtime.results.parse_output` removes that space,
        as the tokenizer's decoder does. Nothing else changes: no other leading whitespace.

        Example:
            >>> from pse_processors.constraints.spec import normalize, Regex
            >>> normalize(Regex("[0-9]+")).with_dummy_prefix().regex
            '(?: )?(?:[0-9]+)'
        """
        if self.leading_space:
            return self
        if self.lark is not None:
            return dataclasses.replace(self, lark=with_leading_space(self.lark), leading_space=True)
        return dataclasses.replace(self, regex=f"(?: )?(?:{self.regex})", leading_space=True)


def _is_pydantic_model(obj: Any) -> bool:
    return isinstance(obj, type) and hasattr(obj, "model_json_schema") and hasattr(obj, "model_validate_json")


def normalize(constraint: Constraint, options: Optional[SchemaOptions] = None) -> ConstraintSpec:
    """Turn a user constraint into a :class:`ConstraintSpec`.

    A ``dict``/``bool`` or a JSON ``str`` is a JSON Schema; a Pydantic model class is its
    ``model_json_schema()``; :class:`Regex`, :class:`Choice` and :class:`Grammar` wrap the other kinds.
    """
    options = options or SchemaOptions()
    if isinstance(constraint, Regex):
        # Classes kept off the automaton's sentinels: linear builds of ".{n}" (regex_sentinels.py)
        return ConstraintSpec("regex", without_sentinels(check_regex(constraint.pattern)))
    if isinstance(constraint, Grammar):
        return ConstraintSpec("grammar", "", lark=constraint.lark)
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
        except RecursionError:  # json.loads recurses once per level, far past MAX_DEPTH
            raise SchemaError(f"the schema nests deeper than {MAX_DEPTH} levels", "#") from None
    raise TypeError(
        "constraint must be a JSON Schema (dict or str), a Pydantic model class, Regex(...) or "
        f"Choice([...]), not {type(constraint).__name__}"
    )


@dataclass(frozen=True)
class ParsedConstraint:
    """A constraint parsed once, for every stage after it (the regex and the Lark grammar alike).

    ``kind`` is ``"json"``, ``"regex"``, ``"choice"`` or ``"grammar"`` (or a structured constraint's:
    ``"reasoning"``, ``"delimited"``, ``"tools"``). For a JSON Schema,
    ``schema`` is the loaded schema, ``result_type`` the Pydantic class (or ``None``) and ``text``
    its JSON text (the cache key: property order is generation order), ``None`` when the schema
    is not JSON (the compiler then names the problem).

    Example:
        >>> parsed = parse_constraint('{"type": "boolean"}')
        >>> parsed.kind, parsed.schema, parsed.text
        ('json', {'type': 'boolean'}, '{"type": "boolean"}')
        >>> parse_constraint(parsed) is parsed, parse_constraint(Regex("a+")).kind
        (True, 'regex')
    """

    constraint: Any
    kind: str
    schema: Any = None
    result_type: Any = None
    text: Optional[str] = None


def parse_constraint(constraint: Any) -> ParsedConstraint:
    """Parse ``constraint`` once (a :class:`ParsedConstraint` is returned as it is).

    Raises ``TypeError`` for a value that is no constraint, ``SchemaError`` for text that is not
    JSON or a schema nested deeper than :data:`~pse_processors.json_schema.document.MAX_DEPTH` levels."""
    if isinstance(constraint, ParsedConstraint):
        return constraint
    if isinstance(constraint, (Regex, Choice, Grammar)):
        kind = {Regex: "regex", Choice: "choice", Grammar: "grammar"}[type(constraint)]
        return ParsedConstraint(constraint, kind)
    if isinstance(constraint, StructuredConstraint):
        return ParsedConstraint(constraint, constraint.kind)
    schema, result_type = json_schema_of(constraint)
    check_depth(schema)  # before json.dumps and the compiler recurse through it
    try:
        text: Optional[str] = json.dumps(schema, ensure_ascii=False, allow_nan=False)
    except (TypeError, ValueError):
        text = None
    return ParsedConstraint(constraint, "json", schema, result_type, text)


_LITERAL = re.compile(r'"(?:[^"\\\n]|\\.)*"i?|/(?:[^/\\\n]|\\.)+/[imsx]*|//[^\n]*')
_START = re.compile(r"(?<![\w.])start(?!\w)")


def with_leading_space(lark: str) -> str:
    """``lark`` whose sentences may start with one space: its ``start`` rule is renamed.

    Example:
        >>> print(with_leading_space('start: "(" start ")" | "start"'))
        start: " "? pse_start
        pse_start: "(" pse_start ")" | "start"
    """
    out, last = [], 0
    for literal in _LITERAL.finditer(lark):  # rename outside strings, regexes and comments only
        out.append(_START.sub("pse_start", lark[last : literal.start()]))
        out.append(literal.group())
        last = literal.end()
    out.append(_START.sub("pse_start", lark[last:]))
    return 'start: " "? pse_start\n' + "".join(out)


def _key(*parts: str) -> str:
    digest = hashlib.sha256()
    for part in parts:
        digest.update(part.encode("utf-8", "surrogatepass") + b"\x00")
    return digest.hexdigest()[:32]
