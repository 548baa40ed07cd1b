"""``--framework``: the runner of :mod:`pse_processors.runners` for the chosen framework, checked
with the command line's messages (a missing package names the pip extra that installs it).

Example:
    >>> from pse_processors.cli.progress import Progress
    >>> load_runner("jax", None, Progress(quiet=True))
    Traceback (most recent call last):
    ...
    pse_processors.cli.errors.UsageError: unknown --framework 'jax'; known: torch, mlx
"""

from __future__ import annotations

from pathlib import Path
from typing import Optional

from ..runners import RUNNERS, Runner, TaskProgress, missing_packages, runner_class
from .errors import UsageError


def load_runner(framework: str, model: Optional[str], progress: TaskProgress, threads: Optional[int] = None) -> Runner:
    """The runner for ``framework`` with ``model`` (a local model folder; None: the embedded SmolLM2).

    ``threads``: CPU threads for the framework (None: its default)."""
    if framework not in RUNNERS:
        raise UsageError(f"unknown --framework {framework!r}; known: {', '.join(RUNNERS)}")
    missing = missing_packages(framework)
    if missing:
        raise UsageError(
            f"--framework {framework} needs {' and '.join(missing)}, which is not installed: "
            f"pip install 'pse-processors[{RUNNERS[framework][2]}]'"
        )
    if model is not None and not Path(model).expanduser().is_dir():
        raise UsageError(f"--model {model!r} is not a folder (give a local model folder, e.g. from save_pretrained)")
    try:
        cls = runner_class(framework)
    except ImportError as exc:
        raise UsageError(f"--framework {framework} cannot be used here: {exc}") from None
    if threads is not None and threads < 1:
        raise UsageError("--threads must be at least 1")
    return cls(None if model is None else Path(model).expanduser(), progress, threads=threads)
