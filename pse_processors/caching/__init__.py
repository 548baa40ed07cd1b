"""The building blocks of every cache: the one LRU (``lru.py``) and the one disk store (``store.py``).

They know nothing of what they hold; the compiler owns the instances that hold matchers and
specs, the matchers and the runtime those of masks."""
