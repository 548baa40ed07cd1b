"""Tool calls inside free text, in the model family's own format: :class:`Tools`.

Formats (what each chat template's users parse):

- ``"hermes"`` (Hermes, Qwen 2.5/3): ``<tool_call>\\n{"name": ..., "arguments": {...}}\\n</tool_call>``,
  free text around and between calls (vLLM's ``hermes`` parser);
- ``"llama3_json"`` (Llama 3.1+ JSON tool calling): the whole reply is ``{"name": ..., "parameters":
  {...}}``, parallel calls separated by ``"; "``, optionally after ``<|python_tag|>`` where the
  tokenizer has that token; a reply that is not a call must not start with ``{`` (vLLM's
  ``llama3_json`` parser);
- ``"mistral"``: free text, then ``[TOOL_CALLS][{"name": ..., "arguments": {...}}, ...]`` to the
  end (vLLM's ``mistral`` parser).

Each call's arguments are compiled by this package's JSON Schema compiler (strict): a keyword it
cannot enforce raises :class:`~pse_processors.UnsupportedSchemaError` with its pointer under the
tool (``#/tools/get_weather/parameters/...``).
"""

from __future__ import annotations

import copy
import inspect
import json
import re
from dataclasses import dataclass
from typing import Any, Callable, Optional, Sequence, Union

from ..errors import SchemaError
from .freetext import text_then, text_without
from .markers import resolve_marker
from .structure import Alt, Capture, Inner, Lit, Node, Rep, Seq, StructuredConstraint

FORMATS = ("hermes", "llama3_json", "mistral")
CHOICES = ("auto", "required", "none")
_MARKERS = {"hermes": ("<tool_call>\n", "\n</tool_call>"), "mistral": ("[TOOL_CALLS]", ""), "llama3_json": ("<|python_tag|>", "")}
_NAME = re.compile(r"^[A-Za-z0-9_.:-]{1,128}$")


@dataclass(frozen=True)
class ToolSpec:
    """One tool: its name, description, parameters' JSON Schema, and its Pydantic class (or ``None``)."""

    name: str
    parameters: Any
    description: str = ""
    model: Optional[type] = None


def tool_spec(tool: Any) -> ToolSpec:
    """A :class:`ToolSpec` from an OpenAI function spec (``{"type": "function", "function": {...}}`` or
    the inner dict), a Pydantic model class, or a typed Python function.

    Example:
        >>> def get_weather(city: str, days: int = 1) -> str:
        ...     '''The forecast.'''
        >>> spec = tool_spec(get_weather)
        >>> spec.name, spec.parameters["required"], spec.description
        ('get_weather', ['city'], 'The forecast.')
    """
    if isinstance(tool, ToolSpec):
        return tool
    if isinstance(tool, dict):
        spec = tool.get("function", tool) if tool.get("type", "function") == "function" else None
        if not isinstance(spec, dict) or not isinstance(spec.get("name"), str):
            raise SchemaError(f"a tool spec needs a 'name' (OpenAI format: {{'type': 'function', 'function': {{'name': ...}}}}), got {tool!r}"[:300], None)  # type: ignore[arg-type]
        parameters = spec.get("parameters", {"type": "object", "properties": {}})
        return ToolSpec(_checked_name(spec["name"]), parameters, str(spec.get("description", "") or ""))
    if isinstance(tool, type) and callable(getattr(tool, "model_json_schema", None)):
        name = (getattr(tool, "model_config", None) or {}).get("title") or tool.__name__
        return ToolSpec(_checked_name(name), tool.model_json_schema(), inspect.getdoc(tool) or "", tool)
    if callable(tool) and hasattr(tool, "__name__"):
        return ToolSpec(_checked_name(tool.__name__), _function_parameters(tool), _first_paragraph(inspect.getdoc(tool)))
    raise TypeError(f"a tool is an OpenAI function spec (dict), a Pydantic model class or a typed function, not {tool!r}")


def _checked_name(name: Any) -> str:
    if not isinstance(name, str) or not _NAME.match(name):
        raise SchemaError(f"a tool name must be 1-128 letters, digits, '_', '-', '.' or ':', not {name!r}", None)  # type: ignore[arg-type]
    return name


def _first_paragraph(doc: Optional[str]) -> str:
    return (doc or "").split("\n\n")[0].strip()


def _function_parameters(function: Callable) -> dict:
    """The JSON Schema of a function's parameters, from its annotations (through Pydantic)."""
    try:
        import pydantic
    except ImportError as exc:  # pragma: no cover - pydantic comes with transformers and mlx-lm
        raise ImportError(f"typed Python functions as tools need pydantic ({exc}): pip install pydantic") from exc
    fields = {}
    for name, parameter in inspect.signature(function).parameters.items():
        if parameter.kind in (parameter.VAR_POSITIONAL, parameter.VAR_KEYWORD):
            raise SchemaError(f"tool {function.__name__}: *{name} cannot be a tool parameter (name every argument)", None)  # type: ignore[arg-type]
        if parameter.annotation is inspect.Parameter.empty:
            raise SchemaError(f"tool {function.__name__}: parameter {name!r} has no type annotation", None)  # type: ignore[arg-type]
        default = ... if parameter.default is inspect.Parameter.empty else parameter.default
        fields[name] = (parameter.annotation, default)
    model = pydantic.create_model(f"{function.__name__}_arguments", **fields)  # type: ignore[call-overload]
    schema = model.model_json_schema()
    schema.pop("title", None)
    return schema


def infer_format(chat_template: Optional[str]) -> str:
    """The tool-call format a chat template writes, or a ``SchemaError`` asking for ``format=``.

    Example:
        >>> infer_format("... <tool_call>\\n{...}\\n</tool_call> ..."), infer_format("Environment: ipython")
        ('hermes', 'llama3_json')
    """
    template = chat_template or ""
    if "<tool_call>" in template:
        return "hermes"
    if "[TOOL_CALLS]" in template:
        return "mistral"
    if "<|python_tag|>" in template or "Environment: ipython" in template:
        return "llama3_json"
    where = "the tokenizer has no chat template" if not template else "its chat template names no known tool-call syntax"
    raise SchemaError(f"Tools: cannot tell the tool-call format ({where}); pass format= one of {', '.join(FORMATS)}", None)  # type: ignore[arg-type]


@dataclass(frozen=True)
class Tools(StructuredConstraint):
    """Free text and tool calls in the model's own format; each call's arguments valid for its tool.

    Args:
        tools: OpenAI function specs, Pydantic model classes or typed Python functions (kept as
            :class:`ToolSpec`: name, description, parameters' schema, Pydantic class).
        tool_choice: ``"auto"`` (free text and/or calls), ``"required"`` (at least one call),
            ``"none"`` (no call can start) or a tool's name (only that tool, at least once).
        format: ``"hermes"``, ``"llama3_json"`` or ``"mistral"`` (see the module docstring);
            ``None`` reads it from the tokenizer's chat template when the constraint is compiled.
        parallel: several calls in one reply (``False``: at most one).

    Raises:
        SchemaError: an unknown ``tool_choice`` or ``format``, a duplicate or malformed tool name;
            when compiled, a parameters schema the compiler refuses (``UnsupportedSchemaError``).

    Example:
        >>> import pse_processors as pse
        >>> vocab = pse.Vocabulary([bytes([b]) for b in range(256)] + [None], eos_token_ids=[256])
        >>> tools = pse.Tools([{"name": "add", "parameters": {"type": "object", "properties": {"a": {"type": "integer"}}, "required": ["a"]}}], format="hermes")
        >>> from pse_processors.runtime.results import parse_output
        >>> result = parse_output(pse.compile(tools, vocab), 'Sure.<tool_call>\\n{"name": "add", "arguments": {"a": 2}}\\n</tool_call>')
        >>> result.tool_calls[0].name, result.tool_calls[0].arguments, result.text
        ('add', {'a': 2}, 'Sure.')
    """

    tools: tuple
    tool_choice: Union[str, dict] = "auto"
    format: Optional[str] = None
    parallel: bool = True

    kind = "tools"

    def __init__(
        self, tools: Sequence[Any], tool_choice: Union[str, dict] = "auto", format: Optional[str] = None,  # noqa: A002
        parallel: bool = True,
    ) -> None:
        if isinstance(tools, (dict, str)) or not isinstance(tools, Sequence) or not tools:
            raise SchemaError("Tools needs a non-empty list of tools", None)  # type: ignore[arg-type]
        specs = tuple(tool_spec(tool) for tool in tools)
        names = [spec.name for spec in specs]
        duplicates = sorted({n for n in names if names.count(n) > 1})
        if duplicates:
            raise SchemaError(f"Tools: tool names must be unique, {duplicates} appear more than once", None)  # type: ignore[arg-type]
        if isinstance(tool_choice, dict):  # OpenAI's {"type": "function", "function": {"name": ...}}
            tool_choice = (tool_choice.get("function") or {}).get("name", tool_choice)
        if not isinstance(tool_choice, str) or (tool_choice not in CHOICES and tool_choice not in names):
            raise SchemaError(
                f"Tools: tool_choice {tool_choice!r} is neither 'auto', 'required', 'none' nor a tool's name "
                f"(the tools are {', '.join(map(repr, names))})", None,  # type: ignore[arg-type]
            )
        if format is not None and format not in FORMATS:
            raise SchemaError(f"Tools: format must be one of {', '.join(FORMATS)} or None, not {format!r}", None)  # type: ignore[arg-type]
        if not isinstance(parallel, bool):
            raise TypeError(f"Tools: parallel must be True or False, not {parallel!r}")
        object.__setattr__(self, "tools", specs)
        object.__setattr__(self, "tool_choice", tool_choice)
        object.__setattr__(self, "format", format)
        object.__setattr__(self, "parallel", parallel)

    def resolved_format(self, vocabulary: Any) -> str:
        return self.format or infer_format(getattr(vocabulary, "chat_template", None))

    def call_markers(self, vocabulary: Any) -> tuple[str, str]:
        """The texts around a call in the resolved format (``""``: none; llama3_json's start is optional)."""
        return _MARKERS[self.resolved_format(vocabulary)]

    def call_schema(self, key: str) -> dict:
        """The JSON Schema of one call: ``{"name": <const>, key: <parameters>}`` for each allowed tool."""
        allowed = [t for t in self.tools if self.tool_choice in CHOICES or t.name == self.tool_choice]
        wrappers = []
        for index, spec in enumerate(allowed):
            at = f"#/properties/{key}" if len(allowed) == 1 else f"#/anyOf/{index}/properties/{key}"
            wrappers.append({
                "type": "object", "properties": {"name": {"const": spec.name}, key: _rebased(spec.parameters, at)},
                "required": ["name", key], "additionalProperties": False,
            })
        return wrappers[0] if len(wrappers) == 1 else {"anyOf": wrappers}

    def tool_pointers(self, key: str) -> dict[str, str]:
        """Where each allowed tool's parameters sit in :meth:`call_schema` (for error pointers)."""
        allowed = [t for t in self.tools if self.tool_choice in CHOICES or t.name == self.tool_choice]
        if len(allowed) == 1:
            return {f"#/properties/{key}": allowed[0].name}
        return {f"#/anyOf/{i}/properties/{key}": t.name for i, t in enumerate(allowed)}

    def lower(self, vocabulary: Any, forbid: tuple, nested: bool = False) -> Node:
        fmt = self.resolved_format(vocabulary)
        key = "parameters" if fmt == "llama3_json" else "arguments"
        schema = self.call_schema(key)
        models = {t.name: t.model for t in self.tools}
        call = Capture("call", Inner(schema, "call", json.dumps(schema, sort_keys=True, default=str), models, key))
        most = None if self.parallel else 1
        choice = self.tool_choice
        if fmt == "llama3_json":
            tag = vocabulary.special_tokens.get(_MARKERS[fmt][0])
            calls: Node = Seq((*([Rep(Lit((tag,)), 0, 1)] if tag is not None else []), call,
                               Rep(Seq((Lit((b"; ",)), call)), 0, None if self.parallel else 0)))
            text = text_without(None, forbid, first_not=b"{")
            return text if choice == "none" else calls if choice != "auto" else Alt((calls, text))
        start = resolve_marker(_MARKERS[fmt][0], vocabulary, "tool-call start")
        if fmt == "mistral":
            more = Rep(Seq((Lit((b", ",)), call)), 0, None if self.parallel else 0)
            calls = Seq((*text_then(start, forbid), Lit((b"[",)), call, more, Lit((b"]",))))
            tail = text_without(start, forbid)
            return tail if choice == "none" else calls if choice != "auto" else Alt((calls, tail))
        end = resolve_marker(_MARKERS[fmt][1], vocabulary, "tool-call end")
        block = Seq((*text_then(start, forbid), call, Lit(end.units)))
        tail = text_without(start, forbid)
        if choice == "none":
            return tail
        return Seq((Rep(block, 0 if choice == "auto" else 1, most), tail))


def _rebased(schema: Any, at: str) -> Any:
    """``schema`` moved to ``at`` inside a larger document: its local ``$ref``s (``#...``) rewritten."""
    if isinstance(schema, bool):
        return schema
    moved = copy.deepcopy(schema)

    def visit(node: Any) -> None:
        if isinstance(node, dict):
            ref = node.get("$ref")
            if isinstance(ref, str) and ref.startswith("#"):
                node["$ref"] = at + ref[1:]
            for value in node.values():
                visit(value)
        elif isinstance(node, list):
            for value in node:
                visit(value)

    visit(moved)
    return moved
