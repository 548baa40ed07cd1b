"""Free text with structure inside: :class:`Reasoning` (think first, then answer) and
:class:`Delimited` (spans between markers), and :func:`lower_structure`, which lowers any of them
(and :class:`~pse_processors.Tools`) for one vocabulary.

Free text is any valid UTF-8 text (plane-16 private use aside, as everywhere), without the
model's special tokens, and without the text spelling of any marker that is a special token. A
free text before a text marker ends at the marker's first occurrence: ``"</think>"`` can never be
part of the reasoning, and a span opens wherever its start marker appears.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any, Optional

from ..errors import SchemaError
from .markers import Marker, check_marker_text, resolve_marker
from .schema import Schema
from .spec import parse_constraint
from .structure import Capture, FreeText, Inner, Lit, Lowered, Node, ReasoningMarkers, Rep, Seq, StructuredConstraint


def plain_constraint(constraint: Any, what: str) -> Any:
    """``constraint`` (a :class:`~pse_processors.Schema` unwrapped) once it parses as a JSON Schema,
    Pydantic model, Regex, Choice or Grammar; a structured constraint is refused by name.

    Raises:
        SchemaError: it is a structured constraint; TypeError: it is no constraint.
    """
    if isinstance(constraint, Schema):
        constraint = constraint.constraint
    if isinstance(constraint, StructuredConstraint):
        raise SchemaError(
            f"{what} must be a JSON Schema, Pydantic model, Regex, Choice or Grammar, not "
            f"{type(constraint).__name__} (structure in free text does not nest there)", None,  # type: ignore[arg-type]
        )
    parse_constraint(constraint)
    return constraint


def constraint_text(constraint: Any) -> str:
    """A stable text of a plain constraint, for cache keys."""
    parsed = parse_constraint(constraint)
    if parsed.kind == "json":
        name = getattr(parsed.result_type, "__qualname__", "")
        return f"json:{name}:{parsed.text}" if parsed.text is not None else f"json:{name}:{parsed.schema!r}"
    value = {"regex": lambda c: c.pattern, "choice": lambda c: json.dumps(c.choices), "grammar": lambda c: c.lark}
    return f"{parsed.kind}:{value[parsed.kind](constraint)}"


def text_then(marker: Marker, forbid: tuple, capture: str = "text") -> list[Node]:
    """Free text, then ``marker``: a text marker ends the text at its first occurrence."""
    lead = marker.lead_text
    if lead is not None:
        rest = [Lit(marker.units[1:])] if len(marker.units) > 1 else []
        return [Capture(capture, FreeText(until=lead, forbid=forbid)), *rest]
    return [Capture(capture, FreeText(forbid=forbid)), Lit(marker.units)]


def text_without(marker: Optional[Marker], forbid: tuple, first_not: bytes = b"") -> Node:
    """Free text in which ``marker`` never starts."""
    extra = (marker.lead_text,) if marker is not None and marker.lead_text is not None else ()
    return Capture("text", FreeText(forbid=forbid + extra, first_not=first_not))


@dataclass(frozen=True)
class Reasoning(StructuredConstraint):
    """Free text (the reasoning) between ``start`` and ``end``, then ``answer``.

    Args:
        answer: any constraint: a JSON Schema, Pydantic model, Regex, Choice, Grammar, or a
            :class:`Delimited` or :class:`~pse_processors.Tools`. A JSON answer may follow ``end``
            after up to two line breaks (Qwen3 and DeepSeek-R1 write ``</think>\\n\\n{``).
        start, end: the markers (special tokens where the tokenizer has them as one token, e.g.
            Qwen3's ``<think>``; text otherwise). The reasoning never contains ``end``.
        max_tokens: the thinking budget: after that many reasoning tokens, only the way to ``end``
            is allowed (``None``: no budget).

    The processors read each row's prompt: a block the chat template opened (Qwen3 thinking,
    DeepSeek-R1) starts the output inside the reasoning; a block it closed at the prompt's end
    (Qwen3 with ``enable_thinking=False``: only whitespace after ``end``) starts it at the answer;
    otherwise (a block closed in an earlier turn included) the output starts with ``start``.

    Raises:
        SchemaError: ``max_tokens`` is below 1 or not an int, a marker is empty, or ``answer`` is
            another ``Reasoning`` (when compiled: a marker the tokenizer cannot produce is a
            ``VocabularyError``).

    Example:
        >>> import pse_processors as pse
        >>> from pse_processors.runtime.results import parse_output  # what every processor's parse runs
        >>> vocab = pse.Vocabulary([bytes([b]) for b in range(256)] + [None], eos_token_ids=[256])
        >>> matcher = pse.compile(pse.Reasoning({"type": "boolean"}), vocab)
        >>> result = parse_output(matcher, "<think>Easy.</think>\\n\\ntrue")
        >>> result.reasoning, result.answer
        ('Easy.', True)
    """

    answer: Any
    start: str = "<think>"
    end: str = "</think>"
    max_tokens: Optional[int] = None

    kind = "reasoning"

    def __post_init__(self) -> None:
        check_marker_text(self.start, "start")
        check_marker_text(self.end, "end")
        if self.max_tokens is not None and (
            isinstance(self.max_tokens, bool) or not isinstance(self.max_tokens, int) or self.max_tokens < 1
        ):
            raise SchemaError(
                f"Reasoning: max_tokens (the thinking budget) must be an int >= 1, not {self.max_tokens!r}", None  # type: ignore[arg-type]
            )
        answer = self.answer.constraint if isinstance(self.answer, Schema) else self.answer
        if isinstance(answer, Reasoning):
            raise SchemaError("Reasoning's answer cannot be another Reasoning", None)  # type: ignore[arg-type]
        if not isinstance(answer, StructuredConstraint):
            plain_constraint(answer, "Reasoning's answer")
        object.__setattr__(self, "answer", answer)

    def lower(self, vocabulary: Any, forbid: tuple, nested: bool = False) -> Node:
        if nested:
            raise SchemaError("Reasoning must be the outermost constraint", None)  # type: ignore[arg-type]
        start = resolve_marker(self.start, vocabulary, "start")
        end = resolve_marker(self.end, vocabulary, "end")
        if isinstance(self.answer, StructuredConstraint):
            answer: Node = self.answer.lower(vocabulary, forbid, nested=True)
            separator: list[Node] = []  # the answer's own free text takes the line breaks
        else:
            answer = Capture("answer", Inner(self.answer, "answer", constraint_text(self.answer)))
            json_answer = parse_constraint(self.answer).kind == "json"
            separator = [Rep(Lit((b"\n",)), 0, 2)] if json_answer else []
        return Seq((Lit(start.units), *text_then(end, forbid, "reasoning"), *separator, answer))

    def markers(self, vocabulary: Any) -> ReasoningMarkers:
        """The resolved markers and budget, for the budget and the prompt detection."""
        start = resolve_marker(self.start, vocabulary, "start")
        end = resolve_marker(self.end, vocabulary, "end")
        return ReasoningMarkers(start.units, end.units, self.max_tokens)


@dataclass(frozen=True)
class Delimited(StructuredConstraint):
    """Free text in which every span between ``start`` and ``end`` matches ``constraint``.

    Args:
        constraint: a JSON Schema, Pydantic model, Regex, Choice or Grammar.
        start, end: the markers around each span (text, or special tokens where the tokenizer has
            them as one token). The free text never contains ``start`` except where a span opens.
        min_count: the output cannot finish before this many spans.
        max_count: at most this many spans (``None``: no limit); after them ``start`` cannot appear.

    Raises:
        SchemaError: ``min_count`` below 0, ``max_count`` below 1 or below ``min_count``, a marker is
            empty, or ``constraint`` is a structured constraint.

    Example:
        >>> import pse_processors as pse
        >>> vocab = pse.Vocabulary([bytes([b]) for b in range(256)] + [None], eos_token_ids=[256])
        >>> matcher = pse.compile(pse.Delimited({"type": "integer"}, min_count=1), vocab)
        >>> from pse_processors.runtime.results import parse_output
        >>> parse_output(matcher, "It is ```json\\n42\\n``` I think.").spans
        [42]
    """

    constraint: Any
    start: str = "```json\n"
    end: str = "\n```"
    min_count: int = 0
    max_count: Optional[int] = None

    kind = "delimited"

    def __post_init__(self) -> None:
        check_marker_text(self.start, "start")
        check_marker_text(self.end, "end")
        if isinstance(self.min_count, bool) or not isinstance(self.min_count, int) or self.min_count < 0:
            raise SchemaError(f"Delimited: min_count must be an int >= 0, not {self.min_count!r}", None)  # type: ignore[arg-type]
        if self.max_count is not None and (
            isinstance(self.max_count, bool) or not isinstance(self.max_count, int) or self.max_count < max(1, self.min_count)
        ):
            raise SchemaError(
                f"Delimited: max_count must be None or an int >= 1 and >= min_count ({self.min_count}), not {self.max_count!r}",
                None,  # type: ignore[arg-type]
            )
        object.__setattr__(self, "constraint", plain_constraint(self.constraint, "Delimited's constraint"))

    def lower(self, vocabulary: Any, forbid: tuple, nested: bool = False) -> Node:
        start = resolve_marker(self.start, vocabulary, "start")
        end = resolve_marker(self.end, vocabulary, "end")
        inner = Inner(self.constraint, "span", constraint_text(self.constraint))
        span = Seq((*text_then(start, forbid), Capture("span", inner), Lit(end.units)))
        return Seq((Rep(span, self.min_count, self.max_count), text_without(start, forbid)))


def lower_structure(constraint: StructuredConstraint, vocabulary: Any) -> Lowered:
    """``constraint`` lowered for ``vocabulary``: markers resolved, every special-token marker's
    spelling forbidden in every free text, an optional leading space for a dummy-prefix tokenizer.

    Raises:
        VocabularyError: a marker that the tokenizer cannot produce.
    """
    names = {index: name for name, index in vocabulary.special_tokens.items()}
    first = constraint.lower(vocabulary, ())  # once to learn which markers are tokens, then with their spellings
    tokens = {u for node in first.walk() if isinstance(node, Lit) for u in node.units if isinstance(u, int)}
    forbid = tuple(sorted({names[t].encode("utf-8") for t in tokens}))
    root = constraint.lower(vocabulary, forbid) if forbid else first
    if vocabulary.dummy_prefix:  # Llama-2-style: the first token may carry one space (see constraints/spec.py)
        root = Seq((Rep(Lit((b" ",)), 0, 1), root))
    symbols = sorted({u for node in root.walk() if isinstance(node, Lit) for u in node.units if isinstance(u, int)})
    reasoning = constraint.markers(vocabulary) if isinstance(constraint, Reasoning) else None
    return Lowered(constraint.kind, root, tuple(symbols), reasoning)
