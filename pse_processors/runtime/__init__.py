"""Stage 4: the runtime between matchers and frameworks, framework-free (numpy only).

Eager frameworks key each row's state by its token prefix (``prefix_states.py``) and share
their argument checks and error wording (``row_checks.py``); in-graph frameworks get dense
device tables to recompute states from the token buffer (``device_tables.py``). Device caches
(``device_cache.py``) and parsing an output (``results.py``) live here too, so the framework
modules only move tensors.
"""
