"""``$ref``: resolving, unrolling (regex output) or naming a rule (grammar output).

A mixin of the compiler (``compiler._Compiler``): it uses the compiler's other methods."""

from __future__ import annotations

import json
import urllib.parse
from collections import Counter
from typing import Any

from ..errors import SchemaError, UnsatisfiableConstraintError, UnsupportedSchemaError
from .fragments import Fragment
from .schema_tools import (
    _has_assertions,
    _merge,
)


# Grammar output: a referenced definition whose fragment is longer becomes a rule of its own.
_INLINE_LIMIT = 256


class RefsMixin:
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
            self.depth_cut = True  # for the message if nothing is left (compiler._why_unsatisfiable)
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
        if key in self.rules.empty:  # type: ignore[union-attr]  # no finite instance: the branch drops out
            return None
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
        fragment = self._compile_rule_body(key, ref, schema, where)
        # A recursive reference must be a rule; a large one is one too, so that a definition
        # used in many places is written (and built by llguidance) once.
        if fragment is not None and (name in self._recursive_rules or len(fragment) > _INLINE_LIMIT):
            self.rules.define(name, fragment)  # type: ignore[union-attr]
            fragment = self.rules.hole(name)  # type: ignore[union-attr]
        self._rule_memo[key] = fragment
        return fragment

    def _compile_rule_body(self, key: Any, ref: str, schema: Any, where: str) -> Any:
        """Compile a rule's body with its reference open (a reference back to it is recursion)."""
        self._open_rules.add(key)
        self._ref_stack.append(ref)
        try:
            return self.compile(schema, where)
        finally:
            self._ref_stack.pop()
            self._open_rules.discard(key)

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
                fragment = self._compile_rule_body(key, ref, schema, where)
                if fragment is None:
                    raise UnsatisfiableConstraintError(f"the recursive schema {ref} has no finite instance")
                rules.define(name, fragment)
