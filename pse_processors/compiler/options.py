"""The compile options: one frozen object, parsed and validated once, passed everywhere.

Processors, the engine, the CLI and Ray take ``options=CompileOptions(...)`` (or the same
names as keyword arguments, merged into one object by :meth:`CompileOptions.merge`); none of
them restates the options or their defaults, which live in :mod:`pse_processors.defaults`.

Example:
    >>> from pse_processors import CompileOptions
    >>> options = CompileOptions(whitespace="compact", backend="dfa")
    >>> options.backend, options.merge(max_recursion_depth=5).max_recursion_depth
    ('dfa', 5)
    >>> CompileOptions.merge(None, colour="red")
    Traceback (most recent call last):
    ...
    TypeError: unknown compile option 'colour'; the options are: whitespace, indent, whitespace_pattern, additional_properties, property_order, strict, max_recursion_depth, any_value_depth, max_regex_length, max_compile_seconds, unknown_formats, max_states, backend
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any, Optional

from .. import defaults, deprecation
from ..json_schema import SchemaOptions

#: The back ends: the byte automaton, llguidance, or the choice between them.
BACKENDS = ("auto", "dfa", "llguidance")
#: Deprecated spellings (0.1): ``engine=`` for ``backend=``, ``"grammar"`` for ``"llguidance"``.
_OLD_BACKEND_NAMES = {"grammar": "llguidance"}


@dataclass(frozen=True)
class CompileOptions:
    """How a constraint is compiled: the JSON Schema compiler's options, the limits, the back end.

    Args:
        whitespace, indent, whitespace_pattern, additional_properties, property_order, strict,
            max_recursion_depth, any_value_depth, max_regex_length, max_compile_seconds, unknown_formats: the JSON Schema
            compiler's options, see :class:`~pse_processors.SchemaOptions`.
        max_states: refuse constraints whose byte automaton has more states.
        backend: ``"auto"`` (default), ``"dfa"`` (the byte automaton) or ``"llguidance"`` (the
            Lark grammar run lazily by llguidance); see :mod:`~pse_processors.compiler.backends`.
    """

    whitespace: str = defaults.WHITESPACE
    indent: int = defaults.INDENT
    whitespace_pattern: Optional[str] = None
    additional_properties: str = defaults.ADDITIONAL_PROPERTIES
    property_order: str = defaults.PROPERTY_ORDER
    strict: bool = defaults.STRICT
    max_recursion_depth: int = defaults.MAX_RECURSION_DEPTH
    any_value_depth: int = defaults.ANY_VALUE_DEPTH
    max_regex_length: int = defaults.MAX_REGEX_LENGTH
    max_compile_seconds: float = defaults.MAX_COMPILE_SECONDS
    unknown_formats: str = defaults.UNKNOWN_FORMATS
    max_states: int = defaults.MAX_STATES
    backend: str = defaults.BACKEND

    def __post_init__(self) -> None:
        backend = _OLD_BACKEND_NAMES.get(self.backend, self.backend)
        if backend != self.backend:
            deprecation.warn(f"backend={self.backend!r} is deprecated: use backend={backend!r}")
            object.__setattr__(self, "backend", backend)
        if self.backend not in BACKENDS:
            raise ValueError(f"backend must be one of {', '.join(map(repr, BACKENDS))}, not {self.backend!r}")
        if not isinstance(self.max_states, int) or self.max_states < 1:
            raise ValueError(f"max_states must be a positive int, not {self.max_states!r}")
        self.schema_options()  # validates the compiler's own options now, not at the first compile

    def schema_options(self) -> SchemaOptions:
        """The JSON Schema compiler's share of these options."""
        return SchemaOptions(**{f.name: getattr(self, f.name) for f in dataclasses.fields(SchemaOptions)})

    def recipe(self) -> dict:
        """The options as a plain dict (what a pickle keeps), without the back end."""
        return {f.name: getattr(self, f.name) for f in dataclasses.fields(self) if f.name != "backend"}

    def merge(self: Optional["CompileOptions"] = None, **overrides: Any) -> "CompileOptions":
        """These options (or the defaults, called on the class) with ``overrides`` applied.

        ``engine=`` is the deprecated name of ``backend=``; an unknown name raises ``TypeError``."""
        base = self if isinstance(self, CompileOptions) else CompileOptions()
        if "engine" in overrides:
            engine = overrides.pop("engine")
            if "backend" in overrides:
                raise TypeError("give backend= only (engine= is its deprecated name)")
            backend = _OLD_BACKEND_NAMES.get(engine, engine)
            deprecation.warn(f"engine={engine!r} is deprecated: use backend={backend!r}")
            overrides["backend"] = backend
        elif overrides.get("backend") in _OLD_BACKEND_NAMES:
            old = overrides["backend"]
            deprecation.warn(f"backend={old!r} is deprecated: use backend={_OLD_BACKEND_NAMES[old]!r}")
            overrides["backend"] = _OLD_BACKEND_NAMES[old]
        names = [f.name for f in dataclasses.fields(CompileOptions)]
        for name in overrides:
            if name not in names:
                raise TypeError(f"unknown compile option {name!r}; the options are: {', '.join(names)}")
        if not overrides:
            return base
        return dataclasses.replace(base, **overrides)


def options_from(options: Optional[CompileOptions], kwargs: dict) -> CompileOptions:
    """One :class:`CompileOptions` from an ``options=`` argument and loose keyword options."""
    if options is not None and not isinstance(options, CompileOptions):
        raise TypeError(f"options must be a CompileOptions, not {type(options).__name__}")
    return CompileOptions.merge(options, **kwargs)
