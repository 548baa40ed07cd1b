"""Progress bars on stderr (tqdm), so stdout stays machine-readable; ``--quiet`` turns them off."""

from __future__ import annotations

import contextlib
import sys
import threading
from typing import Any, Iterator, Optional

from tqdm import tqdm


class Progress:
    """Makes the command's progress bars; all of them are silent when ``quiet`` is true.

    Example:
        >>> progress = Progress(quiet=True)
        >>> with progress.task("compiling"):
        ...     pass
        >>> bar = progress.rows(total=3)
        >>> bar.update(3); bar.close()
    """

    def __init__(self, quiet: bool = False) -> None:
        self.quiet = quiet

    @contextlib.contextmanager
    def task(self, description: str, delay: float = 1.0) -> Iterator[None]:
        """A spinner with the elapsed time, for a step of unknown length (a model conversion, a
        long compile). It appears only if the step lasts longer than ``delay`` seconds."""
        if self.quiet:
            yield
            return
        bar = tqdm(desc=description, total=None, bar_format="{desc}: {elapsed}", delay=delay, file=sys.stderr, leave=False)
        stop = threading.Event()

        def tick() -> None:  # tqdm redraws only on update(); a step of unknown length has none
            while not stop.wait(0.5):
                bar.refresh()

        # Redraw only a terminal: in a log file each redraw would be one more line.
        ticker = threading.Thread(target=tick, daemon=True) if _interactive() else None
        if ticker is not None:
            ticker.start()
        try:
            yield
        finally:
            stop.set()
            if ticker is not None:
                ticker.join()
            bar.close()

    def rows(self, total: Optional[int], initial: int = 0, description: str = "rows") -> Any:
        """A bar over input rows, with the rate (rows/s) and the ETA."""
        return tqdm(
            total=total, initial=initial, desc=description, unit="row", file=sys.stderr, disable=self.quiet,
            dynamic_ncols=True, smoothing=0.1, mininterval=0.1 if _interactive() else 5.0,
        )


def _interactive() -> bool:
    isatty = getattr(sys.stderr, "isatty", None)
    return bool(isatty and isatty())
