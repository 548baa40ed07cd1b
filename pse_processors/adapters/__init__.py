"""Framework adapters of :class:`~pse_processors.StructuringEngine`, one module per framework.

Importing this package needs no framework: each adapter module is imported on first access,
and an adapter whose framework is missing raises an ImportError naming the extra to install
when it is constructed::

    >>> from pse_processors.adapters import FrameworkAdapter, PyTorchAdapter, TensorFlowAdapter, JAXAdapter, MLXAdapter
    >>> issubclass(TensorFlowAdapter, FrameworkAdapter) and issubclass(JAXAdapter, FrameworkAdapter)
    True
"""

from __future__ import annotations

import importlib
from typing import Any

from .base import FrameworkAdapter, load_tokenizer_of, remember_tokenizer, require

# name -> module; no adapter module imports another one.
_ADAPTERS = {
    "PyTorchAdapter": ".torch",
    "TensorFlowAdapter": ".tf",
    "JAXAdapter": ".jax",
    "MLXAdapter": ".mlx",
}

__all__ = ["FrameworkAdapter", "load_tokenizer_of", "remember_tokenizer", "require", *_ADAPTERS]


def __getattr__(name: str) -> Any:
    module = _ADAPTERS.get(name)
    if module is None:
        raise AttributeError(f"module 'pse_processors.adapters' has no attribute {name!r}")
    return getattr(importlib.import_module(module, __name__), name)
