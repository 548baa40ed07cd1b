"""The one least-recently-used cache of the package: thread-safe, bounded by size and by count.

Every in-memory cache (the compiler's matchers and specs, the host and device masks, the
live llguidance matchers) is a :class:`SizedLRU`; nothing else hand-rolls one.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from typing import Any, Callable, Hashable, Optional


class SizedLRU:
    """Keeps values until their sizes add up to more than ``max_bytes`` (or there are more than
    ``max_items``), then drops the oldest (telling ``on_evict``); the newest value is always kept.

    Example:
        >>> cache = SizedLRU(max_bytes=10, size_of=len)
        >>> cache.put("a", b"123456"); cache.put("b", b"123456")
        >>> cache.get("a") is None, cache.get("b"), "b" in cache
        (True, b'123456', True)
        >>> counted = SizedLRU(max_items=2)
        >>> for key in "xyz": counted.put(key, key)
        >>> sorted(counted.keys())
        ['y', 'z']
    """

    def __init__(
        self, max_bytes: Optional[int] = None, size_of: Optional[Callable[[Any], int]] = None, *, max_items: Optional[int] = None,
        on_evict: Optional[Callable[[Hashable, Any], None]] = None,
    ) -> None:
        self.max_bytes = max_bytes
        self.max_items = max_items
        self._size_of = size_of or (lambda _value: 0)
        self._on_evict = on_evict  # called with (key, value) for each entry dropped to stay in bounds
        self._items: "OrderedDict[Hashable, Any]" = OrderedDict()
        self.total_bytes = 0
        self._lock = threading.Lock()  # generate() may run in several threads on one matcher

    def __len__(self) -> int:
        return len(self._items)

    def __contains__(self, key: Hashable) -> bool:
        return key in self._items

    def keys(self) -> list:
        with self._lock:
            return list(self._items)

    def values(self) -> list:
        with self._lock:
            return list(self._items.values())

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
            while len(self._items) > 1 and (
                (self.max_bytes is not None and self.total_bytes > self.max_bytes)
                or (self.max_items is not None and len(self._items) > self.max_items)
            ):
                key_dropped, dropped = self._items.popitem(last=False)
                self.total_bytes -= self._size_of(dropped)
                if self._on_evict is not None:
                    self._on_evict(key_dropped, dropped)

    def setdefault(self, key: Hashable, value: Any) -> Any:
        """The value under ``key``, after storing ``value`` there if it had none."""
        with self._lock:
            found = self._items.get(key)
            if found is not None:
                self._items.move_to_end(key)
                return found
        self.put(key, value)
        return value

    def clear(self) -> None:
        with self._lock:
            self._items.clear()
            self.total_bytes = 0
