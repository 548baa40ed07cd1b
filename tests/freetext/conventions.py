"""What the free-text tests share (not a test module): the cases, a steering bias that stands in
for a model trained on its format, and checks of finished outputs written independently of
``pse_processors``' own parse.

- **Readers by each format's own convention**, as the chat templates' users parse replies:
  Hermes/Qwen (vLLM's ``hermes`` parser: the regex ``<tool_call>\\s*(.*?)\\s*</tool_call>`` and
  ``json.loads``), Llama 3.1 JSON (vLLM's ``llama3_json``: the reply, after an optional
  ``<|python_tag|>``, is JSON objects separated by ``;`` when it starts with ``{``), Mistral
  (``[TOOL_CALLS]`` then a JSON list), and Markdown code fences for delimited spans.
- **Steering**: random-weight models write uniform noise over 150k tokens, so markers would never
  appear. :class:`Steer` adds a bias a trained model would have: printable ASCII is likely, each
  marker's first token somewhat likely, and a marker once begun is continued. The processor under
  test still decides what is allowed; sampling is at temperature 1.5.
- :func:`check_output`: every finished output splits, every span and call validates with
  ``jsonschema``, the thinking budget holds exactly, ``tool_choice`` is obeyed, and our
  ``StructuredOutput`` equals what the convention reads.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from typing import Any, Optional

import numpy as np

import pse_processors as pse

ANSWER = {"type": "object", "properties": {"x": {"type": "integer", "minimum": 0, "maximum": 9}}, "required": ["x"],
          "additionalProperties": False}
SPAN = {"type": "integer", "minimum": 0, "maximum": 99}
WEATHER = {"type": "object", "properties": {"city": {"type": "string", "maxLength": 5}, "days": {"type": "integer", "minimum": 1,
           "maximum": 9}}, "required": ["city"], "additionalProperties": False}
ADD = {"type": "object", "properties": {"a": {"type": "integer", "minimum": 0, "maximum": 99}, "b": {"type": "integer",
       "minimum": 0, "maximum": 99}}, "required": ["a", "b"], "additionalProperties": False}
TOOLS = [{"type": "function", "function": {"name": "get_weather", "description": "The forecast.", "parameters": WEATHER}},
         {"type": "function", "function": {"name": "add", "parameters": ADD}}]
PARAMETERS = {"get_weather": WEATHER, "add": ADD}
#: How each format writes a call's arguments.
SPAN_DONE = "```json\n[^`]*\n```"
ARGUMENTS_KEY = {"hermes": "arguments", "llama3_json": "parameters", "mistral": "arguments"}


@dataclass
class Case:
    """One construct to generate under: the constraint, and what its outputs must show."""

    name: str
    constraint: Any
    markers: list  # marker texts the steering continues
    budget: Optional[int] = None  # Reasoning(max_tokens=...)
    reasoning: bool = False
    tools_format: Optional[str] = None
    choice: str = "auto"
    spans: Optional[tuple] = None  # (min_count, max_count) of a Delimited
    end_boost: bool = True  # steer toward the reasoning's end marker (off: the budget must end it)
    parallel: bool = True  # Tools(parallel=...): several calls allowed
    start_boost: float = 0.0  # more bias on the markers' first tokens
    finish_after: tuple = ()  # regexes of a complete span or call, after which EOS gets likelier
    seen: dict = field(default_factory=dict)  # what the outputs showed, over a whole test


def reasoning_case(budget: Optional[int] = 6) -> Case:
    return Case("reasoning", pse.Reasoning(ANSWER, max_tokens=budget), ["<think>", "</think>"], budget=budget,
                reasoning=True, end_boost=budget is None)


def delimited_case() -> Case:
    return Case("delimited", pse.Delimited(SPAN, min_count=1, max_count=2), ["```json\n", "\n```"], spans=(1, 2),
                finish_after=(SPAN_DONE,))


def tools_case(fmt: str, choice: str = "auto", parallel: bool = True) -> Case:
    markers = {"hermes": ["<tool_call>\n", "\n</tool_call>"], "llama3_json": ['{"name": "'], "mistral": ["[TOOL_CALLS]"]}[fmt]
    finish = {"hermes": ("</tool_call>",), "llama3_json": ("}}",), "mistral": ("}}",)}[fmt]
    return Case(f"{fmt}-{choice}", pse.Tools(TOOLS, tool_choice=choice, format=fmt, parallel=parallel), markers,
                tools_format=fmt, choice=choice, parallel=parallel, finish_after=finish,
                start_boost=2.0 if fmt == "llama3_json" else 0.0)  # llama3_json: only the first token can start calls


def nested_tools_case() -> Case:
    return Case("reasoning-tools", pse.Reasoning(pse.Tools(TOOLS, tool_choice="required", format="hermes"), max_tokens=8),
                ["<think>", "</think>", "<tool_call>\n", "\n</tool_call>"], budget=8, reasoning=True, tools_format="hermes",
                choice="required", finish_after=("</tool_call>",))


def nested_delimited_case() -> Case:
    return Case("reasoning-delimited", pse.Reasoning(pse.Delimited(SPAN, min_count=1), max_tokens=6),
                ["<think>", "</think>", "```json\n", "\n```"], budget=6, reasoning=True, spans=(1, None), finish_after=(SPAN_DONE,))


# --- steering -----------------------------------------------------------------------------------


class Steer:
    """Per-row logit bias (numpy ``[rows, width]``) from each row's ids: see the module docstring.

    The random-weight models' logits are about flat, so over ~150k tokens a bias of 10 (e^10 =
    22k) makes a token about as likely as all the rest together in free text. ``scale``: the
    sampling temperature, which divides the bias too (both transformers and mlx-lm apply it after
    the logits processors)."""

    START, CONTINUE, EOS = 10.0, 30.0, 10.0

    def __init__(self, tokenizer: Any, vocab: pse.Vocabulary, case: Case, width: int, scale: float = 1.5) -> None:
        self.scale = scale
        self.base = np.zeros(width, dtype=np.float32)
        self.base[sorted(vocab.eos_token_ids)] = self.EOS * scale
        self.spellings = []
        for text in case.markers:
            ids = tokenizer.encode(text, add_special_tokens=False)
            if text == "</think>" and not case.end_boost:
                continue
            self.spellings.append(ids)
            self.base[ids[0]] = max(self.base[ids[0]], (self.START + case.start_boost) * scale)
        # Once a span or call is complete (after the reasoning), finishing becomes likely.
        self.finish = [re.compile(pattern.encode("utf-8"), re.DOTALL) for pattern in case.finish_after]
        self.reasoning = case.reasoning
        self.eos = sorted(vocab.eos_token_ids)
        self.units = lambda ids: token_units(vocab, tokenizer, ids)

    def _finished(self, row: list) -> bool:
        text = b"".join(self.units(row))
        if self.reasoning:
            at = text.rfind(b"</think>")
            if at < 0:
                return False
            text = text[at:]
        return any(pattern.search(text) for pattern in self.finish)

    def bias(self, rows: np.ndarray) -> np.ndarray:
        out = np.repeat(self.base[None], rows.shape[0], axis=0)
        for r, row in enumerate(rows.tolist()):
            if self.finish and self._finished(row):
                out[r, self.eos] += self.EOS * self.scale
                continue
            for ids in self.spellings:
                for k in range(len(ids) - 1, 0, -1):  # the longest begun prefix is continued
                    if row[-k:] == ids[:k]:
                        out[r, ids[k]] += self.CONTINUE * self.scale
                        break
        return out




# --- reading outputs by each format's convention -----------------------------------------------


def hermes_calls(text: str) -> list[dict]:
    """vLLM's hermes parser: every ``<tool_call>...</tool_call>`` block, as JSON."""
    return [json.loads(block) for block in re.findall(r"<tool_call>\s*(.*?)\s*</tool_call>", text, re.DOTALL)]


def llama3_calls(text: str) -> list[dict]:
    """vLLM's llama3_json parser: JSON objects separated by ';' when the reply starts with '{'
    (after an optional ``<|python_tag|>``); otherwise no call."""
    text = text.removeprefix("<|python_tag|>").strip()
    if not text.startswith("{"):
        return []
    decoder, calls, at = json.JSONDecoder(), [], 0
    while at < len(text):
        value, at = decoder.raw_decode(text, at)
        calls.append(value)
        at = len(text) - len(text[at:].lstrip().removeprefix(";").lstrip())
    return calls


def mistral_calls(text: str) -> list[dict]:
    """Mistral's convention: ``[TOOL_CALLS]`` followed by a JSON list of calls."""
    at = text.find("[TOOL_CALLS]")
    return [] if at < 0 else json.loads(text[at + len("[TOOL_CALLS]"):])


READERS = {"hermes": hermes_calls, "llama3_json": llama3_calls, "mistral": mistral_calls}


def fenced_spans(text: str, start: str = "```json\n", end: str = "\n```") -> list:
    """Every span between the Markdown fences, as JSON (the first end after each start)."""
    return [json.loads(body) for body in re.findall(re.escape(start) + r"(.*?)" + re.escape(end), text, re.DOTALL)]


# --- checking one finished output --------------------------------------------------------------


def _validate(value: Any, schema: dict) -> None:
    import jsonschema

    jsonschema.validate(value, schema, cls=jsonschema.Draft202012Validator)


def reasoning_bounds(units: list, start: list, end: list, inside: bool) -> Optional[tuple[int, int, int]]:
    """``(first token inside, token count before the end marker starts, ...)``: the indices in the
    per-token byte strings ``units`` of the reasoning, by byte offsets (markers may span tokens)."""
    data = b"".join(units)
    offsets = np.cumsum([0] + [len(u) for u in units]).tolist()
    start_bytes, end_bytes = b"".join(start), b"".join(end)
    begin = 0 if inside else data.find(start_bytes) + len(start_bytes)
    if not inside and data.find(start_bytes) < 0:
        return None
    stop = data.find(end_bytes, begin)
    assert stop >= 0, "a finished output closes its reasoning"
    first = offsets.index(begin) if begin in offsets else next(i for i, o in enumerate(offsets) if o > begin) - 1
    return first, begin, stop


def check_budget(units: list, case: Case, begin: int, stop: int, offsets: list) -> int:
    """The budget holds exactly: after ``budget`` reasoning tokens the end marker has begun.
    Returns the count of reasoning tokens (those starting before the end marker)."""
    inside = [i for i in range(len(units)) if offsets[i] >= begin and offsets[i] < stop]
    if case.budget is not None and len(inside) > case.budget:
        after_budget = offsets[inside[case.budget - 1] + 1]  # where the budget-th token ends
        assert stop <= after_budget, f"{len(inside)} reasoning tokens: the end marker began after the budget of {case.budget}"
    return len(inside)


def token_units(vocab: pse.Vocabulary, tokenizer: Any, ids: list) -> list:
    """Each id's text as bytes; special tokens as their names (so markers read as text)."""
    out = []
    for i in ids:
        data = vocab.token_bytes[i]
        out.append(data if data is not None else tokenizer.convert_ids_to_tokens(i).encode("utf-8"))
    return out


def check_output(case: Case, parsed: Any, ids: list, vocab: pse.Vocabulary, tokenizer: Any, prompt_state: str = "start") -> None:
    """Check one finished output (its generated ids, EOS excluded) and our parse of it; record what
    it showed in ``case.seen``. ``prompt_state``: ``"start"``, ``"inside"`` (the prompt opened the
    reasoning) or ``"answer"`` (the prompt closed it)."""
    assert isinstance(parsed, pse.StructuredOutput), parsed
    units = token_units(vocab, tokenizer, ids)
    text = b"".join(units).decode("utf-8")
    rest = text
    seen = case.seen
    if case.reasoning:
        start, end = [b"<think>"], [b"</think>"]
        if prompt_state == "answer":
            assert "</think>" not in text and "<think>" not in text and parsed.reasoning is None
        else:
            if prompt_state == "start":
                assert text.startswith("<think>"), text[:80]
            bounds = reasoning_bounds(units, start, end, prompt_state == "inside")
            assert bounds is not None
            _, begin, stop = bounds
            offsets = np.cumsum([0] + [len(u) for u in units]).tolist()
            count = check_budget(units, case, begin, stop, offsets)
            body = b"".join(units)[begin:stop].decode("utf-8")
            assert parsed.reasoning == body, (parsed.reasoning, body)
            seen["reasoning"] = seen.get("reasoning", 0) + 1
            if case.budget is not None and count >= case.budget:
                seen["budget_reached"] = seen.get("budget_reached", 0) + 1
            rest = b"".join(units)[stop + len(b"</think>"):].decode("utf-8")
        if case.tools_format is None and case.spans is None:
            value = json.loads(rest)
            _validate(value, ANSWER)
            assert parsed.answer == value
            seen["answer"] = seen.get("answer", 0) + 1
    if case.spans is not None:
        spans = fenced_spans(rest)
        low, high = case.spans
        assert len(spans) >= low and (high is None or len(spans) <= high), (len(spans), rest)
        for value in spans:
            _validate(value, SPAN)
        assert parsed.spans == spans, (parsed.spans, spans)
        seen["spans"] = seen.get("spans", 0) + len(spans)
    if case.tools_format is not None:
        calls = READERS[case.tools_format](rest)
        key = ARGUMENTS_KEY[case.tools_format]
        for call in calls:
            assert set(call) == {"name", key}, call
            _validate(call[key], PARAMETERS[call["name"]])
        ours = [c.to_dict() for c in parsed.tool_calls]
        assert ours == [{"name": c["name"], "arguments": c[key]} for c in calls], (ours, calls)
        assert case.parallel or len(calls) <= 1, calls
        if case.choice == "none":
            assert not calls and "tool_call" not in rest and "TOOL_CALLS" not in rest and not rest.lstrip().startswith("{")
        elif case.choice == "required":
            assert calls, rest
        elif case.choice != "auto":
            assert calls and {c["name"] for c in calls} == {case.choice}, calls
        seen["calls"] = seen.get("calls", 0) + len(calls)
        seen["tools"] = seen.get("tools", set()) | {c["name"] for c in calls}
    seen["finished"] = seen.get("finished", 0) + 1


def check_seen(case: Case, rows: int) -> None:
    """Over a test's outputs: enough finished, and the markers were actually used."""
    seen = case.seen
    assert seen.get("finished", 0) >= max(1, rows // 2), (case.name, seen)
    if case.reasoning:
        assert seen.get("reasoning", 0) >= 1, (case.name, seen)
    if case.budget is not None and not case.end_boost:
        assert seen.get("budget_reached", 0) >= 1, (case.name, seen)
    if case.spans is not None:
        assert seen.get("spans", 0) >= 1, (case.name, seen)
    if case.tools_format is not None and case.choice != "none":
        assert seen.get("calls", 0) >= 1, (case.name, seen)
