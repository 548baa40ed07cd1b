r"""A :class:`~pse_processors.Regex` pattern checked before any back end sees it.

The pattern is Rust ``regex`` syntax (what outlines-core and llguidance both parse) and the
output must match all of it, as with Python's ``re.fullmatch``. :func:`check_regex` returns the
regex the back ends run, or raises:

- ``SchemaError`` for a malformed pattern: what is wrong and its position, from the Rust parser
  itself (llguidance's), so the message is the same whichever back end runs the pattern;
- ``UnsupportedRegexError`` for what no back end can enforce exactly, by name and position:
  look-arounds, back-references, word boundaries, atomic groups, possessive quantifiers,
  conditionals, inline comments, and anchors that are not no-ops.

Anchors: under a full match, ``^``/``\A`` at the start and ``$``/``\z``/``\Z`` at the end hold
everywhere, so they are removed there: at the ends of the pattern and of each top-level
alternative, also inside unquantified groups that sit there (``(^a|b$)``, ``(?:^abc$)``), and
next to other anchors or inline flags. Anywhere else (after a character, inside a repeated
group, repeated themselves) an anchor changes the language in a way neither the byte automaton
nor llguidance can express, so it is refused by name. Inside a character class ``^`` and ``$``
are plain characters.

Example:
    >>> check_regex("^[0-9]{3}$")
    '[0-9]{3}'
    >>> check_regex(r"(?:^abc$|\Ax\z)")
    '(?:abc|x)'
    >>> check_regex("a$b")
    Traceback (most recent call last):
    ...
    pse_processors.errors.UnsupportedRegexError: the regex 'a$b' has the anchor '$' at position 1: it is not at the end of the pattern (or of a top-level alternative), the only place where a full match lets it hold
"""

from __future__ import annotations

import functools
from typing import Optional

from ..errors import SchemaError
from ..json_schema.document import lone_surrogate
from .regex_scan import NOTEWORTHY, Scanner, excerpt, removable_anchors

__all__ = ["check_regex"]


def check_regex(pattern: str) -> str:
    """The regex the back ends run for ``Regex(pattern)``; raises what the module docstring lists.

    Example:
        >>> check_regex("[0-9]+$"), check_regex("(^a|b$)"), check_regex("^$")
        ('[0-9]+', '(a|b)', '(?:)')
        >>> check_regex("[z-a]")
        Traceback (most recent call last):
        ...
        pse_processors.errors.SchemaError: invalid regex '[z-a]': invalid character class range, the start must be <= the end (at position 1)
    """
    return _checked(pattern)


@functools.lru_cache(maxsize=256)
def _checked(pattern: str) -> str:
    where = lone_surrogate(pattern)
    if where is not None:
        raise SchemaError(
            f"the regex {excerpt(pattern, where)} holds a lone surrogate U+{ord(pattern[where]):04X} at position "
            f"{where}: no UTF-8 text can contain it", None,  # type: ignore[arg-type]
        )
    regex = checked = pattern
    kept: Optional[list] = None  # index in regex -> index in pattern, where anchors were removed
    if NOTEWORTHY.search(pattern) is not None:  # else nothing to refuse or remove: skip the scan
        scanner = Scanner(pattern)
        scanner.scan()
        if scanner.broken:  # the Rust parser says what is wrong, where (nothing is removed: positions stay)
            for item in scanner.anchors:
                if item.text == "\\Z":  # Python's \Z is Rust's \z: not the error to report
                    checked = checked[: item.pos] + "\\z" + checked[item.pos + 2 :]
        elif scanner.anchors:
            regex, kept = _without(pattern, removable_anchors(scanner))
            checked = regex
        if scanner.verbose and not scanner.broken and not regex.endswith("\n"):
            # x mode to the end: a trailing "# comment" would swallow what the back ends append
            # (the automaton's sentinel, a group's ")"); a final line break is ignored whitespace.
            regex = checked = regex + "\n"
    error = _rust_error(checked)
    if error is not None:
        reason, column = error
        position = column if kept is None or column is None else kept[column] if column < len(kept) else len(pattern)
        at = "" if position is None else f" (at position {position})"
        raise SchemaError(f"invalid regex {excerpt(pattern, position)}: {reason}{at}", None)  # type: ignore[arg-type]
    return regex or "(?:)"


def _without(pattern: str, anchors: list) -> tuple:
    """``(pattern without anchors, for each index of it the index in pattern)``."""
    parts: list = []
    kept: list = []
    last = 0
    for start, end in sorted((item.pos, item.pos + len(item.text)) for item in anchors):
        parts.append(pattern[last:start])
        kept.extend(range(last, start))
        last = end
    parts.append(pattern[last:])
    kept.extend(range(last, len(pattern)))
    return "".join(parts), kept


def _rust_error(regex: str) -> Optional[tuple]:
    """``(what is wrong, its index in regex or None)`` when llguidance's Rust regex parser (the
    parser of both back ends) rejects ``regex``; ``None`` when it parses. Other failures (a size
    limit of llguidance's lexer) are left to the back end that runs the regex."""
    try:
        from llguidance import RegexCompiler
    except ImportError:  # a core dependency; without it the back end reports the error later
        return None
    try:
        RegexCompiler().compile(regex)
    except ValueError as exc:
        lines = str(exc).splitlines()
    else:
        return None
    at = next((i for i, line in enumerate(lines) if line.endswith("regex parse error:")), None)
    reason = next((line[len("error: "):] for line in lines if line.startswith("error: ")), None)
    if at is None or reason is None:
        return None
    column = None
    if at + 2 < len(lines):  # the pattern as parsed, then a caret line under it
        column = _column(regex, lines[at + 1][4:], lines[at + 2].find("^") - 4)
    return reason, column


def _column(regex: str, shown: str, caret: int) -> Optional[int]:
    """The index in ``regex`` of column ``caret`` of ``shown``, the pattern as the Rust parser
    printed it (llguidance escapes ``/`` and line breaks when it writes the pattern as Lark)."""
    if caret < 0:
        return None
    if shown == regex:
        return caret
    escapes = {"/": "\\/", "\n": "\\n", "\r": "\\r", "\t": "\\t"}
    offsets = []
    for index, ch in enumerate(regex):
        offsets.extend([index] * len(escapes.get(ch, ch)))
    if "".join(escapes.get(ch, ch) for ch in regex) != shown:
        return None
    return offsets[caret] if caret < len(offsets) else len(regex)
