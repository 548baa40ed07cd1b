"""Stage 3: matchers, the framework-free matcher API over a compiled constraint.

Every back end implements :class:`Matcher` (``base.py``): the byte automaton
(``automaton.py``, over ``byte_automaton.py`` built by outlines-core, with its token-class form
in ``dense_automaton.py``), llguidance (``llguidance.py``) and the hand-off from the second to
the first (``handoff.py``). States are plain ints, so one matcher serves every row, beam and
process; :data:`DONE` and :data:`DEAD` are the two states every back end shares. Matchers are
built by the compiler (a layer above), never here::

    >>> from pse_processors.matchers import DONE, Matcher, AutomatonMatcher
    >>> issubclass(AutomatonMatcher, Matcher), DONE
    (True, -1)
"""

from __future__ import annotations

from .automaton import AutomatonMatcher
from .base import DEAD, DONE, Matcher
from .handoff import HandoffMatcher
from .llguidance import LLGuidanceMatcher

__all__ = ["DEAD", "DONE", "AutomatonMatcher", "HandoffMatcher", "LLGuidanceMatcher", "Matcher"]
