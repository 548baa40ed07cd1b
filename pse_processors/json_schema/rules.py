"""The compiler's grammar output: named rules whose bodies are regex fragments with holes.

In grammar mode the compiler writes the same regex fragments as for the byte automaton,
except where the language recurses: a recursive ``$ref``, "any JSON value", and the suffix
shared by an object's optional members. There it writes a *hole*, a reference to a named
rule, and the rule's body is compiled once. :func:`to_lark` turns the root fragment and the
rule bodies into a Lark grammar for llguidance: every hole-free stretch of a fragment becomes
terminals cut at JSON token boundaries (see :mod:`.lark_emitter`: llguidance's greedy lexer
cannot run one such token into the next), and the groups, alternations and quantifiers that
hold holes or several tokens become Lark syntax (fragments are read by :mod:`.fragment_parser`).

Holes are written with two plane-16 private-use characters that fragments never contain
(:mod:`.holes`; :func:`check_no_markers` refuses a schema that does).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any, Optional

from .fragment_parser import parse_fragment
from .holes import HOLE_CLOSE, HOLE_OPEN, check_no_markers, hole_names
from .lark_emitter import LarkOutput, lark_rule, lark_terminal

__all__ = ["ANY_VALUE", "HOLE_CLOSE", "HOLE_OPEN", "RuleSet", "check_no_markers", "terminal_only", "to_lark",
           "unique_items_marker", "unique_items_schema"]

ANY_VALUE = "any_value"


@dataclass
class RuleSet:
    """Rule bodies (fragments that may hold holes), by name, in definition order.

    Example:
        >>> rules = RuleSet()
        >>> item = rules.hole("item")
        >>> rules.define("item", r'"x"|\\[' + item + r'(?:,[ ]?' + item + r')*\\]')
        >>> print(to_lark(item, rules))
        start: item
        item: T0 | T1 item (T2 item)* T3
        T0: /"x"/
        T1: /\\[/
        T2: /,[ ]?/
        T3: /\\]/
    """

    bodies: dict = field(default_factory=dict)
    _by_body: dict = field(default_factory=dict)
    #: Terminals written in llguidance's own syntax (``&``, ``~``), by name: definition.
    terminals: dict = field(default_factory=dict)
    _by_terminal: dict = field(default_factory=dict)
    #: Whether a terminal holds a language the regex output cannot (an intersection or complement
    #: where the regex output generates a subset): then ``backend="auto"`` runs llguidance.
    beyond_regex: bool = False
    #: Whether an array must keep its items unique: the grammar engine checks that beside the
    #: grammar (``matchers/unique_items.py``); the Lark then starts with :func:`unique_items_marker`.
    unique_items: bool = False
    #: Characters of every body defined so far (the compiler bounds it, as it bounds a regex).
    size: int = 0
    #: (ref, siblings) keys of recursive references without a finite instance: the compiler
    #: drops them as empty languages (see ``compiler._finite_rules``); kept by :meth:`clear`.
    empty: set = field(default_factory=set)
    #: What :func:`to_lark` wrote last: (root, Lark, each rule's expression form for the
    #: finiteness check, ``"start"`` for the root); forgotten when a rule changes.
    written: tuple = ()

    @staticmethod
    def hole(name: str) -> str:
        return HOLE_OPEN + name + HOLE_CLOSE

    def define(self, name: str, body: str) -> None:
        self.written = ()
        self.size += len(body)
        self.bodies[name] = body
        self._by_body.setdefault(body, name)

    def terminal(self, definition: str, prefix: str, beyond_regex: bool = False) -> str:
        """A hole for a terminal written in llguidance's syntax, one per distinct definition
        (named ``prefix`` + a number, upper case as Lark terminals are). ``beyond_regex``: the
        regex output has no equal of it (see :attr:`beyond_regex`)."""
        self.beyond_regex = self.beyond_regex or beyond_regex
        name = self._by_terminal.get(definition)
        if name is None:
            name = self._by_terminal[definition] = f"{prefix}{len(self.terminals)}"
            self.terminals[name] = definition
            self.written = ()
        return self.hole(name)

    def clear(self) -> None:
        """Forget every rule and terminal (the compiler starts over)."""
        self.bodies.clear()
        self._by_body.clear()
        self.terminals.clear()
        self._by_terminal.clear()
        self.size = 0
        self.beyond_regex = False
        self.unique_items = False
        self.written = ()

    def shared(self, body: str, prefix: str) -> str:
        """A hole for ``body``, one rule per distinct body (named ``prefix`` + a number)."""
        name = self._by_body.get(body)
        if name is None:
            name = f"{prefix}_{len(self.bodies)}"
            self.define(name, body)
        return self.hole(name)


def to_lark(root: str, rules: RuleSet) -> str:
    """The Lark grammar: ``start`` is ``root``, then every rule that ``root`` reaches, then
    the terminals, each regex defined once by name (llguidance reads a repeated regex once).

    The expression form of each rule written (see ``finiteness.py``) is kept with the text in
    ``rules.written``, and the text is reused while no rule changes."""
    if rules.written and rules.written[0] == root:
        return rules.written[1]
    out = LarkOutput()
    start, expr = lark_rule(parse_fragment(root), out)
    lines = [f"start: {start}"]
    exprs = {"start": expr}
    done: set = set()
    pending = hole_names(root)
    while pending:
        name = pending.pop(0)
        if name in done:
            continue
        done.add(name)
        if name in rules.terminals:
            out.named[name] = rules.terminals[name]
            continue
        body = rules.bodies[name]
        text, exprs[name] = lark_rule(parse_fragment(body), out)
        lines.append(f"{name}: {text}")
        pending.extend(hole_names(body))
    terminals = [f"{name}: {definition}" for name, definition in out.named.items()]
    terminals += [f"{name}: {regex}" for regex, name in out.terminals.items()]
    lark = "\n".join(lines + out.hoisted + terminals)
    rules.written = (root, lark, exprs)
    return lark


_UNIQUE_MARKER = "// pse uniqueItems: "


def unique_items_marker(schema: Any) -> str:
    r"""The first line of a grammar whose arrays must keep unique items: the schema, which the
    grammar engine's check follows (a Lark comment: llguidance skips it).

    Example:
        >>> marker = unique_items_marker({"uniqueItems": True})
        >>> marker, unique_items_schema(marker + "start: /a/")
        ('// pse uniqueItems: {"uniqueItems": true}\n', {'uniqueItems': True})
    """
    return _UNIQUE_MARKER + json.dumps(schema, separators=(", ", ": ")) + "\n"


def unique_items_schema(lark: Optional[str]) -> Any:
    """The schema :func:`unique_items_marker` put in ``lark`` (its first line, or a later one once a
    leading space's rule is put in front), else ``None``."""
    start = -1 if not lark else 0 if lark.startswith(_UNIQUE_MARKER) else lark.find("\n" + _UNIQUE_MARKER) + 1
    if start < 0 or (start == 0 and not lark.startswith(_UNIQUE_MARKER)):  # type: ignore[union-attr]
        return None
    start += len(_UNIQUE_MARKER)
    return json.loads(lark[start : lark.index("\n", start)])  # type: ignore[index]


def terminal_only(regex: str) -> str:
    """A Lark grammar whose only sentence set is ``regex`` (a Regex or Choice constraint), less
    the texts holding U+10FFFD-U+10FFFF: the byte automaton's sentinels, which neither back end
    generates (``fragments.SENTINELS``).

    Example:
        >>> print(terminal_only("a/b"))
        start: TEXT
        TEXT: /a\\/b/ & /[^\\x{10FFFD}-\\x{10FFFF}]*/
    """
    return f"start: TEXT\nTEXT: {lark_terminal(regex)} & /[^\\x{{10FFFD}}-\\x{{10FFFF}}]*/"
