"""A vLLM request's constraint: ``extra_args["pse"]`` read into a constraint and its compile options.

A request opts in through its sampling parameters, ``SamplingParams(extra_args={"pse": {...}})``,
where the dict holds exactly one constraint and optionally compile options::

    {"json_schema": {...}}            a JSON Schema (a dict, or its JSON text)
    {"regex": "[0-9]{3}"}             the whole output matches the regex
    {"choice": ["yes", "no"]}         the output is exactly one of the strings
    {"grammar": "start: ..."}         a Lark grammar (see ``pse_processors.Grammar``)
    {"reasoning": {"answer": {...}, ...}}, {"delimited": {...}}, {"tools": {...}}
                                      structure in free text (:mod:`.structured`)
    + "options": {"whitespace": "compact", "backend": "dfa", ...}

The OpenAI-compatible server passes ``vllm_xargs`` on as ``extra_args``, and ``vllm_xargs`` values
may only be strings, numbers or lists of them: there, ``"pse"`` is the JSON text of the same
dict (:func:`vllm_xargs` writes it). A request without ``"pse"`` is not touched.

Per request, only options that shape the output are accepted; the limits (``max_states``,
``max_regex_length``, ``max_compile_seconds``, ``max_recursion_depth``, ``any_value_depth``)
stay the server's defaults, so a client cannot ask the server for an unbounded compile.

This module needs neither vLLM nor torch.

Example:
    >>> args = extra_args({"type": "integer"}, whitespace="compact")
    >>> args
    {'pse': {'json_schema': {'type': 'integer'}, 'options': {'whitespace': 'compact'}}}
    >>> request = request_from_extra_args(args)
    >>> request.kind, request.options.whitespace
    ('json_schema', 'compact')
    >>> request_from_extra_args(vllm_xargs(Regex("[0-9]+"))).constraint
    Regex(pattern='[0-9]+')
    >>> request_from_extra_args({"pse": {"regex": "a", "choice": ["b"]}})
    Traceback (most recent call last):
    ...
    pse_processors.errors.SchemaError: extra_args['pse'] must hold exactly one of 'json_schema', 'regex', 'choice', 'grammar', 'reasoning', 'delimited', 'tools'; got 'regex', 'choice'
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass
from typing import Any, Callable, Mapping, Optional

from .. import defaults
from ..compiler.compiler import Compiler
from ..compiler.options import CompileOptions, options_from
from ..constraints.schema import Schema
from ..constraints.spec import Choice, Grammar, Regex
from ..errors import ConstraintConflictError, PSEError, SchemaError
from ..matchers import HandoffMatcher, Matcher
from ..vocabulary.vocabulary import Vocabulary
from .structured import STRUCTURED, build, checkable, structured_spec

class RequestConflictError(ConstraintConflictError, ValueError):
    """A request's other settings (or the server's) make its constraint impossible to enforce:
    ``ignore_eos=True``, speculative decoding. A ``ValueError`` too, so vLLM answers HTTP 400."""


#: The key of ``extra_args`` (and ``vllm_xargs``) that holds a request's constraint.
KEY = "pse"
#: Options a request may set; the limits are the server's (see the module docstring).
REQUEST_OPTIONS = ("whitespace", "indent", "whitespace_pattern", "additional_properties", "property_order", "strict", "unknown_formats", "backend")


def _json_schema(value: Any) -> Any:
    if isinstance(value, str):  # a schema sent as JSON text (vllm_xargs): parsed here, so a bad one is named
        try:
            value = json.loads(value)
        except json.JSONDecodeError as exc:
            raise SchemaError(f"extra_args['pse']['json_schema'] is not valid JSON: {exc}", None) from exc
    if not isinstance(value, (dict, bool)):
        raise SchemaError(
            f"extra_args['pse']['json_schema'] must be a JSON Schema (an object or true/false), not {type(value).__name__}", None
        )
    return value


def _string(kind: str, wrap: Callable[[str], Any]) -> Callable[[Any], Any]:
    def build(value: Any) -> Any:
        if not isinstance(value, str):
            raise SchemaError(f"extra_args['pse'][{kind!r}] must be a string, not {type(value).__name__}", None)
        return wrap(value)

    return build


def _choice(value: Any) -> Choice:
    if not isinstance(value, (list, tuple)):
        raise SchemaError(f"extra_args['pse']['choice'] must be a list of strings, not {type(value).__name__}", None)
    return Choice(list(value))


#: Each kind of constraint a request may ask for: key -> builder of the constraint.
KINDS: dict[str, Callable[[Any], Any]] = {
    "json_schema": _json_schema,
    "regex": _string("regex", Regex),
    "choice": _choice,
    "grammar": _string("grammar", Grammar),
}
#: Every key a constraint may come under: the plain kinds, then structure in free text.
ALL_KINDS = (*KINDS, *STRUCTURED)


def _constraint(kind: str, value: Any) -> Any:
    return KINDS[kind](value) if kind in KINDS else build(kind, value, _inner)


def _one_kind(spec: Mapping, where: str, allowed: tuple, extra: tuple = ()) -> str:
    """The one constraint key of ``spec`` (``where`` names it in errors)."""
    unknown = [name for name in spec if name not in ALL_KINDS and name not in extra]
    if unknown:
        raise SchemaError(
            f"{where} has unknown keys {', '.join(map(repr, unknown))}; the keys are "
            f"{', '.join(map(repr, allowed + extra))}",
            None,
        )
    kinds = [name for name in ALL_KINDS if name in spec]
    if len(kinds) != 1 or kinds[0] not in allowed:
        raise SchemaError(
            f"{where} must hold exactly one of {', '.join(map(repr, allowed))}; got {', '.join(map(repr, kinds)) or 'none'}",
            None,
        )
    return kinds[0]


def _inner(value: Any, where: str, structured: tuple) -> Any:
    """A nested constraint (a Reasoning's answer, a Delimited's constraint): ``{"json_schema": ...}``-style."""
    if not isinstance(value, Mapping):
        raise SchemaError(f"{where} must be an object such as {{'json_schema': {{...}}}}, not {type(value).__name__}", None)
    kind = _one_kind(value, where, (*KINDS, *structured))
    return _constraint(kind, value[kind])


@dataclass(frozen=True)
class ConstraintRequest:
    """One request's constraint, read from its ``extra_args``.

    Attributes:
        kind: the key it came under (``"json_schema"``, ``"regex"``, ``"choice"``, ``"grammar"``,
            ``"reasoning"``, ``"delimited"``, ``"tools"``).
        constraint: what :func:`pse_processors.compile` takes (a schema dict, ``Regex``, ``Reasoning``...).
        options: the :class:`~pse_processors.CompileOptions` it is compiled with.
        key: a canonical text of all three: requests with equal keys share one compiled matcher.
    """

    kind: str
    constraint: Any
    options: CompileOptions
    key: str


def request_from_extra_args(extra: Optional[Mapping[str, Any]]) -> Optional[ConstraintRequest]:
    """The constraint that ``extra`` (a request's ``extra_args``) asks for, or ``None`` without ``"pse"``.

    Raises:
        SchemaError: ``extra["pse"]`` is malformed (not one known constraint, bad options...),
            or the constraint itself is (a bad regex, a choice that is not a list of strings).
    """
    if not extra or KEY not in extra:
        return None
    spec = extra[KEY]
    if isinstance(spec, str):  # vllm_xargs: the dict as JSON text
        try:
            spec = json.loads(spec)
        except json.JSONDecodeError as exc:
            raise SchemaError(f"extra_args['pse'] is a string but not valid JSON: {exc}", None) from exc
    if not isinstance(spec, Mapping):
        raise SchemaError(
            f"extra_args['pse'] must be an object such as {{'json_schema': {{...}}}} (or its JSON text), not {type(spec).__name__}",
            None,
        )
    kind = _one_kind(spec, "extra_args['pse']", ALL_KINDS, ("options",))
    constraint = _constraint(kind, spec[kind])
    options = _options(spec.get("options"))
    key = json.dumps([kind, spec[kind] if kind != "json_schema" else constraint, dataclasses.asdict(options)],
                     ensure_ascii=False, default=repr)
    return ConstraintRequest(kind, constraint, options, key)


def _options(raw: Any) -> CompileOptions:
    if raw is None:
        return CompileOptions()
    if isinstance(raw, str):
        try:
            raw = json.loads(raw)
        except json.JSONDecodeError as exc:
            raise SchemaError(f"extra_args['pse']['options'] is a string but not valid JSON: {exc}", None) from exc
    if not isinstance(raw, Mapping):
        raise SchemaError(f"extra_args['pse']['options'] must be an object, not {type(raw).__name__}", None)
    refused = [name for name in raw if name not in REQUEST_OPTIONS]
    if refused:
        raise SchemaError(
            f"extra_args['pse']['options'] may not set {', '.join(map(repr, refused))}; a request may set "
            f"{', '.join(REQUEST_OPTIONS)} (the limits are the server's)",
            None,
        )
    try:
        return options_from(None, dict(raw))
    except (TypeError, ValueError) as exc:
        raise SchemaError(f"extra_args['pse']['options']: {exc}", None) from exc


def extra_args(constraint: Any, options: Optional[CompileOptions] = None, **option_kwargs: Any) -> dict:
    """``{"pse": {...}}`` for ``SamplingParams(extra_args=...)``: plain JSON values only.

    ``constraint`` is a JSON Schema (dict or JSON text), a Pydantic model class (its JSON
    Schema is sent), a :class:`~pse_processors.Schema`, ``Regex``, ``Choice``, ``Grammar``,
    ``Reasoning``, ``Delimited`` or ``Tools``.
    ``options`` / ``option_kwargs`` are sent when they differ from the defaults (only
    :data:`REQUEST_OPTIONS` may).
    """
    spec = _spec_of(constraint)
    chosen = options_from(options, option_kwargs)
    default = CompileOptions()
    changed = {f.name: getattr(chosen, f.name) for f in dataclasses.fields(chosen) if getattr(chosen, f.name) != getattr(default, f.name)}
    if changed:
        spec["options"] = changed
    return {KEY: spec}


def _spec_of(constraint: Any) -> dict:
    """``{kind: value}`` of any constraint :func:`extra_args` takes (plain JSON)."""
    if isinstance(constraint, Schema):
        constraint = constraint.constraint
    structured = structured_spec(constraint, _spec_of)
    if structured is not None:
        return structured
    if isinstance(constraint, Regex):
        spec: dict = {"regex": constraint.pattern}
    elif isinstance(constraint, Choice):
        spec = {"choice": list(constraint.choices)}
    elif isinstance(constraint, Grammar):
        spec = {"grammar": constraint.lark}
    elif isinstance(constraint, type) and hasattr(constraint, "model_json_schema"):
        spec = {"json_schema": constraint.model_json_schema()}
    elif isinstance(constraint, (dict, bool)):
        spec = {"json_schema": constraint}
    elif isinstance(constraint, str):
        spec = {"json_schema": _json_schema(constraint)}
    else:
        raise TypeError(
            "constraint must be a JSON Schema (dict or str), a Pydantic model class, Regex(...), Choice([...]), "
            f"Grammar(...), Reasoning(...), Delimited(...) or Tools(...), not {type(constraint).__name__}"
        )
    return spec


def vllm_xargs(constraint: Any, options: Optional[CompileOptions] = None, **option_kwargs: Any) -> dict:
    """``{"pse": "<JSON text>"}`` for the OpenAI server's ``extra_body={"vllm_xargs": ...}``
    (whose values may only be strings, numbers or lists); same arguments as :func:`extra_args`."""
    return {KEY: json.dumps(extra_args(constraint, options, **option_kwargs)[KEY], ensure_ascii=False)}


# -- checking a request where no tokenizer is at hand (vLLM's front end) ---------------------------

#: Every byte as a token of its own, and EOS: a vocabulary that can spell any text. Compiling
#: against it runs every stage that does not depend on the model's tokenizer.
_BYTES = Vocabulary([bytes([b]) for b in range(256)] + [None], eos_token_ids=[256])


def check_request(request: ConstraintRequest) -> Matcher:
    """Compile ``request`` against a vocabulary of single bytes: the schema compiler, the regex
    or grammar and the limits run as they will for the model, without its tokenizer.

    vLLM's front end (``validate_params``) has no tokenizer; this raises there what compiling
    for the model would raise, so a bad constraint becomes an HTTP 400 and never reaches the
    engine. A new JSON Schema's byte automaton is not built here (as in the engine, the build is
    deferred until llguidance has computed ``defaults.VLLM_HANDOFF_AFTER_MASKS`` masks, and this
    matcher computes one): the check costs milliseconds. The returned matcher also checks
    finished outputs (:mod:`.outputs`).

    Raises:
        PSEError: the constraint cannot be compiled (its subclass names the cause).
    """
    try:
        compiler = Compiler(_BYTES, request.options, handoff_after=defaults.VLLM_HANDOFF_AFTER_MASKS)
        matcher = compiler.compile(checkable(request.constraint))
    except PSEError:
        raise
    except (TypeError, ValueError) as exc:  # anything else a bad value can raise: still the request's fault
        raise SchemaError(f"extra_args['pse'] cannot be compiled: {exc}", None) from exc
    if isinstance(matcher, HandoffMatcher):  # its masks are never used here, should its automaton be built
        matcher.precompute = False
    return matcher


def byte_ids(text: str) -> list[int]:
    """``text`` as ids of the single-byte vocabulary of :func:`check_request`."""
    return list(text.encode("utf-8"))
