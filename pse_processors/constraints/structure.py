"""Structure inside free text, lowered for one vocabulary: the shapes both back ends compile and
``parse`` splits by.

:class:`~pse_processors.Reasoning`, :class:`~pse_processors.Delimited` and
:class:`~pse_processors.Tools` are :class:`StructuredConstraint` subclasses. Against a vocabulary,
each lowers to a tree of a few node types whose markers are resolved (bytes, or the ids of
special tokens, see :mod:`.markers`):

- :class:`Lit`: a marker, exactly;
- :class:`FreeText`: valid UTF-8 text that never holds some texts; either up to and including
  the first occurrence of ``until`` (a lazy scan, as llguidance's lazy lexemes), or unbounded;
- :class:`Inner`: an existing constraint (JSON Schema, Pydantic, Regex, Choice, Grammar), compiled
  as it would be on its own;
- :class:`Seq`, :class:`Alt`, :class:`Rep`; :class:`Capture` names what ``parse`` reports.

The byte automaton composes the tree (``compiler/structures.py`` over ``matchers/compose.py``),
llguidance runs it as one grammar with a sub-grammar per :class:`Inner`, and
``runtime/structured.py`` splits a checked output by it.

Example:
    >>> tree = Seq((Lit((b"<a>",)), Capture("text", FreeText(until=b"</a>"))))
    >>> tree.describe()
    ['seq', ['lit', ['3c613e']], ['capture', 'text', ['text', '3c2f613e', [], '']]]
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from typing import Any, Iterator, Optional


class StructuredConstraint:
    """Base class of the constraints that put structure inside free text.

    A subclass has a ``kind`` (``"reasoning"``, ``"delimited"``, ``"tools"``) and :meth:`lower`,
    its tree for one vocabulary."""

    kind: str = ""

    def lower(self, vocabulary: Any, forbid: tuple, nested: bool = False) -> "Node":
        """The tree of this constraint for ``vocabulary``; ``forbid`` holds the texts no free text
        may contain (the spellings of every marker that is a special token)."""
        raise NotImplementedError


class Node:
    """A node of the lowered tree."""

    def describe(self) -> list:
        raise NotImplementedError

    def children(self) -> tuple:
        return ()

    def walk(self) -> Iterator["Node"]:
        """This node and every node below it, depth first."""
        yield self
        for child in self.children():
            yield from child.walk()


def _units(units: tuple) -> list:
    return [u.hex() if isinstance(u, bytes) else u for u in units]


@dataclass(frozen=True, eq=False)
class Lit(Node):
    """A marker: ``units`` are bytes (text) and ints (special-token ids), in order."""

    units: tuple

    def describe(self) -> list:
        return ["lit", _units(self.units)]


@dataclass(frozen=True, eq=False)
class FreeText(Node):
    """Valid UTF-8 text holding none of ``forbid``; with ``until``, up to and including its first
    occurrence; ``first_not``: bytes it may not start with."""

    until: Optional[bytes] = None
    forbid: tuple = ()
    first_not: bytes = b""

    def describe(self) -> list:
        return ["text", (self.until or b"").hex(), [f.hex() for f in self.forbid], self.first_not.hex()]


@dataclass(frozen=True, eq=False)
class Inner(Node):
    """An existing constraint, as it compiles on its own; ``role`` is ``"answer"``, ``"span"`` or
    ``"call"``; ``tools`` (calls): name -> Pydantic class or None, for ``parse``; ``key`` the
    arguments' key of a call (``"arguments"`` or ``"parameters"``)."""

    constraint: Any
    role: str
    text: str = ""  # the constraint's canonical text (what the cache keys read)
    tools: Optional[dict] = None
    key: str = ""

    def describe(self) -> list:
        return ["inner", self.role, self.text, self.key]


@dataclass(frozen=True, eq=False)
class Seq(Node):
    items: tuple

    def describe(self) -> list:
        return ["seq", *(item.describe() for item in self.items)]

    def children(self) -> tuple:
        return self.items


@dataclass(frozen=True, eq=False)
class Alt(Node):
    items: tuple

    def describe(self) -> list:
        return ["alt", *(item.describe() for item in self.items)]

    def children(self) -> tuple:
        return self.items


@dataclass(frozen=True, eq=False)
class Rep(Node):
    """``item`` from ``low`` to ``high`` times (``None``: unbounded)."""

    item: Node
    low: int = 0
    high: Optional[int] = None

    def describe(self) -> list:
        return ["rep", self.low, self.high, self.item.describe()]

    def children(self) -> tuple:
        return (self.item,)


@dataclass(frozen=True, eq=False)
class Capture(Node):
    """``item``, reported by ``parse`` as ``name`` (``"reasoning"``, ``"text"``, ``"span"``,
    ``"call"``, ``"answer"``)."""

    name: str
    item: Node

    def describe(self) -> list:
        return ["capture", self.name, self.item.describe()]

    def children(self) -> tuple:
        return (self.item,)


@dataclass(frozen=True, eq=False)
class Lowered:
    """A structured constraint lowered for one vocabulary: its tree, the special tokens its
    markers use (symbol ``k`` is ``symbols[k]``), and, for :class:`~pse_processors.Reasoning`,
    what the budget and the prompt detection read."""

    kind: str
    root: Node
    symbols: tuple
    reasoning: Optional["ReasoningMarkers"] = None

    @property
    def key(self) -> str:
        """A digest of everything the compiled matcher depends on (with the compile options)."""
        text = json.dumps([self.kind, self.root.describe(), list(self.symbols),
                           None if self.reasoning is None else self.reasoning.describe()])
        return hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()[:32]

    def inners(self) -> list[Inner]:
        return [node for node in self.root.walk() if isinstance(node, Inner)]


@dataclass(frozen=True, eq=False)
class ReasoningMarkers:
    """A top-level reasoning block: its markers' units, and the thinking budget (or ``None``)."""

    start: tuple
    end: tuple
    max_tokens: Optional[int] = None

    def describe(self) -> list:
        return [_units(self.start), _units(self.end), self.max_tokens]
