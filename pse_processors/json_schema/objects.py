"""Objects (members in schema order, extras, dependencies) and any JSON value.

A mixin of the compiler (``compiler._Compiler``): it uses the compiler's other methods."""

from __future__ import annotations

import re
from typing import Any, Callable, Optional

from ..errors import SchemaError
from . import fragments as fx
from .document import check_text
from .fragments import Fragment
from .keywords import ANNOTATIONS
from .lexemes import names_regex, string_outside
from .members import MembersMixin
from .orders import member_orders
from .patterns import translate
from .rules import ANY_VALUE
from .dependencies import MAX_TRIGGERS, dependencies_of, dependency_variants
from .schema_tools import (
    _ANY_NESTED,
    _pointer_join,
    _search,
    _key_not_in,
    _key_not_in_terminal,
    _bounds,
)


class ObjectsMixin(MembersMixin):
    def _compile_object(self, schema: dict, pointer: str) -> Fragment:
        dependencies = dependencies_of(schema, pointer)
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
        for keyword, names in (("properties", properties), ("required", required), ("patternProperties", patterns)):
            what = "the pattern" if keyword == "patternProperties" else "the property name"
            for name in names:  # a lone surrogate in a name: no JSON text can hold the key
                check_text(name, what, _pointer_join(pointer, keyword))
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
        # A declared or required property whose name matches a pattern must satisfy both schemas;
        # additionalProperties never applies to a name that a pattern matches.
        for name in list(properties) + [r for r in required if r not in properties]:
            matched = [pattern for pattern in patterns if _search(pattern, name)]
            matching = [patterns[pattern] for pattern in matched]
            if matching:
                if name in properties:
                    base = properties[name]
                elif all(_surely_matches(pattern, name) for pattern in matched):
                    base = True
                else:  # in doubt about ECMA-262, also require additionalProperties: a subset
                    base = additional if additional is not _ANY_NESTED else True
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
            names_in_order = [name for name, _, _ in entries]
            orders = member_orders(names_in_order, required, self.options.property_order, self.depth)
            if self.rules is not None:  # every depth: each member once, as a rule, however many orders
                every_depth = member_orders(names_in_order, required, self.options.property_order, None)
                if len(every_depth) > len(orders):
                    self.rules.beyond_regex = True  # the regex output has the first order only here
                orders = every_depth
                if len(orders) > 1:
                    members = [(self.rules.shared(member, "member"), req) for member, req in members]
            layouts = [[members[i] for i in order] for order in orders]
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
            return self._marked_object(layouts, extras, sep, high if not members else None)
        body = fx.alternation(self._object_body(layout, extras, sep, must_have, high if not members else None)
                              for layout in layouts)
        if body is None:
            return None if must_have else r"\{\}"
        wrapped = opening + body + closing
        return r"\{" + (wrapped if must_have else fx.optional(wrapped)) + r"\}"

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
                key = None if translated.regex is None else '"' + translated.regex + '"'
                if any(_search(pattern, name) for name in declared):
                    if translated.universal:
                        key = self._undeclared_key(declared)  # ".*" and the like: every undeclared key
                    elif self.rules is not None and key is not None:  # llguidance: the pattern minus the names
                        key = self.rules.terminal(string_outside([names_regex(declared)], within=translated.regex),
                                                  "KEY", beyond_regex=True)
                    else:
                        continue  # keys would have to avoid the declared names: not generated (a subset)
                others = [o for p, o in subs if p != pattern]
                value = self.compile({"allOf": [sub, *others]} if others else sub,
                                     _pointer_join(pointer, "patternProperties", pattern))
                if key is not None and value is not None:
                    extras.append((key, value))
            if self.rules is not None and "propertyNames" not in schema:  # llguidance: keys outside every pattern
                extras += self._unmatched_extras(schema, declared, additional, patterns, pointer)
            return extras  # regex output: other keys would have to avoid every pattern: not generated (a subset)
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
        return [(self._undeclared_key(declared), value)]

    def _unmatched_extras(self, schema: dict, declared: set, additional: Any, patterns: dict, pointer: str) -> list:
        """Grammar mode: the members whose keys match no pattern and no declared name, under
        ``additionalProperties``: a key terminal ``key & ~names & ~pattern...`` (``lexemes.py``)."""
        listed = "properties" in schema or bool(declared)
        if additional is False or (listed and additional is _ANY_NESTED and self.options.additional_properties == "closed"):
            return []
        value = self.compile(additional, _pointer_join(pointer, "additionalProperties"))
        translated = [translate(p, _pointer_join(pointer, "patternProperties", p)) for p in patterns]
        if value is None or any(t.universal for t in translated):  # every key matches a pattern
            return []
        excluded = [regex for regex in [t.regex for t in translated] + [names_regex(declared)] if regex is not None]
        return [(self.rules.terminal(string_outside(excluded), "KEY", beyond_regex=True), value)]  # type: ignore[union-attr]

    def _undeclared_key(self, declared: set) -> Fragment:
        """A quoted key (raw characters only) equal to none of ``declared``. In grammar mode a
        terminal ``key & ~(names)`` (llguidance reads it at once); the regex spells it as a
        trie of the names, which is large and slow to parse for long lists of names."""
        if self.rules is None:
            return '"' + _key_not_in(declared) + '"'
        return self.rules.terminal(_key_not_in_terminal(declared), "KEY")

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

    def _dependency_variants(self, schema: dict, deps: dict, pointer: str) -> Fragment:
        """Split on each trigger's presence: disjoint variants (see :mod:`.dependencies`)."""
        if len(deps) > MAX_TRIGGERS:
            keyword = next(k for k in ("dependentSchemas", "dependencies", "dependentRequired") if k in schema)
            self.unsupported(keyword, pointer, f"more than {MAX_TRIGGERS} dependent properties")
            deps = {}
        return fx.alternation(
            self.compile(variant, pointer) if "allOf" in variant else self._compile_object(variant, pointer)
            for variant in dependency_variants(schema, deps)
        )

    def _key(self, name: str) -> str:
        return fx.escape(fx.json_text(name))

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


_PYTHON_ONLY = re.compile(r"\\[AZzpPbB]|\(\?")


def _surely_matches(pattern: str, name: str) -> bool:
    """True when ``pattern`` matches ``name`` under ECMA-262 as well as Python: a printable
    ASCII name and a pattern without the constructs whose meaning differs (``\\A``, ``\\Z``,
    ``\\b``, ``\\p``, ``(?...)``); ``\\d``, ``\\w`` and ``\\s`` are read as ASCII.

    Example:
        >>> _surely_matches("^[^$]", "_id"), _surely_matches("^x-", "x-a"), _surely_matches("(?i)^a", "A")
        (True, True, False)
    """
    if not all(" " <= c <= "~" for c in name) or _PYTHON_ONLY.search(pattern):
        return False
    try:
        return re.search(pattern, name, re.ASCII) is not None
    except re.error:
        return False
