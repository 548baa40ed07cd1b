"""``allOf`` (merged), ``anyOf`` and ``oneOf`` (narrowed to exclusive branches).

A mixin of the compiler (``compiler._Compiler``): it uses the compiler's other methods."""

from __future__ import annotations

import itertools
import math
from typing import Any, Optional

from ..errors import SchemaError, UnsupportedSchemaError
from . import fragments as fx
from .fragments import Fragment
from .keywords import ALL_TYPES, ANNOTATIONS
from .values import _surely_searches
from .schema_tools import (
    _MAX_ONE_OF_VARIANTS,
    _pointer_join,
    _as_list,
    _has_assertions,
    _literals,
    _may_share_type,
    _json_equal,
    _merge,
)


class CombinatorsMixin:
    def _compile_all_of(self, schema: dict, pointer: str) -> Fragment:
        branches = schema["allOf"]
        if not isinstance(branches, list) or not branches:
            raise SchemaError("allOf must be a non-empty array", pointer)
        merged: Any = {k: v for k, v in schema.items() if k != "allOf"}
        only = branches[0]
        if (len(branches) == 1 and isinstance(only, dict) and set(only) == {"$ref"} and isinstance(only["$ref"], str)
                and not _has_assertions(merged)):
            # allOf: [{$ref}] alone is the $ref: compiled as one, so a recursive one is a rule (or
            # unrolled), not inlined into itself until Python's stack runs out (MaskBench-dev o13136)
            return self.compile(only, _pointer_join(pointer, "allOf", 0))
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
        keys, own = list(schema), schema.get("properties")
        if isinstance(own, dict) and keys.index("allOf") < keys.index("properties") and isinstance(merged.get("properties"), dict):
            # "properties" written after "allOf": its names after the entries' (merged in one go, as
            # siblings: additionalProperties next to them must see them)
            merged["properties"] = {**{k: v for k, v in merged["properties"].items() if k not in own},
                                    **{k: v for k, v in merged["properties"].items() if k in own}}
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
        types, a required discriminator with disjoint constants, a property that branch i
        requires and branch j forbids (``false``, or closed by ``additionalProperties: false``), or a property that branch j
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
            view, objects_only = self._object_view(branch, generated, where)
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
                accepted = set(_as_list(other.get("type"))) or self._branch_types(other) or set(ALL_TYPES)
                if "number" in accepted:
                    accepted.add("integer")
                if generated and not (generated & accepted) and not other.get("nullable"):
                    continue
                if self._discriminated([branch, other]) or self._values_fail(other, branch):
                    continue
                if objects_only and (_forbids_required(view, other) or _forbids_required(other, view)
                                     or self._required_values_differ(view, other)):
                    continue  # a property one requires and the other forbids, or one both require with disjoint values
                needed = [n for n in other.get("required", []) if n not in branch.get("required", [])]
                if generated == {"object"} and needed and isinstance(other.get("required"), list):
                    branch = _merge(branch, {"properties": {needed[0]: False}}, where)
                    continue
                if j not in negations:  # each branch's negation serves every other branch
                    negations[j] = self.negation(other, _pointer_join(pointer, "oneOf", j))
                failed = negations[j]
                terms = [t for t in failed.terms if _may_share_type(t, generated)]
                if objects_only and not failed.exact:  # a key this branch may have and the other forbids
                    terms += [{"type": "object", "required": [name]} for name in _declared(view)
                              if _forbids_required({"required": [name]}, other)]
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

    def _required_values_differ(self, branch: dict, other: dict) -> bool:
        """True when a property both require takes, in one of them, only values (an ``enum``/
        ``const``) that the other's schema for it rejects: no object passes both."""
        props = [b.get("properties") for b in (branch, other)]
        required = [b.get("required") for b in (branch, other)]
        if not all(isinstance(p, dict) for p in props) or not all(isinstance(r, list) for r in required):
            return False
        for name in set(required[0]) & set(required[1]):
            mine, theirs = props[0].get(name), props[1].get(name)
            if isinstance(mine, dict) and isinstance(theirs, dict) and (
                    self._values_fail(mine, theirs) or self._values_fail(theirs, mine)):
                return True
        return False

    def _values_fail(self, other: dict, branch: dict) -> bool:
        """True when ``other`` is an ``enum``/``const`` whose every value fails ``branch``: no
        instance matches both."""
        values = _literals({k: v for k, v in other.items() if k in ("enum", "const")})
        return values is not None and all(self._decide(v, branch, 0) is False for v in values)

    def _object_view(self, branch: dict, generated: set, where: str) -> tuple[dict, bool]:
        """``branch`` with a plain ``$ref`` inlined (for reading its keywords only; the branch
        itself is compiled through the ``$ref``), and whether it generates only objects."""
        view = branch
        if "$ref" in branch:
            try:
                view = self._flattened(self._inline_ref(branch, where), where)
                generated = set(self._types(view, where)) if isinstance(view, dict) else set()
            except (UnsupportedSchemaError, SchemaError):
                return branch, False
        return (view, generated == {"object"}) if isinstance(view, dict) else (branch, False)

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

    def _branch_types(self, branch: Any, depth: int = 0) -> Optional[set]:
        """The types every instance of ``branch`` has (``None``: any, or not known)."""
        if not isinstance(branch, dict):
            return None
        if "$ref" in branch:
            if depth >= 8:  # a cycle of references: not known
                return None
            target = self._resolve(branch["$ref"], "#")
            return self._branch_types(target, depth + 1) if set(branch) <= {"$ref"} | ANNOTATIONS else None
        if "type" not in branch:
            union = branch.get("anyOf", branch.get("oneOf"))
            if isinstance(union, list) and union and depth < 8:  # a union of typed branches: their types
                parts = [self._branch_types(b, depth + 1) for b in union]
                return None if any(p is None for p in parts) else set().union(*parts)
            return None
        types = set(branch["type"] if isinstance(branch["type"], list) else [branch["type"]])
        if "integer" in types or "number" in types:
            types |= {"integer", "number"}  # 1 is both
        if branch.get("nullable") is True:
            types.add("null")
        return types


def _declared(schema: dict) -> list:
    """The names ``schema``'s ``properties`` declares (none where it is malformed)."""
    props = schema.get("properties")
    return [name for name, sub in props.items() if sub is not False] if isinstance(props, dict) else []


def _forbids_required(branch: dict, other: dict) -> bool:
    """True when ``branch`` requires a property that ``other`` forbids: its schema is ``false``,
    or ``other`` is closed (``additionalProperties: false``) and neither declares it nor has a
    ``patternProperties`` pattern that may match it. Then no object of ``branch`` passes ``other``.

    Example:
        >>> _forbids_required({"required": ["a"]}, {"properties": {"b": {}}, "additionalProperties": False})
        True
        >>> _forbids_required({"required": ["b"]}, {"properties": {"b": {}}, "additionalProperties": False})
        False
        >>> closed = {"patternProperties": {"^[^$]": {}}, "additionalProperties": False}
        >>> _forbids_required({"required": ["$oid"]}, closed), _forbids_required({"required": ["oid"]}, closed)
        (True, False)
    """
    props = other.get("properties", {})
    required = branch.get("required", [])
    # next to a $ref, drafts disagree on whether other's keywords apply at all
    if not isinstance(props, dict) or not isinstance(required, list) or "$ref" in other or "$dynamicRef" in other:
        return False
    patterns = other.get("patternProperties") or {}
    closed = other.get("additionalProperties") is False and isinstance(patterns, dict)

    def unmatched(name: str) -> bool:  # ECMA-262 patterns: only where Python's re surely agrees
        return all(_surely_searches(pattern, name) is False for pattern in patterns)

    return any(props.get(name) is False or (closed and name not in props and unmatched(name)) for name in required)
