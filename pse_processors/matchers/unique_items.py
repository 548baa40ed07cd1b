"""``uniqueItems`` on the grammar engine: llguidance's masks, less the tokens that would repeat an item.

:class:`UniqueItemsMatcher` wraps the grammar's matcher (compiled with ``uniqueItems`` left to
it) and follows the text with :class:`~pse_processors.matchers.json_items.ItemScan`. In a
state inside an array that must keep its items unique, a token the grammar allows is masked
when it would complete an item equal to an earlier item of that array (``1`` and ``1.0``,
objects in any key order), or, for an array of few possible values (an ``enum``), when it
leaves no unused value to become. A token after which a scalar item could only end as a
repeat (``"a`` where only ``"`` may follow) is masked too, one token ahead. Paths that can
still become distinct stay open.

States are the wrapper's own ints, one per token path (the inner matcher's state and the
scan), so beam search, assisted decoding and a processor reused across ``generate`` calls
work as on any matcher. The in-graph (TF, Flax) processors cannot run it: they need an
automaton, and uniqueness is not one (``dense_automaton`` refuses ``uniqueItems`` by name).

Example:
    >>> import pse_processors as pse
    >>> vocab = pse.Vocabulary([bytes([b]) for b in range(128)] + [None], eos_token_ids=[128])
    >>> matcher = pse.compile({"type": "array", "items": {"type": "integer"}, "uniqueItems": True}, vocab)
    >>> type(matcher).__name__, matcher.accepts(list(b"[1,2]") + [128]), matcher.accepts(list(b"[1,1]") + [128])
    ('UniqueItemsMatcher', True, False)
    >>> state = matcher.walk(b"[1,1")
    >>> bool(matcher.allowed_mask(state)[ord("0")]), bool(matcher.allowed_mask(state)[ord(",")])  # 10 differs, 1 repeats
    (True, False)
"""

from __future__ import annotations

import copy
import threading
from array import array
from typing import Any, Optional

import numpy as np

from ..errors import UnsatisfiableConstraintError, UnsupportedSchemaError
from ..json_schema.unique_items import UniquePlan, unique_items_pointer
from .base import DONE, Matcher
from .json_items import LITERAL, NUMBER, STRING_MODES, ItemScan
from .json_items import spelled as spelled_value

_LOOKAHEAD = 2  # tokens ahead that a scalar item which can only end as a repeat is looked for
_NUMBER_BYTES = frozenset(b"0123456789.eE+-")


class UniqueItemsMatcher(Matcher):
    """The grammar engine with ``uniqueItems`` enforced; see the module docstring."""

    backend = "llguidance"

    def __init__(self, inner: Matcher, plan: UniquePlan) -> None:
        super().__init__(inner.vocabulary, inner.spec)
        self.inner = inner
        self.plan = plan
        self.initial_state = 0
        tokens = self._token_bytes
        self._quoted = np.array([b is not None and 0x22 in b for b in tokens])  # the only way out of a string
        self._by_bytes: Optional[dict] = None
        self._node_lock = threading.Lock()
        self.reset_states()

    def reset_states(self) -> None:
        """Forget every state (and the inner matcher's); ids handed out before are invalid."""
        reset = getattr(self.inner, "reset_states", None)
        if reset is not None:
            reset()
        with self._node_lock:
            self._inner_state = array("i", [self.inner.initial_state])
            self._scans: list = [ItemScan.start(self.plan)]
            self._steps: dict = {}
            with self._lock:
                self._mask_of_state.clear()

    def with_spec(self, spec: Any) -> "UniqueItemsMatcher":
        view = copy.copy(self)
        view.spec = spec
        return view

    @property
    def num_states(self) -> int:
        return len(self._scans)

    @property
    def nbytes(self) -> int:
        return self.inner.nbytes

    @property
    def lark(self) -> str:
        return self.inner.lark  # type: ignore[attr-defined]

    @property
    def dense_automaton(self) -> Any:
        raise UnsupportedSchemaError(
            "uniqueItems", unique_items_pointer(self.plan.root_schema) or "#",
            "enforced on llguidance by a check of the values beside the grammar, which has no dense automaton: "
            "the in-graph TF/Flax processors cannot run it, and the byte automaton cannot track uniqueness",
        )

    def __repr__(self) -> str:
        return f"UniqueItemsMatcher({self.inner!r}, {self.num_states} states)"

    # -- the matcher API ----------------------------------------------------------------------------
    def is_accepting(self, state: int) -> bool:
        if state < 0:
            return state == DONE
        return self.inner.is_accepting(self._inner_state[state])

    def step(self, state: int, token_id: int) -> Optional[int]:
        if state < 0:
            return DONE if state == DONE else None
        if token_id in self._eos_set:
            return DONE if self.is_accepting(state) else None
        key = (state << 32) | token_id
        found = self._steps.get(key)
        if found is not None:
            return None if found < 0 else found
        scan = self._scans[state]
        if scan.guarded and not (0 <= token_id < self.vocab_size and self._allows(state, token_id)):
            child = -1
        else:
            inner = self.inner.step(self._inner_state[state], token_id)
            following = None if inner is None else scan.advance(self._token_bytes[token_id] or b"")
            if following is None:
                child = -1
            else:
                with self._node_lock:
                    child = len(self._scans)
                    self._scans.append(following)
                    self._inner_state.append(inner)  # type: ignore[arg-type]
        self._steps[key] = child
        return None if child < 0 else child

    def _allows(self, state: int, token_id: int) -> bool:
        try:
            return bool(self.allowed_mask(state)[token_id])
        except UnsatisfiableConstraintError:  # a state nothing can follow: no token either
            return False

    def _compute_mask(self, state: int) -> int:
        allowed, accepting = self._walk(state)
        if not accepting and not allowed.any():
            raise UnsatisfiableConstraintError(
                "uniqueItems: every continuation the grammar allows here would repeat an earlier item of the array "
                "(or use up its few values), so no output can finish from this state"
            )
        full = self._finish(allowed, accepting, self.vocab_size)
        mask_id = self._mask_id_for(state, np.packbits(full).tobytes())
        self._masks.put((mask_id, self.vocab_size), full)
        return mask_id

    def _walk(self, state: int) -> tuple:
        return self._filtered(self._inner_state[state], self._scans[state], _LOOKAHEAD)

    # -- the check ---------------------------------------------------------------------------------
    def _filtered(self, inner_state: int, scan: ItemScan, lookahead: int) -> tuple:
        """The inner matcher's allowed tokens (without EOS) less the repeats, and whether accepting."""
        allowed = self.inner.allowed_mask(inner_state).copy()
        allowed[self._eos] = False
        accepting = self.inner.is_accepting(inner_state)
        if not scan.guarded:
            return allowed, accepting
        top = scan.stack[-1]
        if scan.mode in STRING_MODES and not (top.unique and top.values is not None):
            # only a quote can end a string, and so an item (few values: every character counts)
            candidates = np.flatnonzero(allowed & self._quoted).tolist()
            candidates += self._completing_tokens(scan, allowed)
        else:
            candidates = np.flatnonzero(allowed).tolist()
        for token in dict.fromkeys(candidates):
            following = scan.advance(self._token_bytes[token])
            if following is None:
                allowed[token] = False
            elif following.mode == LITERAL and following.stack[-1].unique and following.pending_duplicate():
                allowed[token] = False  # true, false or null is decided by its first letter
            elif lookahead and following.pending_duplicate() and self._dead_end(inner_state, token, following, lookahead):
                allowed[token] = False
        return allowed, accepting

    def _dead_end(self, inner_state: int, token: int, following: ItemScan, lookahead: int) -> bool:
        """Whether nothing can follow ``token`` but a repeat (looked at ``lookahead`` tokens deep)."""
        inner = self.inner.step(inner_state, token)
        if inner is None:
            return True
        if following.mode == NUMBER and following.stack[-1].unique and not self._number_goes_on(inner):
            return True  # the number is the item and can only end here, as a repeat
        allowed, accepting = self._filtered(inner, following, lookahead - 1)
        return not accepting and not allowed.any()

    def _number_goes_on(self, inner_state: int) -> bool:
        allowed = self.inner.allowed_mask(inner_state)
        return any(self._token_bytes[t] and self._token_bytes[t][0] in _NUMBER_BYTES for t in np.flatnonzero(allowed))

    def _completing_tokens(self, scan: ItemScan, allowed: np.ndarray) -> list:
        """Inside a string item: the tokens (without a quote) after which it spells an earlier item
        but for its closing quote; they are looked ahead from."""
        if not scan.direct_string_item():
            return []
        item = scan.current_item()
        top = scan.stack[-1]
        if self._by_bytes is None:
            by_bytes: dict = {}
            for index, data in enumerate(self._token_bytes):
                if data:
                    by_bytes.setdefault(data, []).append(index)
            self._by_bytes = by_bytes
        out = []
        for kind, value in top.seen:
            if kind != "string":
                continue
            spelled = spelled_value(value)[:-1]  # without its closing quote
            if spelled.startswith(item) and len(spelled) > len(item):
                out.extend(t for t in self._by_bytes.get(spelled[len(item):], []) if allowed[t])
        return out
