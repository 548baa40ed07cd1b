"""The building blocks of every cache: the one LRU (``lru.py``), the one disk store (``store.py``)
and what makes its files safe to use (``trust.py``: owners and modes, bindings, MACs).

They know nothing of what they hold; the compiler owns the instances that hold matchers and
specs, the matchers and the runtime those of masks."""
