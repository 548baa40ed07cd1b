"""One device table of additive masks per matcher and context: a batch's masks are one gather.

An eager processor's rows each need the mask of their state's allowed set. Instead of one
cached device tensor per mask id, stacked row by row on every call, the masks of one context
(device, dtype, logits width) live as the rows of one ``[rows, width]`` table: a call turns its
states into row numbers on the host (dictionary lookups, no tensor touched) and the framework
gathers them with one indexed read. A mask id seen for the first time gets a row, written once.

The table is bounded like every other cache (:class:`~pse_processors.caching.lru.SizedLRU`,
``defaults.DEVICE_MASK_CACHE_BYTES``): past it, the least recently used mask id gives up its
row. The framework supplies three operations (:class:`TableOps`); this module is framework-free.

Example (numpy as the "device"):
    >>> import numpy as np, pse_processors as pse
    >>> matcher = pse.compile(pse.Choice(["ab", "b"]), pse.Vocabulary([b"a", b"b", None], eos_token_ids=[2]))
    >>> ops = TableOps(
    ...     allocate=lambda rows, old: np.concatenate([old, np.zeros((rows - len(old), 3), np.float32)]) if old is not None
    ...     else np.zeros((rows, 3), np.float32),
    ...     write=lambda table, row, additive: table.__setitem__(row, additive))
    >>> table = MaskTable(matcher, 3, ops, max_bytes=1 << 20, row_bytes=12)
    >>> rows = table.rows([matcher.initial_state, matcher.walk([0])])
    >>> table.table[rows].tolist()
    [[0.0, 0.0, -inf], [-inf, 0.0, -inf]]
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from typing import Any, Callable, Optional

import numpy as np

from ..caching.lru import SizedLRU

# Rows allocated at first; the table doubles until its byte budget.
_FIRST_ROWS = 16


@dataclass(frozen=True)
class TableOps:
    """What a framework does to its table: ``allocate(rows, old)`` returns a table of ``rows`` rows
    holding ``old``'s rows first (``old`` is ``None`` at first), ``write(table, row, additive)``
    sets one row from a float32 numpy 0/-inf mask."""

    allocate: Callable[[int, Any], Any]
    write: Callable[[Any, int, np.ndarray], None]


class MaskTable:
    """The additive masks of ``matcher`` at logits ``width`` in one context; see the module docstring.

    Args:
        matcher: the :class:`~pse_processors.Matcher` (its ``mask_id`` and ``allowed_mask``).
        width: the logits' width.
        ops: the framework's :class:`TableOps`.
        max_bytes: the table's budget; at least as many rows as one call needs are always kept.
        row_bytes: bytes of one row on the device.
    """

    def __init__(self, matcher: Any, width: int, ops: TableOps, max_bytes: int, row_bytes: int) -> None:
        self.matcher, self.width, self.ops = matcher, width, ops
        self.max_rows = max(1, max_bytes // max(1, row_bytes))
        self.table: Any = None
        self._capacity = 0  # rows allocated
        self._next = 0  # rows handed out so far
        self._free: list[int] = []
        self._lock = threading.Lock()
        # mask id -> row; an evicted id hands its row back (the LRU is the bound, by count)
        self._row_of = SizedLRU(max_items=self.max_rows, on_evict=lambda _mask_id, row: self._free.append(row))

    def __len__(self) -> int:
        """Masks held."""
        return len(self._row_of)

    def rows(self, states: list[int]) -> list[int]:
        """The table row of each state's mask, writing the rows of masks not held yet."""
        ids = self.matcher.mask_ids(states)
        with self._lock:
            get = self._row_of.get
            # one read per distinct id (a batch shares few), which touches this call's ids: an
            # eviction below never takes one
            row_of = {m: get(m) for m in set(ids)}
            if None not in row_of.values():
                return list(map(row_of.__getitem__, ids))
            found = [row_of[m] for m in ids]
            needed = len(row_of)
            if needed > (self._row_of.max_items or 0):  # one call needs more masks than the budget: keep them all
                self._row_of.max_items = needed
            for i, (m, state) in enumerate(zip(ids, states)):
                row = get(m)
                if row is None:
                    row = self._new_row()
                    allowed = self.matcher.allowed_mask(state, self.width)
                    self.ops.write(self.table, row, np.where(allowed, np.float32(0), np.float32(-np.inf)))
                    self._row_of.put(m, row)  # may evict the oldest id: its row is free for the next one
                found[i] = row
        return found  # type: ignore[return-value]

    def _new_row(self) -> int:
        if self._free:
            return self._free.pop()
        row, self._next = self._next, self._next + 1
        if row >= self._capacity:  # double, up to the budget (plus the one row an eviction frees after)
            capacity = max(row + 1, min(max(_FIRST_ROWS, 2 * self._capacity), (self._row_of.max_items or 0) + 1))
            self.table = self.ops.allocate(capacity, self.table)
            self._capacity = capacity
        return row
