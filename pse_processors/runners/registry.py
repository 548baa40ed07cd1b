"""Which runner each framework has, and the packages it needs.

A new framework is one entry in :data:`RUNNERS` and one module with a ``Runner`` class that has
the :class:`~pse_processors.runners.base.Runner` protocol's methods.

Example:
    >>> from pse_processors.runners.registry import RUNNERS, available
    >>> available(), RUNNERS["mlx"][2]
    (('torch', 'mlx'), 'mlx')
"""

from __future__ import annotations

import importlib
import importlib.util

#: framework -> (its runner module, the packages it needs, the pip extra that installs them)
RUNNERS: dict[str, tuple[str, tuple[str, ...], str]] = {
    "torch": ("pse_processors.runners.torch_runner", ("torch", "transformers"), "torch"),
    "mlx": ("pse_processors.runners.mlx_runner", ("mlx", "mlx_lm"), "mlx"),
}


def available() -> tuple[str, ...]:
    """The framework names, installed or not."""
    return tuple(RUNNERS)


def _installed(package: str) -> bool:
    try:
        return importlib.util.find_spec(package) is not None
    except (ImportError, ValueError):  # a broken or blocked install counts as missing
        return False


def missing_packages(framework: str) -> list[str]:
    """The packages ``framework``'s runner needs that cannot be imported here.

    Raises:
        KeyError: an unknown framework.
    """
    return [name for name in RUNNERS[framework][1] if not _installed(name)]


def runner_class(framework: str) -> type:
    """``framework``'s ``Runner`` class (its module imported now).

    Raises:
        KeyError: an unknown framework.
        ImportError: the runner's packages cannot be imported.
    """
    return importlib.import_module(RUNNERS[framework][0]).Runner
