"""One runner per framework: loads a model and generates constrained outputs for a list of prompts.

The registry maps ``--framework`` to ``(runner module, the pse_processors module it needs)``. A
new framework is one entry here and one module with a ``Runner`` class that has the
:class:`Runner` protocol's methods.
"""

from __future__ import annotations

import importlib
import importlib.util
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Optional, Protocol, Sequence, Union

from ..constraints.spec import Constraint
from .errors import UsageError
from .progress import Progress

#: framework -> (runner module, the pse_processors module that framework's support lives in)
#: framework -> (its runner module, the packages it needs, the pip extra that installs them)
RUNNERS: dict[str, tuple[str, tuple[str, ...], str]] = {
    "torch": ("pse_processors.cli.torch_runner", ("torch", "transformers"), "torch"),
    "mlx": ("pse_processors.cli.mlx_runner", ("mlx", "mlx_lm"), "mlx"),
}


@dataclass(frozen=True)
class Settings:
    """Generation settings shared by every row of a run."""

    max_new_tokens: int = 256
    temperature: float = 0.0  # 0: greedy
    seed: Optional[int] = None


class RowError(Exception):
    """One row could not be generated (prompt too long, output cut off); the run goes on."""


class Runner(Protocol):
    """What a framework runner provides to the commands."""

    def prepare(self, constraint: Constraint, compile_options: dict) -> Any:
        """Compile ``constraint`` for this runner's tokenizer; the result is passed to :meth:`generate`."""

    def generate(self, prepared: Any, prompts: Sequence[str], settings: Settings) -> list[Union[Any, RowError]]:
        """One parsed value (or a :class:`RowError`) per prompt, in order."""


def _installed(package: str) -> bool:
    try:
        return importlib.util.find_spec(package) is not None
    except (ImportError, ValueError):  # a broken or blocked install counts as missing
        return False


def available() -> tuple[str, ...]:
    return tuple(RUNNERS)


def load_runner(framework: str, model: Optional[str], progress: Progress, threads: Optional[int] = None) -> Runner:
    """The runner for ``framework`` with ``model`` (a local model folder; None: the embedded SmolLM2).

    ``threads``: CPU threads for the framework (None: its default)."""
    entry = RUNNERS.get(framework)
    if entry is None:
        raise UsageError(f"unknown --framework {framework!r}; known: {', '.join(RUNNERS)}")
    runner_module, needs, extra = entry
    missing = [name for name in needs if not _installed(name)]
    if missing:
        raise UsageError(
            f"--framework {framework} needs {' and '.join(missing)}, which is not installed: "
            f"pip install 'pse-processors[{extra}]'"
        )
    if model is not None and not Path(model).expanduser().is_dir():
        raise UsageError(f"--model {model!r} is not a folder (give a local model folder, e.g. from save_pretrained)")
    try:
        module = importlib.import_module(runner_module)
    except ImportError as exc:
        raise UsageError(f"--framework {framework} cannot be used here: {exc}") from None
    if threads is not None and threads < 1:
        raise UsageError("--threads must be at least 1")
    return module.Runner(None if model is None else Path(model).expanduser(), progress, threads=threads)
