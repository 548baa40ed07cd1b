"""The lazy grammar back end: a Lark grammar run by llguidance, behind the matcher API.

llguidance (a lazy lexer and an Earley parser, in Rust) computes the allowed tokens of a
parser state in microseconds without building any automaton ahead of time, so recursion is
unbounded and compiling costs about a millisecond. Its matchers are mutable objects; the
matcher API of :class:`~pse_processors.Matcher` wants immutable int states, so that
beam search, assisted decoding and prefix reuse keep working (see ``prefix_states.py``):

- A state is a node of the tree of token paths walked so far: its parent and its last
  token. The same (state, token) step returns the same node while the step cache holds it.
- Each node's llguidance matcher is kept in a bounded LRU; an evicted one is rebuilt by
  replaying the tokens from the nearest ancestor that still has one (the root always has).
- Masks are cached per distinct allowed set, as on the byte automaton.

Nodes cost 12 bytes each (three int arrays), so a process that generates a million tokens
through one grammar holds 12 MB of them; :meth:`LLGuidanceMatcher.reset_states` drops them.
"""

from __future__ import annotations

import copy
import logging
import re
import threading
from array import array
from typing import Any, Optional

import numpy as np

from .. import defaults
from ..caching.lru import SizedLRU
from ..constraints.spec import ConstraintSpec
from ..deprecation import deprecated_names
from ..errors import CompileLimitError, SchemaError, UnsatisfiableConstraintError
from ..vocabulary.llg_tokenizer import lltokenizer_for, require_llguidance
from ..vocabulary.vocabulary import Vocabulary
from .base import DONE, Matcher

logger = logging.getLogger(__name__)

_MATCHERS = 512  # live llguidance matchers kept per grammar (the rest are replayed on demand)
_STEP_CACHE = 1 << 21  # (state, token) -> child entries before the step cache starts over
_REJECTED = -3  # the step cache's mark for a token the grammar rejects
# Where a grammar forces bytes, llguidance by default allows only their canonical tokenization;
# the byte automaton allows every spelling, and so must this back end (the same masks).
_NO_FORCING = '%llguidance {"no_forcing": true}\n'
_LOCATION = re.compile(r"^(?:at )?(\d+)\((\d+)\)")


def llguidance_matcher(tokenizer: Any, lark: str, max_lexer_states: int = defaults.MAX_LEXER_STATES) -> Any:
    """llguidance's matcher for ``lark``, with this back end's options and limits (check
    ``is_error()``); also what ``benchmarks/ttfm_floor.py`` times."""
    llguidance = require_llguidance()
    # 20x the default lexer fuel: our terminals are whole JSON tokens, some of them large
    # regexes (formats, bounded strings); building them is still milliseconds.
    limits = llguidance.LLParserLimits(
        max_lexer_states=max_lexer_states, initial_lexer_fuel=20_000_000, precompute_large_lexemes=False,
        verbose_errors=True,
    )
    # A top-level grammar JSON (structure in free text: a sub-grammar per inner constraint) goes as is.
    grammar = lark if lark.startswith('{"grammars"') else llguidance.LLMatcher.grammar_from_lark(_NO_FORCING + lark)
    return llguidance.LLMatcher(tokenizer, grammar, log_level=0, limits=limits)


class LLGuidanceMatcher(Matcher):
    """A Lark grammar compiled against one vocabulary, run lazily by llguidance.

    Build it with :func:`pse_processors.compile` (``backend="llguidance"``, or ``"auto"`` for a
    schema the byte automaton cannot hold, or a :class:`~pse_processors.Grammar`). It has the
    matcher API of :class:`~pse_processors.Matcher`; states are ints, 0 is initial.
    The in-graph (TF, Flax) processors cannot run it: they need the byte automaton's tables.

    Example:
        >>> import pse_processors as pse
        >>> vocab = pse.Vocabulary([b"(", b")", b"()", b"x", None], eos_token_ids=[4])
        >>> grammar = pse.compile(pse.Grammar('start: "(" start ")" | "x"'), vocab)
        >>> grammar.backend, grammar.accepts([0, 0, 3, 1, 1, 4]), grammar.accepts([0, 3, 4])
        ('llguidance', True, False)
        >>> state = grammar.walk([0, 0, 0])
        >>> grammar.allowed_token_ids(state).tolist()  # "(" "()" would need a "x" inside
        [0, 3]
    """

    backend = "llguidance"

    def __init__(
        self, lark: str, vocabulary: Vocabulary, spec: ConstraintSpec, *, max_lexer_states: int = defaults.MAX_LEXER_STATES,
        symbols: tuple = (),
    ) -> None:
        super().__init__(vocabulary, spec)
        #: Byte-less tokens the grammar names as ``<[id]>`` (markers of structure in free text).
        self._symbols = frozenset(symbols)
        llguidance = require_llguidance()
        import llguidance.numpy

        self._llg_numpy = llguidance.numpy
        self._eos_words = [int(e) for e in self._eos]
        self.lark = lark
        self._tokenizer = lltokenizer_for(vocabulary)
        root = llguidance_matcher(self._tokenizer, lark, max_lexer_states)
        if root.is_error():
            raise grammar_error(root.get_error(), lark)
        self.initial_state: int = 0
        self._root = root
        self._matcher_lock = threading.RLock()
        self.reset_states()

    def reset_states(self) -> None:
        """Forget every node (state ids handed out before are invalid afterwards).

        Only for long-lived servers that want the memory back between unrelated generations;
        processors that still hold states must be reset too."""
        with self._matcher_lock:
            self._parent = array("i", [-1])
            self._token = array("i", [-1])
            self._accepting_flag = array("b", [-1])  # -1: not computed yet
            self._steps: dict[int, int] = {}
            self._matchers = SizedLRU(max_items=_MATCHERS)  # live llguidance matchers by node
            with self._lock:
                self._mask_of_state.clear()

    def with_spec(self, spec: ConstraintSpec) -> "LLGuidanceMatcher":
        """The same grammar (nodes and masks shared) with another spec, e.g. another result type."""
        view = copy.copy(self)
        view.spec = spec
        return view

    @property
    def num_states(self) -> int:
        """Nodes created so far (token paths walked, not grammar states)."""
        return len(self._parent)

    @property
    def dense_automaton(self) -> Any:
        raise CompileLimitError(
            "this constraint runs on llguidance (recursive, or too large for a byte automaton), which "
            "has no dense automaton: the in-graph TF/Flax processors cannot run it; compile it with backend='dfa' "
            "(recursion unrolled to max_recursion_depth) for them"
        )

    def __repr__(self) -> str:
        return f"LLGuidanceMatcher({self.spec.kind}, {self.num_states} nodes, vocab {self.vocab_size})"

    # -- nodes and their matchers ---------------------------------------------------------
    def _matcher(self, state: int) -> Any:
        """The llguidance matcher after ``state``'s token path (shared: do not mutate it)."""
        if state == 0:
            return self._root
        found = self._matchers.get(state)
        if found is not None:
            return found
        path = []
        node = state
        while node != 0 and node not in self._matchers:
            path.append(self._token[node])
            node = self._parent[node]
        matcher = self._matcher(node).deep_copy()
        path.reverse()
        if not matcher.consume_tokens(path):  # the path was accepted once; llguidance is deterministic
            raise RuntimeError(f"llguidance rejected a replayed token path: {matcher.get_error()}")
        self._keep(state, matcher)
        return matcher

    def _keep(self, state: int, matcher: Any) -> None:
        self._matchers.put(state, matcher)

    def is_accepting(self, state: int) -> bool:
        if state < 0:
            return state == DONE
        flag = self._accepting_flag[state]
        if flag < 0:
            with self._matcher_lock:
                flag = int(self._matcher(state).is_accepting())
                self._accepting_flag[state] = flag
        return bool(flag)

    def _fill(self, state: int) -> tuple[np.ndarray, bool]:
        """``state``'s packed int32 bitmask as llguidance fills it, with EOS set iff accepting."""
        words = self._llg_numpy.allocate_token_bitmask(1, self.vocab_size)
        with self._matcher_lock:
            matcher = self._matcher(state)
            self._llg_numpy.fill_next_token_bitmask(matcher, words, 0)
            accepting = bool(matcher.is_accepting())
            self._accepting_flag[state] = int(accepting)
        packed = words[0]
        unsigned = packed.view(np.uint32)
        for eos in self._eos_words:  # EOS is ours to add (when accepting), as on the byte automaton
            word, bit = eos >> 5, np.uint32(1 << (eos & 31))
            unsigned[word] = (unsigned[word] | bit) if accepting else (unsigned[word] & ~bit)
        return packed, accepting

    def _compute_mask(self, state: int) -> int:
        # Packed end to end: the 128k-bit mask is never unpacked on the way to bitmask(); the
        # bool mask of allowed_mask() is derived on demand (per allowed set, see _walk).
        packed, accepting = self._fill(state)
        if not accepting and not packed.any():
            raise self._dead_end(state)
        mask_id = self._mask_id_for(state, packed.tobytes())  # the EOS bits carry `accepting`
        if self._packed.get(mask_id) is None:
            packed.setflags(write=False)
            self._packed.put(mask_id, packed)
        return mask_id

    def _dead_end(self, state: int) -> Exception:
        """Why ``state`` allows nothing: llguidance gave up on the grammar, or no token spells what
        comes next."""
        with self._matcher_lock:
            matcher = self._matcher(state)
            if matcher.is_error():
                return _gave_up(matcher.get_error())
        return UnsatisfiableConstraintError(
            "the tokenizer cannot continue the constraint from here: no token spells what must come next"
        )

    def _was_allowed(self, state: int, token_id: int) -> bool:
        """Whether ``state``'s mask, if computed, allows ``token_id``."""
        mask_id = self._mask_of_state.get(state)
        packed = None if mask_id is None else self._packed.get(mask_id)
        return packed is not None and bool(packed.view(np.uint32)[token_id >> 5] >> np.uint32(token_id & 31) & 1)

    def _walk(self, state: int) -> tuple[np.ndarray, bool]:
        mask_id = self._mask_of_state.get(state)
        packed = None if mask_id is None else self._packed.get(mask_id)
        if packed is None:
            packed, accepting = self._fill(state)
        else:
            accepting = self.is_accepting(state)
        allowed = np.unpackbits(packed.view(np.uint8), bitorder="little")[: self.vocab_size].astype(bool)
        allowed[self._eos] = False
        return allowed, accepting

    def step(self, state: int, token_id: int) -> Optional[int]:
        if state < 0:
            return DONE if state == DONE else None
        if token_id in self._eos_set:
            return DONE if self.is_accepting(state) else None
        if not 0 <= token_id < self.vocabulary.size or (self._token_bytes[token_id] is None and token_id not in self._symbols):
            return None
        key = (state << 32) | token_id
        found = self._steps.get(key)
        if found is not None:
            return None if found == _REJECTED else found
        with self._matcher_lock:
            matcher = self._matcher(state).deep_copy()
            if matcher.consume_token(token_id):
                child = len(self._parent)
                self._parent.append(state)
                self._token.append(token_id)
                self._accepting_flag.append(-1)
                self._keep(child, matcher)
            else:
                if matcher.is_error() and self._was_allowed(state, token_id):  # llguidance failed, not the token
                    raise _gave_up(matcher.get_error())
                child = _REJECTED
            if len(self._steps) >= _STEP_CACHE:
                self._steps.clear()  # only a cache: the nodes stay valid
            self._steps[key] = child
        return None if child == _REJECTED else child


def _gave_up(error: str) -> CompileLimitError:
    """llguidance stopped on a lexer or parser limit (its lexer is shared by every state of the
    grammar, so no state allows a token after that)."""
    first = error.strip().splitlines()[0] if error.strip() else "no reason given"
    return CompileLimitError(
        f"llguidance gave up on this grammar partway through a walk ({first}): no state of it allows a token "
        "now. A string terminal whose regex is very ambiguous is the usual cause"
    )


def grammar_error(message: str, lark: str) -> SchemaError:
    """A ``SchemaError`` for llguidance's message about ``lark``, naming the line it points at."""
    found = _LOCATION.match(message)
    if found is None:
        return SchemaError(f"the grammar cannot be run: {message.strip()}", "grammar")
    line = int(found.group(1)) - _NO_FORCING.count("\n")
    lines = lark.splitlines()
    text = lines[line - 1].strip() if 0 < line <= len(lines) else ""
    if len(text) > 120:  # generated grammars have long lines
        text = text[:117] + "..."
    reason = message.split(":", 1)[1].strip().splitlines()[0] if ":" in message else message
    reason = reason if len(reason) <= 300 else reason[:297] + "..."
    return SchemaError(f"the grammar cannot be run: {reason}, in {text!r}", f"grammar line {line}")


__getattr__ = deprecated_names(__name__, {"PushdownGrammar": (LLGuidanceMatcher, "LLGuidanceMatcher")})
