"""Structure inside free text on the command line: ``--reasoning``, ``--delimited``, ``--tools``.

They wrap the constraint of :mod:`.constraint_args` (or stand in for it: ``--tools`` alone is a
constraint), as :class:`~pse_processors.Reasoning`, :class:`~pse_processors.Delimited` and
:class:`~pse_processors.Tools` do in Python::

    --schema answer.json --reasoning [--think-start '<think>'] [--think-end '</think>'] [--think-budget N]
    --schema item.json --delimited [--span-start '```json\\n'] [--span-end '\\n```'] [--min-count N] [--max-count N]
    --tools tools.json [--tool-choice auto|required|none|NAME] [--tool-format hermes|llama3_json|mistral] [--one-call]
    --tools tools.json --reasoning                     # Reasoning(Tools(...))

A tools file is a JSON list of OpenAI function specs (``{"type": "function", "function": {...}}``
or the inner object), or an object with that list under ``"tools"``. Markers take ``\\n`` and
``\\t`` escapes. The result is printed as ``{"reasoning", "text", "spans", "tool_calls",
"answer", "segments"}`` (see :mod:`pse_processors.runners.values`).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any, Optional

from ..constraints.freetext import Delimited, Reasoning
from ..constraints.tools import FORMATS, Tools
from .errors import UsageError

#: Options that only mean something beside the option that turns their construct on.
_NEEDS = {
    "reasoning": ("think_start", "think_end", "think_budget"),
    "delimited": ("span_start", "span_end", "min_count", "max_count"),
    "tools": ("tool_choice", "tool_format", "one_call"),
}


def add_structure_arguments(parser: argparse.ArgumentParser) -> None:
    """Add the options of reasoning, delimited spans and tool calls to ``parser``."""
    group = parser.add_argument_group("structure inside free text")
    group.add_argument("--reasoning", action="store_true", help="free reasoning text first, then the constraint")
    group.add_argument("--think-start", metavar="TEXT", help="the reasoning block's opening marker (default: <think>)")
    group.add_argument("--think-end", metavar="TEXT", help="its closing marker (default: </think>)")
    group.add_argument("--think-budget", type=int, metavar="N", help="at most N reasoning tokens, then the way to the end marker")
    group.add_argument("--delimited", action="store_true", help="free text in which each span between two markers matches the constraint")
    group.add_argument("--span-start", metavar="TEXT", help="a span's opening marker (default: ```json\\n)")
    group.add_argument("--span-end", metavar="TEXT", help="a span's closing marker (default: \\n```)")
    group.add_argument("--min-count", type=int, metavar="N", help="at least N spans (default 0)")
    group.add_argument("--max-count", type=int, metavar="N", help="at most N spans (default: no limit)")
    group.add_argument("--tools", metavar="FILE|JSON", help="tool calls in the model's format: a JSON list of OpenAI function specs")
    group.add_argument("--tool-choice", metavar="CHOICE", help="auto (default), required, none, or a tool's name")
    group.add_argument("--tool-format", choices=FORMATS, help="the tool-call syntax (default: read from the chat template)")
    group.add_argument("--one-call", action="store_true", help="at most one tool call (no parallel calls)")


def wants_structure(args: argparse.Namespace) -> bool:
    """Whether any of the three constructs was asked for."""
    return any(getattr(args, name, None) for name in _NEEDS)


def check_structure_arguments(args: argparse.Namespace) -> None:
    """Refuse options given without the option they belong to.

    Example:
        >>> check_structure_arguments(argparse.Namespace(reasoning=False, think_budget=8))
        Traceback (most recent call last):
        ...
        pse_processors.cli.errors.UsageError: --think-budget needs --reasoning
    """
    for switch, names in _NEEDS.items():
        if getattr(args, switch, None):
            continue
        for name in names:
            if getattr(args, name, None) not in (None, False):
                raise UsageError(f"--{name.replace('_', '-')} needs --{switch}")


def structured_constraint(args: argparse.Namespace, inner: Optional[Any]) -> Any:
    """``inner`` (the constraint of ``--schema``... or None) wrapped as the options ask.

    Raises:
        UsageError: ``--tools`` with another constraint or with ``--delimited``, or neither.
        SchemaError: what the constructors refuse (a thinking budget below 1, an unknown tool...).

    Example:
        >>> args = argparse.Namespace(reasoning=True, think_budget=32, delimited=False, tools=None)
        >>> structured_constraint(args, {"type": "integer"})
        Reasoning(answer={'type': 'integer'}, start='<think>', end='</think>', max_tokens=32)
    """
    check_structure_arguments(args)
    option = vars(args).get  # verbs without some options (and doctests) leave them out
    constraint = inner
    if option("tools"):
        if inner is not None:
            raise UsageError("--tools is the constraint itself: give it without --schema/--regex/--choices/--pydantic/--grammar")
        if option("delimited"):
            raise UsageError("--delimited spans hold a --schema/--regex/... constraint, not --tools")
        constraint = Tools(
            read_tools(option("tools")), tool_choice=option("tool_choice") or "auto", format=option("tool_format"),
            parallel=not option("one_call"),
        )
    if constraint is None:
        raise UsageError("give a constraint: --schema, --regex, --choices, --pydantic, --grammar or --tools")
    if option("delimited"):
        constraint = Delimited(constraint, **_given(
            start=_marker(option("span_start")), end=_marker(option("span_end")), min_count=option("min_count"),
            max_count=option("max_count"),
        ))
    if option("reasoning"):
        constraint = Reasoning(constraint, **_given(
            start=_marker(option("think_start")), end=_marker(option("think_end")), max_tokens=option("think_budget"),
        ))
    return constraint


def read_tools(value: str) -> list:
    """The tool list of a ``--tools`` file or JSON text.

    Example:
        >>> read_tools('[{"name": "now", "parameters": {"type": "object"}}]')
        [{'name': 'now', 'parameters': {'type': 'object'}}]
    """
    stripped = value.lstrip()
    if stripped[:1] in ("[", "{"):
        source, text = "the --tools text", value
    else:
        try:
            text = Path(value).expanduser().read_text(encoding="utf-8")
        except FileNotFoundError:
            raise UsageError(f"--tools {value!r}: no such file, and not JSON text either") from None
        except (OSError, UnicodeDecodeError) as exc:
            raise UsageError(f"--tools {value!r}: cannot read the file ({exc})") from None
        source = value
    try:
        tools = json.loads(text)
    except json.JSONDecodeError as exc:
        raise UsageError(f"{source} is not valid JSON: {exc}") from None
    if isinstance(tools, dict) and isinstance(tools.get("tools"), list):
        tools = tools["tools"]
    if not isinstance(tools, list) or not tools or not all(isinstance(tool, dict) for tool in tools):
        raise UsageError(f"{source}: expected a non-empty JSON list of OpenAI function specs (objects)")
    return tools


def _marker(value: Optional[str]) -> Optional[str]:
    """A marker from the command line, with ``\\n``, ``\\t`` and ``\\\\`` read as escapes."""
    if value is None:
        return None
    return value.replace("\\\\", "\0").replace("\\n", "\n").replace("\\t", "\t").replace("\0", "\\")


def _given(**values: Any) -> dict:
    return {name: value for name, value in values.items() if value is not None}


#: The options of :mod:`.constraint_args` that name a constraint.
_KINDS = ("schema", "regex", "choices", "pydantic", "grammar")


def constraint_of(args: argparse.Namespace) -> Any:
    """The constraint the options name: ``--schema``... alone, or wrapped/replaced by the options above.

    Example:
        >>> args = argparse.Namespace(schema=None, regex="[0-9]+", choices=None, pydantic=None, grammar=None,
        ...                           reasoning=False, delimited=True, span_start="<n>", span_end="</n>",
        ...                           min_count=1, max_count=None, tools=None)
        >>> constraint_of(args)
        Delimited(constraint=Regex(pattern='[0-9]+'), start='<n>', end='</n>', min_count=1, max_count=None)
    """
    from .constraint_args import load_constraint

    given = any(getattr(args, name, None) is not None for name in _KINDS)
    inner = load_constraint(args) if given else None
    if not wants_structure(args):
        check_structure_arguments(args)
        if inner is None:
            raise UsageError("give a constraint: --schema, --regex, --choices, --pydantic, --grammar or --tools")
        return inner
    return structured_constraint(args, inner)
