"""Our own JSON Schema compiler: the regex output (byte automaton) and the grammar output (Lark).

Strict by design: every assertion keyword is either enforced exactly or refused with an
:class:`~pse_processors.errors.UnsupportedSchemaError` that names it and its JSON pointer.
Annotations (``title``, ``description``, ``default``...) and keywords outside the JSON
Schema vocabularies carry no assertion and are skipped.

Where JSON Schema allows more than one spelling of a valid instance, the compiler picks a
subset; every choice is listed in README.md ("What the automaton accepts"). The generated
language is always a subset of the valid instances: never a superset.

This file holds the entry points and the compiler's shared state; each concern is a mixin in
a file of its own: ``references.py`` (``$ref``), ``combinators.py`` (``allOf``/``anyOf``/
``oneOf``), ``values.py`` (``enum``/``const``), ``scalars.py`` (types, numbers, strings),
``arrays.py``, ``objects.py`` (and any value), ``conditionals.py`` (``not``, ``if``), ``lexemes.py``
(strings under several patterns, llguidance only);
``schema_tools.py`` holds the schema-level helpers, ``options.py`` :class:`SchemaOptions`,
``rules.py`` the grammar output's rules and their Lark form.
"""

from __future__ import annotations

import contextlib
import json
import logging
import time
from dataclasses import dataclass
from typing import Any, Iterator, Optional

from ..errors import CompileLimitError, PSEError, SchemaError, UnsatisfiableConstraintError, UnsupportedSchemaError
from . import fragments as fx
from .fragments import Fragment
from .document import MAX_DEPTH, check_depth, check_values, lone_surrogate
from .drafts import drop_ref_siblings, ignores_ref_siblings
from .finiteness import no_finite_instance, unfinished
from .negation import negate
from .options import SchemaOptions
from .rules import ANY_VALUE, RuleSet, check_no_markers, to_lark, unique_items_marker
from .schema_tools import _ANY_NESTED, _MAX_ELSE_PARTS, _REFUSED_ANYWHERE
# One mixin per concern, each in its own file:
from .arrays import ArraysMixin
from .combinators import CombinatorsMixin
from .conditionals import ConditionalsMixin
from .lexemes import StringAlgebraMixin
from .objects import ObjectsMixin
from .references import RefsMixin
from .scalars import ScalarsMixin
from .values import ValuesMixin

logger = logging.getLogger(__name__)


class _Compiler(RefsMixin, CombinatorsMixin, ValuesMixin, ScalarsMixin, StringAlgebraMixin, ArraysMixin, ObjectsMixin,
                ConditionalsMixin):
    """One compile of one schema: the entry points and shared state; each concern is a mixin."""

    def __init__(self, root: Any, options: SchemaOptions, rules: Optional[RuleSet] = None) -> None:
        self.root = root
        self.options = options
        self.pretty = options.whitespace == "pretty" and options.whitespace_pattern is None
        # Grammar mode (see rules.py): recursion becomes named rules instead of being unrolled.
        # Pretty layouts indent by depth, which no finite set of rules can track: they unroll.
        self.rules = rules if rules is not None and not self.pretty else None
        self._rule_names: dict = {}  # (ref, siblings) -> rule name
        self._rule_sources: dict = {}  # rule name -> (schema, pointer, ref), to compile it on its own
        self._open_rules: set = set()
        self._recursive_rules: set = set()
        self._rule_memo: dict = {}
        self.depth_cut = False  # regex output: a recursion was cut at max_recursion_depth
        if options.whitespace_pattern is not None:
            space = f"(?:{options.whitespace_pattern})"
            self.open_ws = self.close_ws = space
        else:
            space = "[ ]?" if options.whitespace == "default" else ""
            self.open_ws = self.close_ws = ""
        self.depth = 0
        self.item_sep = "," + space
        self.key_sep = ":" + (" " if self.pretty else space)
        self._ref_stack: list[str] = []
        self._ref_memo: dict = {}
        self._produced = 0
        self._strict_depth = 0  # > 0 while compiling optional parts, which are dropped, not loosened
        self._else_parts_left = _MAX_ELSE_PARTS
        self._deadline = time.monotonic() + options.max_compile_seconds

    def unsupported(self, keyword: str, pointer: str, reason: str = "") -> None:
        """Refuse ``keyword`` (strict), or warn that it is dropped (lenient)."""
        if self.options.strict or self._strict_depth:
            raise UnsupportedSchemaError(keyword, pointer, reason) if reason else UnsupportedSchemaError(keyword, pointer)
        logger.warning("lenient mode: ignoring the JSON Schema keyword %r at %s%s", keyword, pointer or "#",
                       f" ({reason})" if reason else "")

    @contextlib.contextmanager
    def strictly(self) -> Iterator[None]:
        """Refuse even in lenient mode: for parts that are dropped when they cannot be exact."""
        self._strict_depth += 1
        try:
            yield
        finally:
            self._strict_depth -= 1

    def optional_parts(self, schemas: Any, pointer: str) -> tuple[list, list]:
        """Compile each schema strictly; one that is refused is left out (the union shrinks).

        Returns the fragments and the refusals."""
        parts, refusals = [], []
        for schema in schemas:
            try:
                with self.strictly():
                    parts.append(self.compile(schema, pointer))
            except UnsupportedSchemaError as exc:
                logger.debug("left out a part at %s: %s", pointer or "#", exc)
                refusals.append(exc)
        return parts, refusals

    def negation(self, schema: Any, pointer: str) -> Any:
        """Positive schemas for the instances failing ``schema`` (see ``negation.negate``)."""
        return negate(schema, lambda ref: self._resolve(ref, pointer), patterns=self.rules is not None)

    def refuse_present(self, schema: dict, keywords: tuple, pointer: str) -> None:
        for keyword in keywords:
            if keyword in schema:
                self.unsupported(keyword, pointer)

    # Containers: separators depend on the nesting depth in pretty mode.
    def sep(self) -> str:
        return ",\n" + " " * (self.options.indent * self.depth) if self.pretty else self.item_sep

    def opening(self) -> str:
        return "\n" + " " * (self.options.indent * self.depth) if self.pretty else self.open_ws

    def closing(self) -> str:
        return "\n" + " " * (self.options.indent * (self.depth - 1)) if self.pretty else self.close_ws

    def compile(self, schema: Any, pointer: str) -> Fragment:
        if time.monotonic() > self._deadline:
            raise CompileLimitError(
                f"compiling the schema took more than {self.options.max_compile_seconds:g}s "
                "(max_compile_seconds): lower max_recursion_depth or any_value_depth, or raise the limit"
            )
        fragment = self._compile(schema, pointer)
        if fragment is not None:
            limit = self.options.max_regex_length
            self._produced += len(fragment)
            rules_size = 0 if self.rules is None else self.rules.size
            if len(fragment) > limit or self._produced > 20 * limit or rules_size > 2 * limit:
                raise CompileLimitError(
                    f"the schema at {pointer or '#'} expands to a regex of more than {limit:,} characters "
                    "(max_regex_length): its automaton could exhaust memory. Lower max_recursion_depth or "
                    "any_value_depth, bound fewer repetitions, or raise max_regex_length."
                )
        return fragment

    def _compile(self, schema: Any, pointer: str) -> Fragment:
        if schema is _ANY_NESTED:
            return self.any_value(max(self.options.any_value_depth - 1, 0))
        if schema is True:
            return self.any_value(self.options.any_value_depth)
        if schema is False:
            return None
        if not isinstance(schema, dict):
            raise SchemaError(f"a schema must be an object or a boolean, not {type(schema).__name__}", pointer)
        self.refuse_present(schema, _REFUSED_ANYWHERE, pointer)
        if schema.get("type") == []:  # an empty type list (e.g. merged by allOf): nothing validates
            return None
        if "$ref" in schema:
            return self._compile_ref(schema, pointer)
        if "if" in schema or "then" in schema or "else" in schema:
            return self._compile_conditional(schema, pointer)
        if "allOf" in schema:  # before not: the merged siblings (an enum, a type) let not fold exactly
            return self._compile_all_of(schema, pointer)
        if "not" in schema:
            return self.compile(self._apply_not(schema, pointer), pointer)
        if "anyOf" in schema or "oneOf" in schema:
            return self._compile_union(schema, pointer)
        if "enum" in schema or "const" in schema:
            return self._compile_enum(schema, pointer)
        types = self._types(schema, pointer)
        if not types:
            if "type" in schema:  # an empty type list (e.g. merged by allOf): nothing validates
                return None
            return self.any_value(self.options.any_value_depth)
        if schema.get("nullable") is True and "null" not in types:
            types.append("null")
        return fx.alternation(self._compile_type(t, schema, pointer) for t in types)


def json_schema_to_regex(schema: Any, options: Optional[SchemaOptions] = None) -> str:
    """Compile a JSON Schema (dict, bool or JSON string) to a regex over JSON text.

    Raises:
        SchemaError: the schema is malformed.
        UnsupportedSchemaError: the schema uses a keyword that cannot be enforced exactly.
        UnsatisfiableConstraintError: no JSON value satisfies the schema.

    Example:
        >>> from pse_processors.json_schema import json_schema_to_regex
        >>> json_schema_to_regex({"type": "boolean"})
        '(?:true|false)'
    """
    regex, _ = _run(_loaded(schema), options or SchemaOptions(), None)
    return _encodable(regex)


@dataclass(frozen=True)
class SchemaGrammar:
    """The compiler's grammar output: a Lark grammar, and whether it has recursive rules.

    ``recursive`` is true when the language needs rules: a recursive ``$ref``, any JSON value
    (``{}``, an absent ``items``...) or an object's optional members; or llguidance's terminal
    algebra (``&``, ``~``: a pattern's complement, two patterns' intersection) where the regex
    output generates a subset (see ``lexemes.py``). The byte automaton
    can hold the same language only where ``recursive`` is false (the rules of optional
    members aside)."""

    lark: str
    recursive: bool


def json_schema_to_grammar(schema: Any, options: Optional[SchemaOptions] = None) -> SchemaGrammar:
    """Compile a JSON Schema to a Lark grammar for the grammar engine (same semantics as the regex).

    Recursive ``$ref`` s and "any value" are rules, so they nest without a depth limit
    (``max_recursion_depth`` and ``any_value_depth`` apply to the ``"pretty"`` layout only,
    whose indentation no grammar rule can track).

    Example:
        >>> from pse_processors.json_schema import json_schema_to_grammar
        >>> schema = {"type": "array", "items": {"$ref": "#"}}
        >>> print(json_schema_to_grammar(schema).lark)
        start: T0 (ref_0 (T1 ref_0)*)? T2
        ref_0: T0 (ref_0 (T1 ref_0)*)? T2
        T0: /\\[/
        T1: /,[ ]?/
        T2: /\\]/
    """
    schema = _loaded(schema)
    check_no_markers(schema)
    rules = RuleSet()
    root, compiler = _run(schema, options or SchemaOptions(), rules)
    if compiler._recursive_rules:  # only a recursive $ref can make a rule that never finishes
        root, compiler = _finite_rules(schema, options or SchemaOptions(), rules, root, compiler)
    recursive = bool(compiler._recursive_rules) or ANY_VALUE in rules.bodies or rules.beyond_regex
    try:
        lark = to_lark(root, rules)
    except RecursionError as exc:  # the Lark writer recurses once per nested group
        raise CompileLimitError(
            "the schema's grammar nests its groups too deeply to be written out (deeply nested "
            "subschemas, or numeric bounds with very many digits)"
        ) from exc
    if rules.unique_items:
        lark = unique_items_marker(schema) + lark
    return SchemaGrammar(_encodable(lark), recursive)


def _encodable(output: str) -> str:
    """``output``, unless a lone surrogate from the schema reached it (the checks where names,
    values and patterns are read name the place; this catches any path they miss)."""
    where = lone_surrogate(output)
    if where is not None:
        raise SchemaError(
            f"a string of the schema (a property name, an enum or const value, a pattern) holds a lone surrogate "
            f"U+{ord(output[where]):04X}, which no UTF-8 text can contain", "#",
        )
    return output


def _loaded(schema: Any) -> Any:
    """The schema (JSON text parsed), checked to nest at most ``MAX_DEPTH`` levels and to hold no
    keyword value a JSON Schema cannot have (see ``document.py``)."""
    if isinstance(schema, (str, bytes)):
        try:
            schema = json.loads(schema)
        except json.JSONDecodeError as exc:
            raise SchemaError(f"the schema is not valid JSON: {exc}", "#") from exc
        except RecursionError:  # json.loads recurses once per level, far past MAX_DEPTH
            raise SchemaError(f"the schema nests deeper than {MAX_DEPTH} levels", "#") from None
    check_depth(schema)
    check_values(schema)
    return schema


def _run(schema: Any, options: SchemaOptions, rules: Optional[RuleSet]) -> tuple:
    """(root fragment, compiler) for ``schema``; raises what json_schema_to_regex documents."""
    try:
        if ignores_ref_siblings(schema):  # drafts 3-7: a $ref replaces its siblings
            schema = drop_ref_siblings(schema)
    except RecursionError as exc:
        raise SchemaError("the schema nests too deeply to compile", "#") from exc
    compiler = _Compiler(schema, options, rules)
    limit: Optional[CompileLimitError] = None
    try:
        try:
            regex = compiler.compile(schema, "#")
        except CompileLimitError as exc:
            if compiler._else_parts_left == _MAX_ELSE_PARTS:
                raise
            limit = exc
            # The else sides of many conditionals multiplied past a limit: keep their if-and-then
            # sides only (a subset, as for any partial negation).
            logger.info("compile limit reached with else sides of conditionals; retrying without them")
            if rules is not None:
                rules.clear()
            compiler = _Compiler(schema, options, rules)
            compiler._else_parts_left = 0
            regex = compiler.compile(schema, "#")
        compiler.define_missing_rules()
    except RecursionError as exc:
        raise SchemaError("the schema nests too deeply to compile", "#") from exc
    if regex is None:
        if limit is not None:  # the subset without else sides is empty: the limit, not the schema, is why
            raise CompileLimitError(f"{limit}; without the else sides of its conditionals (the fallback) no "
                                    "instance remains: raise max_regex_length and max_compile_seconds") from limit
        if rules is None and compiler.depth_cut:
            raise _why_unsatisfiable(schema, options)
        raise UnsatisfiableConstraintError("no JSON value satisfies this schema")
    return regex, compiler


def _finite_rules(schema: Any, options: SchemaOptions, rules: RuleSet, root: str, compiler: _Compiler) -> tuple:
    """``(root, compiler)`` with no rule that never finishes: llguidance would let a walk enter
    such a rule and never end. A recursive ``$ref`` without a finite instance is refused where
    it is required, and dropped where it is optional, as the regex output drops it where its
    unrolling runs out (see ``finiteness.py``)."""
    to_lark(root, rules)  # kept in rules.written, with each rule's expression form
    finishes, stuck, cycles = unfinished(rules.written[2])
    refs = [name for name in stuck if name in compiler._rule_sources]
    if finishes and not refs:
        return root, compiler
    on_cycles = [name for cycle in cycles for name in cycle if name in compiler._rule_sources]
    message = no_finite_instance(list(dict.fromkeys(compiler._rule_sources[n][2] for n in on_cycles or refs)))
    if not finishes:
        raise UnsatisfiableConstraintError(message)
    logger.info("dropping the optional parts that can never end: %s", message)
    rules.clear()
    rules.empty |= {key for key, name in compiler._rule_names.items() if name in refs}
    try:
        return _run(schema, options, rules)
    except UnsatisfiableConstraintError as exc:
        raise UnsatisfiableConstraintError(message) from exc


def _why_unsatisfiable(schema: Any, options: SchemaOptions) -> UnsatisfiableConstraintError:
    """The error for a schema whose regex output is empty after a recursion was cut: the grammar
    output (no depth limit) says whether a deeper instance exists or none at all."""
    try:
        json_schema_to_grammar(schema, options)
    except UnsatisfiableConstraintError as exc:
        return exc
    except PSEError:
        return UnsatisfiableConstraintError("no JSON value satisfies this schema")
    return UnsatisfiableConstraintError(
        f"no JSON value satisfies this schema within max_recursion_depth={options.max_recursion_depth}: the byte "
        "automaton unrolls recursion only that deep. Raise it, or use backend='llguidance' (no depth limit)"
    )
