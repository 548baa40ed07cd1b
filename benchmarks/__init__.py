"""Benchmarks of pse_processors against its peers (BENCHMARKS.md): each a module run from the
repository root with ``python -m benchmarks.<name>``; what they share is in ``_common.py``."""
