"""Constrained generation over a list of prompts, one runner per framework: what the command line
and Ray share (chat template, batched ``generate``, context and cut-off checks), so
``pse-processors extract`` and :mod:`pse_processors.ray` produce the same values.

- ``base.py``: the :class:`Runner` protocol, :class:`Settings` and :class:`RowError`;
- ``prompts.py``: :func:`fill_template`;
- ``progress.py``: what a runner reports its slow steps to (silent by default);
- ``registry.py``: framework name -> runner class, and the packages each needs;
- ``torch_runner.py``, ``mlx_runner.py``: the runners.

Example:
    >>> from pse_processors.runners import Settings, available, fill_template
    >>> available(), Settings().max_new_tokens, fill_template("As JSON: {text}", "Bob is 42.")
    (('torch', 'mlx'), 256, 'As JSON: Bob is 42.')
"""

from __future__ import annotations

from .base import RowError, Runner, Settings
from .progress import SILENT, TaskProgress
from .prompts import fill_template
from .registry import RUNNERS, available, missing_packages, runner_class

__all__ = [
    "RUNNERS", "RowError", "Runner", "SILENT", "Settings", "TaskProgress", "available", "fill_template",
    "missing_packages", "runner_class",
]
