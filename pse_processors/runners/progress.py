"""What a runner reports its slow steps (a model conversion, a load) to.

The command line passes its progress bars (:class:`pse_processors.cli.progress.Progress`);
library callers such as Ray pass nothing and get :data:`SILENT`.

Example:
    >>> from pse_processors.runners.progress import SILENT
    >>> with SILENT.task("loading the model"):
    ...     pass
"""

from __future__ import annotations

import contextlib
from typing import ContextManager, Iterator, Protocol


class TaskProgress(Protocol):
    """Shows a step of unknown length while the ``with`` block runs."""

    def task(self, description: str, delay: float = 1.0) -> ContextManager[None]:
        """A context manager around the step; ``delay``: show it only when the step lasts longer."""


class _Silent:
    """Shows nothing."""

    @contextlib.contextmanager
    def task(self, description: str, delay: float = 1.0) -> Iterator[None]:
        yield


#: The progress of a runner nobody watches.
SILENT: TaskProgress = _Silent()
