"""Our own JSON Schema → regex compiler.

Strict by design: every assertion keyword is either enforced exactly or refused with an
:class:`~pse_processors.errors.UnsupportedSchemaError` that names it and its JSON pointer.
Annotations (``title``, ``description``, ``default``...) and keywords outside the JSON
Schema vocabularies carry no assertion and are skipped.

Where JSON Schema allows more than one spelling of a valid instance, the compiler picks a
subset; every choice is listed in README.md ("What the automaton accepts"). The generated
language is always a subset of the valid instances: never a superset.
"""

from __future__ import annotations

import contextlib
import itertools
import json
import logging
import math
import re
import time
import urllib.parse
from collections import Counter
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from typing import Any, Callable, Iterator, Optional

from ..errors import CompileLimitError, SchemaError, UnsatisfiableConstraintError, UnsupportedSchemaError
from . import fragments as fx
from .formats import ANY_STRING_FORMATS, NUMERIC_FORMATS, STRING_FORMATS
from .keywords import ALL_TYPES, ANNOTATIONS, ASSERTIONS
from .negation import negate, not_in_pattern
from .fragments import Fragment
from .numbers import integer_range, number_range
from .patterns import translate, translate_bounded
from .rules import ANY_VALUE, RuleSet, check_no_markers, to_lark

logger = logging.getLogger(__name__)

# Assertion keywords that this version refuses wherever they would constrain the output.
_REFUSED_ANYWHERE = ("dependentSchemas", "unevaluatedProperties", "unevaluatedItems", "$dynamicRef",
                     "$recursiveRef", "$dynamicAnchor")
_NUMERIC_KEYWORDS = ("minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum", "multipleOf")

_TYPE_KEYWORDS = {
    "string": ("minLength", "maxLength", "pattern", "format"),
    "integer": _NUMERIC_KEYWORDS,
    "number": _NUMERIC_KEYWORDS,
    "array": ("items", "prefixItems", "minItems", "maxItems", "additionalItems", "uniqueItems", "contains",
              "minContains", "maxContains"),
    "object": ("properties", "required", "additionalProperties", "patternProperties", "propertyNames",
               "minProperties", "maxProperties", "dependentRequired", "dependencies"),
}
# At most this many else-side parts per schema: each conditional in an allOf doubles the work.
_MAX_ELSE_PARTS = 64
# At most this many alternatives per oneOf branch made exclusive by negations.
_MAX_ONE_OF_VARIANTS = 64
# Enumerate bounded integer ranges up to this size when multipleOf cannot be written otherwise.
_ENUMERATE_LIMIT = 2000
# An absent items/additionalProperties: any value, one nesting level shallower than a top-level
# `true`, so that {"type": "object"} nests no deeper than {}.
_ANY_NESTED = object()


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
        strict: ``True`` refuses a keyword that cannot be enforced exactly
            (``UnsupportedSchemaError``); ``False`` logs a warning and drops it instead.
        max_recursion_depth: how many times a recursive ``$ref`` is unrolled.
        any_value_depth: nesting depth of objects/arrays allowed where a schema allows any value.
        max_regex_length: refuse (``CompileLimitError``) a schema whose regex, or whose expansion
            work, grows past this many characters (20x for the work).
        max_compile_seconds: refuse (``CompileLimitError``) a schema whose regex takes longer
            to build.
    """

    whitespace: str = "default"
    indent: int = 2
    whitespace_pattern: Optional[str] = None
    additional_properties: str = "closed"
    strict: bool = True
    max_recursion_depth: int = 3
    any_value_depth: int = 2
    max_regex_length: int = 700_000
    max_compile_seconds: float = 10.0

    def __post_init__(self) -> None:
        if self.whitespace not in ("default", "compact", "pretty"):
            raise ValueError(f"whitespace must be 'default', 'compact' or 'pretty', not {self.whitespace!r}")
        if self.additional_properties not in ("closed", "spec"):
            raise ValueError(f"additional_properties must be 'closed' or 'spec', not {self.additional_properties!r}")
        if self.max_recursion_depth < 0 or self.any_value_depth < 0 or self.indent < 0:
            raise ValueError("max_recursion_depth, any_value_depth and indent must be >= 0")


def _pointer_join(pointer: str, *parts: Any) -> str:
    for part in parts:
        pointer += "/" + str(part).replace("~", "~0").replace("/", "~1")
    return pointer


class _Compiler:
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
        return negate(schema, lambda ref: self._resolve(ref, pointer))

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

    # -- entry -----------------------------------------------------------------
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
            if len(fragment) > limit or self._produced > 20 * limit:
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

    # -- references and combinators ---------------------------------------------
    def _resolve(self, ref: str, pointer: str) -> Any:
        if not isinstance(ref, str):
            raise SchemaError("$ref must be a string", pointer)
        if not ref.startswith("#"):
            raise UnsupportedSchemaError("$ref", pointer, f"only local references ('#/...') are supported, not {ref!r}")
        node = self.root
        path = ref[1:]
        if path and not path.startswith("/"):
            raise UnsupportedSchemaError("$ref", pointer, f"anchor references are not supported: {ref!r}")
        for raw in path.split("/")[1:]:
            part = urllib.parse.unquote(raw).replace("~1", "/").replace("~0", "~")  # a URI fragment
            if isinstance(node, dict) and part in node:
                node = node[part]
            elif isinstance(node, list) and part.isdigit() and int(part) < len(node):
                node = node[int(part)]
            else:
                raise SchemaError(f"$ref {ref!r} points to nothing", pointer)
        return node

    def _compile_ref(self, schema: dict, pointer: str) -> Fragment:
        ref = schema["$ref"]
        target = self._resolve(ref, pointer)
        siblings = {k: v for k, v in schema.items() if k != "$ref"}
        if self.rules is not None:
            return self._ref_rule(ref, target, siblings, pointer)
        if self._ref_stack.count(ref) >= self.options.max_recursion_depth:
            return None  # recursion unrolled as deep as allowed: this branch drops out
        # A plain $ref's regex depends only on how often each ref is already being unrolled.
        memo_key = None if _has_assertions(siblings) else (ref, frozenset(Counter(self._ref_stack).items()), self.depth)
        if memo_key in self._ref_memo:
            return self._ref_memo[memo_key]
        self._ref_stack.append(ref)
        try:
            if memo_key is None:
                merged = _merge(target, siblings, pointer) if isinstance(target, dict) else None
                if merged is None:
                    raise UnsupportedSchemaError("$ref", pointer, "a boolean target with sibling keywords")
                return self.compile(merged, pointer)
            fragment = self._ref_memo[memo_key] = self.compile(target, ref)
            return fragment
        finally:
            self._ref_stack.pop()

    def _ref_rule(self, ref: str, target: Any, siblings: dict, pointer: str) -> Fragment:
        """Grammar mode: a ``$ref`` met again inside itself becomes a hole for its rule.

        A reference with sibling assertions is its own rule (the merged schema), so a
        recursion that repeats the siblings at every level stays exact."""
        plain = not _has_assertions(siblings)
        key = (ref, "" if plain else json.dumps(siblings, sort_keys=True, default=str))
        name = self._rule_names.get(key)
        if name is None:
            name = self._rule_names[key] = f"ref_{len(self._rule_names)}"
        if name in self.rules.bodies:  # type: ignore[union-attr]
            return self.rules.hole(name)  # type: ignore[union-attr]
        if key in self._rule_memo:
            return self._rule_memo[key]
        if key in self._open_rules:
            self._recursive_rules.add(name)
            return self.rules.hole(name)  # type: ignore[union-attr]
        if plain:
            schema, where = target, ref
        else:
            schema = _merge(target, siblings, pointer) if isinstance(target, dict) else None
            if schema is None:
                raise UnsupportedSchemaError("$ref", pointer, "a boolean target with sibling keywords")
            where = pointer
        self._rule_sources[name] = (schema, where, ref)
        self._open_rules.add(key)
        self._ref_stack.append(ref)
        try:
            fragment = self.compile(schema, where)
        finally:
            self._ref_stack.pop()
            self._open_rules.discard(key)
        if name in self._recursive_rules and fragment is not None:
            self.rules.define(name, fragment)  # type: ignore[union-attr]
            fragment = self.rules.hole(name)  # type: ignore[union-attr]
        self._rule_memo[key] = fragment
        return fragment

    def define_missing_rules(self) -> None:
        """Compile, on their own, the rules whose holes survive but whose bodies were never kept
        (their first compile was inside a part that was dropped)."""
        rules = self.rules
        if rules is None:
            return
        while True:
            missing = [n for n in self._recursive_rules if n not in rules.bodies]
            if not missing:
                return
            for name in missing:
                schema, where, ref = self._rule_sources[name]
                key = next(k for k, v in self._rule_names.items() if v == name)
                self._open_rules.add(key)
                self._ref_stack.append(ref)
                try:
                    fragment = self.compile(schema, where)
                finally:
                    self._ref_stack.pop()
                    self._open_rules.discard(key)
                if fragment is None:
                    raise UnsatisfiableConstraintError(f"the recursive schema {ref} has no finite instance")
                rules.define(name, fragment)

    def _compile_all_of(self, schema: dict, pointer: str) -> Fragment:
        branches = schema["allOf"]
        if not isinstance(branches, list) or not branches:
            raise SchemaError("allOf must be a non-empty array", pointer)
        merged: Any = {k: v for k, v in schema.items() if k != "allOf"}
        # Nested allOf entries are merged in place, depth first: property order follows the text.
        pending = [(branch, _pointer_join(pointer, "allOf", i)) for i, branch in enumerate(branches)]
        expansions = 0
        while pending:
            branch, where = pending.pop(0)
            if isinstance(branch, dict) and "$ref" in branch and not _has_assertions(
                {k: v for k, v in branch.items() if k != "$ref"}
            ):
                ref = branch["$ref"]
                if ref in self._ref_stack:
                    raise UnsupportedSchemaError("allOf", where, "a recursive $ref inside allOf")
                branch = self._resolve(ref, where)
            if branch is False:
                return None
            if branch is True:
                continue
            if not isinstance(branch, dict):
                raise SchemaError("allOf entries must be schemas", where)
            inner = branch.get("allOf")
            if isinstance(inner, list) and inner and expansions < 200:
                expansions += 1
                pending[:0] = [({k: v for k, v in branch.items() if k != "allOf"}, where)] + [
                    (entry, _pointer_join(where, "allOf", k)) for k, entry in enumerate(inner)]
                continue
            merged = _merge(merged, branch, where)
        if merged.get("allOf") and ("anyOf" in merged or "oneOf" in merged) and "if" not in merged and "$ref" not in merged:
            # A second anyOf/oneOf waits in allOf; distribute the first so each branch merges it
            # (compiling ``merged`` again would merge the same two unions forever).
            return self._compile_union(merged, pointer)
        return self.compile(merged, pointer)

    def _compile_union(self, schema: dict, pointer: str) -> Fragment:
        keyword = "anyOf" if "anyOf" in schema else "oneOf"  # with both, oneOf is merged into each anyOf branch
        branches = schema[keyword]
        if not isinstance(branches, list) or not branches:
            raise SchemaError(f"{keyword} must be a non-empty array", pointer)
        siblings = {k: v for k, v in schema.items() if k != keyword}
        resolved = []
        for i, branch in enumerate(branches):
            where = _pointer_join(pointer, keyword, i)
            if _has_assertions(siblings):
                if branch is False:
                    continue
                branch = siblings if branch is True else _merge(siblings, self._inline_ref(branch, where), where)
            resolved.append((branch, where))
        if keyword == "oneOf" and not self._disjoint([b for b, _ in resolved]):
            return self._compile_exclusive(self._exclusive_branches(resolved, branches, pointer), pointer)
        return fx.alternation(self.compile(branch, where) for branch, where in resolved)

    def _compile_exclusive(self, narrowed: list, pointer: str) -> Fragment:
        """Each oneOf branch ∧ (one positive form of ¬other) for every other branch it may overlap."""
        parts, refusals = [], []
        for branch, where, constraints in narrowed:
            if not constraints:
                parts.append(self.compile(branch, where))
                continue
            compiled, refused = self.optional_parts(
                ({"allOf": [branch, *combo]} for combo in itertools.product(*constraints)), where)
            parts += compiled
            refusals += refused
        fragment = fx.alternation(parts)
        if fragment is None and refusals:
            raise refusals[0]
        return fragment

    def _exclusive_branches(self, resolved: list, raw: list, pointer: str) -> list:
        """oneOf branches, each with what makes its instances fail every other branch.

        For each pair (i, j) a witness that an instance of branch i fails branch j: disjoint
        types, a required discriminator with disjoint constants, or a property that branch j
        requires and branch i may omit (then branch i forbids it). Without one, branch i gets
        the constraint "one of the positive forms of ¬branch j" (see ``negation``), a list of
        alternatives. Returns ``(branch, pointer, [alternatives per constraint])``; refuses
        when a needed negation has no positive form or the alternatives multiply too far."""
        others = []
        for k, branch in enumerate(raw):
            try:
                where_k = _pointer_join(pointer, "oneOf", k)
                others.append(self._flattened(self._inline_ref(branch, where_k), where_k) if isinstance(branch, dict) else branch)
            except UnsupportedSchemaError as exc:
                raise UnsupportedSchemaError("oneOf", pointer, f"branches that may overlap ({exc})") from exc
        out = []
        negations: dict = {}
        for i, (branch, where) in enumerate(resolved):
            branch = self._flattened(branch, where)
            overlap = UnsupportedSchemaError("oneOf", where, "branches that may overlap, and one has no negation "
                                                             "to exclude it with (pattern, format, multipleOf...)")
            if not isinstance(branch, dict):
                raise overlap
            try:
                generated = set(self._types(branch, where))
            except SchemaError:
                raise overlap from None
            if "nullable" in branch:
                generated.add("null")
            if "number" in generated:
                generated.add("integer")  # a generated number may be an integer
            literal = self._exclusive_values(branch, [o for j, o in enumerate(others) if j != i])
            if literal is not None:
                out.append((literal, where, []))
                continue
            constraints: list = []
            for j, other in enumerate(others):
                if j == i or other is False:
                    continue
                if not isinstance(other, dict):
                    raise overlap
                accepted = set(_as_list(other.get("type"))) or set(ALL_TYPES)
                if "number" in accepted:
                    accepted.add("integer")
                if generated and not (generated & accepted) and not other.get("nullable"):
                    continue
                if self._discriminated([branch, other]):
                    continue
                needed = [n for n in other.get("required", []) if n not in branch.get("required", [])]
                if generated == {"object"} and needed and isinstance(other.get("required"), list):
                    branch = _merge(branch, {"properties": {needed[0]: False}}, where)
                    continue
                if j not in negations:  # each branch's negation serves every other branch
                    negations[j] = self.negation(other, _pointer_join(pointer, "oneOf", j))
                failed = negations[j]
                terms = [t for t in failed.terms if _may_share_type(t, generated)]
                if not terms and not failed.exact:
                    raise overlap
                if generated == {"object"} and any(self._implied(branch, t) for t in terms):
                    continue  # every instance of this branch already fails the other one
                constraints.append(terms)
            while math.prod(len(c) for c in constraints) > _MAX_ONE_OF_VARIANTS:
                longest = max(constraints, key=len)  # keep fewer alternatives: a smaller subset
                del longest[(len(longest) + 1) // 2:]
            out.append((branch, where, constraints))
        return out

    def _flattened(self, schema: Any, where: str, depth: int = 0) -> Any:
        """``schema`` with its ``allOf`` merged in (plain ``$ref`` entries inlined), when that is
        exact; else ``schema`` itself. A discriminator or a closed object then shows at the top."""
        if not isinstance(schema, dict) or not isinstance(schema.get("allOf"), list) or depth > 8:
            return schema
        merged = {k: v for k, v in schema.items() if k != "allOf"}
        try:
            for entry in schema["allOf"]:
                if entry is True:
                    continue
                if not isinstance(entry, dict):
                    return schema
                merged = _merge(merged, self._flattened(self._inline_ref(entry, where), where, depth + 1), where)
        except (UnsupportedSchemaError, SchemaError):
            return schema
        return merged

    def _implied(self, branch: dict, term: Any) -> bool:
        """Whether every object the compiler generates for ``branch`` satisfies ``term``, for the
        two object forms of a negation: a property absent, a required property with other values."""
        if not isinstance(term, dict) or term.get("type") != "object" or set(term) - {"type", "properties", "required"}:
            return False
        props = term.get("properties", {})
        declared = branch.get("properties", {}) if isinstance(branch.get("properties"), dict) else {}
        if len(props) != 1:
            return False
        (name, sub), = props.items()
        if "required" not in term and sub is False:  # the property is absent
            if declared.get(name) is False:
                return True
            closed = branch.get("additionalProperties") is False or (
                "additionalProperties" not in branch and "properties" in branch
                and self.options.additional_properties == "closed")
            return closed and name not in declared and name not in branch.get("required", []) and not branch.get("patternProperties")
        if term.get("required") == [name] and name in branch.get("required", []) and isinstance(declared.get(name), dict):
            values = _literals({k: v for k, v in declared[name].items() if k in ("enum", "const")})
            return values is not None and all(self._decide(v, sub, 0) is True for v in values)
        return False

    def _exclusive_values(self, branch: dict, others: list) -> Optional[dict]:
        """An enum/const branch keeps the values every other branch rejects; None if undecided."""
        if "enum" not in branch and "const" not in branch:
            return None
        values = [branch["const"]] if "const" in branch else branch["enum"]
        if not isinstance(values, list):
            return None
        kept = []
        for value in values:
            verdicts = [self._decide(value, other, 0) for other in others]
            if any(v is None for v in verdicts):
                return None
            if not any(verdicts):
                kept.append(value)
        narrowed = {k: v for k, v in branch.items() if k != "const"}
        narrowed["enum"] = kept
        return narrowed

    def _inline_ref(self, branch: Any, where: str) -> dict:
        if not isinstance(branch, dict):
            raise SchemaError("a schema must be an object or a boolean", where)
        if "$ref" in branch and not _has_assertions({k: v for k, v in branch.items() if k != "$ref"}):
            if branch["$ref"] in self._ref_stack:
                raise UnsupportedSchemaError("$ref", where, "a recursive $ref merged with sibling keywords")
            target = self._resolve(branch["$ref"], where)
            if isinstance(target, dict):
                return target
        return branch

    def _disjoint(self, branches: list) -> bool:
        """True when no instance can match two oneOf branches: distinct constants, a
        discriminator, or distinct types."""
        seen_types: set[str] = set()
        seen_values: list[Any] = []
        if all(isinstance(b, dict) and ("const" in b or "enum" in b) for b in branches):
            for branch in branches:
                values = [branch["const"]] if "const" in branch else branch["enum"]
                if not isinstance(values, list):
                    return False
                for value in values:
                    if any(_json_equal(value, other) for other in seen_values):
                        return False
                    seen_values.append(value)
            return True
        if self._discriminated(branches):
            return True
        for branch in branches:
            types = self._branch_types(branch)
            if types is None or types & seen_types:
                return False
            seen_types |= types
        return True

    def _discriminated(self, branches: list) -> bool:
        """True when every branch requires one shared property with constant values, pairwise distinct."""
        resolved = []
        for branch in branches:
            if isinstance(branch, dict) and "$ref" in branch and set(branch) <= {"$ref"} | ANNOTATIONS:
                branch = self._resolve(branch["$ref"], "#")
            if not isinstance(branch, dict):
                return False
            resolved.append(branch)
        common = None
        for branch in resolved:
            names = {n for n in branch.get("required", []) if isinstance(branch.get("properties", {}).get(n), dict)
                     and ("const" in branch["properties"][n] or "enum" in branch["properties"][n])}
            common = names if common is None else common & names
        for name in sorted(common or ()):
            seen: list = []
            for branch in resolved:
                sub = branch["properties"][name]
                values = [sub["const"]] if "const" in sub else list(sub["enum"])
                if any(_json_equal(v, w) for v in values for w in seen):
                    break
                seen.extend(values)
            else:
                return True
        return False

    def _branch_types(self, branch: Any) -> Optional[set]:
        if not isinstance(branch, dict):
            return None
        if "$ref" in branch:
            target = self._resolve(branch["$ref"], "#")
            return self._branch_types(target) if set(branch) <= {"$ref"} | ANNOTATIONS else None
        if "type" not in branch:
            return None
        types = set(branch["type"] if isinstance(branch["type"], list) else [branch["type"]])
        if "integer" in types or "number" in types:
            types |= {"integer", "number"}  # 1 is both
        if branch.get("nullable") is True:
            types.add("null")
        return types

    def _compile_enum(self, schema: dict, pointer: str) -> Fragment:
        if "const" in schema:
            values = [schema["const"]]
            keyword = "const"
        else:
            values = schema["enum"]
            keyword = "enum"
            if not isinstance(values, list):
                raise SchemaError("enum must be an array", pointer)
        if "const" in schema and "enum" in schema:
            values = [v for v in values if any(_json_equal(v, e) for e in schema["enum"])]
        rest = {k: v for k, v in schema.items() if k not in ("enum", "const", "type", "nullable")}
        if _has_assertions(rest):
            values = [v for v in values if self._value_passes(v, rest, pointer, keyword)]
        if "type" in schema:
            types = self._types(schema, pointer)
            if schema.get("nullable") is True:
                types.append("null")
            values = [v for v in values if _json_type(v) in types or (_json_type(v) == "integer" and "number" in types)]
        return fx.alternation(fx.json_literal(v, self.item_sep, self.key_sep) for v in values)

    def _value_passes(self, value: Any, rest: dict, pointer: str, keyword: str) -> bool:
        """Check an enum/const value against its sibling keywords; refuse what cannot be decided."""
        verdict = self._decide(value, rest, 0)
        if verdict is not None:
            return verdict
        if all(k in _LITERAL_CHECKS or k not in ASSERTIONS for k in rest):
            try:
                return _literal_ok(value, rest)
            except re.error:
                pass
        other = sorted(k for k in rest if k in ASSERTIONS and k not in _LITERAL_CHECKS) or sorted(k for k in rest if k in ASSERTIONS)
        self.unsupported(other[0], pointer, f"combined with {keyword}")
        return True

    def _decide(self, value: Any, schema: Any, depth: int) -> Optional[bool]:
        """Whether the JSON ``value`` is valid under ``schema``: True, False, or None (not decided).

        Exact for the keywords it knows; any other assertion makes the answer None unless some
        known keyword already fails (then the whole schema fails)."""
        if schema is True or schema is False:
            return schema
        if not isinstance(schema, dict) or depth > 20:
            return None
        verdicts: list[Optional[bool]] = []
        for key, arg in schema.items():
            if key in ANNOTATIONS or key not in ASSERTIONS:
                continue
            verdicts.append(self._decide_keyword(value, key, arg, schema, depth))
            if verdicts[-1] is False:
                return False
        return None if None in verdicts else True

    def _decide_keyword(self, value: Any, key: str, arg: Any, schema: dict, depth: int) -> Optional[bool]:
        kind = _json_type(value)
        number = kind in ("integer", "number")
        if key == "type":
            types = _as_list(arg)
            return kind in types or (kind == "integer" and "number" in types)
        if key == "nullable":
            return None if arg is True else True
        if key == "enum":
            return isinstance(arg, list) and any(_json_equal(value, v) for v in arg)
        if key == "const":
            return _json_equal(value, arg)
        if key in ("minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum"):
            if not number or isinstance(arg, bool):
                return True if not number else None
            return {"minimum": value >= arg, "maximum": value <= arg,
                    "exclusiveMinimum": value > arg, "exclusiveMaximum": value < arg}[key]
        if key == "multipleOf":
            if not number:
                return True
            return value % arg == 0 if isinstance(value, int) and isinstance(arg, int) else None
        if key in ("minLength", "maxLength"):
            if kind != "string":
                return True
            return len(value) >= arg if key == "minLength" else len(value) <= arg
        if key in ("minItems", "maxItems"):
            if kind != "array":
                return True
            return len(value) >= arg if key == "minItems" else len(value) <= arg
        if key in ("minProperties", "maxProperties"):
            if kind != "object":
                return True
            return len(value) >= arg if key == "minProperties" else len(value) <= arg
        if key == "required":
            return True if kind != "object" else all(name in value for name in arg)
        if key == "properties":
            if kind != "object":
                return True
            return _all3(self._decide(value[name], sub, depth + 1) for name, sub in arg.items() if name in value)
        if key == "additionalProperties":
            if kind != "object":
                return True
            if "patternProperties" in schema:
                return None
            declared = schema.get("properties", {})
            return _all3(self._decide(v, arg, depth + 1) for k, v in value.items() if k not in declared)
        if key == "items":
            if kind != "array":
                return True
            if isinstance(arg, list):
                return _all3(self._decide(v, sub, depth + 1) for v, sub in zip(value, arg))
            start = len(schema.get("prefixItems", [])) if isinstance(schema.get("prefixItems"), list) else 0
            return _all3(self._decide(v, arg, depth + 1) for v in value[start:])
        if key == "prefixItems":
            if kind != "array":
                return True
            return _all3(self._decide(v, sub, depth + 1) for v, sub in zip(value, arg))
        if key == "uniqueItems":
            if kind != "array" or arg is not True:
                return True
            return not any(_json_equal(a, b) for i, a in enumerate(value) for b in value[i + 1:])
        if key in ("allOf", "anyOf", "oneOf"):
            results = [self._decide(value, sub, depth + 1) for sub in arg]
            if key == "allOf":
                return _all3(results)
            if None in results:
                return None
            hits = sum(bool(r) for r in results)
            return hits >= 1 if key == "anyOf" else hits == 1
        if key == "not":
            inner = self._decide(value, arg, depth + 1)
            return None if inner is None else not inner
        if key == "$ref":
            try:
                return self._decide(value, self._resolve(arg, "#"), depth + 1)
            except (SchemaError, UnsupportedSchemaError):
                return None
        if key == "dependentRequired":
            if kind != "object":
                return True
            return all(all(n in value for n in needed) for trigger, needed in arg.items() if trigger in value)
        return None

    # -- types -------------------------------------------------------------------
    def _types(self, schema: dict, pointer: str) -> list:
        if "type" in schema:
            declared = schema["type"]
            types = declared if isinstance(declared, list) else [declared]
            for t in types:
                if t not in ALL_TYPES:
                    raise SchemaError(f"unknown type {t!r}", _pointer_join(pointer, "type"))
            return list(dict.fromkeys(types))
        # No "type": generate the types that the present keywords describe (a subset of
        # what validates, which also allows every other type).
        implied = [t for t in ("object", "array", "string") if any(k in schema for k in _TYPE_KEYWORDS[t])]
        if any(k in schema for k in _NUMERIC_KEYWORDS):
            implied.append("number")
        return implied  # empty: any value

    def _compile_type(self, type_name: str, schema: dict, pointer: str) -> Fragment:
        if type_name == "null":
            return fx.NULL
        if type_name == "boolean":
            return fx.BOOLEAN
        if type_name in ("integer", "number"):
            return self._compile_number(type_name, schema, pointer)
        if type_name == "string":
            return self._compile_string(schema, pointer)
        if type_name == "array":
            return self._compile_array(schema, pointer)
        return self._compile_object(schema, pointer)

    # -- numbers -------------------------------------------------------------------
    def _compile_number(self, type_name: str, schema: dict, pointer: str) -> Fragment:
        low, low_strict = _decimal(schema, "minimum", pointer), False
        high, high_strict = _decimal(schema, "maximum", pointer), False
        for keyword, is_low in (("exclusiveMinimum", True), ("exclusiveMaximum", False)):
            if keyword not in schema:
                continue
            value = schema[keyword]
            if isinstance(value, bool):  # draft 4: a flag on minimum/maximum
                if value:
                    if is_low:
                        low_strict = low is not None
                    else:
                        high_strict = high is not None
                continue
            bound = _decimal(schema, keyword, pointer)
            if is_low and (low is None or bound >= low):  # type: ignore[operator]
                low, low_strict = bound, True
            elif not is_low and (high is None or bound <= high):  # type: ignore[operator]
                high, high_strict = bound, True
        integer = type_name == "integer"
        fmt = schema.get("format")
        if fmt is not None:
            if fmt not in NUMERIC_FORMATS:
                self.unsupported("format", pointer, f"unknown numeric format {fmt!r}")
            elif NUMERIC_FORMATS[fmt] is not None:
                f_low, f_high = NUMERIC_FORMATS[fmt]  # type: ignore[misc]
                integer = True  # int32/int64 hold only for integers
                low, low_strict = (Decimal(f_low), False) if low is None or low < f_low else (low, low_strict)
                high, high_strict = (Decimal(f_high), False) if high is None or high > f_high else (high, high_strict)
        step = None
        if "multipleOf" in schema:
            step = _decimal(schema, "multipleOf", pointer)
            if step is None or step <= 0:
                raise SchemaError("multipleOf must be a number > 0", pointer)
            if step != step.to_integral_value():
                self.unsupported("multipleOf", pointer, "a fractional multipleOf (validators disagree on float rounding)")
                step = None
            else:
                integer = True  # integer multiples only: a subset for type number
        if low is None and high is None and step is None:
            return fx.INTEGER if integer else fx.NUMBER
        if integer or step is not None:
            i_low = None if low is None else _ceil(low) + (1 if low_strict and low == _ceil(low) else 0)
            i_high = None if high is None else _floor(high) - (1 if high_strict and high == _floor(high) else 0)
            if step is None or step == 1:
                return integer_range(i_low, i_high)
            return self._multiples(int(step), i_low, i_high, pointer)
        return number_range(low, high, low_strict, high_strict)

    def _multiples(self, step: int, low: Optional[int], high: Optional[int], pointer: str) -> Fragment:
        if low is not None and high is not None:
            if high < low:
                return None
            first = -(-low // step) * step
            if (high - first) // step + 1 <= _ENUMERATE_LIMIT:
                return fx.alternation(str(v) for v in range(first, high + 1, step)) if first <= high else None
        power = len(str(step)) - 1
        if step == 10**power and low is None and high is None:
            return f"(?:0|-?[1-9][0-9]*{'0' * power})"
        if step in (2, 5) and low is None and high is None:
            last = "[02468]" if step == 2 else "[05]"
            return f"(?:{last}|-?[1-9][0-9]*{last})" if step == 2 else "(?:0|5|-?[1-9][0-9]*[05])"
        self.unsupported("multipleOf", pointer, f"multipleOf {step} over an unbounded or large range")
        return integer_range(low, high)

    # -- strings -------------------------------------------------------------------
    def _compile_string(self, schema: dict, pointer: str) -> Fragment:
        low, high = _bounds(schema, "minLength", "maxLength", pointer)
        if high is not None and high < low:
            return None
        fmt = schema.get("format")
        pattern = schema.get("pattern")
        if fmt is not None and fmt not in STRING_FORMATS:
            if fmt in NUMERIC_FORMATS or fmt in ANY_STRING_FORMATS:
                fmt = None  # numeric formats say nothing about strings; these accept any string
            else:
                self.unsupported("format", pointer, f"the format {fmt!r} is not enforced")
                fmt = None
        if fmt is not None and pattern is not None:
            self.unsupported("pattern", pointer, "pattern together with format")
            pattern = None
        if fmt is not None:
            if low > 0 or high is not None:  # narrow the format's own repetitions to the bounds
                narrowed = translate_bounded(f"^(?:{STRING_FORMATS[fmt]})$", pointer, low, high)
                return None if narrowed is None else '"' + narrowed + '"'
            return '"' + STRING_FORMATS[fmt] + '"'
        if pattern is not None:
            translated = translate(pattern, _pointer_join(pointer, "pattern"))
            if translated.regex is None:
                return None
            if low == 0 and high is None:
                return '"' + translated.regex + '"'
            if translated.single_class is not None:  # ^[set]{a,b}$: intersect the counts
                chars, a, b = translated.single_class
                lo = max(a, low)
                hi = high if b is None else b if high is None else min(b, high)
                if hi is not None and hi < lo or chars is None:
                    return None
                return '"' + fx.repeat(chars, lo, hi) + '"'
            if translated.min_length >= low and translated.max_length is not None and (high is None or translated.max_length <= high):
                return '"' + translated.regex + '"'
            narrowed = translate_bounded(pattern, _pointer_join(pointer, "pattern"), low, high)
            if narrowed is None:
                self.unsupported("pattern", pointer, "a pattern that cannot be narrowed to minLength/maxLength")
                return '"' + translated.regex + '"'
            return '"' + narrowed + '"'
        char = fx.STRING_CHAR if high is None and low <= 1 else fx.BOUNDED_STRING_CHAR
        return '"' + fx.repeat(char, low, high) + '"'

    # -- arrays --------------------------------------------------------------------
    def _compile_array(self, schema: dict, pointer: str) -> Fragment:
        low, high = _bounds(schema, "minItems", "maxItems", pointer)
        if schema.get("uniqueItems") is True and (high is None or high > 1):
            self.unsupported("uniqueItems", pointer, "uniqueness of items cannot be tracked by an automaton")
        if "contains" in schema:
            return self._compile_contains(schema, pointer, low, high)
        for keyword in ("minContains", "maxContains"):
            if keyword in schema:
                _non_negative_int(schema, keyword, pointer, 0)  # no contains: they assert nothing
        prefix_schemas = schema.get("prefixItems", [])
        if not isinstance(prefix_schemas, list):
            raise SchemaError("prefixItems must be an array", pointer)
        items = schema.get("items", _ANY_NESTED)
        if isinstance(items, list):  # draft 4-7 tuple form
            prefix_schemas, items = items, schema.get("additionalItems", True)
        self.depth += 1
        try:
            prefix = [self.compile(s, _pointer_join(pointer, "prefixItems", i)) for i, s in enumerate(prefix_schemas)]
            rest = self.compile(items, _pointer_join(pointer, "items"))
            opening, closing = self.opening(), self.closing()
            # A None prefix element caps the length before it.
            for i, element in enumerate(prefix):
                if element is None:
                    prefix, rest = prefix[:i], None
                    break
            cap = len(prefix) if rest is None else None
            if cap is not None:
                high = cap if high is None else min(high, cap)
            if high is not None and high < low:
                return None
            if high == 0 or (rest is None and not prefix):
                return r"\[\]" if low == 0 else None
            body = opening + self._elements(prefix, rest, 0, max(low, 1), high) + closing  # at least one item
        finally:
            self.depth -= 1
        return r"\[" + (fx.optional(body) if low == 0 else body) + r"\]"

    def _compile_contains(self, schema: dict, pointer: str, low: int, high: Optional[int]) -> Fragment:
        need = _non_negative_int(schema, "minContains", pointer, 1)
        most = _non_negative_int(schema, "maxContains", pointer, None)
        if "prefixItems" in schema or isinstance(schema.get("items"), list):
            self.unsupported("contains", pointer, "contains together with prefixItems")
        if high is not None or low > need:  # type: ignore[operator]
            self.unsupported("contains", pointer, "contains together with minItems/maxItems")
        if most is not None and most < need:  # type: ignore[operator]
            return None
        if need == 0 and most is None:
            return self._compile_array({k: v for k, v in schema.items() if k not in ("contains", "minContains", "maxContains")}, pointer)
        items = schema.get("items", True)
        contains = schema["contains"]
        self.depth += 1
        try:
            match = self.compile({"allOf": [items, contains]} if items is not True else contains,
                                 _pointer_join(pointer, "contains"))
            miss = self._contains_misses(schema, pointer, most)
            opening, closing, sep = self.opening(), self.closing(), self.sep()
        finally:
            self.depth -= 1
        others = "" if miss is None else fx.repeat(miss + sep, 0, None)
        between = "" if miss is None else fx.repeat(sep + miss, 0, None)
        bodies = []  # non-empty arrays: only misses, or need..most matches among misses
        if need == 0 and miss is not None:
            bodies.append(miss + between)
        if match is not None and most != 0:
            more = fx.repeat(between + sep + match, max(need - 1, 0), None if most is None else most - 1)  # type: ignore[operator]
            bodies.append(others + match + more + between)
        body = fx.alternation(bodies)
        return fx.alternation([r"\[\]" if need == 0 else None,
                               None if body is None else r"\[" + opening + body + closing + r"\]"])

    def _contains_misses(self, schema: dict, pointer: str, most: Optional[int]) -> Fragment:
        """The items besides the counted matches: any item; with ``maxContains``, items that fail
        ``contains``, written with its negation (a subset where that is partial)."""
        items = schema.get("items", True)
        any_item = items if "items" in schema else _ANY_NESTED
        if most is None:
            return self.compile(any_item, _pointer_join(pointer, "items"))
        failed = self.negation(schema["contains"], _pointer_join(pointer, "contains"))
        if not failed.terms and not failed.exact:
            self.unsupported("maxContains", _pointer_join(pointer, "maxContains"),
                             "the contains schema has no negation to write the other items with")
            return self.compile(any_item, _pointer_join(pointer, "items"))  # lenient: maxContains dropped
        misses = self.optional_parts(({"allOf": [items, term]} for term in failed.terms), _pointer_join(pointer, "items"))[0]
        return fx.alternation(misses)

    def _elements(self, prefix: list, rest: Fragment, i: int, low: int, high: Optional[int]) -> str:
        """Elements from position ``i`` on, given ``i`` were already written."""
        sep = self.sep() if i > 0 else ""
        if high is not None and i >= high:
            return ""
        if i < len(prefix):
            part = sep + prefix[i] + self._elements(prefix, rest, i + 1, low, high)
            return part if i < low else fx.optional(part)
        assert rest is not None
        need = max(low - i, 0)
        most = None if high is None else high - i
        if i == 0:
            tail = fx.repeat(self.sep() + rest, max(need - 1, 0), None if most is None else most - 1)
            return rest + tail if need > 0 else fx.optional(rest + tail)
        return fx.repeat(sep + rest, need, most)

    def _compile_object(self, schema: dict, pointer: str) -> Fragment:
        dependencies = self._dependencies(schema, pointer)
        if dependencies:
            return self._dependency_variants(schema, dependencies, pointer)
        properties = schema.get("properties", {})
        if not isinstance(properties, dict):
            raise SchemaError("properties must be an object", pointer)
        properties = dict(properties)
        required = schema.get("required", [])
        if not isinstance(required, list) or not all(isinstance(r, str) for r in required):
            raise SchemaError("required must be an array of strings", pointer)
        required = list(dict.fromkeys(required))
        additional = schema.get("additionalProperties", _ANY_NESTED)
        patterns = schema.get("patternProperties", {})
        if not isinstance(patterns, dict):
            raise SchemaError("patternProperties must be an object", pointer)
        low, high = _bounds(schema, "minProperties", "maxProperties", pointer)
        names = schema.get("propertyNames", True)
        name_regex: Fragment = f"{fx.STRING_CHAR}*"
        if names is False:
            return None if required or low > 0 else r"\{\}"
        if names is not True:
            check = self._name_check(names, _pointer_join(pointer, "propertyNames"))
            for name in list(properties) + required:
                if not check(name):
                    if name in required:
                        return None
                    properties[name] = False
            name_regex = self._compile_string(dict(names, type="string"), _pointer_join(pointer, "propertyNames"))
            name_regex = None if name_regex is None else name_regex[1:-1]
        # A declared or required property whose name matches a pattern must satisfy both schemas.
        for name in list(properties) + [r for r in required if r not in properties]:
            matching = [sub for pattern, sub in patterns.items() if _search(pattern, name)]
            if matching:
                base = properties.get(name, additional if additional is not _ANY_NESTED else True)
                properties[name] = {"allOf": [base, *matching]} if base is not True else (
                    matching[0] if len(matching) == 1 else {"allOf": matching})
        self.depth += 1
        try:
            entries: list[tuple[str, Fragment, bool]] = []
            for name, sub in properties.items():
                entries.append((name, self.compile(sub, _pointer_join(pointer, "properties", name)), name in required))
            for name in required:
                if name not in properties:
                    if additional is False:
                        return None
                    value = self.compile(additional, _pointer_join(pointer, "additionalProperties"))
                    entries.append((name, value, True))
            if any(value is None and is_required for _, value, is_required in entries):
                return None
            declared = set(properties) | set(required)
            entries = [(n, v, r) for n, v, r in entries if v is not None]
            extras = self._extras(schema, declared, additional, patterns, name_regex, pointer)
            if extras and high is not None and entries:
                extras = []  # counting free keys after declared ones is not tracked: the declared ones only
            members = [(self._key(name) + self.key_sep + value, req) for name, value, req in entries]
            opening, closing, sep = self.opening(), self.closing(), self.sep()
        finally:
            self.depth -= 1
        n_required = sum(1 for _, _, r in entries if r)
        if high is not None and high < len(entries):
            self.unsupported("maxProperties", pointer, "an upper bound below the number of declared properties")
        if low > max(n_required, 1):
            self.unsupported("minProperties", pointer, "a lower bound above the number of required properties")
        must_have = low > n_required or n_required > 0
        if self.rules is None and not self.pretty and self.options.whitespace_pattern is None and (
            n_required > 0 or low == 0
        ):
            return self._marked_object(members, extras, sep, high if not members else None)
        body = self._object_body(members, extras, sep, must_have, high if not members else None)
        if body is None:
            return None if must_have else r"\{\}"
        wrapped = opening + body + closing
        return r"\{" + (wrapped if must_have else fx.optional(wrapped)) + r"\}"

    def _marked_object(self, members: list, extras: list, sep: str, high: Optional[int]) -> str:
        """``{`` MARK then every member behind a separator, linear in size.

        The byte automaton drops the separator of the first member present (see
        ``byte_automaton.FIRST_MEMBER_MARK``): writing "no comma before the first present
        member" in a plain regex needs one alternative per possible first member, quadratic in
        the number of optional properties."""
        extra = fx.alternation(k + self.key_sep + v for k, v in extras) if extras else None
        parts = [fx.FIRST_MEMBER_MARK]
        for member, is_required in members:
            parts.append(sep + member if is_required else fx.optional(sep + member))
        if extra is not None and high != 0:
            parts.append(fx.repeat(sep + extra, 0, high))
        return r"\{" + "".join(parts) + r"\}"

    def _object_body(self, members: list, extras: list, sep: str, must_have: bool, high: Optional[int] = None) -> Fragment:
        """Members in schema order, then extra members; non-empty. ``high`` bounds free members
        (a repeated key only lowers the count, so the bound stays exact)."""
        extra = fx.alternation(k + self.key_sep + v for k, v in extras) if extras else None
        if high == 0:
            extra = None
        more = "" if extra is None else fx.repeat(sep + extra, 0, None if high is None else high - 1)
        parts: list[Fragment] = []
        if members:
            first = self._members_first(members, 0, sep)
            if first is not None:
                parts.append(first + more)
        if extra is not None and not any(req for _, req in members):
            parts.append(extra + more)
        return fx.alternation(parts)

    def _members_first(self, members: list, i: int, sep: str) -> Fragment:
        """Members from ``i`` on with at least one present; the first has no separator."""
        if i == len(members):
            return None
        member, is_required = members[i]
        rest = self._members(members, i + 1, False, sep)
        if self.rules is not None and rest and not is_required:  # grammar mode: one rule per suffix, linear
            rest = self.rules.shared(rest, "members")
        taken = member + rest
        if is_required:
            return taken
        return fx.alternation([taken, self._members_first(members, i + 1, sep)])

    def _members(self, members: list, i: int, first: bool, sep: str = "") -> str:
        if i == len(members):
            return ""
        member, is_required = members[i]
        lead = "" if first else sep
        if not first and not is_required:  # independent of what follows: linear size
            return fx.optional(lead + member) + self._members(members, i + 1, False, sep)
        taken = lead + member + self._members(members, i + 1, False, sep)
        if is_required:
            return taken
        skipped = self._members(members, i + 1, first, sep)
        return fx.alternation([taken, skipped]) if skipped else fx.optional(taken)

    def _extras(self, schema: dict, declared: set, additional: Any, patterns: dict, name_regex: Fragment,
                pointer: str) -> list:
        """(key regex, value regex) of the members allowed besides the declared ones."""
        if name_regex is None:
            return []
        extras = []
        if patterns:
            subs = list(patterns.items())
            for pattern, sub in subs:
                if "propertyNames" in schema:
                    continue  # keys would have to match propertyNames too: not generated (a subset)
                translated = translate(pattern, _pointer_join(pointer, "patternProperties", pattern))
                key = translated.regex
                if any(_search(pattern, name) for name in declared):
                    if not translated.universal:
                        continue  # keys would have to avoid the declared names: not generated (a subset)
                    key = _key_not_in(declared)  # ".*" and the like: every undeclared key
                others = [o for p, o in subs if p != pattern]
                value = self.compile({"allOf": [sub, *others]} if others else sub,
                                     _pointer_join(pointer, "patternProperties", pattern))
                if key is not None and value is not None:
                    extras.append(('"' + key + '"', value))
            return extras  # other keys would have to avoid every pattern: not generated (a subset)
        if additional is False:
            return []
        listed = "properties" in schema or bool(declared)
        if listed and additional is _ANY_NESTED and self.options.additional_properties == "closed":
            return []
        value = self.compile(additional, _pointer_join(pointer, "additionalProperties"))
        if value is None:
            return []
        if not declared:
            return [('"' + name_regex + '"', value)]
        if "propertyNames" in schema:
            return []
        return [('"' + _key_not_in(declared) + '"', value)]

    def _name_check(self, names: Any, pointer: str) -> Any:
        """A Python test of a declared name against propertyNames (string keywords only)."""
        if not isinstance(names, dict):
            raise SchemaError("propertyNames must be a schema", pointer)
        known = {"type", "minLength", "maxLength", "pattern", "enum", "const", "format"} | ANNOTATIONS
        if any(k not in known for k in names) or names.get("type", "string") != "string":
            self.unsupported("propertyNames", pointer, "only string keywords are supported")
            return lambda name: True
        low, high = _bounds(names, "minLength", "maxLength", pointer)
        pattern = names.get("pattern")
        if "format" in names:
            self.unsupported("propertyNames", pointer, "a format on property names")

        def check(name: str) -> bool:
            length = len(name)
            if length < low or (high is not None and length > high):
                return False
            if pattern is not None and not _search(pattern, name):
                return False
            if "enum" in names and name not in names["enum"]:
                return False
            return "const" not in names or name == names["const"]

        if "enum" in names or "const" in names:
            self.unsupported("propertyNames", pointer, "enum/const on property names")
        return check

    def _dependencies(self, schema: dict, pointer: str) -> dict:
        deps: dict = {}
        for keyword in ("dependentRequired", "dependencies"):
            value = schema.get(keyword)
            if value is None:
                continue
            if not isinstance(value, dict):
                raise SchemaError(f"{keyword} must be an object", pointer)
            for trigger, needed in value.items():
                if isinstance(needed, list):
                    deps.setdefault(trigger, []).extend(needed)
                elif needed is not True:
                    self.unsupported("dependencies", pointer, "a schema dependency (dependentSchemas)")
        return {t: n for t, n in deps.items() if n}

    def _dependency_variants(self, schema: dict, deps: dict, pointer: str) -> Fragment:
        """Split on each trigger's presence: disjoint variants with plain required/properties."""
        if len(deps) > 4:
            self.unsupported("dependentRequired", pointer, "more than 4 dependent properties")
            deps = {}
        base = {k: v for k, v in schema.items() if k not in ("dependentRequired", "dependencies")}
        variants = [base]
        for trigger, needed in deps.items():
            split = []
            for variant in variants:
                absent = dict(variant, properties=dict(variant.get("properties", {}), **{trigger: False}))
                if trigger not in variant.get("required", []):
                    split.append(absent)
                present = dict(variant, required=list(dict.fromkeys(list(variant.get("required", [])) + [trigger] + needed)))
                split.append(present)
            variants = split
        return fx.alternation(self._compile_object(v, pointer) for v in variants)

    def _key(self, name: str) -> str:
        return fx.escape(json.dumps(name, ensure_ascii=False))

    def any_value(self, depth: int) -> str:
        rules = self.rules
        if rules is not None:  # grammar mode: any JSON value at any depth, one rule
            if ANY_VALUE not in rules.bodies:
                rules.define(ANY_VALUE, "")  # a placeholder while the body refers to itself
                rules.define(ANY_VALUE, self._any_value_body(lambda: rules.hole(ANY_VALUE)))
            return rules.hole(ANY_VALUE)
        return self._any_value_body((lambda: self.any_value(depth - 1)) if depth > 0 else None)

    def _any_value_body(self, nested: Optional[Callable[[], str]]) -> str:
        """Any scalar, and (unless ``nested`` is ``None``) objects and arrays of ``nested()``,
        which is called one level deeper."""
        scalars = [r'"' + fx.STRING_CHAR + '*"', fx.NUMBER, fx.BOOLEAN, fx.NULL]
        if nested is not None:
            self.depth += 1
            try:
                inner = nested()
                opening, closing, sep = self.opening(), self.closing(), self.sep()
            finally:
                self.depth -= 1
            member = '"' + fx.STRING_CHAR + '*"' + self.key_sep + inner
            scalars.append(r"\{" + fx.optional(opening + member + fx.repeat(sep + member, 0, None) + closing) + r"\}")
            scalars.append(r"\[" + fx.optional(opening + inner + fx.repeat(sep + inner, 0, None) + closing) + r"\]")
        return fx.alternation(scalars)  # type: ignore[return-value]

    # -- not, if/then/else ---------------------------------------------------------------
    def _apply_not(self, schema: dict, pointer: str) -> Any:
        """Fold ``not`` into the schema where it has an exact positive form; else refuse."""
        rest = {k: v for k, v in schema.items() if k != "not"}
        negated = schema["not"]
        where = _pointer_join(pointer, "not")
        if negated is False:
            return rest or True
        if negated is True:
            return False
        if isinstance(negated, dict) and "$ref" in negated and set(negated) <= {"$ref"} | ANNOTATIONS:
            negated = self._resolve(negated["$ref"], where)
            if isinstance(negated, bool):
                return rest or True if negated is False else False
        keys = {k for k in negated if k not in ANNOTATIONS} if isinstance(negated, dict) else set()
        if keys == {"not"}:  # double negation
            return {"allOf": [rest or True, negated["not"]]}
        if keys == {"anyOf"} and isinstance(negated["anyOf"], list):  # not (A or B) = not A and not B
            folded: Any = rest
            for i, branch in enumerate(negated["anyOf"]):
                if folded is False:
                    return False
                folded = self._apply_not(dict(folded if isinstance(folded, dict) else {}, **{"not": branch}),
                                         _pointer_join(where, "anyOf", i))
            return folded
        if "enum" in rest or "const" in rest:  # decide each listed value against the negated schema
            values = [rest["const"]] if "const" in rest else list(rest["enum"])
            verdicts = [self._decide(v, negated, 0) for v in values]
            if all(verdict is not None for verdict in verdicts):
                kept_values = [v for v, verdict in zip(values, verdicts) if not verdict]
                out = {k: v for k, v in rest.items() if k not in ("enum", "const")}
                return dict(out, enum=kept_values) if kept_values else False
        if keys == {"type"}:
            excluded = set(_as_list(negated["type"]))
            types = self._types(rest, pointer) or list(ALL_TYPES)
            if "number" in excluded:
                excluded.add("integer")
            kept = [t for t in types if t not in excluded]
            if "integer" in excluded and "number" in kept:
                self.unsupported("not", where, "'not integer' while numbers are allowed")
            return dict(rest, type=kept) if kept else False
        if keys == {"required"} and isinstance(negated["required"], list) and len(negated["required"]) == 1:
            name = negated["required"][0]
            if name in rest.get("required", []):
                return False
            return dict(rest, properties=dict(rest.get("properties", {}), **{name: False}))
        if keys <= {"enum", "const"} and ("enum" in rest or "const" in rest):
            banned = list(negated.get("enum", [])) + ([negated["const"]] if "const" in negated else [])
            values = [rest["const"]] if "const" in rest else list(rest["enum"])
            kept_values = [v for v in values if not any(_json_equal(v, b) for b in banned)]
            out = {k: v for k, v in rest.items() if k not in ("enum", "const")}
            return dict(out, enum=kept_values) if kept_values else False
        if keys <= {"enum", "const"} and self._types(rest, pointer) == ["string"]:  # strings but these
            banned = [v for v in list(negated.get("enum", [])) + [negated.get("const")] if isinstance(v, str)]
            if not banned:
                return rest
            if "pattern" in rest or "format" in rest:  # two patterns do not intersect in a regex
                self.unsupported("not", where, "excluded strings next to a pattern or format")
                return rest
            return dict(rest, pattern=not_in_pattern(banned))
        failed = self.negation(negated, where)
        if failed.exact:  # not S = the union of the positive forms of S's keywords' negations
            return {"allOf": [rest or True, {"anyOf": failed.terms}]} if failed.terms else False
        self.unsupported("not", where, "a keyword with no exact negation (pattern, format, multipleOf, "
                                       "uniqueItems, additionalProperties...)")
        return rest or True

    def _compile_conditional(self, schema: dict, pointer: str) -> Fragment:
        """(rest ∧ if ∧ then) ∨ (rest ∧ ¬if ∧ else), with ¬if written as positive schemas.

        Where ``if`` has no exact negation (a ``pattern``, a ``format``...), the ``else`` side
        covers the part of ¬if that has one: a subset, never a superset."""
        rest = {k: v for k, v in schema.items() if k not in ("if", "then", "else")}
        base = rest or True
        condition = schema.get("if")
        then, otherwise = schema.get("then", True), schema.get("else", True)
        if condition is None:  # then/else without if assert nothing
            return self.compile(base, pointer)
        if condition is True or condition is False:
            return self.compile({"allOf": [base, then if condition else otherwise]}, pointer)
        parts = [self.compile({"allOf": [base, condition, then]}, pointer)]
        if self._else_parts_left <= 0:  # many conditionals multiply: keep the if-and-then side only
            logger.debug("conditional at %s: else side left out (budget spent)", pointer or "#")
            return fx.alternation(parts)
        failed = self.negation(condition, _pointer_join(pointer, "if"))
        others = self.optional_parts(({"allOf": [base, term, otherwise]} for term in failed.terms), pointer)[0]
        self._else_parts_left -= sum(part is not None for part in others)
        return fx.alternation(parts + others)


def _as_list(value: Any) -> list:
    return value if isinstance(value, list) else [] if value is None else [value]


def _decimal(schema: dict, keyword: str, pointer: str) -> Optional[Decimal]:
    if keyword not in schema:
        return None
    value = schema[keyword]
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise SchemaError(f"{keyword} must be a number, not {value!r}", pointer)
    try:
        return Decimal(value) if isinstance(value, int) else Decimal(repr(value))
    except InvalidOperation as exc:
        raise SchemaError(f"{keyword} must be a finite number, not {value!r}", pointer) from exc


def _ceil(value: Decimal) -> int:
    return int(value.to_integral_value(rounding="ROUND_CEILING"))


def _floor(value: Decimal) -> int:
    return int(value.to_integral_value(rounding="ROUND_FLOOR"))


def _search(pattern: str, name: str) -> bool:
    """Python's ``re.search`` as a stand-in for ECMA-262 on a property name (simple patterns agree)."""
    try:
        return re.search(pattern, name) is not None
    except re.error as exc:
        raise UnsupportedSchemaError("patternProperties", "#", f"the pattern {pattern!r} ({exc})") from exc


def _key_not_in(names: set) -> str:
    """Keys (JSON string contents, raw characters only) equal to none of ``names``."""
    trie: dict = {}
    for name in sorted(names):  # deterministic regex text: it keys the disk cache
        node = trie
        for ch in name:
            node = node.setdefault(ch, {})
        node[None] = {}
    plain = '"\\\\\\x00-\\x1f'

    def walk(node: dict) -> str:
        parts: list[Fragment] = [] if None in node else [""]
        chars = [c for c in node if c is not None]
        excluded = "".join(f"\\x{{{ord(c):x}}}" for c in chars)
        parts.append(f"[^{plain}{excluded}][^{plain}]*")
        for ch in chars:
            if ord(ch) >= 0x20 and ch not in '"\\':
                parts.append(fx.escape(ch) + walk(node[ch]))
        return fx.alternation(parts) or ""

    return walk(trie)


def _bounds(schema: dict, low_keyword: str, high_keyword: str, pointer: str) -> tuple[int, Optional[int]]:
    low = _non_negative_int(schema, low_keyword, pointer, 0)
    return low, _non_negative_int(schema, high_keyword, pointer, None)  # type: ignore[return-value]


def _non_negative_int(schema: dict, keyword: str, pointer: str, default: Optional[int]) -> Optional[int]:
    if keyword not in schema:
        return default
    value = schema[keyword]
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    if not isinstance(value, int) or isinstance(value, bool) or value < 0:
        raise SchemaError(f"{keyword} must be a non-negative integer, not {value!r}", pointer)
    return value


_LITERAL_CHECKS = ("minLength", "maxLength", "pattern", "minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum",
                   "minItems", "maxItems", "minProperties", "maxProperties", "required", "format")


def _all3(verdicts: Any) -> Optional[bool]:
    """Three-valued AND: False if any is False, else None if any is None, else True."""
    unknown = False
    for verdict in verdicts:
        if verdict is False:
            return False
        unknown = unknown or verdict is None
    return None if unknown else True


def _literal_ok(value: Any, rest: dict) -> bool:
    """Whether an enum/const value satisfies the simple sibling keywords in ``rest``."""
    if isinstance(value, str):
        if len(value) < rest.get("minLength", 0) or len(value) > rest.get("maxLength", len(value)):
            return False
        if "pattern" in rest and re.search(rest["pattern"], value) is None:
            return False
        if "format" in rest:
            regex = STRING_FORMATS.get(rest["format"])
            if regex is None or re.fullmatch(regex, json.dumps(value, ensure_ascii=False)[1:-1]) is None:
                return False
    if _is_number(value):
        if "minimum" in rest and value < rest["minimum"] or "maximum" in rest and value > rest["maximum"]:
            return False
        low, high = rest.get("exclusiveMinimum"), rest.get("exclusiveMaximum")
        if _is_number(low) and value <= low or _is_number(high) and value >= high:
            return False
    if isinstance(value, list) and not rest.get("minItems", 0) <= len(value) <= rest.get("maxItems", len(value)):
        return False
    if isinstance(value, dict):
        if not rest.get("minProperties", 0) <= len(value) <= rest.get("maxProperties", len(value)):
            return False
        if any(r not in value for r in rest.get("required", [])):
            return False
    return True


def _has_assertions(schema: dict) -> bool:
    return any(k in ASSERTIONS for k in schema)


def _json_type(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int) or (isinstance(value, float) and value.is_integer()):
        return "integer"
    if isinstance(value, float):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "array"
    return "object"


def _literals(schema: Any) -> Optional[list]:
    """The values of a schema that is only an enum or a const, else None."""
    if not isinstance(schema, dict) or any(k not in ("enum", "const") and k not in ANNOTATIONS for k in schema):
        return None
    if "enum" in schema and "const" in schema or not isinstance(schema.get("enum", []), list):
        return None
    return [schema["const"]] if "const" in schema else list(schema.get("enum", [])) or None


def _may_share_type(term: Any, generated: set) -> bool:
    """False when the negation term's types and the branch's cannot meet (a cheap pruning)."""
    if not generated or not isinstance(term, dict) or "type" not in term:
        return True
    types = set(_as_list(term["type"]))
    if "number" in types:
        types.add("integer")
    return bool(types & generated) or ("integer" in types and "number" in generated)


def _json_equal(a: Any, b: Any) -> bool:
    if isinstance(a, bool) or isinstance(b, bool):
        return type(a) is type(b) and a == b
    return bool(a == b) if type(a) is type(b) or (isinstance(a, (int, float)) and isinstance(b, (int, float))) else False


def _merge(a: dict, b: dict, pointer: str) -> dict:
    """Merge two schemas that must both hold (allOf); refuse what cannot be merged exactly."""
    a, b = _scope_siblings(a, b, pointer), _scope_siblings(b, a, pointer)
    if "if" in a and "if" in b:  # one conditional per schema: the second waits in allOf
        conditional = {k: b[k] for k in ("if", "then", "else") if k in b}
        b = {k: v for k, v in b.items() if k not in conditional}
        b["allOf"] = list(b.get("allOf", [])) + [conditional]
    merged = dict(a)
    for key, value in b.items():
        if key not in merged or key in ANNOTATIONS:
            merged.setdefault(key, value)
        elif key == "required":
            merged[key] = list(dict.fromkeys(list(merged[key]) + list(value)))
        elif key == "properties" and isinstance(value, dict):
            props = dict(merged[key])
            for name, sub in value.items():
                props[name] = {"allOf": [props[name], sub]} if name in props and props[name] != sub else sub
            merged[key] = props
        elif key == "type":
            left, right = _as_list(merged[key]), _as_list(value)
            both = [t for t in left if t in right or (t == "integer" and "number" in right)]
            both += [t for t in right if t == "integer" and "number" in left and t not in both]
            merged[key] = both
        elif key in _TIGHTER_LOW and _is_number(merged[key]) and _is_number(value):
            merged[key] = max(merged[key], value)
        elif key in _TIGHTER_HIGH and _is_number(merged[key]) and _is_number(value):
            merged[key] = min(merged[key], value)
        elif key == "enum" and isinstance(value, list) and isinstance(merged[key], list):
            merged[key] = [v for v in merged[key] if any(_json_equal(v, w) for w in value)]
        elif key in ("additionalProperties", "items") and not isinstance(value, list) and not isinstance(merged[key], list):
            merged[key] = {"allOf": [merged[key], value]}  # each still sees only its own siblings (scoped above)
        elif key == "patternProperties" and isinstance(value, dict) and isinstance(merged[key], dict):
            patterns = dict(merged[key])
            for pattern, sub in value.items():
                patterns[pattern] = {"allOf": [patterns[pattern], sub]} if pattern in patterns else sub
            merged[key] = patterns
        elif key == "not" and _literals(merged[key]) is not None and _literals(value) is not None:
            merged[key] = {"enum": _literals(merged[key]) + _literals(value)}  # not in A, not in B
        elif key == "not":
            merged[key] = {"anyOf": [merged[key], value]}  # not A and not B = not (A or B)
        elif key in ("allOf", "anyOf", "oneOf") and isinstance(value, list):
            merged[key] = list(merged[key]) + list(value) if key == "allOf" else merged[key]
            if key != "allOf":
                merged.setdefault("allOf", [])
                merged["allOf"] = list(merged["allOf"]) + [{key: value}]
        elif key == "const" and not _json_equal(merged[key], value):
            merged["enum"] = []  # two different constants: nothing validates
        elif merged[key] != value and not _json_equal(merged[key], value):
            raise UnsupportedSchemaError("allOf", pointer, f"both branches constrain {key!r} differently")
    return merged


def _scope_siblings(a: dict, b: dict, pointer: str) -> dict:
    """Rewrite ``a`` so that keywords which only see their siblings keep their meaning next to ``b``.

    ``additionalProperties`` of ``b`` applies to the properties ``a`` declares and ``b`` does not;
    ``items`` of ``b`` (without prefixItems) applies to ``a``'s prefixItems too."""
    out = dict(a)
    b_extra = b.get("additionalProperties")
    if b_extra is not None and isinstance(a.get("properties"), dict):
        if a.get("patternProperties") or b.get("patternProperties"):
            raise UnsupportedSchemaError("allOf", pointer, "additionalProperties next to patternProperties across allOf")
        b_names = b.get("properties", {}) if isinstance(b.get("properties"), dict) else {}
        out["properties"] = {
            name: sub if name in b_names else (False if b_extra is False else {"allOf": [sub, b_extra]})
            for name, sub in a["properties"].items()
        }
    if "items" in b and "prefixItems" not in b and isinstance(a.get("prefixItems"), list) and not isinstance(b["items"], list):
        out["prefixItems"] = [{"allOf": [sub, b["items"]]} for sub in a["prefixItems"]]
    if "prefixItems" in a and "prefixItems" in b and len(a["prefixItems"]) != len(b["prefixItems"]):
        raise UnsupportedSchemaError("allOf", pointer, "prefixItems of different lengths")
    if isinstance(a.get("items"), list) or isinstance(b.get("items"), list):
        if "items" in a and "items" in b:
            raise UnsupportedSchemaError("allOf", pointer, "tuple-form items in both branches")
    return out


_TIGHTER_LOW = ("minimum", "exclusiveMinimum", "minLength", "minItems", "minProperties", "minContains")
_TIGHTER_HIGH = ("maximum", "exclusiveMaximum", "maxLength", "maxItems", "maxProperties", "maxContains")


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


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
    return regex


@dataclass(frozen=True)
class SchemaGrammar:
    """The compiler's grammar output: a Lark grammar, and whether it has recursive rules.

    ``recursive`` is true when the language needs rules: a recursive ``$ref``, any JSON value
    (``{}``, an absent ``items``...) or an object's optional members. The byte automaton
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
        start: /\\[/ ref_0 (/,[ ]?/ ref_0)* /\\]/ | /\\[\\]/
        ref_0: /\\[/ ref_0 (/,[ ]?/ ref_0)* /\\]/ | /\\[\\]/
    """
    schema = _loaded(schema)
    check_no_markers(schema)
    rules = RuleSet()
    root, compiler = _run(schema, options or SchemaOptions(), rules)
    recursive = bool(compiler._recursive_rules) or ANY_VALUE in rules.bodies
    return SchemaGrammar(to_lark(root, rules), recursive)


def _loaded(schema: Any) -> Any:
    if isinstance(schema, (str, bytes)):
        try:
            return json.loads(schema)
        except json.JSONDecodeError as exc:
            raise SchemaError(f"the schema is not valid JSON: {exc}", "#") from exc
    return schema


def _run(schema: Any, options: SchemaOptions, rules: Optional[RuleSet]) -> tuple:
    """(root fragment, compiler) for ``schema``; raises what json_schema_to_regex documents."""
    compiler = _Compiler(schema, options, rules)
    try:
        try:
            regex = compiler.compile(schema, "#")
        except CompileLimitError:
            if compiler._else_parts_left == _MAX_ELSE_PARTS:
                raise
            # The else sides of many conditionals multiplied past a limit: keep their if-and-then
            # sides only (a subset, as for any partial negation).
            logger.info("compile limit reached with else sides of conditionals; retrying without them")
            if rules is not None:
                rules.bodies.clear()
                rules._by_body.clear()
            compiler = _Compiler(schema, options, rules)
            compiler._else_parts_left = 0
            regex = compiler.compile(schema, "#")
        compiler.define_missing_rules()
    except RecursionError as exc:
        raise SchemaError("the schema nests too deeply to compile", "#") from exc
    if regex is None:
        raise UnsatisfiableConstraintError("no JSON value satisfies this schema")
    return regex, compiler
