"""The constraint options shared by ``generate``, ``extract`` and ``compile``.

Exactly one of ``--schema FILE|JSON``, ``--regex PATTERN``, ``--choices A B ...``,
``--pydantic module:Class`` or ``--grammar FILE|TEXT`` (Lark); plus the compiler options a user
may need (``--lenient``, ``--whitespace``, ``--backend``; ``--engine`` is its deprecated name),
read into one :class:`~pse_processors.CompileOptions` by :func:`compile_options`.
"""

from __future__ import annotations

import argparse
import importlib
import json
import logging
import os
import sys
import warnings
from pathlib import Path
from typing import Any

from .. import defaults
from ..compiler.options import BACKENDS, CompileOptions, options_from
from ..constraints.spec import Choice, Constraint, Grammar, Regex
from ..errors import SchemaError
from ..json_schema.document import MAX_DEPTH
from ..runners.values import json_value
from .errors import UsageError

logger = logging.getLogger(__name__)


def add_constraint_arguments(parser: argparse.ArgumentParser, required: bool = True) -> None:
    """Add the mutually exclusive constraint options and the compiler options to ``parser``."""
    group = parser.add_argument_group("constraint (one of)")
    kinds = group.add_mutually_exclusive_group(required=required)
    kinds.add_argument("--schema", metavar="FILE|JSON", help="a JSON Schema: a file, or the JSON text itself")
    kinds.add_argument("--regex", metavar="PATTERN", help="a regular expression the whole output must match")
    kinds.add_argument("--choices", nargs="+", metavar="CHOICE", help="the output is exactly one of these strings")
    kinds.add_argument("--pydantic", metavar="MODULE:CLASS", help="a Pydantic model class, e.g. mypkg.models:Invoice")
    kinds.add_argument("--grammar", metavar="FILE|TEXT", help="a Lark grammar (regex terminals): a .lark file, or the text")
    options = parser.add_argument_group("compiler options")
    options.add_argument(
        "--lenient", action="store_true",
        help="drop (with a warning) JSON Schema keywords that cannot be enforced, instead of refusing the schema",
    )
    options.add_argument(
        "--whitespace", choices=("default", "compact", "pretty"), default=defaults.WHITESPACE,
        help="whitespace allowed in generated JSON (default: compact or json.dumps-style separators)",
    )
    backends = options.add_mutually_exclusive_group()
    backends.add_argument(
        "--backend", choices=BACKENDS,
        help="the byte automaton (dfa, what TensorFlow/Flax run), llguidance, or auto (default: the automaton "
        "unless the schema recurses or is too large for it; grammars always run on llguidance)",
    )
    backends.add_argument(
        "--engine", choices=(*BACKENDS, "grammar"),
        help="deprecated: use --backend ('grammar' is 'llguidance')",
    )


def compile_options(args: argparse.Namespace) -> CompileOptions:
    """The :class:`~pse_processors.CompileOptions` of the parsed options; what a verb does not
    offer keeps its default. The deprecated ``--engine`` logs a one-line warning.

    Example:
        >>> options = compile_options(argparse.Namespace(lenient=True, whitespace="compact", backend="dfa", engine=None))
        >>> options.strict, options.whitespace, options.backend
        (False, 'compact', 'dfa')
        >>> compile_options(argparse.Namespace()) == CompileOptions()
        True
    """
    loose: dict = {}
    if getattr(args, "lenient", False):
        loose["strict"] = False
    for name in ("whitespace", "backend"):
        if getattr(args, name, None) is not None:
            loose[name] = getattr(args, name)
    engine = getattr(args, "engine", None)
    if engine is None:
        return options_from(None, loose)
    with warnings.catch_warnings():  # the command line's own one-line warning below says it
        warnings.simplefilter("ignore", DeprecationWarning)
        options = options_from(None, {**loose, "engine": engine})
    logger.warning("--engine is deprecated: use --backend %s", options.backend)
    return options


def load_constraint(args: argparse.Namespace) -> Constraint:
    """The constraint named by the parsed options (a schema dict, a Pydantic class, Regex or Choice).

    Raises:
        UsageError: the file is missing, the text is not JSON, the class cannot be imported...

    Example:
        >>> args = argparse.Namespace(schema='{"type": "integer"}', regex=None, choices=None, pydantic=None, grammar=None)
        >>> load_constraint(args)
        {'type': 'integer'}
    """
    if args.schema is not None:
        return read_schema(args.schema)
    if args.regex is not None:
        if not args.regex:
            raise UsageError("--regex needs a non-empty pattern")
        return Regex(args.regex)
    if args.choices is not None:
        if any(not choice for choice in args.choices):
            raise UsageError("--choices: every choice must be a non-empty string")
        return Choice(args.choices)
    if args.pydantic is not None:
        return import_pydantic_model(args.pydantic)
    if getattr(args, "grammar", None) is not None:
        return Grammar(read_text_or_file(args.grammar, "--grammar"))
    raise UsageError("give a constraint: --schema, --regex, --choices, --pydantic or --grammar")


def read_text_or_file(value: str, option: str) -> str:
    """The text of the file ``value`` names, or ``value`` itself when no such file exists."""
    path = Path(value).expanduser()
    if "\n" not in value and path.is_file():
        try:
            return path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            raise UsageError(f"{option}: cannot read {value}: {exc}") from None
    if not value.strip():
        raise UsageError(f"{option} needs a non-empty grammar")
    return value


def read_schema(value: str) -> Any:
    """A JSON Schema from JSON text, or from the file ``value`` names.

    Example:
        >>> read_schema('{"enum": ["a", "b"]}')
        {'enum': ['a', 'b']}
    """
    stripped = value.lstrip()
    if stripped[:1] in ("{", "[") or stripped in ("true", "false"):
        source, text = "the --schema text", value
    else:
        path = Path(value).expanduser()
        try:
            text = path.read_text(encoding="utf-8")
        except FileNotFoundError:
            raise UsageError(f"--schema {value!r}: no such file, and not JSON text either") from None
        except (OSError, UnicodeDecodeError) as exc:
            raise UsageError(f"--schema {value!r}: cannot read the file ({exc})") from None
        source = str(path)
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise UsageError(f"{source} is not valid JSON: {exc}") from None
    except RecursionError:  # json.loads recurses once per level: a bad constraint, as the library says
        raise SchemaError(f"the schema ({source}) nests deeper than {MAX_DEPTH} levels", "#") from None


def import_pydantic_model(spec: str) -> type:
    """Import ``module:Class`` (the current folder is importable) and check it is a Pydantic model."""
    module_name, sep, attribute = spec.partition(":")
    if not sep or not module_name or not attribute:
        raise UsageError(f"--pydantic {spec!r}: expected MODULE:CLASS, e.g. mypkg.models:Invoice")
    if os.getcwd() not in sys.path and "" not in sys.path:  # `python -m` adds it, the console script does not
        sys.path.insert(0, os.getcwd())
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        raise UsageError(f"--pydantic {spec!r}: cannot import {module_name!r} ({exc})") from None
    target: Any = module
    for part in attribute.split("."):
        if not hasattr(target, part):
            raise UsageError(f"--pydantic {spec!r}: {module_name!r} has no attribute {attribute!r}")
        target = getattr(target, part)
    if not (isinstance(target, type) and hasattr(target, "model_json_schema") and hasattr(target, "model_validate_json")):
        raise UsageError(f"--pydantic {spec!r}: {attribute!r} is not a Pydantic (v2) model class")
    return target


def to_json_value(value: Any) -> Any:
    """A parsed output as a JSON-able value (a Pydantic instance becomes its JSON dict, a
    :class:`~pse_processors.StructuredOutput` its dict: see :mod:`pse_processors.runners.values`)."""
    return json_value(value)
