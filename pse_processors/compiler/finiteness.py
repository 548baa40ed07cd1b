r"""A user's Lark grammar must have a finite sentence, and every rule it reaches must be able to finish.

llguidance runs a grammar whose start rule can never finish (``start: a`` / ``a: "x" a``)
and lets every walk go on forever; a rule that can never finish but is reachable (``start:
"y" | a``) lets a walk enter it and never end. :func:`check_grammar` refuses both at compile
time with an :class:`~pse_processors.errors.UnsatisfiableConstraintError` that names the rules.

It reads just enough of llguidance's Lark dialect: rules (``name:``, ``?name:``, ``!name:``,
attributes ``[...]``, priorities), terminals (``NAME:``), alternatives over several lines,
groups, ``[...]``, ``?`` ``*`` ``+``, ``{n,m}`` and ``~ n..m`` repetitions, strings, regexes,
``%json``/``%regex``/``%lark`` blocks, special tokens, ``@grammar`` references and statements.
Tokens inside strings and regexes are opaque; anything it cannot read leaves the grammar
unchecked (llguidance then reports what is wrong with it). Productivity itself is the fixpoint
of :mod:`pse_processors.json_schema.finiteness`. A terminal that may match no string (one with
``&`` or ``~``, or a regex with a negated or intersected class) is asked of llguidance over a
byte vocabulary: its language is empty iff no byte can start it and it does not match ``""``.

Example:
    >>> check_grammar('start: "(" start ")" | "x"')
    >>> check_grammar('start: a\na: "x" a')
    Traceback (most recent call last):
    ...
    pse_processors.errors.UnsatisfiableConstraintError: the grammar has no finite sentence: rule 'a' can never finish: every alternative needs 'a' again
"""

from __future__ import annotations

import json
import logging
import re
from typing import Any, Optional

from ..errors import UnsatisfiableConstraintError
from ..json_schema.finiteness import blockers, blocking_cycles, productive, reachable

logger = logging.getLogger(__name__)

# llguidance's Lark lexer (parser/src/lark/lexer.rs), alternatives ordered so that Python's first
# match is its longest match.
_TOKEN = re.compile(
    r"""(?P<skip>[ \t]+|(?:\#|//)[^\n]*)
    |(?P<nl>(?:\r?\n)+[ \t]*)
    |(?P<kw>%(?:json|regex|llguidance|ignore|import|override|declare|lark|if)\b)
    |(?P<string>"(?:\\(?:["\\/bfnrt]|u[a-fA-F0-9]{4}|x[a-fA-F0-9]{2})|[^"\\\x00-\x1f\x7f])*"i?)
    |(?P<regexp>/(?:\\.|[^/\\])+/[imslux]*)
    |(?P<number>0[xX][0-9a-fA-F]+|[+-]?[0-9]+(?:\.[0-9]*)?(?:[eE][+-]?[0-9]+)?)
    |(?P<rule>!?[_?]?[a-z][_a-z0-9\-]*)
    |(?P<token>_?[A-Z][_A-Z0-9\-]*)
    |(?P<special><[^<>\s]+>)
    |(?P<ref>@[a-zA-Z0-9_\-]+)
    |(?P<punct>->|::|\.\.|[:.,=(){}\[\]~|&_+*?])""",
    re.VERBOSE | re.DOTALL,
)
_JSON = json.JSONDecoder()
_STOP = {"nl", "|", "->", "}", ")", "]", "&", "%if", None}  # what ends an expansion
# Regex constructs that can denote no string at all: a negated or intersected class, \P{...}.
_MAY_BE_EMPTY = re.compile(r"\[\^|&&|\\P")


class _Unreadable(Exception):
    """Something this reader does not follow: the grammar is left to llguidance."""


def _lex(text: str) -> list:
    """``(kind, text, start, end)`` tokens; a ``%json``/``%regex``/``%llguidance`` keyword carries
    its JSON value's text."""
    out = []
    i, n = 0, len(text)
    while i < n:
        found = _TOKEN.match(text, i)
        if found is None:
            raise _Unreadable(f"unexpected {text[i:i + 10]!r}")
        kind = found.lastgroup
        end = found.end()
        if kind == "kw" and found.group() in ("%json", "%regex", "%llguidance"):
            j = end
            while j < n and text[j] in " \t\r\n":
                j += 1
            try:
                end = _JSON.raw_decode(text, j)[1]
            except ValueError as exc:
                raise _Unreadable(str(exc)) from None
        if kind != "skip":
            value = found.group() if kind in ("kw", "punct") else kind
            out.append((value, text[i:end], i, end))
        i = end
    return out


class _Reader:
    """A recursive-descent reader of the grammar's items into expressions (see ``json_schema/finiteness.py``)."""

    def __init__(self, text: str) -> None:
        self.text = text
        self.tokens = _lex(text)
        self.pos = 0
        self.rules: dict = {}  # name -> [alternatives]
        self.suspects: dict = {}  # name of a terminal or atom that may be empty -> its Lark text
        self.definitions: list = []  # the text of every terminal definition and %import

    def peek(self, offset: int = 0) -> Optional[str]:
        at = self.pos + offset
        return self.tokens[at][0] if at < len(self.tokens) else None

    def take(self, kind: Optional[str] = None) -> tuple:
        if self.pos >= len(self.tokens) or (kind is not None and self.tokens[self.pos][0] != kind):
            raise _Unreadable(f"expected {kind}")
        self.pos += 1
        return self.tokens[self.pos - 1]

    def read(self) -> None:
        while self.peek() is not None:
            if self.peek() == "nl":
                self.pos += 1
            elif self.peek() in ("rule", "token"):
                self.definition()
            elif self.peek() == "%import":
                start = self.tokens[self.pos][2]
                while self.peek() not in ("nl", None):
                    self.pos += 1
                self.definitions.append(self.text[start:self.tokens[self.pos - 1][3]])
            elif self.peek() in ("%ignore", "%llguidance"):
                self.pos += 1
                if self.tokens[self.pos - 1][0] == "%ignore":
                    self.expansions(set())
            else:
                raise _Unreadable(f"a statement {self.tokens[self.pos][1]!r}")

    def definition(self) -> None:
        kind, name, start, _ = self.take()
        name = name.lstrip("!?")
        while self.peek() != ":":  # ::_ (parametric), {params}, .priority, [attributes]
            if self.peek() is None or self.peek() == "nl":
                raise _Unreadable("a definition without ':'")
            self.pos += 1
        self.pos += 1
        flags: set = {kind}
        before = dict(self.suspects)
        body = self.expansions(flags)
        if kind == "token":
            self.definitions.append(self.text[start:self.tokens[self.pos - 1][3]])
            if flags & {"&", "~"}:  # conjunction or negation: llguidance checks the whole terminal
                self.suspects = before
                self.suspects[name] = name
        self.rules.setdefault(name, []).append(body)

    def expansions(self, flags: set) -> Any:
        alternatives = [self.alternative(flags)]
        while self.peek() == "|" or (self.peek() == "nl" and self.peek(1) == "|"):
            self.pos += 1 if self.peek() == "|" else 2
            alternatives.append(self.alternative(flags))
        return alternatives[0] if len(alternatives) == 1 else ("alt", tuple(alternatives))

    def alternative(self, flags: set) -> Any:
        parts = [self.sequence(flags)]
        while self.peek() == "&":
            self.pos += 1
            flags.add("&")
            parts.append(self.sequence(flags))
        if self.peek() == "->":
            self.pos += 2
        if self.peek() == "%if":  # a parameter condition: assumed true (never refuses more)
            depth = 0
            while self.peek() is not None and (depth or self.peek() not in _STOP - {"%if"}):
                depth += {"(": 1, ")": -1}.get(self.peek(), 0)  # type: ignore[arg-type]
                self.pos += 1
        return parts[0] if len(parts) == 1 else ("seq", tuple(parts))  # A & B needs both

    def sequence(self, flags: set) -> Any:
        parts = []
        while self.peek() not in _STOP:
            parts.append(self.expression(flags))
        return parts[0] if len(parts) == 1 else ("seq", tuple(parts))

    def expression(self, flags: set) -> Any:
        atom = self.atom(flags)
        kind = self.peek()
        optional = ("opt", (atom,))  # may be absent, but a walk may still enter it
        if kind in ("?", "*"):
            self.pos += 1
            return optional
        if kind == "+":
            self.pos += 1
        elif kind == "~" and self.peek(1) == "number":
            self.pos += 2
            low = self.tokens[self.pos - 1][1]
            if self.peek() == "..":
                self.pos += 2
            return optional if float(low) == 0 else atom
        elif kind == "{" and self.peek(1) in ("number", ","):
            self.pos += 1
            low = "0" if self.peek() == "," else self.take("number")[1]
            while self.peek() != "}":
                self.take()
            self.pos += 1
            return optional if float(low) == 0 else atom
        return atom

    def atom(self, flags: set) -> Any:
        start = self.pos
        negated = self.peek() == "~"
        if negated:
            self.pos += 1
            flags.add("~")
        kind, text, _, _ = self.take()
        if kind == "(":
            inner = self.expansions(flags)
            self.take(")")
        elif kind == "[":
            inner = ("opt", (self.expansions(flags),))
            self.take("]")
        elif kind in ("rule", "token"):
            inner = text.lstrip("!?")
            if self.peek() == "::":  # a parametric rule's argument
                self.pos += 1
                self.take()
                if self.peek() == "(":
                    self.balanced("(", ")")
            elif self.peek() == "{" and self.peek(1) not in ("number", ","):
                self.balanced("{", "}")  # a template (llguidance refuses them)
                inner = True
        elif kind == "%lark":
            self.balanced("{", "}")
            inner = True
        elif kind == "string" and self.peek() == "..":
            self.pos += 2
            inner = True
        elif kind == "regexp" and _MAY_BE_EMPTY.search(text):
            inner = self.suspect(start)
        elif kind in ("string", "regexp", "%json", "%regex", "special", "ref"):
            inner = True
        else:
            raise _Unreadable(f"{text!r} where an atom was expected")
        return self.suspect(start) if negated and "token" not in flags else inner

    def suspect(self, start: int) -> str:
        """A name for the atom read from ``start`` on, which llguidance checks for emptiness."""
        text = self.text[self.tokens[start][2]:self.tokens[self.pos - 1][3]]
        self.suspects[text] = text
        return text

    def balanced(self, opening: str, closing: str) -> None:
        self.take(opening)
        depth = 1
        while depth:
            kind = self.take()[0]
            depth += (kind == opening) - (kind == closing)


def check_grammar(lark: str) -> None:
    """Raise :class:`~pse_processors.errors.UnsatisfiableConstraintError` when ``lark``'s start rule,
    or a rule it reaches, can never finish."""
    try:
        reader = _Reader(lark)
        reader.read()
    except (_Unreadable, ValueError) as exc:
        logger.debug("finiteness check skipped, the grammar is not read here: %s", exc)
        return
    rules: dict = {name: alts[0] if len(alts) == 1 else ("alt", tuple(alts)) for name, alts in reader.rules.items()}
    if "start" not in rules:
        return  # llguidance says so
    for name, text in reader.suspects.items():
        if not _has_a_string(text, reader.definitions):
            rules[name] = False  # an empty terminal: a rule of no alternative
    done = productive(rules)
    stuck = [name for name in reachable("start", rules) if name not in done]
    if not stuck:
        return
    reasons = _reasons(stuck, rules, done)
    if "start" not in done:
        raise UnsatisfiableConstraintError("the grammar has no finite sentence: " + "; ".join(reasons))
    raise UnsatisfiableConstraintError(
        "the grammar has parts that can never finish (a walk that enters one never ends): " + "; ".join(reasons)
    )


def _reasons(stuck: list, rules: dict, done: set) -> list:
    """What keeps each stuck rule from finishing: its cycles, and the terminals that match nothing."""
    reasons = []
    cycles: list = []
    for name in stuck:
        if not any(name in cycle for cycle in cycles):
            cycles += [c for c in blocking_cycles(name, rules, done) if c not in cycles]
    for cycle in cycles:
        if len(cycle) == 1:
            name = cycle[0]
            other = blockers(rules[name], done, rules) - {name}
            reasons.append(f"rule {name!r} can never finish: every alternative needs {name!r} again"
                           + (" or something that never finishes" if other else ""))
        else:
            names = ", ".join(repr(name) for name in cycle)
            reasons.append(f"rules {names} can never finish: every alternative of each needs one of them again")
    for name in stuck:
        if rules[name] is False:
            what = f"terminal {name!r}" if re.fullmatch(r"_?[A-Z][_A-Z0-9\-]*", name) else name
            reasons.append(f"{what} matches no string")
    return reasons


_BYTES: list = []  # the byte vocabulary's llguidance tokenizer, built once


def _has_a_string(atom: str, definitions: list) -> bool:
    """Whether the terminal (or atom) ``atom`` matches some string: llguidance over one token per
    byte allows a first byte, or accepts at once. True when llguidance cannot tell."""
    try:
        import llguidance

        from ..vocabulary.llg_tokenizer import lltokenizer_for
        from ..vocabulary.vocabulary import Vocabulary

        if not _BYTES:
            _BYTES.append(lltokenizer_for(Vocabulary([bytes([b]) for b in range(256)] + [None], eos_token_ids=[256])))
        grammar = llguidance.LLMatcher.grammar_from_lark("\n".join([f"start: {atom}", *definitions]))
        matcher = llguidance.LLMatcher(_BYTES[0], grammar, log_level=0)
        if matcher.is_error():
            return True
        return matcher.is_accepting() or any(matcher.compute_bitmask()[:32])
    except Exception as exc:  # noqa: BLE001 - a check that cannot run refuses nothing
        logger.debug("emptiness check of %r skipped: %s", atom, exc)
        return True
