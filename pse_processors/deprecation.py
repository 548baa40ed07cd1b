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

import warnings
from typing import Any, Callable


def deprecated_names(module: str, names: dict[str, tuple[Any, str]]) -> Callable[[str], Any]:
    """A module ``__getattr__`` serving ``names`` (old name -> (object, what to use instead))."""

    def __getattr__(name: str) -> Any:
        if name not in names:
            raise AttributeError(f"module {module!r} has no attribute {name!r}")
        value, advice = names[name]
        warnings.warn(f"{module}.{name} is deprecated: use {advice}", DeprecationWarning, stacklevel=2)
        return value

    return __getattr__
