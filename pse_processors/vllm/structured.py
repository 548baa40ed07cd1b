"""Structure in free text over vLLM's request path: ``Reasoning``, ``Delimited`` and ``Tools`` in ``extra_args["pse"]``.

Each is an object whose keys are its constructor's arguments; a nested constraint (``answer``,
``constraint``) is itself a ``{"json_schema": ...}``-style object, as at the top of ``"pse"``::

    {"reasoning": {"answer": {"json_schema": {...}}, "start": "<think>", "end": "</think>", "max_tokens": 256}}
    {"delimited": {"constraint": {"regex": "[0-9]+"}, "start": "```json\\n", "end": "\\n```", "min_count": 1, "max_count": 3}}
    {"tools": {"tools": [{"name": "add", "parameters": {...}}], "tool_choice": "auto", "format": "hermes", "parallel": true}}
    {"tools": [...]}                          the tool list alone: the other arguments' defaults

Only ``answer``, ``constraint`` and ``tools`` are required. A Reasoning's answer may be a
``delimited`` or ``tools`` object; nothing else nests. Markers resolve against the served model's
tokenizer (a special token where it has one, e.g. Qwen3's ``<think>``; text otherwise). vLLM
drops special tokens from the text it returns unless ``skip_special_tokens=False``: set that
for special-token markers if the text is to be parsed. ``Tools`` without ``format`` reads it from
the model's chat template; the front end has no tokenizer, so it checks the call schemas as
``hermes`` calls.

This module needs neither vLLM nor torch.

Example:
    >>> import pse_processors as pse
    >>> spec = structured_spec(pse.Reasoning(pse.Choice(["yes", "no"]), max_tokens=64), lambda c: {"choice": list(c.choices)})
    >>> spec
    {'reasoning': {'answer': {'choice': ['yes', 'no']}, 'start': '<think>', 'end': '</think>', 'max_tokens': 64}}
    >>> build("reasoning", spec["reasoning"], lambda value, where, structured: pse.Choice(value["choice"]))
    Reasoning(answer=Choice(choices=('yes', 'no')), start='<think>', end='</think>', max_tokens=64)
"""

from __future__ import annotations

import dataclasses
from typing import Any, Callable, Mapping, Optional

from ..constraints.freetext import Delimited, Reasoning
from ..constraints.tools import Tools
from ..errors import SchemaError

#: Each structured kind's class, its arguments and which of them are required (the first).
ARGUMENTS: dict[str, tuple[type, tuple[str, ...]]] = {
    "reasoning": (Reasoning, ("answer", "start", "end", "max_tokens")),
    "delimited": (Delimited, ("constraint", "start", "end", "min_count", "max_count")),
    "tools": (Tools, ("tools", "tool_choice", "format", "parallel")),
}
STRUCTURED = tuple(ARGUMENTS)

#: ``inner(value, where, structured)``: the constraint of a nested ``{"json_schema": ...}``-style
#: object; ``structured`` holds the structured kinds it may be.
Inner = Callable[[Any, str, tuple], Any]


def build(kind: str, value: Any, inner: Inner) -> Any:
    """The ``Reasoning``, ``Delimited`` or ``Tools`` that ``value`` (``extra_args['pse'][kind]``) describes.

    Raises:
        SchemaError: not an object, unknown or missing keys, or what the constructor refuses
            (named by the constructor: ``Reasoning: max_tokens ...``).
    """
    where = f"extra_args['pse'][{kind!r}]"
    if kind == "tools" and isinstance(value, list):
        value = {"tools": value}
    if not isinstance(value, Mapping):
        raise SchemaError(f"{where} must be an object of {ARGUMENTS[kind][0].__name__}'s arguments, not {type(value).__name__}", None)
    cls, names = ARGUMENTS[kind]
    unknown = [name for name in value if name not in names]
    if unknown:
        raise SchemaError(
            f"{where} has unknown keys {', '.join(map(repr, unknown))}; {cls.__name__} takes {', '.join(map(repr, names))}", None
        )
    if names[0] not in value:
        raise SchemaError(f"{where} needs {names[0]!r}", None)
    arguments = dict(value)
    if kind == "reasoning":
        arguments["answer"] = inner(value["answer"], f"{where}['answer']", ("delimited", "tools"))
    elif kind == "delimited":
        arguments["constraint"] = inner(value["constraint"], f"{where}['constraint']", ())
    elif not isinstance(value["tools"], list) or not all(isinstance(tool, Mapping) for tool in value["tools"]):
        raise SchemaError(f"{where}['tools'] must be a list of OpenAI function specs (objects)", None)
    try:
        return cls(**arguments)
    except TypeError as exc:  # a wrongly typed argument the constructor did not name
        raise SchemaError(f"{where}: {exc}", None) from exc


def structured_spec(constraint: Any, spec_of: Callable[[Any], dict]) -> Optional[dict]:
    """``{kind: {...}}`` of a ``Reasoning``, ``Delimited`` or ``Tools`` (plain JSON; ``spec_of``
    writes a nested constraint), or ``None`` for any other constraint. A Pydantic tool or answer
    is sent as its JSON Schema."""
    if isinstance(constraint, Reasoning):
        out = {"answer": spec_of(constraint.answer), "start": constraint.start, "end": constraint.end}
        if constraint.max_tokens is not None:
            out["max_tokens"] = constraint.max_tokens
        return {"reasoning": out}
    if isinstance(constraint, Delimited):
        out = {"constraint": spec_of(constraint.constraint), "start": constraint.start, "end": constraint.end,
               "min_count": constraint.min_count}
        if constraint.max_count is not None:
            out["max_count"] = constraint.max_count
        return {"delimited": out}
    if isinstance(constraint, Tools):
        tools = [{"name": t.name, "description": t.description, "parameters": t.parameters} for t in constraint.tools]
        out = {"tools": tools, "tool_choice": constraint.tool_choice, "parallel": constraint.parallel}
        if constraint.format is not None:
            out["format"] = constraint.format
        return {"tools": out}
    return None


def checkable(constraint: Any) -> Any:
    """``constraint`` as it can be compiled without the model's tokenizer (the front end's check,
    and :func:`~pse_processors.vllm.parse`'s check of the text): a ``Tools`` whose format comes
    from the chat template is checked as ``hermes`` (the call schemas are what can be refused), and
    a thinking budget is left out (it counts the model's tokens, which text does not show)."""
    if isinstance(constraint, Tools) and constraint.format is None:
        return Tools(list(constraint.tools), constraint.tool_choice, "hermes", constraint.parallel)
    if isinstance(constraint, Reasoning):
        return dataclasses.replace(constraint, answer=checkable(constraint.answer), max_tokens=None)
    return constraint
