"""Why a structured output that the matcher left live is not complete: :func:`missing_part`.

``parse`` walks an output through the constraint's matcher; an output that is still a valid
prefix but not accepted is incomplete. Most often generation was cut off by ``max_new_tokens``,
but structure in free text has requirements that a model can miss while writing well-formed
text: a :class:`~pse_processors.Delimited` with ``min_count`` needs that many spans, a
:class:`~pse_processors.Tools` with ``tool_choice="required"`` (or a tool's name) needs a call,
and a :class:`~pse_processors.Reasoning` block opened needs its end marker. Those are told by
name, with the markers, instead of blaming ``max_new_tokens``.

Example:
    >>> import pse_processors as pse
    >>> from pse_processors.runtime.results import parse_output
    >>> vocab = pse.Vocabulary([bytes([b]) for b in range(256)] + [None], eos_token_ids=[256])
    >>> matcher = pse.compile(pse.Delimited({"type": "integer"}, min_count=1), vocab)
    >>> parse_output(matcher, "No number today.")
    Traceback (most recent call last):
    ...
    pse_processors.errors.InvalidOutputError: the output is incomplete: it has no span, but Delimited(min_count=1) requires 1 (a span is written between '```json\\n' and '\\n```'): ...'No number today.'
"""

from __future__ import annotations

from typing import Any, Optional

from ..constraints.freetext import Delimited, Reasoning
from ..constraints.markers import resolve_marker
from ..constraints.tools import Tools
from ..matchers import Matcher
from ..matchers.prompts import ANSWER

#: Units of an output as a str: bytes as chr(0-255), a marker token ``t`` as chr(SYMBOL + t)
#: (as in :mod:`.structured`).
SYMBOL = 0x20000


def missing_part(matcher: Matcher, units: str, category: int) -> Optional[str]:
    """What the live, unaccepted ``units`` (read from prompt ``category``) lack, or ``None`` when it
    is nothing the constraint names (the output was cut off, e.g. inside a span)."""
    recipe = getattr(matcher, "recipe", None)
    constraint = recipe[0] if recipe else None
    vocabulary = matcher.vocabulary
    if isinstance(constraint, Reasoning):
        if category != ANSWER:
            end = _units(constraint.end, vocabulary)
            at = units.find(end)
            if at < 0:
                return (f"it has no end marker {constraint.end!r}, so the reasoning block was never closed "
                        "(was generation cut off by max_new_tokens inside the reasoning?)")
            units = units[at + len(end):]
        constraint = constraint.answer
    if isinstance(constraint, Delimited) and constraint.min_count:
        start, end = _units(constraint.start, vocabulary), _units(constraint.end, vocabulary)
        count = units.count(start)
        if count and units.rfind(end) < units.rfind(start) + len(start):
            return None  # cut off inside a span
        if count < constraint.min_count:
            has = f"{count} span{'s' if count != 1 else ''}" if count else "no span"
            return (f"it has {has}, but Delimited(min_count={constraint.min_count}) requires {constraint.min_count} "
                    f"(a span is written between {constraint.start!r} and {constraint.end!r})")
    if isinstance(constraint, Tools) and constraint.tool_choice not in ("auto", "none"):
        start, end = constraint.call_markers(vocabulary)
        if constraint.resolved_format(vocabulary) == "llama3_json":
            written = units.strip(" \t\r\n") != ""
            how = f"a JSON object {{\"name\": ..., \"parameters\": ...}}, optionally after {start!r}"
        else:
            written = _units(start, vocabulary) in units
            how = f"{start!r} ... {end!r}" if end else f"{start!r} then a JSON list of calls"
        if not written:
            needs = "tool_choice='required'" if constraint.tool_choice == "required" else f"tool_choice={constraint.tool_choice!r}"
            return f"it has no tool call, but Tools({needs}) requires one (a call is written as {how})"
    return None


def _units(text: str, vocabulary: Any) -> str:
    """A marker's text as units (its special tokens as their symbols)."""
    return units_text(resolve_marker(text, vocabulary, "marker").units)


def units_text(units: Any) -> str:
    """Marker units (bytes, or a special token's id) as a str of units: see :data:`SYMBOL`."""
    return "".join(u.decode("latin-1") if isinstance(u, bytes) else chr(SYMBOL + u) for u in units)
