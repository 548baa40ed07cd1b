r"""Lark syntax for parsed fragments: terminals cut at JSON token boundaries, groups and rules.

Example:
    >>> from pse_processors.json_schema.fragment_parser import parse_fragment
    >>> out = LarkOutput()
    >>> lark_expression(parse_fragment('\\[(?:1|2)\\]'), out), out.terminals
    ('T0 T1 T2', {'/\\[/': 'T0', '/(?:1|2)/': 'T1', '/\\]/': 'T2'})
    >>> lark_terminal("a/b")
    '/a\\/b/'
"""

from __future__ import annotations

import re
from typing import Optional

from .fragment_parser import FragmentNode
from .fragments import STRING_CHAR
from .holes import HOLE_OPEN

_SLASH = re.compile(r"(\\.)|/", re.DOTALL)


class LarkOutput:
    """What :func:`to_lark` collects besides the rules: hoisted groups and named terminals."""

    def __init__(self) -> None:
        self.hoisted: list = []  # extra rule lines, for groups nested too deeply
        self.terminals: dict = {}  # "/regex/" -> its name, in order of first use
        self.named: dict = {}  # the RuleSet's terminals that the grammar uses: name -> definition
        # Per group text (quantifier included): "space", "lexical" or "tokens"; and the Lark
        # of a "tokens" group by (text, depth). Large schemas repeat the same objects inline.
        self.group_kind: dict = {}
        self.rendered: dict = {}  # (text, depth) -> (Lark, expression form)

    def terminal(self, regex: str) -> str:
        """The name of the terminal ``regex`` (a JSON token), defined once."""
        text = lark_terminal(regex)
        name = self.terminals.get(text)
        if name is None:
            name = self.terminals[text] = f"T{len(self.terminals)}"
        return name


# llguidance's lexer is greedy and does not backtrack: a "{" lexeme next to a '{"bar":' lexeme
# makes '{"foo"' fail once '{"' was read as the longer one. JSON's own tokens never run into
# each other (a number ends before "," or "]", a string at its closing quote, and no token
# starts with whitespace), so terminals are cut exactly there: each is one JSON token, a
# structural character with the whitespace after it, or a run of whitespace with the
# structural character after it. Lexemes that match the same text are fine: llguidance
# keeps every parse they allow.
_STRUCTURAL = {"\\[", "\\]", "\\{", "\\}", ",", ":"}
_SPACE = re.compile(r"(?:\[[ \\nrt]+\]| |\\[nrt])(?:[?*+]|\{\d+(?:,\d*)?\})?")


def _is_space(node: FragmentNode) -> bool:
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


def _group_kind(node: FragmentNode) -> str:
    """"space", "lexical" or "tokens"; parses the group's inside only when its text is ambiguous."""
    text = node.text
    if _SPACE_GROUP_CHARS.issuperset(text) and _is_space(node):
        return "space"
    bare = text.replace("(?:", "(")  # the ":" of a non-capturing group is no JSON ":"
    if not any(hint in bare for hint in _TOKEN_HINTS) or _is_lexical(node):
        return "lexical"
    return "tokens"


def _is_lexical(node: FragmentNode) -> bool:
    """True for a group inside one token: no hole, no quote, no structural character."""
    if node.kind in ("hole", "string"):
        return False
    if node.kind == "atom":
        return node.text.rstrip("?*+") not in _STRUCTURAL and node.text[:1] != '"'
    return all(_is_lexical(part) for part in node.parts)


class _Emitter:
    """Builds one Lark sequence from a regex sequence, cutting terminals at token boundaries.

    Alongside, the sequence's expression form for the finiteness check (see ``finiteness.py``):
    what it needs, which is only its holes and groups that may not be skipped (terminals are
    never empty languages)."""

    def __init__(self, output: LarkOutput, depth: int) -> None:
        self.output = output
        self.depth = depth
        self.out: list[str] = []
        self.needs: list = []  # expression forms of the parts that must be there
        self.term = ""
        self.kind = ""  # what self.term holds: "", "space", "structural", "scalar"

    def flush(self) -> None:
        if self.term:
            self.out.append(self.output.terminal(self.term))
        self.term, self.kind = "", ""

    def add(self, text: str, kind: str) -> None:
        self.term += text
        self.kind = kind

    def sequence(self, items: list) -> tuple:
        for item in items:
            self.item(item)
        self.flush()
        needs = self.needs
        expr = True if not needs else needs[0] if len(needs) == 1 else ("seq", tuple(needs))
        return (" ".join(self.out) if self.out else '""'), expr

    def item(self, node: FragmentNode) -> None:
        if node.kind == "hole":
            self.flush()
            self.out.append(node.text + node.quantifier)
            if not may_skip(node.quantifier):
                self.needs.append(node.text)
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

    def group(self, node: FragmentNode) -> None:
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
        if _many_strings(node):  # a large enum of strings: one terminal (see _many_strings)
            self.flush()
            self.out.append(self.output.terminal(node.text))
            return
        # A group of whole tokens (or with holes): its own Lark group; past a nesting depth,
        # its own rule (llguidance refuses Lark nested too deeply: long oneOf chains, say).
        self.flush()
        key = (node.text, self.depth)
        found = self.output.rendered.get(key)
        if found is None:
            inner, expr = lark_rule(node.parts[0], self.output, self.depth + 1)
            if self.depth >= _MAX_NESTING:
                name = f"group_{len(self.output.hoisted)}"
                self.output.hoisted.append(f"{name}: {inner}")
                rendered = name + node.quantifier
            else:
                rendered = f"({inner})" + node.quantifier
            found = self.output.rendered[key] = (rendered, True if may_skip(node.quantifier) else expr)
        self.out.append(found[0])
        if found[1] is not True:
            self.needs.append(found[1])


_MAX_NESTING = 8
# Alternatives that are whole JSON strings, from this many on, are one terminal: llguidance's
# parser keeps one item per alternative terminal in a row and gives up past 2,000 (an enum of
# 2,450 names, MaskBench-dev's cryproj.53); as one lexeme they cost its lexer one regex.
_MANY_STRINGS = 64


def _many_strings(node: FragmentNode) -> bool:
    """Whether ``node`` is a group of at least :data:`_MANY_STRINGS` whole JSON strings, unquantified.

    Example:
        >>> from pse_processors.json_schema.fragment_parser import parse_fragment
        >>> _many_strings(parse_fragment("(?:" + "|".join(f'"{i}"' for i in range(64)) + ")"))
        True
        >>> _many_strings(parse_fragment('(?:"a"|"b")'))
        False
    """
    inner = node.parts[0] if node.kind == "group" and not node.quantifier and node.parts else None
    return (inner is not None and inner.kind == "alt" and len(inner.parts) >= _MANY_STRINGS
            and all(part.kind == "string" for part in inner.parts))


def lark_expression(node: FragmentNode, output: LarkOutput, depth: int = 0) -> str:
    """The Lark expression of ``node``, its terminals and hoisted rules collected in ``output``."""
    return lark_rule(node, output, depth)[0]


def lark_rule(node: FragmentNode, output: LarkOutput, depth: int = 0) -> tuple:
    r"""``(Lark expression, expression form)`` of ``node``: the form is what the finiteness check
    reads (``True``, a rule name, ``("seq", parts)`` or ``("alt", parts)``; see ``finiteness.py``):
    the holes and groups that must be there.

    Example:
        >>> from pse_processors.json_schema.fragment_parser import parse_fragment
        >>> from pse_processors.json_schema.holes import HOLE_CLOSE as C, HOLE_OPEN as O
        >>> lark_rule(parse_fragment(f"\\[{O}a{C}(?:,{O}b{C})*\\]|{O}c{C}+"), LarkOutput())
        ('T0 a (T1 b)* T2 | c+', ('alt', ('a', 'c')))
    """
    if node.kind == "alt":
        pairs = [lark_rule(part, output, depth) for part in node.parts]
        exprs = tuple(expr for _, expr in pairs)
        return " | ".join(text for text, _ in pairs), (True if True in exprs else ("alt", exprs))
    items = node.parts if node.kind == "seq" else [node]
    return _Emitter(output, depth).sequence(items)


def may_skip(quantifier: str) -> bool:
    """True when a Lark quantifier allows zero repetitions (``?``, ``*``, ``{0,n}``)."""
    return quantifier in ("?", "*") or quantifier.startswith(("{0", "{,"))


def bounded_string(content: str, low: int, high: Optional[int]) -> str:
    """llguidance's terminal for a JSON string whose content matches ``content`` and has ``low``
    to ``high`` characters: the intersection (``&``) of the two, which llguidance's lexer takes
    apart lazily. The regex output narrows the pattern's repetitions instead, which is a subset
    but, for a pattern with unbounded parts, a regex so ambiguous that llguidance's lexer runs
    out of fuel on it partway through a string, after which that grammar allows no token.

    Example:
        >>> terminal = bounded_string("[a-z]+", 3, 8)
        >>> terminal.split(" & ")[0], terminal.endswith('{3,8}"/')
        ('/"[a-z]+"/', True)
    """
    count = f"{{{low},{'' if high is None else high}}}"
    return f'{lark_terminal(chr(34) + content + chr(34))} & {lark_terminal(chr(34) + STRING_CHAR + count + chr(34))}'


def lark_terminal(regex: str) -> str:
    """``regex`` as a Lark ``/.../`` terminal: every unescaped ``/`` escaped."""
    if "/" not in regex:  # most terminals: no substitution to run
        return "/" + regex + "/"
    return "/" + _SLASH.sub(lambda m: m.group(1) or "\\/", regex) + "/"
