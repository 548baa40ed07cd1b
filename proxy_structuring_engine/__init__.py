"""The Proxy Structuring Engine import path: a thin alias of :mod:`pse_processors`.

``from proxy_structuring_engine import StructuringEngine, Schema`` and
``from proxy_structuring_engine.adapters import PyTorchAdapter, ...`` give the very objects of
:mod:`pse_processors`; it ships in the same distribution (``pse-processors``). Every other
public name of :mod:`pse_processors` is reachable here too::

    >>> import pse_processors, proxy_structuring_engine
    >>> proxy_structuring_engine.Schema is pse_processors.Schema
    True
"""

from __future__ import annotations

from typing import Any

import pse_processors
from pse_processors import Schema

# pse_processors.__all__ holds the names whose framework is installed, so `import *` works here too.
__all__ = ["Schema", "StructuringEngine", *(n for n in pse_processors.__all__ if n not in ("Schema", "StructuringEngine"))]
__version__ = pse_processors.__version__


def __getattr__(name: str) -> Any:
    # Every public name, installed or not: one whose framework is missing raises pse_processors'
    # ImportError, which names the extra to install.
    if name in pse_processors._PUBLIC_NAMES:
        return getattr(pse_processors, name)  # lazily: StructuringEngine imports no framework, others may
    raise AttributeError(f"module 'proxy_structuring_engine' has no attribute {name!r}")
