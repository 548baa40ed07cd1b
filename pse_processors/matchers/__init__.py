"""Stage 4: matchers, the framework-free matcher API over a compiled constraint.

Every back end implements :class:`Matcher` (``matchers/protocol.py``): the byte automaton
(``automaton.py``, on outlines-core), llguidance (``llguidance.py``) and the hand-off from the
first to the second (``handoff.py``). States are plain ints, so one matcher serves every row,
beam and process; :data:`DONE` and :data:`DEAD` are the two states every back end shares.
"""

from __future__ import annotations

from .automaton import DEAD, DONE, CompiledGrammar

Matcher = CompiledGrammar

__all__ = ["DEAD", "DONE", "Matcher"]
