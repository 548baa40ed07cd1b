"""Deprecated names that still answer, each with a ``DeprecationWarning`` naming its replacement.

A module keeps its 0.1 names by setting ``__getattr__ = deprecated_names(__name__, {...})``
(PEP 562): the name is served, with the warning, only when someone asks for it::

    >>> import warnings
    >>> __getattr__ = deprecated_names("mymodule", {"Old": (int, "mymodule.New")})
    >>> with warnings.catch_warnings(record=True) as caught:
    ...     warnings.simplefilter("always")
    ...     __getattr__("Old") is int, str(caught[0].message)
    (True, 'mymodule.Old is deprecated: use mymodule.New')
"""

from __future__ import annotations

import sys
import warnings
from pathlib import Path
from typing import Any, Callable

_PACKAGES = tuple(str(Path(__file__).resolve().parents[1] / name) for name in ("pse_processors", "proxy_structuring_engine"))


def warn(message: str) -> None:
    """A ``DeprecationWarning`` attributed to the caller's code: the first frame outside the package,
    however deep inside it the old name was met (``compile`` -> options -> ...)."""
    level, frame = 2, sys._getframe(1)  # stacklevel 2 is the frame that called warn()
    while frame is not None and frame.f_code.co_filename.startswith(_PACKAGES):
        level, frame = level + 1, frame.f_back
    warnings.warn(message, DeprecationWarning, stacklevel=level)


def deprecated_names(module: str, names: dict[str, tuple[Any, str]]) -> Callable[[str], Any]:
    """A module ``__getattr__`` serving ``names`` (old name -> (object, what to use instead))."""

    def __getattr__(name: str) -> Any:
        if name not in names:
            raise AttributeError(f"module {module!r} has no attribute {name!r}")
        value, advice = names[name]
        warnings.warn(f"{module}.{name} is deprecated: use {advice}", DeprecationWarning, stacklevel=2)
        return value

    return __getattr__
