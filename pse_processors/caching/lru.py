"""A small, thread-safe least-recently-used cache bounded by the total size of its values."""

from __future__ import annotations

import threading
from collections import OrderedDict
from typing import Any, Callable, Hashable


class SizedLRU:
    """Keeps values until their sizes add up to more than ``max_bytes``, then drops the oldest.

    Example:
        >>> cache = SizedLRU(max_bytes=10, size_of=len)
        >>> cache.put("a", b"123456"); cache.put("b", b"123456")
        >>> cache.get("a") is None, cache.get("b")
        (True, b'123456')
    """

    def __init__(self, max_bytes: int, size_of: Callable[[Any], int]) -> None:
        self.max_bytes = max_bytes
        self._size_of = size_of
        self._items: "OrderedDict[Hashable, Any]" = OrderedDict()
        self.total_bytes = 0
        self._lock = threading.Lock()  # generate() may run in several threads on one grammar

    def __len__(self) -> int:
        return len(self._items)

    def get(self, key: Hashable) -> Any:
        with self._lock:
            value = self._items.get(key)
            if value is not None:
                self._items.move_to_end(key)
            return value

    def put(self, key: Hashable, value: Any) -> None:
        with self._lock:
            if key in self._items:
                self.total_bytes -= self._size_of(self._items.pop(key))
            self._items[key] = value
            self.total_bytes += self._size_of(value)
            while self.total_bytes > self.max_bytes and len(self._items) > 1:
                _, dropped = self._items.popitem(last=False)
                self.total_bytes -= self._size_of(dropped)
