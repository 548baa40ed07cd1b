"""Deprecated import paths: ``pse_processors.core.*`` moved to the stage packages in 0.2.

Each old module path is an alias of its new home (the same module object), imported on
first use with a ``DeprecationWarning`` that names the new path::

    >>> import warnings
    >>> with warnings.catch_warnings(record=True) as caught:
    ...     warnings.simplefilter("always")
    ...     from pse_processors.core.vocabulary import well_known_eos_ids
    >>> import pse_processors.vocabulary.vocabulary as new
    >>> well_known_eos_ids is new.well_known_eos_ids, "pse_processors.vocabulary" in str(caught[-1].message)
    (True, True)
"""

from __future__ import annotations

import importlib
import importlib.abc
import importlib.util
import sys
import warnings
from types import ModuleType
from typing import Any, Optional, Sequence

#: Old module (under ``pse_processors.core``) -> its new home.
MOVED = {
    "errors": "pse_processors.errors",
    "json_schema": "pse_processors.json_schema",
    "constraints": "pse_processors.constraints.spec",
    "schema": "pse_processors.constraints.schema",
    "vocabulary": "pse_processors.vocabulary.vocabulary",
    "token_trie": "pse_processors.vocabulary.token_trie",
    "llg_tokenizer": "pse_processors.vocabulary.llg_tokenizer",
    "pickling": "pse_processors.compiler.recipes",
    "lru": "pse_processors.caching.lru",
    "atomic": "pse_processors.caching.store",
    "byte_automaton": "pse_processors.matchers.byte_automaton",
    "tables": "pse_processors.matchers.dense_automaton",
    "grammar": "pse_processors.matchers.automaton",
    "pushdown": "pse_processors.matchers.llguidance",
    "handoff": "pse_processors.matchers.handoff",
    "engine_choice": "pse_processors.compiler.backends",
    "regex_cache": "pse_processors.compiler.regexes",
    "cache": "pse_processors.compiler.compiler",
    "prefix_states": "pse_processors.runtime.prefix_states",
    "row_checks": "pse_processors.runtime.row_checks",
    "device_tables": "pse_processors.runtime.device_tables",
    "results": "pse_processors.runtime.results",
}


def _new_name(fullname: str) -> Optional[str]:
    prefix = __name__ + "."
    if not fullname.startswith(prefix):
        return None
    head, _, rest = fullname[len(prefix):].partition(".")
    target = MOVED.get(head)
    if target is None:
        return None
    return target + ("." + rest if rest else "")


class _AliasLoader(importlib.abc.Loader):
    def __init__(self, target: str) -> None:
        self.target = target

    def create_module(self, spec: Any) -> ModuleType:
        warnings.warn(
            f"{spec.name} moved to {self.target}; the old path is deprecated and will be removed in 0.3",
            DeprecationWarning, stacklevel=2,
        )
        return importlib.import_module(self.target)

    def exec_module(self, module: ModuleType) -> None:
        pass  # the target module is already executed


class _AliasFinder(importlib.abc.MetaPathFinder):
    def find_spec(self, fullname: str, path: Optional[Sequence[str]], target: Any = None) -> Any:
        new = _new_name(fullname)
        if new is None:
            return None
        return importlib.util.spec_from_loader(fullname, _AliasLoader(new))


if not any(isinstance(finder, _AliasFinder) for finder in sys.meta_path):
    sys.meta_path.insert(0, _AliasFinder())


def __getattr__(name: str) -> Any:
    if name in MOVED:
        return importlib.import_module(f"{__name__}.{name}")
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
