"""What ``parse`` returns for structure in free text: :class:`StructuredOutput`, after the whole output
is checked by the matcher.

The output (token ids, or text) is first walked through the construct's matcher, from the state
its prompt gives (:meth:`~pse_processors.Matcher.initial_state_for`): anything the constraint does
not accept, complete, raises :class:`~pse_processors.InvalidOutputError`. Text with no prompt is
tried from each start a :class:`~pse_processors.Reasoning` may have (the output opens the block,
the prompt opened it, the prompt closed it). Then the output is split along the lowered tree
(``constraints/structure.py``): markers are found where the matcher found them (free text ends
at a text marker's first occurrence), and each inner constraint's text is parsed as it would be
on its own (a dict, a Pydantic instance, a string).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any, Callable, Iterator, Optional

import numpy as np

from ..constraints.structure import Alt, Capture, FreeText, Inner, Lit, Node, Rep, Seq
from ..errors import InvalidOutputError
from ..matchers import Matcher
from ..matchers.budget import BudgetMatcher
from ..matchers.prompts import ANSWER, INSIDE, START
from .missing import SYMBOL, missing_part, units_text


@dataclass
class ToolCall:
    """One tool call: the tool's ``name`` and its ``arguments`` (a dict, or an instance of the
    tool's Pydantic class)."""

    name: str
    arguments: Any

    def to_dict(self) -> dict:
        """``{"name", "arguments"}`` with plain JSON arguments (OpenAI's ``function`` object, arguments unencoded)."""
        return {"name": self.name, "arguments": plain_value(self.arguments)}


@dataclass
class StructuredOutput:
    """A checked output of :class:`~pse_processors.Reasoning`, :class:`~pse_processors.Delimited` or
    :class:`~pse_processors.Tools`.

    Attributes:
        reasoning: the reasoning text (``None`` without a reasoning block, or when the prompt closed it).
        text: the free text, spans and calls removed.
        segments: the output in order: ``("text", str)``, ``("span", value)``, ``("call", ToolCall)``.
        spans: each delimited span's value (a dict, Pydantic instance or string).
        tool_calls: each call, in order.
        answer: a Reasoning's answer parsed (for a JSON Schema, Pydantic model, Regex, Choice or
            Grammar answer; ``None`` when the answer is a Delimited or Tools, whose parts are above).
    """

    reasoning: Optional[str] = None
    text: str = ""
    segments: list = field(default_factory=list)
    spans: list = field(default_factory=list)
    tool_calls: list = field(default_factory=list)
    answer: Any = None

    def to_dict(self) -> dict:
        """Plain JSON data: ``{"reasoning", "text", "spans", "tool_calls", "answer", "segments"}``, each
        call as ``{"name", "arguments"}``, Pydantic instances dumped, ``segments`` in order as
        ``{"text": ...}``, ``{"span": ...}`` and ``{"call": {...}}`` objects (``json.dumps`` takes it).

        Example:
            >>> call = ToolCall("add", {"a": 2})
            >>> StructuredOutput(text="Sure.", segments=[("text", "Sure."), ("call", call)], tool_calls=[call]).to_dict()
            {'reasoning': None, 'text': 'Sure.', 'spans': [], 'tool_calls': [{'name': 'add', 'arguments': {'a': 2}}], 'answer': None, 'segments': [{'text': 'Sure.'}, {'call': {'name': 'add', 'arguments': {'a': 2}}}]}
        """
        return {
            "reasoning": self.reasoning, "text": self.text, "spans": [plain_value(span) for span in self.spans],
            "tool_calls": [call.to_dict() for call in self.tool_calls], "answer": plain_value(self.answer),
            "segments": [{kind: item.to_dict() if isinstance(item, ToolCall) else plain_value(item)} for kind, item in self.segments],
        }


def plain_value(value: Any) -> Any:
    """A Pydantic instance as its JSON dict; any other value as it is (parsed JSON already is)."""
    dump = getattr(value, "model_dump", None)
    return dump(mode="json") if callable(dump) else value


_BARRIER = chr(0x10000)  # a byte-less token that is no marker
END = ""  # in a set of following literals: the end of the output


def parse_structured(
    matcher: Matcher, output: Any, prompt: Any, spell: Callable[[Any, bytes], Optional[list]],
    parse_inner: Callable[[Any, Any, str], Any],
) -> StructuredOutput:
    """Check ``output`` (text, or token ids up to the first EOS) and split it; see the module docstring.

    ``prompt``: the prompt's ids, or ``None``. ``spell(vocabulary, data)`` spells text as token ids;
    ``parse_inner(matcher, constraint, text)`` parses an inner constraint's text (or raises
    InvalidOutputError)."""
    lowered = matcher.spec.structure
    symbols = set(lowered.symbols)
    vocabulary = matcher.vocabulary
    if isinstance(output, (str, bytes, bytearray)):
        units = _text_units(output, vocabulary, symbols)
        checker = matcher.inner if isinstance(matcher, BudgetMatcher) else matcher  # text carries no token count
        ids = _spelled(units, vocabulary, spell)
    else:
        array = np.asarray(output).reshape(-1)
        if array.size and array.dtype.kind not in "iu":
            raise TypeError(f"parse takes the generated text or integer token ids, got {array.dtype} values")
        ids = [int(i) for i in array.tolist()]
        end = next((i for i, t in enumerate(ids) if t in vocabulary.eos_token_ids), len(ids))
        ids = ids[:end]
        units = "".join(
            chr(SYMBOL + t) if t in symbols else (vocabulary.token_bytes[t] or b"").decode("latin-1")
            if 0 <= t < vocabulary.size else _BARRIER for t in ids
        )
        checker = matcher
    category = _category(matcher, checker, ids, units, prompt)
    splitter = _Splitter(units, matcher, parse_inner)
    for end, captures in splitter.match(_entry(lowered, category, vocabulary.dummy_prefix), 0, frozenset([END])):
        if end == len(units):
            return splitter.result(captures)
    raise InvalidOutputError(  # pragma: no cover - the matcher accepted it, so some split exists
        "the output satisfies the constraint but could not be split along its markers"
    )


def _text_units(output: Any, vocabulary: Any, symbols: set) -> str:
    """Text as units: its bytes, each special-token marker's spelling as that marker's symbol."""
    try:
        text = output if isinstance(output, str) else bytes(output).decode("utf-8")
    except UnicodeDecodeError as exc:
        raise InvalidOutputError(f"the output is not valid UTF-8: {exc}") from exc
    data = text.encode("utf-8").decode("latin-1")
    names = {name: token for name, token in vocabulary.special_tokens.items() if token in symbols}
    for name in sorted(names, key=len, reverse=True):  # free text never spells them: each is its marker
        data = data.replace(name.encode("utf-8").decode("latin-1"), chr(SYMBOL + names[name]))
    return data


def _spelled(units: str, vocabulary: Any, spell: Callable) -> list[int]:
    """Token ids that produce ``units``: text runs spelled, marker symbols as their tokens."""
    ids: list[int] = []
    run: list[str] = []
    for unit in units + _BARRIER:
        if ord(unit) < 256:
            run.append(unit)
            continue
        if run:
            spelled = spell(vocabulary, "".join(run).encode("latin-1"))
            if spelled is None:
                raise InvalidOutputError(
                    "the output cannot be spelled with the tokenizer's tokens, so the model cannot have produced it"
                )
            ids.extend(spelled)
            run = []
        if ord(unit) >= SYMBOL:
            ids.append(ord(unit) - SYMBOL)
    return ids


def _category(matcher: Matcher, checker: Matcher, ids: list[int], units: str, prompt: Any) -> int:
    """Where the output starts (:data:`START`, :data:`INSIDE`, :data:`ANSWER`), once ``checker``
    accepts ``ids`` from there."""
    scanner = checker.prompt_scanner
    if scanner is None:
        candidates = [(START, checker.initial_state)]
    elif prompt is not None:
        category = scanner.category(np.asarray(prompt).reshape(-1).tolist())
        candidates = [(category, scanner.states[category])]
    else:
        candidates = list(enumerate(scanner.states))
    live = []
    for category, state in candidates:
        reached = checker.walk(ids, state)
        if reached >= 0 and checker.is_accepting(reached):
            return category
        if reached >= 0:
            live.append(category)
    text = matcher.vocabulary.decode(ids)[-200:].decode("utf-8", "replace")
    if live:
        # A requirement the constraint names (a span, a call, the end marker), else a cut-off.
        reasons = {c: missing_part(matcher, units, c) or "was generation cut off by max_new_tokens?" for c in live}
        if len(set(reasons.values())) > 1:  # text parsed without its prompt: each start it may have
            why = "; or, ".join(f"{_WHERE[c]}, {reasons[c]}" for c in live)
        else:
            why = reasons[live[0]]
        raise InvalidOutputError(f"the output is incomplete: {why}: ...{text!r}")
    raise InvalidOutputError(f"the output does not satisfy the {matcher.spec.kind} constraint: ...{text!r}")


#: Where an output read without its prompt may start (for the messages of :func:`_category`).
_WHERE = {START: "if it opens the reasoning block", INSIDE: "if the prompt opened the block",
          ANSWER: "if the prompt closed the block"}


def _entry(lowered: Any, category: int, dummy_prefix: bool) -> Node:
    """The tree from where the output starts: all of it, inside the reasoning, or at its answer."""
    root = lowered.root
    if category == START:
        return root
    items = root.items[-1].items if dummy_prefix else root.items  # a dummy prefix wraps the tree once
    if category == INSIDE:
        return Seq(items[1:])
    answer_at = 3 if len(items) > 3 and isinstance(items[2], Lit) else 2  # after the rest of the end marker
    return Seq(items[answer_at:])


def _first(node: Node) -> Optional[tuple[frozenset, bool]]:
    """The literals ``node`` may start with and whether it may be empty; ``None``: it starts with text."""
    if isinstance(node, Lit):
        return frozenset([units_text(node.units)]), False
    if isinstance(node, Capture):
        return _first(node.item)
    if isinstance(node, (Seq, Alt)):
        found: set = set()
        empty = isinstance(node, Seq)
        for item in node.items:
            part = _first(item)
            if part is None:
                return None
            found |= part[0]
            if isinstance(node, Seq) and not part[1]:
                return frozenset(found), False
            empty = empty or (isinstance(node, Alt) and part[1])
        return frozenset(found), empty
    if isinstance(node, Rep):
        part = _first(node.item)
        return None if part is None else (part[0], node.low == 0 or part[1])
    return None


def _follow(items: tuple, index: int, outer: Optional[frozenset]) -> Optional[frozenset]:
    """What may come after ``items[index - 1]``: literals (``END``: the output's end), ``None``: unknown."""
    found: set = set()
    for item in items[index:]:
        part = _first(item)
        if part is None:
            return None
        found |= part[0]
        if not part[1]:
            return frozenset(found)
    return None if outer is None else frozenset(found | outer)


class _Splitter:
    """Splits the units of a checked output along a tree, backtracking where markers are ambiguous."""

    def __init__(self, units: str, matcher: Matcher, parse_inner: Callable) -> None:
        self.units = units
        self.matcher = matcher
        self.parse_inner = parse_inner
        self.values: dict = {}

    def limit(self, pos: int) -> int:
        """Where the text from ``pos`` stops: the next marker token (or barrier), else the end."""
        for i in range(pos, len(self.units)):
            if ord(self.units[i]) >= 256:
                return i
        return len(self.units)

    def value(self, inner: Inner, start: int, end: int) -> Any:
        """The inner constraint's value of ``units[start:end]``, or ``_INVALID``."""
        key = (id(inner), start, end)
        if key not in self.values:
            text = self.units[start:end].encode("latin-1").decode("utf-8", errors="replace")
            try:
                self.values[key] = self.parse_inner(self.matcher, inner.constraint, text)
            except InvalidOutputError:
                self.values[key] = _INVALID
        return self.values[key]

    def match(self, node: Node, pos: int, follow: Optional[frozenset]) -> Iterator[tuple[int, tuple]]:
        """Every ``(end, captures)`` of ``node`` from ``pos``; ``follow``: what may come after it."""
        units = self.units
        if isinstance(node, Lit):
            text = units_text(node.units)
            if units.startswith(text, pos):
                yield pos + len(text), ()
        elif isinstance(node, FreeText):
            if node.until is not None:
                at = units.find(node.until.decode("latin-1"), pos)
                if at >= 0:
                    yield at + len(node.until), ()
            else:
                for end in range(self.limit(pos), pos - 1, -1):
                    yield end, ()
        elif isinstance(node, Inner):
            for end in self.inner_ends(pos, follow):
                value = self.value(node, pos, end)
                if value is not _INVALID:
                    yield end, (("inner", pos, end, node, value),)
        elif isinstance(node, Capture):
            for end, captures in self.match(node.item, pos, follow):
                yield end, ((node.name, pos, end, node.item, captures[0][4] if captures and captures[0][0] == "inner" else None),
                            *captures)
        elif isinstance(node, Seq):
            yield from self.seq(node.items, 0, pos, follow)
        elif isinstance(node, Alt):
            for item in node.items:
                yield from self.match(item, pos, follow)
        elif isinstance(node, Rep):
            yield from self.rep(node, node.low, node.high, pos, follow)

    def inner_ends(self, pos: int, follow: Optional[frozenset]) -> list[int]:
        """Where an inner constraint's text may end: before a literal that may follow it, earliest first."""
        limit = self.limit(pos)
        if follow is None:
            return list(range(pos, limit + 1))
        ends = set()
        for literal in follow:
            if literal == END:
                if limit == len(self.units):
                    ends.add(limit)
                continue
            at = self.units.find(literal, pos)
            while 0 <= at <= limit:
                ends.add(at)
                at = self.units.find(literal, at + 1)
        return sorted(ends)

    def seq(self, items: tuple, index: int, pos: int, follow: Optional[frozenset]) -> Iterator[tuple[int, tuple]]:
        if index == len(items):
            yield pos, ()
            return
        for end, captures in self.match(items[index], pos, _follow(items, index + 1, follow)):
            for final, more in self.seq(items, index + 1, end, follow):
                yield final, captures + more

    def rep(self, node: Rep, low: int, high: Optional[int], pos: int, follow: Optional[frozenset]) -> Iterator[tuple[int, tuple]]:
        if high is None or high > 0:  # one more first (greedy), then stop if allowed
            rest = None if high is None else high - 1
            after = follow if rest == 0 else _follow((Rep(node.item, max(low - 1, 0), rest),), 0, follow)
            for end, captures in self.match(node.item, pos, after):
                if end == pos:
                    continue
                for final, more in self.rep(node, max(low - 1, 0), None if high is None else high - 1, end, follow):
                    yield final, captures + more
        if low == 0:
            yield pos, ()

    def result(self, captures: tuple) -> StructuredOutput:
        result = StructuredOutput()
        texts = []
        for name, start, end, item, value in captures:
            if name == "inner":
                continue
            if name in ("reasoning", "text"):
                body = self.units[start:end]
                if isinstance(item, FreeText) and item.until is not None:
                    body = body[: len(body) - len(item.until)]
                text = body.encode("latin-1").decode("utf-8")
                if name == "reasoning":
                    result.reasoning = text
                elif text:
                    texts.append(text)
                    result.segments.append(("text", text))
            elif name == "span":
                result.spans.append(value)
                result.segments.append(("span", value))
            elif name == "answer":
                result.answer = value
            elif name == "call":
                call = _tool_call(value, item)
                result.tool_calls.append(call)
                result.segments.append(("call", call))
        result.text = "".join(texts)
        return result


_INVALID = object()


def _tool_call(value: Any, inner: Inner) -> ToolCall:
    name, arguments = value["name"], value[inner.key]
    model = (inner.tools or {}).get(name)
    if model is not None:
        try:
            arguments = model.model_validate_json(json.dumps(arguments))
        except Exception as exc:  # pydantic.ValidationError, without importing pydantic
            raise InvalidOutputError(f"the arguments of {name} do not validate as {model.__name__}: {exc}") from exc
    return ToolCall(name, arguments)
