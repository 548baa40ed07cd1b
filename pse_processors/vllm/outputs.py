"""Turning a finished vLLM output into the parsed value (a dict, a Pydantic instance, a string).

:func:`parse` takes what vLLM returns (a ``RequestOutput`` from ``LLM.generate``, one of its
``CompletionOutput`` s, an OpenAI chat completion or choice, or the text itself) and the
request's constraint (what was passed to :func:`~pse_processors.vllm.extra_args`, or the
``extra_args`` dict itself). The text is checked against the constraint before it is parsed,
so a cut-off or otherwise invalid output raises instead of returning something half right.

This module needs neither vLLM nor torch: outputs are read by their attributes.

Example:
    >>> from types import SimpleNamespace
    >>> done = SimpleNamespace(text='{"age": 31}', finish_reason="stop")
    >>> parse(SimpleNamespace(outputs=[done]), {"type": "object", "properties": {"age": {"type": "integer"}}})
    {'age': 31}
    >>> parse(SimpleNamespace(text='{"age": 3', finish_reason="length"), {"type": "object"})
    Traceback (most recent call last):
    ...
    pse_processors.errors.InvalidOutputError: the output was cut off by max_tokens before the constraint was complete: '{"age": 3'
"""

from __future__ import annotations

from typing import Any, Mapping, Optional

from ..errors import InvalidOutputError
from ..runtime.results import parse_output
from .requests import KEY, byte_ids, check_request, extra_args, request_from_extra_args


def output_text(output: Any, index: int = 0) -> tuple[str, Optional[str]]:
    """``(text, finish_reason)`` of ``output``: a ``RequestOutput`` (its ``index``-th completion),
    a ``CompletionOutput``, an OpenAI ``ChatCompletion`` / ``Completion`` or one of their
    choices, or a ``str`` (finish reason ``None``)."""
    if isinstance(output, str):
        return output, None
    choices = getattr(output, "choices", None)
    if choices is not None:  # the openai client's ChatCompletion / Completion
        output = choices[index]
    elif getattr(output, "outputs", None) is not None:  # vLLM's RequestOutput
        output = output.outputs[index]
    message = getattr(output, "message", None)
    text = getattr(message, "content", None) if message is not None else getattr(output, "text", None)
    if text is None:
        raise TypeError(
            "parse() takes a vLLM RequestOutput or CompletionOutput, an OpenAI completion or choice, or a str; "
            f"{type(output).__name__} has no text"
        )
    return text, getattr(output, "finish_reason", None)


def parse(output: Any, constraint: Any, index: int = 0) -> Any:
    """The parsed value of a finished, constrained vLLM output.

    Args:
        output: what vLLM returned (see :func:`output_text`).
        constraint: the request's constraint as passed to :func:`~pse_processors.vllm.extra_args`
            (a schema, a Pydantic model class, ``Regex``...), or the request's ``extra_args``
            (``{"pse": ...}``, dict or JSON text inside).
        index: which completion of a ``RequestOutput`` or OpenAI response (``n > 1``).

    Returns:
        A JSON value for a JSON Schema (an instance of the class for a Pydantic model), a
        :class:`~pse_processors.StructuredOutput` for ``Reasoning``, ``Delimited`` and ``Tools``
        (a thinking budget is not checked: text does not show the model's tokens), else the text.

    Raises:
        InvalidOutputError: the output was cut off by ``max_tokens`` or does not satisfy the
            constraint (e.g. the request reached a server without the plug-in).
        SchemaError: ``constraint`` itself is malformed.
    """
    text, finish_reason = output_text(output, index)
    result_type = constraint if isinstance(constraint, type) and hasattr(constraint, "model_validate_json") else None
    args = constraint if isinstance(constraint, Mapping) and KEY in constraint else extra_args(constraint)
    request = request_from_extra_args(args)
    assert request is not None  # args holds KEY
    matcher = check_request(request)
    if text.startswith(" ") and not matcher.accepts(byte_ids(text)):
        text = text[1:]  # a dummy-prefix tokenizer's (Llama-2's) one leading space, which its constraints allow
    if finish_reason == "length" or not matcher.accepts(byte_ids(text)):
        cause = (
            "the output was cut off by max_tokens before the constraint was complete"
            if finish_reason == "length"
            else "the output does not satisfy the constraint (was the request served without the pse plug-in?)"
        )
        raise InvalidOutputError(f"{cause}: {text[:200]!r}")
    if result_type is not None:
        try:
            return result_type.model_validate_json(text)
        except Exception as exc:  # pydantic.ValidationError, without importing pydantic
            raise InvalidOutputError(f"the output does not validate as {result_type.__name__}: {exc}") from exc
    return parse_output(matcher, text)
