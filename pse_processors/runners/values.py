"""Parsed outputs as JSON values: what the command line prints and Ray writes.

A JSON Schema's value is already JSON; a Pydantic instance becomes its JSON dict; a
:class:`~pse_processors.StructuredOutput` (``Reasoning``, ``Delimited``, ``Tools``) becomes its
:meth:`~pse_processors.StructuredOutput.to_dict`: ``{"reasoning", "text", "spans", "tool_calls",
"answer", "segments"}``, ``tool_calls`` as ``{"name", "arguments"}`` objects, ``segments`` the
output in order as ``{"text": ...}``, ``{"span": ...}`` and ``{"call": {"name", "arguments"}}``.

Example:
    >>> from pse_processors import StructuredOutput, ToolCall
    >>> call = ToolCall("add", {"a": 2})
    >>> json_value(StructuredOutput(text="Sure.", segments=[("text", "Sure."), ("call", call)], tool_calls=[call]))
    {'reasoning': None, 'text': 'Sure.', 'spans': [], 'tool_calls': [{'name': 'add', 'arguments': {'a': 2}}], 'answer': None, 'segments': [{'text': 'Sure.'}, {'call': {'name': 'add', 'arguments': {'a': 2}}}]}
    >>> json_value({"age": 31})
    {'age': 31}
"""

from __future__ import annotations

from typing import Any

from ..runtime.structured import StructuredOutput, ToolCall, plain_value


def json_value(value: Any) -> Any:
    """``value`` as plain JSON data (dicts, lists, strings, numbers, booleans, None)."""
    return value.to_dict() if isinstance(value, (StructuredOutput, ToolCall)) else plain_value(value)
