"""The masks of a vLLM batch: one device table of cached masks, applied to every constrained row at once.

Each distinct allowed set a matcher reaches (its mask id) is turned into a ``[width]`` bool
row of *forbidden* tokens once and kept in one ``[capacity, width]`` table on the logits'
device, shared by every request and constraint of the processor. A step gathers the table
rows of its constrained requests by index and fills the logits in one ``masked_fill_``:
no per-row Python work on the device, no unpacking of bitmasks, nothing for unconstrained
rows. The table grows by doubling up to ``defaults.DEVICE_MASK_CACHE_BYTES``; past that, the
masks least recently used (and not needed in this step) are overwritten.

A row whose allowed tokens were all ``-inf`` already (vLLM's ``min_tokens`` bans EOS before the
logits processors run, so a complete structure has nothing left) gets its allowed tokens back at
equal scores: sampling then still picks an allowed token, never an invalid one.

Example (a CPU table and a two-row batch, the second row unconstrained):
    >>> import torch, pse_processors as pse
    >>> matcher = pse.compile(pse.Regex("ab"), pse.Vocabulary([b"a", b"b", None], eos_token_ids=[2]))
    >>> masks = DeviceMasks(torch.device("cpu"))
    >>> logits = torch.zeros(2, 3)
    >>> masks.apply(logits, [0], [masks.slot(matcher, matcher.initial_state, 3)]).tolist()
    [[0.0, -inf, -inf], [0.0, 0.0, 0.0]]
"""

from __future__ import annotations

import logging
from collections import OrderedDict
from typing import Hashable, Iterable, Optional

import numpy as np
import torch

from .. import defaults
from ..matchers import Matcher

logger = logging.getLogger(__name__)

_NEG_INF = float("-inf")


class DeviceMasks:
    """Forbidden-token masks on one device, cached by (matcher, mask id), gathered per step.

    Args:
        device: the logits' device.
        max_bytes: the table's size bound (it may grow past it only to hold one step's masks).
    """

    def __init__(self, device: torch.device, max_bytes: int = defaults.DEVICE_MASK_CACHE_BYTES) -> None:
        self.device = device
        self.max_bytes = max_bytes
        self.width = 0
        self._table: Optional[torch.Tensor] = None
        self._slots: "OrderedDict[Hashable, int]" = OrderedDict()  # key -> table row, least recent first
        self._free: list[int] = []
        # Matchers whose masks are in the table, by id (kept alive so an id is never reused).
        self._owners: dict[int, list] = {}
        self._step_keys: set = set()
        self._checked: set = set()

    @property
    def table(self) -> Optional[torch.Tensor]:
        """The ``[capacity, width]`` bool table (True: forbidden), or ``None`` before the first mask."""
        return self._table

    def begin_step(self) -> None:
        """Start a step: masks used from now on are not overwritten until the next one."""
        self._step_keys = set()

    def slot(self, matcher: Matcher, state: int, width: int) -> int:
        """The table row of ``state``'s mask for logits ``width`` ids wide, filled on first use.

        Raises ``VocabularyError`` when the matcher's tokenizer has tokens past ``width`` (checked
        once per matcher and width)."""
        owner = matcher.mask_owner
        key = (id(owner), matcher.mask_id(state))
        if (key[0], width) not in self._checked:
            matcher.check_logits_width(width)
            self._checked.add((key[0], width))
        found = self._lookup(key, width)
        if found is not None:
            return found
        forbidden = ~matcher.allowed_mask(state, width)
        slot = self._store(key, forbidden, width)
        self._owners.setdefault(key[0], [owner, 0])[1] += 1
        return slot

    def stop_slot(self, stop_ids: Iterable[int], width: int) -> int:
        """The table row that allows only ``stop_ids`` (a request whose constraint failed)."""
        ids = tuple(sorted(i for i in stop_ids if 0 <= i < width))
        key = ("stop", ids)
        found = self._lookup(key, width)
        if found is not None:
            return found
        forbidden = np.ones(width, dtype=bool)
        forbidden[list(ids)] = False
        return self._store(key, forbidden, width)

    def _lookup(self, key: Hashable, width: int) -> Optional[int]:
        if width != self.width:  # another model width: start over (one processor serves one model)
            self._reset(width)
            return None
        slot = self._slots.get(key)
        if slot is not None:
            self._slots.move_to_end(key)
            self._step_keys.add(key)
        return slot

    def _reset(self, width: int) -> None:
        self.width = width
        self._table = None
        self._slots.clear()
        self._free.clear()
        self._owners.clear()

    def _store(self, key: Hashable, forbidden: np.ndarray, width: int) -> int:
        slot = self._free_slot(width)
        self._table[slot].copy_(torch.from_numpy(np.ascontiguousarray(forbidden)))  # type: ignore[index]
        self._slots[key] = slot
        self._step_keys.add(key)
        return slot

    def _free_slot(self, width: int) -> int:
        if self._free:
            return self._free.pop()
        table = self._table
        capacity = 0 if table is None else table.shape[0]
        limit = max(1, self.max_bytes // max(width, 1))
        if capacity < limit or all(key in self._step_keys for key in self._slots):
            grown = min(max(16, 2 * capacity), limit) if capacity < limit else 2 * capacity
            new = torch.ones((grown, width), dtype=torch.bool, device=self.device)
            if table is not None:
                new[:capacity].copy_(table)
            self._table = new
            self._free.extend(range(grown - 1, capacity, -1))
            return capacity
        # Full: overwrite the least recently used mask. Masks this step used were moved to the end,
        # and a table holding only those grew above, so this one is not needed in this step.
        key = next(iter(self._slots))
        slot = self._slots.pop(key)
        self._release(key)
        return slot

    def _release(self, key: Hashable) -> None:
        owner = self._owners.get(key[0]) if isinstance(key[0], int) else None  # type: ignore[index]
        if owner is not None:
            owner[1] -= 1
            if owner[1] <= 0:
                del self._owners[key[0]]  # type: ignore[index]

    def apply(self, logits: torch.Tensor, rows: list, slots: list) -> torch.Tensor:
        """Mask ``logits`` rows ``rows`` with table rows ``slots``, in place; other rows untouched."""
        table = self._table
        if not rows or table is None:
            return logits
        index = torch.tensor(slots, dtype=torch.long).to(self.device, non_blocking=True)
        forbidden = table.index_select(0, index)
        everything = len(rows) == logits.shape[0] and rows == list(range(len(rows)))
        if everything:
            target = logits
        else:
            row_index = torch.tensor(rows, dtype=torch.long).to(logits.device, non_blocking=True)
            target = logits.index_select(0, row_index)
        target.masked_fill_(forbidden, _NEG_INF)
        # A row left with nothing (min_tokens banned EOS when only EOS is allowed): its allowed
        # tokens come back at equal scores. NaN rows are the model's and stay as they are.
        stuck = torch.isneginf(target.amax(dim=-1))
        if bool(stuck.any()):
            logger.debug("pse: %d rows had every allowed token at -inf; they sample among the allowed tokens", int(stuck.sum()))
            target[stuck] = torch.zeros_like(target[stuck]).masked_fill_(forbidden[stuck], _NEG_INF)
        if not everything:
            logits.index_copy_(0, row_index, target)
        return logits
