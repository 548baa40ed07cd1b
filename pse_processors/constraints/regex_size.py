r"""A lower bound on a regex's byte automaton, read from the pattern before anything is built.

Every automaton of a language has more states than its shortest word has bytes: a shortest word
visits distinct states (a state met twice would give a shorter word by cutting the loop). So a
pattern whose shortest match is longer than ``max_states`` characters (each at least one byte)
is refused at once: ``a{1000000}`` was refused only after outlines-core had built all of its
million states (190 s on a busy CPU; found by the fuzz test).

:func:`shortest_match` reads Rust ``regex`` syntax: alternatives take their shortest branch,
``*``/``?``/``{0,n}`` repeat nothing, ``+``/``{n}``/``{n,m}``/``{n,}`` repeat ``n`` times, a class or
an escape is one character, anchors and inline flags none. Where it is unsure (x mode, a malformed
pattern) it answers 0: it never overstates.

Example:
    >>> shortest_match("a{3}(?:bc|d){2,4}x*"), shortest_match("(?:a{1000}){1000}"), shortest_match("(?x)a b")
    (5, 1000000, 0)
"""

from __future__ import annotations

import re

from .regex_scan import _escape_end
from .regex_sentinels import _class_end

__all__ = ["shortest_match", "may_be_long"]

_COUNTED = re.compile(r"\{\s*(\d+)\s*(?:,\s*\d*\s*)?\}")
_COUNTS = re.compile(r"\{\s*(\d+)")  # the lower count of each repetition (and a few false hits: a superset)
_ZERO_WIDTH_ESCAPES = frozenset("AzZbB<>")


def may_be_long(regex: str, limit: int) -> bool:
    """Whether :func:`shortest_match` could reach ``limit``: a cheap test first. A shortest match is
    at most the pattern's length times the product of its repetitions' lower counts.

    Example:
        >>> may_be_long("a{999}b", 500_000), may_be_long("x(?:a{999}b){600}", 500_000)
        (False, True)
    """
    bound = len(regex)
    for count in _COUNTS.findall(regex):
        bound *= max(int(count), 1)
        if bound >= limit:
            return True
    return bound >= limit


def shortest_match(regex: str) -> int:
    """The length in characters of the shortest text ``regex`` matches, or a lower bound of it."""
    if "(?" in regex and re.search(r"\(\?[a-zA-Z-]*x", regex):
        return 0  # x mode: whitespace and comments would be counted
    # One frame per open group: (total of finished alternatives' minimum, current branch, last atom).
    stack: list = []
    best: "int | None" = None  # the shortest finished alternative of the current group
    branch, last = 0, 0
    p, n, i = regex, len(regex), 0
    try:
        while i < n:
            ch = p[i]
            if ch == "\\":
                end = _escape_end(p, i)
                last = 0 if p[i + 1 : i + 2] in _ZERO_WIDTH_ESCAPES else 1
                branch += last
                i = end
            elif ch == "[":
                i = _class_end(p, i, False)
                last = 1
                branch += 1
            elif ch == "(":
                stack.append((best, branch))
                best, branch, last = None, 0, 0
                if p.startswith("(?", i):
                    j = i + 2
                    if p.startswith(("P<", "<"), j):
                        j = p.index(">", j) + 1
                    else:
                        while j < n and (p[j].isalpha() or p[j] == "-"):
                            j += 1
                        if p.startswith(")", j):  # (?flags): zero width, no group
                            best, branch = stack.pop()
                            i = j + 1
                            continue
                        j += 1  # past ":"
                    i = j
                else:
                    i += 1
            elif ch == ")":
                inner = branch if best is None else min(best, branch)
                best, branch = stack.pop()
                branch += inner
                last = inner
                i += 1
            elif ch == "|":
                best = branch if best is None else min(best, branch)
                branch, last = 0, 0
                i += 1
            elif ch in "*?":
                branch -= last
                last = 0
                i += 1
            elif ch == "+":
                last = 0
                i += 1
            elif ch == "{" and _COUNTED.match(p, i):
                counted = _COUNTED.match(p, i)
                branch += last * (int(counted.group(1)) - 1)  # type: ignore[union-attr]
                last = 0
                i = counted.end()  # type: ignore[union-attr]
            else:
                last = 0 if ch in "^$" else 1
                branch += last
                i += 1
    except (ValueError, IndexError):  # malformed: the parsers say what is wrong
        return 0
    if stack:
        return 0
    total = branch if best is None else min(best, branch)
    return max(total, 0)
