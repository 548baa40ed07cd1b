r"""A user's regex with its character classes kept off the byte automaton's sentinels.

The byte automaton is built by outlines-core from ``U+10FFFE (regex) U+10FFFF``, and the three
characters U+10FFFD-U+10FFFF are cut out of the table afterwards (see
:mod:`~pse_processors.matchers.byte_sentinels`). outlines-core's DFA (regex-automata's
``dense::DFA::new``) also determinizes the *unanchored* search, which restarts the regex at
every U+10FFFE it reads. A class that holds U+10FFFE (``.``, ``[^a]``, ``\W``, ``\P{L}``...)
keeps every such restart alive, so ``x.{n}`` has about 2^n subsets to visit: ``.{14}`` took 3 s,
``.{18}`` two minutes, ``.{500}`` never ended. With the three characters taken out of every
class the restarts die at once and the build is linear again; the automaton's language does
not change, since they are cut anyway.

:func:`without_sentinels` rewrites ``.`` (after the ``s`` and ``R`` flags in force), every
bracket class that may hold them (negated, or with a wide escape or a code point in hex:
``[0-9]`` is left alone), and ``\D``, ``\W``, ``\S``, ``\p{..}`` and ``\P{..}`` outside a class,
as a class less U+10FFFD-U+10FFFF. JSON Schema regexes need none of this (their strings sit
between quotes, which their classes exclude), so only :class:`~pse_processors.Regex` patterns
are rewritten (:func:`~pse_processors.constraints.spec.normalize`).

Example:
    >>> without_sentinels(r"x.{3}[^a]\d\W")
    'x[^\\n\\x{10FFFD}-\\x{10FFFF}]{3}[[^a]--[\\x{10FFFD}-\\x{10FFFF}]]\\d[\\W--[\\x{10FFFD}-\\x{10FFFF}]]'
    >>> without_sentinels(r"(?s:.)(?x) . # a comment with [ and .")
    '(?s:[^\\x{10FFFD}-\\x{10FFFF}])(?x) [^\\n\\x{10FFFD}-\\x{10FFFF}] # a comment with [ and .'
"""

from __future__ import annotations

import re

from .regex_scan import _class_body_start, _escape_end, _line_end

__all__ = ["without_sentinels"]

_RANGE = "\\x{10FFFD}-\\x{10FFFF}"
_LESS = f"--[{_RANGE}]"
_WIDE_ESCAPES = frozenset("DWSpP")  # escapes whose class may hold U+10FFFD-U+10FFFF
_WHITESPACE = frozenset(" \t\n\r\x0b\x0c")
# In a bracket class, what may bring U+10FFFD-U+10FFFF in (a superset): a negation, a wide
# escape, a code point written in hex, a set operation, or a raw character of planes 16-17.
_WIDE_IN_CLASS = re.compile(r"\^|\\[DWSpPxuU]|&&|--|~~|[\U00100000-\U0010FFFF]")


def _flags_after(flags: str, state: frozenset) -> frozenset:
    """The flags in force after the inline flags ``flags`` (``s``, ``-s``, ``sR-x``...)."""
    on, _, off = flags.partition("-")
    return (state | set(on)) - set(off)


def _class_end(p: str, i: int, verbose: bool) -> int:
    """The end of the bracket class opened at ``i`` (nested classes, ``[:alpha:]``); ``len(p)``
    when it is unterminated (the Rust parser reports that)."""
    depth, i, n = 1, _class_body_start(p, i), len(p)
    while i < n:
        ch = p[i]
        if ch == "\\":
            i = _escape_end(p, i)
        elif verbose and ch == "#":
            i = _line_end(p, i)
        elif ch == "[":
            close = p.find(":]", i + 2) if p.startswith("[:", i) else -1
            if close >= 0 and p[i + 2 : close].lstrip("^").isalpha():
                i = close + 2
            else:
                depth, i = depth + 1, _class_body_start(p, i)
        elif ch == "]":
            depth, i = depth - 1, i + 1
            if depth == 0:
                return i
        else:
            i += 1
    return n


def without_sentinels(regex: str) -> str:
    """``regex`` (Rust syntax, already checked) with U+10FFFD-U+10FFFF out of every class; the
    same language otherwise. Patterns with ``(?-u)`` in force are left as they are there (their
    classes are bytes, which outlines-core's UTF-8 mode refuses anyway)."""
    out: list = []
    stack: list = []  # the flags to restore when each open group closes
    flags: frozenset = frozenset()
    p, n, i = regex, len(regex), 0
    while i < n:
        ch = p[i]
        verbose, unicode = "x" in flags, "-u" not in flags  # (?-u) is kept as the pseudo-flag "-u"
        if verbose and ch in _WHITESPACE:
            out.append(ch)
            i += 1
        elif verbose and ch == "#":
            end = _line_end(p, i)
            out.append(p[i:end])
            i = end
        elif ch == "\\":
            end = _escape_end(p, i)
            escape = p[i:end]
            out.append(f"[{escape}{_LESS}]" if unicode and escape[1:2] in _WIDE_ESCAPES else escape)
            i = end
        elif ch == "[":
            end = _class_end(p, i, verbose)
            klass = p[i:end]
            wide = unicode and klass.endswith("]") and _WIDE_IN_CLASS.search(klass) is not None
            out.append(f"[{klass}{_LESS}]" if wide else klass)
            i = end
        elif ch == ".":
            if not unicode:
                out.append(ch)
            elif "s" in flags:
                out.append(f"[^{_RANGE}]")
            else:
                out.append(("[^\\r\\n" if "R" in flags else "[^\\n") + _RANGE + "]")
            i += 1
        elif ch == "(":
            stack.append(flags)
            end = i + 1
            if p.startswith("(?", i) and not p.startswith(("(?P<", "(?<"), i):
                j = i + 2
                while j < n and (p[j].isalpha() or p[j] == "-"):
                    j += 1
                new = _with_unicode(p[i + 2 : j], flags)
                if p.startswith(")", j):  # (?flags): the rest of the enclosing group
                    stack.pop()
                    flags = new
                    end = j + 1
                else:
                    flags, end = new, j + 1
            out.append(p[i:end])
            i = end
        elif ch == ")":
            flags = stack.pop() if stack else flags
            out.append(ch)
            i += 1
        else:
            out.append(ch)
            i += 1
    return "".join(out)


def _with_unicode(text: str, flags: frozenset) -> frozenset:
    """:func:`_flags_after`, with ``u`` turned off recorded as the pseudo-flag ``-u``."""
    on, _, off = text.partition("-")
    result = _flags_after(text.replace("u", ""), flags)
    if "u" in off:
        result |= {"-u"}
    elif "u" in on:
        result -= {"-u"}
    return result
