"""pse_processors: structured generation inside the frameworks' own generation loops.

The core (vocabulary, JSON Schema compiler, compiled grammar, caches) needs only numpy and
outlines-core. Framework pieces are imported on first use, so ``import pse_processors``
works with no ML framework installed::

    >>> import pse_processors as pse
    >>> vocab = pse.Vocabulary([b"yes", b"no", b"y", b"es", None], eos_token_ids=[4])
    >>> grammar = pse.compile(pse.Choice(["yes", "no"]), vocab)
    >>> grammar.accepts([0, 4]), grammar.accepts([2, 3, 4]), grammar.accepts([2, 4])
    (True, True, False)
"""

from __future__ import annotations

import importlib
import importlib.util
import logging
from typing import Any

from .compiler import CompileOptions, Compiler, cache_dir, clear_memory_cache, compile
from .constraints.spec import Choice, Grammar, Regex
from .errors import (
    CompileLimitError,
    ConstraintConflictError,
    InvalidLogitsError,
    InvalidOutputError,
    PSEError,
    SchemaError,
    UnsatisfiableConstraintError,
    UnsupportedRegexError,
    UnsupportedSchemaError,
    VocabularyError,
)
from .matchers.base import Matcher
from .json_schema import SchemaOptions, json_schema_to_grammar, json_schema_to_regex
from .constraints.schema import Schema
from .constraints.freetext import Delimited, Reasoning
from .constraints.tools import Tools
from .runtime.structured import StructuredOutput, ToolCall
from .vocabulary.vocabulary import Vocabulary

from .version import __version__

logging.getLogger(__name__).addHandler(logging.NullHandler())

# Framework-specific names, imported lazily: name -> module.
_LAZY = {
    "PSELogitsProcessor": ".torch",
    "StructuringEngine": ".engine",
    "PyTorchAdapter": ".adapters",
    "TensorFlowAdapter": ".adapters",
    "JAXAdapter": ".adapters",
    "FrameworkAdapter": ".adapters",
    "MLXAdapter": ".adapters",
    "TFPSELogitsProcessor": ".tf",
    "FlaxPSELogitsProcessor": ".flax",
    "MLXPSELogitsProcessor": ".mlx",
}
# What each lazy module needs, for the ImportError hint.
_NEEDS = {
    ".tf": ("TensorFlow, tf-keras and transformers 4.x", "tf"),
    ".flax": ("JAX, Flax and transformers 4.x", "flax"),
    ".mlx": ("MLX and mlx-lm", "mlx"),
}
# The packages each lazy module imports, and whether it needs transformers 4.x (TF and Flax
# left transformers 5): what ``__all__`` checks without importing anything heavy.
_FRAMEWORKS = {
    ".torch": (("torch", "transformers"), False),
    ".tf": (("tensorflow", "tf_keras", "transformers"), True),
    ".flax": (("jax", "flax", "transformers"), True),
    ".mlx": (("mlx", "mlx_lm"), False),
}


def _importable(module: str) -> bool:
    """Whether the lazy ``module``'s frameworks are installed (found, not imported)."""
    packages, transformers_4 = _FRAMEWORKS.get(module, ((), False))
    try:
        if any(importlib.util.find_spec(name) is None for name in packages):
            return False
        if transformers_4:
            from importlib.metadata import version

            return int(version("transformers").split(".")[0]) < 5
    except (ImportError, ValueError):  # a broken or blocked install counts as missing
        return False
    return True


_CORE = [
    "Choice", "CompileLimitError", "CompileOptions", "Compiler", "ConstraintConflictError", "Delimited", "Grammar",
    "InvalidLogitsError", "InvalidOutputError", "Matcher", "PSEError", "Reasoning", "Regex", "Schema", "SchemaError", "SchemaOptions",
    "StructuredOutput", "ToolCall", "Tools", "UnsatisfiableConstraintError", "UnsupportedRegexError", "UnsupportedSchemaError",
    "Vocabulary", "VocabularyError", "cache_dir", "clear_memory_cache", "compile",
    "json_schema_to_grammar", "json_schema_to_regex",
]
# Every public name, its framework installed or not (``pse_processors.X`` then names the extra to install).
_PUBLIC_NAMES = (*_CORE, *_LAZY)
# ``from pse_processors import *`` imports every name of __all__: only those whose framework is here.
__all__ = [*_CORE, *(name for name, module in _LAZY.items() if _importable(module))]


#: Deprecated (0.1) names: name -> (the object's module, its name there, what to use instead).
_DEPRECATED = {"CompiledGrammar": (".matchers.base", "Matcher", "pse_processors.Matcher")}


def __getattr__(name: str) -> Any:
    if name in _DEPRECATED:
        import warnings

        module_name, new, advice = _DEPRECATED[name]
        warnings.warn(f"pse_processors.{name} is deprecated: use {advice}", DeprecationWarning, stacklevel=2)
        return getattr(importlib.import_module(module_name, __name__), new)
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'pse_processors' has no attribute {name!r}")
    try:
        imported = importlib.import_module(module, __name__)
    except ImportError as exc:
        needs, extra = _NEEDS.get(module, ("PyTorch and transformers", "torch"))
        raise ImportError(
            f"pse_processors.{name} needs {needs} ({exc}); install them with "
            f"`pip install 'pse-processors[{extra}]'`"
        ) from exc
    return getattr(imported, name)
