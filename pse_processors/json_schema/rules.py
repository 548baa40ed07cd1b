"""The compiler's grammar output: named rules whose bodies are regex fragments with holes.

In grammar mode the compiler writes the same regex fragments as for the byte automaton,
except where the language recurses: a recursive ``$ref``, "any JSON value", and the suffix
shared by an object's optional members. There it writes a *hole*, a reference to a named
rule, and the rule's body is compiled once. :func:`to_lark` turns the root fragment and the
rule bodies into a Lark grammar for llguidance: every hole-free stretch of a fragment becomes
terminals cut at JSON token boundaries (see ``_Emitter``: llguidance's greedy lexer cannot
run one such token into the next), and the groups, alternations and quantifiers that hold
holes or several tokens become Lark syntax.

Holes are written with two plane-16 private-use characters that fragments never contain
(:func:`check_no_markers` refuses a schema that does).
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from typing import Any, Optional

from ..errors import UnsupportedSchemaError
from .fragments import STRING_CHAR

HOLE_OPEN = "\U0010fff0"
HOLE_CLOSE = "\U0010fff1"
ANY_VALUE = "any_value"
_QUANTIFIER = re.compile(r"\*\??|\+\??|\?\??|\{(\d+)(,(\d*))?\}\??")
_ATOM = re.compile(r"\[\^?\]?(?:\\.|[^\]\\])*\]|\\[xpPu]\{[^}]*\}|\\.|[^()|]", re.DOTALL)
_SLASH = re.compile(r"(\\.)|/", re.DOTALL)


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
    #: Characters of every body defined so far (the compiler bounds it, as it bounds a regex).
    size: int = 0

    @staticmethod
    def hole(name: str) -> str:
        return HOLE_OPEN + name + HOLE_CLOSE

    def define(self, name: str, body: str) -> None:
        self.size += len(body)
        self.bodies[name] = body
        self._by_body.setdefault(body, name)

    def terminal(self, definition: str, prefix: str) -> str:
        """A hole for a terminal written in llguidance's syntax, one per distinct definition
        (named ``prefix`` + a number, upper case as Lark terminals are)."""
        name = self._by_terminal.get(definition)
        if name is None:
            name = self._by_terminal[definition] = f"{prefix}{len(self.terminals)}"
            self.terminals[name] = definition
        return self.hole(name)

    def clear(self) -> None:
        """Forget every rule and terminal (the compiler starts over)."""
        self.bodies.clear()
        self._by_body.clear()
        self.terminals.clear()
        self._by_terminal.clear()
        self.size = 0

    def shared(self, body: str, prefix: str) -> str:
        """A hole for ``body``, one rule per distinct body (named ``prefix`` + a number)."""
        name = self._by_body.get(body)
        if name is None:
            name = f"{prefix}_{len(self.bodies)}"
            self.define(name, body)
        return self.hole(name)


def check_no_markers(schema: Any) -> None:
    """Refuse a schema whose text holds the hole markers (plane-16 private use, never real text)."""
    text = json.dumps(schema, ensure_ascii=False)
    if HOLE_OPEN in text or HOLE_CLOSE in text:
        raise UnsupportedSchemaError("const", "#", "U+10FFF0/U+10FFF1 are reserved by the grammar engine")


def to_lark(root: str, rules: RuleSet) -> str:
    """The Lark grammar: ``start`` is ``root``, then every rule that ``root`` reaches, then
    the terminals, each regex defined once by name (llguidance reads a repeated regex once)."""
    out = _Output()
    lines = [f"start: {_expression(_parse(root), out)}"]
    done: set = set()
    pending = _holes(root)
    while pending:
        name = pending.pop(0)
        if name in done:
            continue
        done.add(name)
        if name in rules.terminals:
            out.named[name] = rules.terminals[name]
            continue
        body = rules.bodies[name]
        lines.append(f"{name}: {_expression(_parse(body), out)}")
        pending.extend(_holes(body))
    terminals = [f"{name}: {definition}" for name, definition in out.named.items()]
    terminals += [f"{name}: {regex}" for regex, name in out.terminals.items()]
    return "\n".join(lines + out.hoisted + terminals)


class _Output:
    """What :func:`to_lark` collects besides the rules: hoisted groups and named terminals."""

    def __init__(self) -> None:
        self.hoisted: list = []  # extra rule lines, for groups nested too deeply
        self.terminals: dict = {}  # "/regex/" -> its name, in order of first use
        self.named: dict = {}  # the RuleSet's terminals that the grammar uses: name -> definition
        # Per group text (quantifier included): "space", "lexical" or "tokens"; and the Lark
        # of a "tokens" group by (text, depth). Large schemas repeat the same objects inline.
        self.group_kind: dict = {}
        self.rendered: dict = {}

    def terminal(self, regex: str) -> str:
        """The name of the terminal ``regex`` (a JSON token), defined once."""
        text = _terminal(regex)
        name = self.terminals.get(text)
        if name is None:
            name = self.terminals[text] = f"T{len(self.terminals)}"
        return name


def _holes(fragment: str) -> list:
    return re.findall(f"{HOLE_OPEN}([A-Za-z0-9_]+){HOLE_CLOSE}", fragment)


# -- a parser for the regex subset the compiler writes --------------------------------------
class _Node:
    """A parsed regex piece. A group's inside is parsed only when asked (``parts``): the
    groups inside JSON strings (key exclusions, escapes) are emitted as written, and they
    are most of a large schema's text."""

    __slots__ = ("kind", "text", "quantifier", "_parts", "_lazy")

    def __init__(self, kind: str, text: str = "", parts: Optional[list] = None, lazy: Optional[tuple] = None) -> None:
        self.kind = kind  # "atom", "string", "hole", "group", "alt", "seq"
        self.text = text  # atom: its regex text (quantifier included); group: the whole group's text; hole: the rule name
        self.quantifier = ""
        self._parts = parts
        self._lazy = lazy  # a group: (regex, start of its inside, its ")" position, the paren table)

    @property
    def parts(self) -> list:
        if self._parts is None:
            if self._lazy is None:
                self._parts = []
            else:
                regex, start, close, table = self._lazy
                inner, end = _alternation(regex, start, table)
                if end != close:
                    raise ValueError(f"unbalanced group at {start} in a compiled fragment")
                self._parts = [inner]
        return self._parts

    @property
    def has_hole(self) -> bool:
        return self.kind == "hole" or any(part.has_hole for part in self.parts)


# The JSON string tokens the compiler writes most (half of all terminal text on MaskBench):
# read whole at an opening quote, they are balanced and hold no hole.
_STRING_TOKENS = ('"' + STRING_CHAR + '*"', '"(?:' + STRING_CHAR + ')*"')
# A common string token, an escape or a class (skipped whole: their parentheses are literal),
# or one parenthesis; the scanner jumps over plain characters in C.
_PARENS = re.compile(
    "|".join(re.escape(token) for token in _STRING_TOKENS) + r"|\\.|\[\^?\]?(?:\\.|[^\]\\])*\]|([()])", re.DOTALL
)


def _paren_table(regex: str) -> dict:
    """Position of each group's "(" -> position of its ")"."""
    table: dict = {}
    stack: list = []
    for found in _PARENS.finditer(regex):
        paren = found.group(1)
        if paren == "(":
            stack.append(found.start())
        elif paren == ")":
            if not stack:
                raise ValueError(f"unbalanced ')' at {found.start()} in a compiled fragment")
            table[stack.pop()] = found.start()
    if stack:
        raise ValueError("unbalanced '(' in a compiled fragment")
    return table


def _parse(regex: str) -> _Node:
    node, end = _alternation(regex, 0, _paren_table(regex))
    if end != len(regex):
        raise ValueError(f"unbalanced ')' at {end} in a compiled fragment")
    return node


def _alternation(regex: str, i: int, table: dict) -> tuple[_Node, int]:
    branches = []
    while True:
        seq, i = _sequence(regex, i, table)
        branches.append(seq)
        if i < len(regex) and regex[i] == "|":
            i += 1
            continue
        return (branches[0] if len(branches) == 1 else _Node("alt", parts=branches)), i


def _sequence(regex: str, i: int, table: dict) -> tuple[_Node, int]:
    items: list[_Node] = []
    n = len(regex)
    while i < n and regex[i] not in "|)":
        start = i
        ch = regex[i]
        if ch == '"' and not _QUANTIFIER.match(regex, i + 1):
            # A JSON string: one terminal up to its closing quote, read here in runs rather
            # than atom by atom (keys and string values are most of a schema's text).
            for token in _STRING_TOKENS:
                if regex.startswith(token, i):
                    i += len(token)
                    break
            else:
                i = _string_end(regex, i + 1, table)
            items.append(_Node("string", regex[start:i]))
            continue
        if ch == HOLE_OPEN:
            j = regex.index(HOLE_CLOSE, i)
            atom = _Node("hole", regex[i + 1 : j])
            i = j + 1
        elif ch == "(":
            close = table[i]
            inside = i + 3 if regex.startswith("(?:", i) else i + 1
            atom = _Node("group", lazy=(regex, inside, close, table))
            i = close + 1
        else:  # a class, an escape or one character: one regex match, not a Python loop
            found = _ATOM.match(regex, i)
            if found is None:
                raise ValueError(f"cannot read the compiled fragment at {i}: {regex[i:i + 20]!r}")
            i = found.end()
            atom = _Node("atom", found.group())
        found = _QUANTIFIER.match(regex, i)
        if found:
            atom.quantifier = _lark_quantifier(found.group())
            i = found.end()
        if atom.kind != "hole":
            atom.text = regex[start:i]  # the atom or group with its quantifier, as written
        items.append(atom)
    return (items[0] if len(items) == 1 else _Node("seq", parts=items)), i


# Runs of string content that need no look: not a quote, backslash, class or parenthesis.
_STRING_RUN = re.compile(r'[^"\\\[()|]+')


def _string_end(regex: str, i: int, table: dict) -> int:
    """The end of the JSON string whose opening quote is just before ``i``: after its
    closing quote, or at the ``|``/``)``/end that ends the sequence first (a string left
    open). A quote closes it unless quantified or after a regex-escaped backslash (``\\\\``)."""
    n = len(regex)
    escaped = False
    while i < n:
        found = _STRING_RUN.match(regex, i)
        if found is not None:
            i, escaped = found.end(), False
            continue
        ch = regex[i]
        if ch in "|)":
            return i
        if ch == "(":
            i = table[i] + 1
            found = _QUANTIFIER.match(regex, i)
            if found:
                i = found.end()
            escaped = False
            continue
        found = _ATOM.match(regex, i)
        if found is None:
            raise ValueError(f"cannot read the compiled fragment at {i}: {regex[i:i + 20]!r}")
        end = found.end()
        quantified = _QUANTIFIER.match(regex, end)
        if quantified:
            end = quantified.end()
        text = regex[i:end]
        i = end
        if text == '"' and not escaped:
            return i
        escaped = text == "\\\\" and not escaped
    return i


# -- Lark output: terminals cut at JSON token boundaries ------------------------------------
# llguidance's lexer is greedy and does not backtrack: a "{" lexeme next to a '{"bar":' lexeme
# makes '{"foo"' fail once '{"' was read as the longer one. JSON's own tokens never run into
# each other (a number ends before "," or "]", a string at its closing quote, and no token
# starts with whitespace), so terminals are cut exactly there: each is one JSON token, a
# structural character with the whitespace after it, or a run of whitespace with the
# structural character after it. Lexemes that match the same text are fine: llguidance
# keeps every parse they allow.
_STRUCTURAL = {"\\[", "\\]", "\\{", "\\}", ",", ":"}
_SPACE = re.compile(r"(?:\[[ \\nrt]+\]| |\\[nrt])(?:[?*+]|\{\d+(?:,\d*)?\})?")


def _is_space(node: _Node) -> bool:
    if node.kind == "atom":
        return _SPACE.fullmatch(node.text) is not None
    if node.kind == "group":  # whitespace has no quote and no hole: skip parsing most groups
        return '"' not in node.text and HOLE_OPEN not in node.text and _is_space(node.parts[0])
    if node.kind in ("seq", "alt"):
        return all(_is_space(part) for part in node.parts)
    return False


# Characters a whitespace group may hold (a superset); a group with any other is not one.
_SPACE_GROUP_CHARS = frozenset(" \\nrt[]?*+{},0123456789(|):")
# Text whose presence may make a group span tokens; a group without any is lexical unparsed.
_TOKEN_HINTS = ('"', HOLE_OPEN, "\\{", "\\}", "\\[", "\\]", ",", ":")


def _group_kind(node: _Node) -> str:
    """"space", "lexical" or "tokens"; parses the group's inside only when its text is ambiguous."""
    text = node.text
    if _SPACE_GROUP_CHARS.issuperset(text) and _is_space(node):
        return "space"
    bare = text.replace("(?:", "(")  # the ":" of a non-capturing group is no JSON ":"
    if not any(hint in bare for hint in _TOKEN_HINTS) or _is_lexical(node):
        return "lexical"
    return "tokens"


def _is_lexical(node: _Node) -> bool:
    """True for a group inside one token: no hole, no quote, no structural character."""
    if node.kind in ("hole", "string"):
        return False
    if node.kind == "atom":
        return node.text.rstrip("?*+") not in _STRUCTURAL and node.text[:1] != '"'
    return all(_is_lexical(part) for part in node.parts)


class _Emitter:
    """Builds one Lark sequence from a regex sequence, cutting terminals at token boundaries."""

    def __init__(self, output: _Output, depth: int) -> None:
        self.output = output
        self.depth = depth
        self.out: list[str] = []
        self.term = ""
        self.kind = ""  # what self.term holds: "", "space", "structural", "scalar"

    def flush(self) -> None:
        if self.term:
            self.out.append(self.output.terminal(self.term))
        self.term, self.kind = "", ""

    def add(self, text: str, kind: str) -> None:
        self.term += text
        self.kind = kind

    def sequence(self, items: list) -> str:
        for item in items:
            self.item(item)
        self.flush()
        return " ".join(self.out) if self.out else '""'

    def item(self, node: _Node) -> None:
        if node.kind == "hole":
            self.flush()
            self.out.append(node.text + node.quantifier)
            return
        if node.kind == "string":  # a whole JSON string (see _sequence): its own terminal
            self.flush()
            self.out.append(self.output.terminal(node.text))
            return
        if node.kind == "group":
            self.group(node)
            return
        if _is_space(node):
            self.space(node.text)
            return
        if node.kind == "atom" and node.text in _STRUCTURAL:
            if self.kind != "space":
                self.flush()
            self.add(node.text, "structural")
            return
        self.scalar(node.text)

    def space(self, text: str) -> None:
        """Whitespace: after a structural character, or in front of the next one."""
        if self.kind not in ("structural", "space"):
            self.flush()
            self.kind = "space"
        self.add(text, self.kind)

    def scalar(self, text: str) -> None:
        if self.kind != "scalar":
            self.flush()
        self.add(text, "scalar")

    def group(self, node: _Node) -> None:
        known = self.output.group_kind
        kind = known.get(node.text)
        if kind is None:
            kind = known[node.text] = _group_kind(node)
        if kind == "space":
            self.space(node.text)
            return
        if kind == "lexical":
            self.scalar(node.text)
            return
        # A group of whole tokens (or with holes): its own Lark group; past a nesting depth,
        # its own rule (llguidance refuses Lark nested too deeply: long oneOf chains, say).
        self.flush()
        key = (node.text, self.depth)
        rendered = self.output.rendered.get(key)
        if rendered is None:
            inner = _expression(node.parts[0], self.output, self.depth + 1)
            if self.depth >= _MAX_NESTING:
                name = f"group_{len(self.output.hoisted)}"
                self.output.hoisted.append(f"{name}: {inner}")
                rendered = name + node.quantifier
            else:
                rendered = f"({inner})" + node.quantifier
            self.output.rendered[key] = rendered
        self.out.append(rendered)


_MAX_NESTING = 8


def _expression(node: _Node, output: _Output, depth: int = 0) -> str:
    if node.kind == "alt":
        return " | ".join(_expression(part, output, depth) for part in node.parts)
    items = node.parts if node.kind == "seq" else [node]
    return _Emitter(output, depth).sequence(items)


def _lark_quantifier(quantifier: str) -> str:
    return quantifier[:-1] if len(quantifier) > 1 and quantifier.endswith("?") else quantifier  # lazy = greedy here


def _terminal(regex: str) -> str:
    """``regex`` as a Lark ``/.../`` terminal: every unescaped ``/`` escaped."""
    if "/" not in regex:  # most terminals: no substitution to run
        return "/" + regex + "/"
    return "/" + _SLASH.sub(lambda m: m.group(1) or "\\/", regex) + "/"


def terminal_only(regex: str) -> str:
    """A Lark grammar whose only sentence set is ``regex`` (a Regex or Choice constraint).

    Example:
        >>> terminal_only("a/b")
        'start: /a\\\\/b/'
    """
    return f"start: {_terminal(regex)}"

