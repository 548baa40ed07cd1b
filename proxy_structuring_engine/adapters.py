"""``proxy_structuring_engine.adapters``: the adapters of :mod:`pse_processors.adapters`.

Importing this module needs no framework; an adapter whose framework is missing raises an
ImportError naming the extra to install when it is constructed.
"""

from __future__ import annotations

from typing import Any

from pse_processors import adapters as _adapters
from pse_processors.adapters import FrameworkAdapter

__all__ = list(_adapters.__all__)


def __getattr__(name: str) -> Any:
    return getattr(_adapters, name)
