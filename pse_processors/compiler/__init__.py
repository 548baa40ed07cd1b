"""Stage 2: the compiler, the only compile path (``compiler.py``), with its options (``options.py``),
its stages (``regexes.py``: schema -> regex; ``backends.py``: the back-end choice and the
llguidance stage) and pickling as a recipe (``recipes.py``, which registers how matchers pickle)::

    >>> import pse_processors as pse
    >>> from pse_processors.compiler import Compiler, compile
    >>> compile is pse.compile
    True
"""

from __future__ import annotations

from . import recipes  # noqa: F401 - registers how matchers pickle
from .compiler import Compiler, cache_dir, clear_memory_cache, compile
from .options import BACKENDS, CompileOptions

__all__ = ["BACKENDS", "CompileOptions", "Compiler", "cache_dir", "clear_memory_cache", "compile"]
