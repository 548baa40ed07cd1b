"""Seeded fuzz inputs for ``compile``: mutated and random JSON Schemas, random regexes, random and
mutated Lark grammars, random choices.

Every case is a pure function of ``(seed, index)`` (:func:`make_case`), so the worker process
that compiles it and the test that reports it rebuild the same input from two integers: nothing
(deeply nested, NaN-holding, surrogate-holding) has to cross a pipe. The seeds are the tests'
own data: :data:`tests.helpers.FUZZ_SCHEMAS`, :func:`tests.schema_corpus.corpus` and the vendored
JSON-Schema-Test-Suite under ``tests/data`` (no outside data).

Example:
    >>> a, b = make_case(0, 7), make_case(0, 7)
    >>> a.kind in KINDS and a.describe() == b.describe()
    True
"""

from __future__ import annotations

import functools
import json
import random
from dataclasses import dataclass
from pathlib import Path
from typing import Any

KINDS = ("schema_mutated", "schema_random", "regex", "grammar", "choice")
_WEIGHTS = (40, 12, 25, 16, 7)
SUITE = Path(__file__).resolve().parents[1] / "data" / "json-schema-test-suite" / "tests" / "draft2020-12"


@dataclass
class Case:
    """One input: ``kind`` (one of :data:`KINDS`), ``value`` (a schema, a pattern, Lark text or a
    list of strings) and the compile options beside the back end."""

    index: int
    kind: str
    value: Any
    options: dict

    def constraint(self) -> Any:
        """The value as ``compile`` takes it (building a Regex/Choice/Grammar may itself raise)."""
        import pse_processors as pse

        if self.kind == "regex":
            return pse.Regex(self.value)
        if self.kind == "grammar":
            return pse.Grammar(self.value)
        if self.kind == "choice":
            return pse.Choice(self.value)
        return self.value

    def describe(self, limit: int = 300) -> str:
        """A short, printable description (deep schemas are summarized by their depth)."""
        try:
            text = json.dumps(self.value, ensure_ascii=True)
        except (RecursionError, ValueError):
            text = f"<{type(self.value).__name__} nested {_depth(self.value)} deep>"
        if len(text) > limit:
            text = text[:limit] + f"... ({len(text)} chars)"
        return f"#{self.index} {self.kind} options={self.options} {text}"


def make_case(seed: int, index: int) -> Case:
    """The ``index``-th case of run ``seed`` (deterministic)."""
    rng = random.Random(f"pse-fuzz:{seed}:{index}")
    kind = rng.choices(KINDS, _WEIGHTS)[0]
    value = {
        "schema_mutated": lambda: mutated_schema(rng),
        "schema_random": lambda: random_schema(rng, rng.randint(1, 4)),
        "regex": lambda: random_regex(rng),
        "grammar": lambda: random_grammar(rng),
        "choice": lambda: random_choices(rng),
    }[kind]()
    options: dict = {}
    if kind.startswith("schema") and rng.random() < 0.4:
        options = rng.choice([
            {"whitespace": "compact"}, {"additional_properties": "spec"}, {"strict": False},
            {"max_recursion_depth": rng.randint(0, 5)}, {"any_value_depth": rng.randint(0, 3)},
            {"unknown_formats": "refuse"}, {"max_regex_length": rng.choice([200, 5_000, 50_000])},
        ])
    return Case(index, kind, value, options)


def _depth(value: Any) -> int:
    depth = 0
    while isinstance(value, (dict, list)) and value:
        value = next(iter(value.values())) if isinstance(value, dict) else value[0]
        depth += 1
    return depth


# --- JSON Schemas -------------------------------------------------------------------------------

@functools.cache
def seed_schemas() -> tuple:
    """The tests' own schemas: FUZZ_SCHEMAS, the corpus, and every JSON-Schema-Test-Suite schema."""
    from tests.schema_corpus import corpus

    schemas = [schema for _, schema in corpus()]
    for path in sorted(SUITE.glob("*.json")):
        schemas += [group["schema"] for group in json.loads(path.read_text(encoding="utf-8"))]
    return tuple(json.dumps(s) for s in schemas)  # copied on use: mutations never leak


KEYWORDS = (
    "type", "enum", "const", "minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum", "multipleOf",
    "minLength", "maxLength", "pattern", "format", "items", "prefixItems", "minItems", "maxItems",
    "uniqueItems", "contains", "minContains", "maxContains", "properties", "required",
    "additionalProperties", "patternProperties", "propertyNames", "minProperties", "maxProperties",
    "dependentRequired", "dependentSchemas", "anyOf", "oneOf", "allOf", "not", "if", "then", "else",
    "$ref", "$defs", "definitions", "$id", "$anchor", "$schema", "unevaluatedProperties",
    "unevaluatedItems", "$dynamicRef", "nullable", "discriminator", "default", "title",
)
TYPES = ("string", "integer", "number", "boolean", "null", "object", "array")
FORMATS = ("date", "date-time", "time", "email", "uuid", "ipv4", "ipv6", "uri", "hostname", "duration",
           "regex", "topic", "unknown", "")
ODD_NUMBERS = (float("nan"), float("inf"), float("-inf"), 10**400, -(10**400), 1e308, 1e-320, -0.0, 0, -1,
               2**32, 2**63, 0.1, 3.5, -7, 1e21, 5e-324)
ODD_STRINGS = ("", "\ud800", "a\udfffb", "\x00", "\u2028", "é", "\U0001F600", "x" * 300, "\\", '"', "/",
               "#/$defs/x", "#", "http://example.com/s.json", "file:///etc/passwd", "#/properties/a/items")


def _odd_value(rng: random.Random, depth: int = 0) -> Any:
    pick = rng.randrange(9 if depth < 2 else 6)
    if pick == 0:
        return rng.choice(ODD_NUMBERS)
    if pick == 1:
        return rng.choice(ODD_STRINGS)
    if pick == 2:
        return rng.choice((True, False, None))
    if pick == 3:
        return rng.randint(-5, 50)
    if pick == 4:
        return rng.choice(TYPES)
    if pick == 5:
        return rng.random() * rng.choice((1, 1000, -1e6))
    if pick == 6:
        return [_odd_value(rng, depth + 1) for _ in range(rng.randint(0, 3))]
    if pick == 7:
        return {rng.choice(KEYWORDS + ("a", "b", "")): _odd_value(rng, depth + 1) for _ in range(rng.randint(0, 3))}
    return random_schema(rng, 1)


def _keyword_value(rng: random.Random, keyword: str) -> Any:
    """A plausible value for ``keyword`` most of the time, an odd one otherwise."""
    if rng.random() < 0.3:
        return _odd_value(rng)
    if keyword == "type":
        return rng.choice(TYPES) if rng.random() < 0.7 else rng.sample(TYPES, rng.randint(1, 3))
    if keyword in ("enum",):
        return [_odd_value(rng, 1) for _ in range(rng.randint(1, 4))]
    if keyword == "const":
        return _odd_value(rng, 1)
    if keyword in ("minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum", "multipleOf"):
        return rng.choice((rng.randint(-100, 100), rng.uniform(-10, 10), rng.choice(ODD_NUMBERS)))
    if keyword.startswith(("min", "max")):
        return rng.choice((rng.randint(0, 12), rng.randint(0, 500), rng.choice(ODD_NUMBERS)))
    if keyword == "pattern":
        return random_regex(rng, ecma=True)
    if keyword == "format":
        return rng.choice(FORMATS)
    if keyword in ("items", "contains", "not", "if", "then", "else", "additionalProperties", "propertyNames",
                   "unevaluatedItems", "unevaluatedProperties"):
        return random_schema(rng, 2) if rng.random() < 0.8 else rng.choice((True, False))
    if keyword in ("anyOf", "oneOf", "allOf", "prefixItems"):
        return [random_schema(rng, 2) for _ in range(rng.randint(0, 3))]
    if keyword in ("properties", "patternProperties", "$defs", "definitions", "dependentSchemas"):
        names = [rng.choice(("a", "b", "name", "x y", "é", "", "\\d+", "^a", random_regex(rng, ecma=True))) for _ in range(3)]
        return {name: random_schema(rng, 2) for name in names[: rng.randint(0, 3)]}
    if keyword == "required":
        return rng.sample(["a", "b", "name", "x", "missing"], rng.randint(0, 3))
    if keyword == "dependentRequired":
        return {"a": ["b"], "b": rng.sample(["a", "x"], rng.randint(0, 2))}
    if keyword in ("$ref", "$dynamicRef"):
        return rng.choice(("#", "#/$defs/a", "#/properties/a", "#/definitions/b", "#/items", "#/anyOf/0",
                           "#/$defs/missing", "other.json", "#a", "#/$defs/a/items", "urn:x"))
    return _odd_value(rng)


def random_schema(rng: random.Random, depth: int) -> Any:
    """A random schema: mostly keyword-shaped, sometimes a boolean or an odd value."""
    if depth <= 0 or rng.random() < 0.1:
        return rng.choice(({"type": rng.choice(TYPES)}, True, False, {}, {"$ref": "#"}))
    schema: dict = {}
    for _ in range(rng.randint(1, 4)):
        keyword = rng.choice(KEYWORDS)
        if keyword in ("items", "not", "if", "then", "else", "contains", "additionalProperties"):
            schema[keyword] = random_schema(rng, depth - 1)
        elif keyword in ("anyOf", "oneOf", "allOf", "prefixItems"):
            schema[keyword] = [random_schema(rng, depth - 1) for _ in range(rng.randint(1, 3))]
        elif keyword in ("properties", "$defs"):
            schema[keyword] = {rng.choice("abcxyz"): random_schema(rng, depth - 1) for _ in range(rng.randint(1, 3))}
        else:
            schema[keyword] = _keyword_value(rng, keyword)
    return schema


def _nodes(schema: Any, out: list) -> list:
    """Every dict inside ``schema`` (iteratively: seeds may be deep)."""
    stack = [schema]
    while stack:
        node = stack.pop()
        if isinstance(node, dict):
            out.append(node)
            stack.extend(node.values())
        elif isinstance(node, list):
            stack.extend(node)
    return out


def _nest(schema: Any, depth: int, keyword: str) -> Any:
    for _ in range(depth):
        schema = {"type": "array", "items": schema} if keyword == "items" else {keyword: [schema]} if keyword.endswith("Of") else {keyword: schema}
    return schema


def mutated_schema(rng: random.Random) -> Any:
    """A seed schema with one to four mutations (keywords set, dropped or wrapped, references and
    nesting added)."""
    schema = json.loads(rng.choice(seed_schemas()))
    for _ in range(rng.randint(1, 4)):
        nodes = _nodes(schema, [])
        if not nodes:
            schema = {"anyOf": [schema, random_schema(rng, 2)]}
            continue
        node = rng.choice(nodes)
        op = rng.randrange(11)
        if op <= 2:
            keyword = rng.choice(KEYWORDS)
            node[keyword] = _keyword_value(rng, keyword)
        elif op == 3 and node:
            del node[rng.choice(list(node))]
        elif op == 4 and node:
            key = rng.choice(list(node))
            node[key] = _odd_value(rng)
        elif op == 5:
            node.update(rng.choice((
                {"$ref": "#"}, {"items": {"$ref": "#"}, "minItems": 1, "type": "array"},
                {"properties": {"a": {"$ref": "#"}}, "required": ["a"], "type": "object"},
                {"anyOf": [{"$ref": "#"}, {"type": "null"}]}, {"not": {"$ref": "#"}},
            )))
        elif op == 6 and rng.random() < 0.5:
            depth = rng.choice((2, 5, 10, 30, 70, 150, 260, 600, 3000))
            schema = _nest(schema, depth, rng.choice(("items", "not", "anyOf", "allOf", "additionalProperties")))
        elif op == 7:
            schema = rng.choice(({"allOf": [schema, schema]}, {"not": schema},
                                 {"oneOf": [schema, random_schema(rng, 2)]}, {"type": "array", "items": schema},
                                 {"$defs": {"s": schema}, "$ref": "#/$defs/s"}))
        elif op == 8:
            node["pattern"] = random_regex(rng, ecma=True)
            node.setdefault("type", "string")
        else:
            for keyword in ("minLength", "maxLength", "minItems", "maxItems", "minimum", "maximum"):
                if keyword in node or rng.random() < 0.2:
                    node[keyword] = rng.choice(ODD_NUMBERS + (rng.randint(0, 10**6),))
    return schema


# --- regexes ------------------------------------------------------------------------------------

_ATOMS = (
    "a", "b", "abc", "0", "[0-9]", "[a-z]", "[^a]", ".", "\\d", "\\w", "\\s", "\\D", "\\W", "\\p{L}",
    "\\p{Greek}", "\\P{Nd}", "\\x41", "\\x{10FFFF}", "\\u00e9", "é", "\U0001F600", "\\n", "\\t", "\\.",
    "\\$", "\\^", "\\\\", "\\/", "\\-", " ", "\\x00", "[[:alpha:]]", "[a-z&&[^x]]", "[a\\-z]", "(?i:ab)",
    "(?s:.)", "(?P<n>a)", "(?:)", "()",
)
#: Constructs that are malformed, refused by name, or at the edges of what the parsers take.
_HOSTILE_ATOMS = (
    "[z-a]", "[]", "[^]", "\\x{110000}", "\\u{1F600}", "\\0", "\\07", "[\\w--\\d]", "\\Q", "\\E", "\\cA",
    "\\e", "\\z", "\\Z", "\\A", "\\b", "\\B", "\\<", "\\>", "\\1", "\\k<n>", "^", "$", "(?=a)", "(?!a)",
    "(?<=a)", "(?<!a)", "(?>a)", "(?i)", "(?x) a # c\n", "(?#comment)", "(?<n>a)", "|", "\\", "(", ")", "[", "]",
    "{", "}", "{2}", "?", "*", "+", "\ud800", "(?(1)a|b)", "\\R", "\\X", "\\G", "\\pN", "\\p{Nope}",
)
_QUANTIFIERS = ("", "", "", "", "", "*", "+", "?", "{2}", "{1,3}", "{0,}", "*?", "+?", "??", "{2,}?")
_HOSTILE_QUANTIFIERS = ("{3,1}", "{,4}", "{300}", "{1000000}", "*+", "++", "{99999999999}", "{0,300}")


def random_regex(rng: random.Random, ecma: bool = False, depth: int = 0) -> str:
    """A random pattern: a sequence of atoms, groups, alternations and quantifiers, sometimes
    hostile (deep nesting, huge counts, unsupported constructs, unbalanced brackets)."""
    special = rng.random()
    if depth == 0 and special < 0.06:
        n = rng.choice((60, 110, 121, 126, 130, 200, 251, 300))
        inner = rng.choice(("a", "a?", "(?:a|b)", "[0-9]+"))
        open_, close = rng.choice((("(", ")"), ("(?:", ")"), ("(?:", ")?"), ("(?:a|", ")"), ("(", ")*")))
        return open_ * n + inner + close * n
    if depth == 0 and special < 0.1:
        # Catastrophic for backtracking engines, or large: each must compile or be refused quickly.
        # (Automata of hundreds of thousands of states that stay under max_states, such as
        # \w{1000}\d{1000}, take a minute to build: legitimate, but too slow for this test.)
        return rng.choice(("(a*)*b", "(a|a)*b", "(.*)*x", "(x+x+)+y", "[\\s\\S]{0,2000}", "\\w{50}\\d{50}",
                           "(?:(?:a{1,10}){1,10}){1,10}", ".{500}", "x.{60}", "a{1000000}", "(?:ab{1000}){600}",
                           "(?:[0-9]{1,3}\\.){3}[0-9]{1,3}"))
    parts = []
    for _ in range(rng.randint(1, 5)):
        roll = rng.random()
        if roll < 0.15 and depth < 4:
            inner = random_regex(rng, ecma, depth + 1)
            parts.append(rng.choice(("(", "(?:", "(?P<g>", "(?i:")) + inner + ")")
        elif roll < 0.25 and depth < 4:
            parts.append(random_regex(rng, ecma, depth + 1) + "|" + random_regex(rng, ecma, depth + 1))
        elif roll < 0.3:
            parts.append("[" + "".join(rng.choice("az09-^\\]._é") for _ in range(rng.randint(0, 5))) + "]")
        else:
            parts.append(rng.choice(_HOSTILE_ATOMS if rng.random() < 0.08 else _ATOMS))
        parts[-1] += rng.choice(_HOSTILE_QUANTIFIERS if rng.random() < 0.04 else _QUANTIFIERS)
    pattern = "".join(parts)
    if depth == 0:
        if rng.random() < 0.3:
            pattern = "^" + pattern
        if rng.random() < 0.3:
            pattern += rng.choice(("$", "\\z", "\\Z", "$\n"))
        if rng.random() < 0.05:
            pattern = "(?x)" + pattern + rng.choice(("# trailing", "#", " "))
    return pattern or "a"


# --- Lark grammars ------------------------------------------------------------------------------

SEED_GRAMMARS = (
    'start: "(" start ")" | "x"',
    'start: "yes" | "no"',
    "start: /(.|\\n)+/",
    'start: item ("," item)*\nitem: NUMBER | WORD\nNUMBER: /[0-9]+/\nWORD: /[a-z]+/',
    'start: expr\nexpr: term (("+" | "-") term)*\nterm: /[0-9]+/ | "(" expr ")"',
    'start: "[" [value ("," value)*] "]"\nvalue: "true" | "false" | "null" | start',
    'start: greeting name\ngreeting: "hi " | "hello "\nname: /[A-Z][a-z]{1,8}/',
    'start: A B?\nA: "a"+\nB: "b" | "c"',
    'start: list\nlist: "(" (atom | list)* ")"\natom: /[a-z]+/ " "?\n%ignore /[ \\t]+/',
    'start: s\ns: "a" s "b" | "ab"',
)
_LARK_ITEMS = ('"a"', '"b"', '"xyz"', '"\\n"', '"é"', "/[0-9]+/", "/[a-z]*/", "/./", "/(a|b)+/", "/\\d{2,4}/",
               "/(?i)abc/", '"a".."z"')
_HOSTILE_LARK_ITEMS = ('""', '"\\ud800"', "/a(?=b)/", "/[/", "/x{0,99999}/", "A", "B", "rule_a", "rule_b", "start",
                       "undefined_rule", "UNDEFINED", "%ignore", "->", "(", ")", "[", "]", "|", ":", "~",
                       "%import common.WS")


def _lark_expr(rng: random.Random, rules: list, terminals: list, depth: int = 0) -> str:
    items = []
    for _ in range(rng.randint(1, 4)):
        roll = rng.random()
        if roll < 0.15 and depth < 3:
            item = "(" + _lark_expr(rng, rules, terminals, depth + 1) + ")"
        elif roll < 0.2 and depth < 3:
            item = "[" + _lark_expr(rng, rules, terminals, depth + 1) + "]"
        elif roll < 0.45 and rules + terminals:
            item = rng.choice(rules + terminals)
        else:
            item = rng.choice(_HOSTILE_LARK_ITEMS[:5] if rng.random() < 0.05 else _LARK_ITEMS)
        items.append(item + rng.choice(("", "", "", "", "?", "*", "+", "~3", "~1..4") if rng.random() < 0.95
                                       else ("~ 0..9999999", "~0", "~5..2")))
    expr = " ".join(items)
    if rng.random() < 0.3:
        expr += " | " + _lark_expr(rng, rules, terminals, depth + 1) if depth < 3 else ""
    return expr


def random_grammar(rng: random.Random) -> str:
    """A random Lark grammar (rules and terminals referring to each other, sometimes recursively or
    to undefined names), or a seed grammar with characters inserted, deleted or swapped."""
    if rng.random() < 0.35:
        text = list(rng.choice(SEED_GRAMMARS))
        for _ in range(rng.randint(1, 4)):
            at = rng.randrange(len(text) + 1)
            op = rng.randrange(3)
            if op == 0:
                text.insert(at, rng.choice('()[]|:"/*+?~.\n %#\\ab1'))
            elif op == 1 and text:
                del text[min(at, len(text) - 1)]
            else:
                text.insert(at, " " + rng.choice(_LARK_ITEMS + _HOSTILE_LARK_ITEMS) + " ")
        return "".join(text)
    rules = ["start"] + [f"rule_{c}" for c in "abc"[: rng.randint(0, 3)]]
    terminals = [c for c in "ABC"[: rng.randint(0, 3)]]
    lines = [f"{name}{rng.choice(('', '', '.2', '.-1'))}: {_lark_expr(rng, rules, terminals)}" for name in rules]
    lines += [f"{name}: {_lark_expr(rng, [], terminals[:i])}" for i, name in enumerate(terminals)]
    if rng.random() < 0.2:
        lines.append(rng.choice(("%ignore /[ \\t]+/", "%ignore \" \"", "%import common.WS", "%ignore A",
                                 "%llguidance {}", "%lark {", "// a comment", "start: \"dup\"")))
    rng.shuffle(lines)
    return "\n".join(lines)


# --- choices ------------------------------------------------------------------------------------

def random_choices(rng: random.Random) -> list:
    """A list of strings: overlapping prefixes, duplicates, odd characters, occasionally many."""
    pool = ("yes", "no", "y", "ye", "yes ", "", "\ud800", "\x00", "é", "\U0001F600", "a" * 2000, "\n", '"', "yes")
    if rng.random() < 0.05:
        return [f"item{i}" for i in range(rng.choice((1000, 20_000)))]
    return [rng.choice(pool) if rng.random() < 0.6 else random_regex(rng) for _ in range(rng.randint(1, 6))]
