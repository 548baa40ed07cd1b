"""llguidance's terminal algebra for the grammar output: a complement (``~``) and an intersection
(``&``) of string terminals, where the regex output can only generate a subset or refuse.

A regex has no complement operator, and writing one out (a trie of excluded names, the
complement of a pattern's automaton) is large or impossible in outlines-core's syntax; an
intersection of two patterns likewise. llguidance takes both apart lazily in its lexer. Each
builder here returns a terminal definition for :meth:`~.rules.RuleSet.terminal`, whose
``beyond_regex`` flag then keeps ``backend="auto"`` on llguidance (the byte automaton's
language would differ).

Every terminal is a JSON string in *canonical spelling*: the one ``json.dumps(...,
ensure_ascii=False)`` writes (raw characters; ``\\"``, ``\\\\``, ``\\b\\f\\n\\r\\t``, and
``\\u00xx`` for the other control characters). A translated pattern (``patterns.py``) matches
exactly the canonical spellings of the strings it matches, so ``canonical & ~pattern`` is exactly
the canonical spellings of the strings it does not match: exact on that spelling, a subset of
the JSON texts (other ``\\u`` spellings are left out, as everywhere in pattern output).

Example:
    >>> print(string_outside(["[0-9]+"]))
    /"(?:[^"\\\\\\x00-\\x1f\\x{10FFFD}-\\x{10FFFF}]|\\\\["\\\\bfnrt]|\\\\u00(?:0[0-7]|0b|0e|0f|1[0-9a-f]))*"/ & ~/"[0-9]+"/
"""

from __future__ import annotations

import json
from typing import Callable, Iterable, Optional

from ..errors import UnsupportedSchemaError
from . import fragments as fx
from .formats import STRING_FORMATS
from .fragments import Fragment
from .holes import hole_names
from .keywords import ALSO_PATTERNS, NOT_PATTERNS  # noqa: F401 - written where only these terminals enforce them
from .lark_emitter import lark_terminal
from .patterns import translate
from .schema_tools import _pointer_join

# One character in json.dumps(ensure_ascii=False)'s spelling: raw (not '"', '\', a control
# character or a sentinel of fragments.SENTINELS), a short escape, or \u00xx for the controls
# without one (0x08-0x0a, 0x0c, 0x0d have short escapes).
CANONICAL_CHAR = (
    r'(?:[^"\\\x00-\x1f\x{10FFFD}-\x{10FFFF}]|\\["\\bfnrt]|\\u00(?:0[0-7]|0b|0e|0f|1[0-9a-f]))'
)
#: At most this many patterns intersected or excluded in one string terminal: llguidance's lexer
#: builds the product of their automata as it goes, and stops with "too many expressions
#: constructed" (no token allowed after that) on five unanchored words excluded from each other.
MAX_PATTERNS = 3
#: A JSON string, quotes included, in canonical spelling.
CANONICAL_STRING = f'"{CANONICAL_CHAR}*"'


def _quoted(regex: str) -> str:
    return lark_terminal('"' + regex + '"')


def string_outside(excluded: Iterable[str], within: Optional[str] = None) -> str:
    """Canonical JSON strings whose contents match none of the ``excluded`` regexes (string
    contents in canonical spelling, e.g. translated patterns), and match ``within`` if given.

    Example:
        >>> string_outside(["a", "b"], within="[a-z]").count("~")
        2
    """
    parts = [lark_terminal(CANONICAL_STRING)]
    if within is not None:
        parts.append(_quoted(within))
    parts += ["~" + _quoted(regex) for regex in excluded]
    return " & ".join(parts)


def string_within(regexes: list) -> str:
    """Canonical JSON strings whose contents match every regex of ``regexes`` (an intersection
    of patterns, of a pattern and a format...).

    Example:
        >>> string_within(["[a-z]+", "a.*"])
        '/"[a-z]+"/ & /"a.*"/'
    """
    return " & ".join(_quoted(regex) for regex in regexes)


def names_regex(names: Iterable[str]) -> Optional[str]:
    """String contents equal to one of ``names``, in canonical spelling; None for no names."""
    spelled = sorted({json.dumps(name, ensure_ascii=False)[1:-1] for name in names})
    return fx.alternation([fx.escape(name) for name in spelled]) if spelled else None


def literal_pattern(strings: Iterable[str]) -> str:
    """An ECMA-262 pattern matching exactly ``strings`` (anchored).

    Example:
        >>> print(literal_pattern(["a.b", "c"]))
        ^(?:a\\u002eb|c)$
    """
    def escape(ch: str) -> str:
        return ch if ch.isascii() and ch.isalnum() else f"\\u{ord(ch):04x}" if ord(ch) <= 0xFFFF else ch

    return "^(?:" + "|".join("".join(escape(ch) for ch in text) for text in sorted(set(strings))) + ")$"


class StringAlgebraMixin:
    """A mixin of the compiler (``compiler._Compiler``): strings under several patterns at once."""

    def _compile_string_of(self, schema: dict, pointer: str) -> Fragment:
        """``type: string`` of ``schema``: its patterns intersected and excluded patterns taken
        out (llguidance's ``&`` and ``~``) where it has them; else the plain string compile."""
        also, excluded = list(schema.get(ALSO_PATTERNS, [])), list(schema.get(NOT_PATTERNS, []))
        base = {k: v for k, v in schema.items() if k not in (ALSO_PATTERNS, NOT_PATTERNS)}
        fmt = self._asserted_format(base, pointer) if "pattern" in base else None  # type: ignore[attr-defined]
        if fmt in STRING_FORMATS:  # a pattern next to a format: both must match
            also.append(base.pop("pattern"))
        if not also and not excluded:
            return self._compile_string(base, pointer)  # type: ignore[attr-defined]
        if len(also) + len(excluded) > MAX_PATTERNS:  # llguidance's lexer derives their product: it gives up
            raise UnsupportedSchemaError("not" if excluded else "pattern", pointer, f"more than {MAX_PATTERNS} patterns "
                                         "to intersect or exclude in one string")
        if self.rules is None:  # type: ignore[attr-defined]
            self.unsupported(  # type: ignore[attr-defined]
                "not" if excluded else "pattern", pointer, "two patterns that must both match (allOf, or a pattern "
                "and a format) or a pattern to exclude (not, oneOf): enforced on llguidance only (backend='llguidance' or 'auto')")
            return self._compile_string(base, pointer)  # type: ignore[attr-defined]
        fragment = self._compile_string(base, pointer)  # type: ignore[attr-defined]
        if fragment is None:
            return None
        # With an exclusion the terminal holds canonical spellings only: "any character" is then
        # written as a canonical one everywhere (the same language, and a far smaller lexer for
        # llguidance to derive, which gives up on a step past its fuel).
        simple = (lambda regex: regex.replace(fx.STRING_CHAR, CANONICAL_CHAR)) if excluded else (lambda regex: regex)
        parts = [self._as_terminal(fragment, pointer, simple)]
        for pattern in also:
            translated = translate(pattern, _pointer_join(pointer, "pattern"))
            if translated.regex is None:
                return None
            parts.append(_quoted(simple(translated.regex)))
        if excluded and CANONICAL_CHAR not in parts[0]:
            parts.append(lark_terminal(CANONICAL_STRING))
        for pattern in excluded:
            translated = translate(pattern, _pointer_join(pointer, "not", "pattern"))
            if translated.universal:
                return None  # every string matches it
            if translated.regex is not None:
                parts.append("~" + _quoted(simple(translated.regex)))
        return self.rules.terminal(" & ".join(parts), "STR", beyond_regex=True)  # type: ignore[attr-defined]

    def _as_terminal(self, fragment: str, pointer: str, simple: Callable[[str], str]) -> str:
        """A string fragment as one term of a terminal expression (a terminal's definition
        where the fragment is already one)."""
        names = hole_names(fragment)
        if not names:
            return lark_terminal(simple(fragment))
        rules = self.rules  # type: ignore[attr-defined]
        if fragment == rules.hole(names[0]) and names[0] in rules.terminals:
            return rules.terminals[names[0]]
        raise UnsupportedSchemaError("pattern", pointer, "patterns to intersect with a string that is no single terminal")
