"""The compiled grammar: a byte automaton walked lazily through the vocabulary's token trie.

A state's allowed tokens are computed the first time the state is seen (about a millisecond
inside a free string on a 128k vocabulary, microseconds elsewhere) and cached per distinct
allowed set, so compiling costs only the byte automaton and the first mask is almost free.
Stepping a token walks its bytes through the automaton in pure Python.

States are the byte automaton's ints (0 is initial), plus two of ours:

- :data:`DONE`, reached by EOS from an accepting state; it allows only EOS.
- :data:`DEAD`, where :meth:`CompiledGrammar.walk` ends after a token the constraint
  rejects; it allows only EOS.
"""

from __future__ import annotations

import hashlib
import logging
import pickle
import threading
from typing import Any, Iterable, Optional

import numpy as np

from ..caching.store import write_atomically
from .byte_automaton import ByteAutomaton
from ..constraints.spec import ConstraintSpec
from ..errors import UnsatisfiableConstraintError, VocabularyError
from ..caching.lru import SizedLRU
from .dense_tables import GrammarTables, materialize
from ..vocabulary.token_trie import TokenTrie
from ..vocabulary.vocabulary import Vocabulary

logger = logging.getLogger(__name__)

DONE = -1
DEAD = -2
_EOS_ONLY = -1  # the mask id of DONE and DEAD

_MASK_CACHE_BYTES = 64 << 20


class CompiledGrammar:
    """A constraint compiled against one vocabulary. Build it with :func:`pse_processors.compile`.

    The matcher API works on plain ints and numpy arrays, independent of any ML framework.

    Example:
        >>> import pse_processors as pse
        >>> vocab = pse.Vocabulary([b"a", b"b", b"ab", None], eos_token_ids=[3])
        >>> grammar = pse.compile(pse.Regex("ab?"), vocab)
        >>> state = grammar.advance(grammar.initial_state, 0)
        >>> sorted(grammar.allowed_token_ids(state).tolist()), grammar.is_accepting(state)
        ([1, 3], True)
        >>> grammar.accepts([2, 3]), grammar.accepts([1])
        (True, False)
    """

    #: The back end: ``"dfa"`` (this byte automaton) or ``"grammar"`` (see :mod:`~pse_processors.matchers.llguidance`).
    engine = "dfa"

    def __init__(self, automaton: ByteAutomaton, trie: TokenTrie, vocabulary: Vocabulary, spec: ConstraintSpec) -> None:
        self._init_masks(vocabulary, spec)
        self.automaton = automaton
        self.trie = trie
        self.initial_state: int = automaton.initial
        self._next_state = automaton.next_state
        self._accepting = automaton.accepting
        # Pure-Python views for the per-token hot path: on the cold caches that a forward pass
        # leaves behind, numpy scalar indexing costs microseconds per call, list indexing not.
        self._accepting_list: list[bool] = self._accepting.tolist()
        self._byte_rows: list[Optional[list[int]]] = [None] * automaton.num_states
        self._tables: Optional[GrammarTables] = None
        #: (path, meta) of the on-disk cache of :attr:`tables`, set by :func:`pse_processors.compile`.
        self.tables_file: Optional[tuple] = None

    def _init_masks(self, vocabulary: Vocabulary, spec: ConstraintSpec) -> None:
        """The state every back end shares: the vocabulary and the per-allowed-set mask caches."""
        self.vocabulary = vocabulary
        self.spec = spec
        self._eos = np.array(sorted(vocabulary.eos_token_ids), dtype=np.int64)
        self._eos_set = vocabulary.eos_token_ids
        self._lock = threading.Lock()
        # Many states allow the same tokens (every position inside a string, say): masks are
        # cached per distinct allowed set, not per state.
        self._masks = SizedLRU(_MASK_CACHE_BYTES, lambda mask: mask.nbytes)
        # Packed int32 bitmasks by mask id (what :meth:`bitmask` returns): 32x smaller than
        # the bool masks, and the grammar engine computes them first (see pushdown.py).
        self._packed = SizedLRU(_MASK_CACHE_BYTES, lambda mask: mask.nbytes)
        self._mask_of_state: dict[int, int] = {}
        self._mask_by_digest: dict[bytes, int] = {}
        self._state_of_mask: list[int] = []
        self._token_bytes = vocabulary.token_bytes
        #: The matcher whose masks this one shares (itself, or the one a ``with_spec`` view copies):
        #: what the runtime's device caches are keyed by (see ``runtime/device_cache.py``).
        self.mask_owner: "CompiledGrammar" = self
        #: ``(constraint, compile options)`` that :func:`pse_processors.compile` built this from: what a pickle holds.
        self.recipe: Optional[tuple[Any, dict]] = None

    @property
    def vocab_size(self) -> int:
        return self.vocabulary.size

    @property
    def num_states(self) -> int:
        """States of the byte automaton (an upper bound on the states reached between tokens)."""
        return self.automaton.num_states

    @property
    def num_masks(self) -> int:
        """Distinct allowed sets seen so far."""
        return len(self._state_of_mask)

    @property
    def tables(self) -> GrammarTables:
        """The whole automaton as dense token-class tables (built on first use, then kept).

        Only the jit/XLA processors need them; walking every reachable state takes about a
        millisecond per state on a 128k vocabulary."""
        if self._tables is None:
            with self._lock:
                if self._tables is None:
                    self._tables = self._load_tables()
        return self._tables

    def _load_tables(self) -> GrammarTables:
        path, meta = self.tables_file or (None, None)
        if path is not None and path.exists():
            try:
                return GrammarTables.load(path, meta, self.vocab_size)
            except Exception as exc:  # noqa: BLE001 - any unreadable file is rebuilt
                logger.warning("ignoring the corrupt tables cache file %s (%s)", path, exc)
        tables = materialize(self._next_state, self._accepting, self.trie, self.vocab_size)
        if path is not None:
            write_atomically(path, lambda handle: tables.save(handle, meta), "tables")
        return tables

    def __reduce__(self) -> tuple:
        """Pickle as the recipe (constraint, compile options, engine, vocabulary), see :mod:`~pse_processors.compiler.recipes`."""
        from ..compiler.recipes import rebuild_grammar

        if self.recipe is None:
            raise pickle.PicklingError(
                f"this {type(self).__name__} was not built by pse_processors.compile, so it has no recipe to "
                "pickle; build it with pse_processors.compile(constraint, tokenizer, ...)"
            )
        constraint, options = self.recipe
        return rebuild_grammar, (
            constraint, self.vocabulary, self.engine, dict(options), self.vocabulary.fingerprint, self.spec.key
        )

    def __copy__(self) -> "CompiledGrammar":
        # A shallow copy shares the caches (``PushdownGrammar.with_spec``); only pickling rebuilds.
        clone = object.__new__(type(self))
        clone.__dict__.update(self.__dict__)
        return clone

    def __repr__(self) -> str:
        return f"CompiledGrammar({self.spec.kind}, {self.num_states} states, vocab {self.vocab_size})"

    def check_logits_width(self, width: int) -> None:
        """Raise ``VocabularyError`` unless logits ``width`` ids wide cover every usable token."""
        vocabulary = self.vocabulary
        if width <= 0:
            raise VocabularyError(f"the logits must be at least one id wide, got {width}")
        if vocabulary.size > width:
            usable = [i for i in range(width, vocabulary.size) if vocabulary.token_bytes[i] is not None]
            usable += [i for i in vocabulary.eos_token_ids if i >= width]
            if usable:
                raise VocabularyError(
                    f"the tokenizer has {vocabulary.size} tokens but the logits are only {width} wide "
                    f"(token ids {sorted(usable)[:5]} have no logit): this tokenizer does not belong to this model"
                )

    def is_accepting(self, state: int) -> bool:
        """True when the text so far is complete: EOS is allowed."""
        return state == DONE or (state >= 0 and self._accepting_list[state])

    def mask_id(self, state: int) -> int:
        """Id of the allowed-token set of ``state``: states with equal sets share it.

        ``DONE`` and ``DEAD`` (EOS only) share the id -1."""
        if state < 0:
            return _EOS_ONLY
        found = self._mask_of_state.get(state)
        if found is None:
            found = self._compute_mask(state)
        return found

    def _walk(self, state: int) -> tuple[np.ndarray, bool]:
        """The tokens ``state`` allows (a trie walk, without EOS) and whether it is accepting."""
        return self.trie.next_states(self._next_state, state) >= 0, self._accepting_list[state]

    def _compute_mask(self, state: int) -> int:
        allowed, accepting = self._walk(state)
        if not accepting and not allowed.any():
            raise UnsatisfiableConstraintError(
                "the tokenizer cannot continue the constraint from here: no token spells what must come next "
                "(the vocabulary lacks some bytes, e.g. no single-byte tokens)"
            )
        mask_id = self._mask_id_for(state, np.packbits(allowed).tobytes() + bytes([accepting]))
        key = (mask_id, self.vocab_size)
        if self._masks.get(key) is None:
            self._masks.put(key, self._finish(allowed, accepting, self.vocab_size))
        return mask_id

    def _mask_id_for(self, state: int, content: bytes) -> int:
        """Record ``state``'s mask id: the id of the allowed set whose bytes are ``content``, new
        when no state had that set before (the digest keys the sets, not the 128k-bit masks)."""
        digest = hashlib.blake2b(content, digest_size=16).digest()
        with self._lock:
            mask_id = self._mask_by_digest.get(digest)
            if mask_id is None:
                mask_id = self._mask_by_digest[digest] = len(self._state_of_mask)
                self._state_of_mask.append(state)
            self._mask_of_state[state] = mask_id
        return mask_id

    def _finish(self, allowed: np.ndarray, accepting: bool, width: int) -> np.ndarray:
        mask = np.zeros(width, dtype=bool)
        n = min(width, allowed.size)
        mask[:n] = allowed[:n]
        if accepting:
            mask[self._eos[self._eos < width]] = True
        mask.setflags(write=False)
        return mask

    def allowed_mask(self, state: int, width: Optional[int] = None) -> np.ndarray:
        """Allowed tokens as a read-only bool array of ``width`` (default: vocab size).

        Ids past the vocabulary are False; EOS ids are True in accepting states.
        """
        width = self.vocab_size if width is None else width
        mask_id = self.mask_id(state)
        key = (mask_id, width)
        mask = self._masks.get(key)
        if mask is not None:
            return mask
        if state < 0:
            mask = self._finish(np.zeros(0, dtype=bool), True, width)
        else:
            full = self._masks.get((mask_id, self.vocab_size))
            if full is None:  # evicted: walk the state again
                full = self._finish(*self._walk(self._state_of_mask[mask_id]), self.vocab_size)
                self._masks.put((mask_id, self.vocab_size), full)
            if width == self.vocab_size:
                return full
            mask = self._finish(full, False, width)  # EOS already in place
        self._masks.put(key, mask)
        return mask

    def allowed_token_ids(self, state: int) -> np.ndarray:
        """Sorted ids allowed in ``state`` (EOS ids included when accepting)."""
        return np.flatnonzero(self.allowed_mask(state))

    def bitmask(self, state: int) -> np.ndarray:
        """Allowed tokens as a packed little-endian int32 bitmask of ``ceil(vocab/32)`` words.

        The array is read-only and shared by every state with the same allowed set (copy it
        to modify it)."""
        mask_id = self.mask_id(state)
        packed = self._packed.get(mask_id)
        if packed is None:
            words = (self.vocab_size + 31) // 32
            packed = np.packbits(self.allowed_mask(state, words * 32), bitorder="little").view(np.int32)
            packed.setflags(write=False)
            self._packed.put(mask_id, packed)
        return packed

    def advance(self, state: int, token_id: int) -> Optional[int]:
        """The state after ``token_id``, or ``None`` if the constraint rejects it."""
        if state == DONE:
            return DONE if token_id in self._eos_set else None
        return self.step(state, int(token_id))

    def step(self, state: int, token_id: int) -> Optional[int]:
        """The hot-path :meth:`advance` for a live state (>= 0) or ``DONE`` and a Python int.

        ``DONE`` stays ``DONE`` whatever the token (generate pads finished rows).
        """
        if state < 0:
            return DONE if state == DONE else None
        if token_id in self._eos_set:
            return DONE if self._accepting_list[state] else None
        if not 0 <= token_id < self.vocabulary.size:
            return None
        data = self._token_bytes[token_id]
        if data is None:
            return None
        rows = self._byte_rows
        for byte in data:
            row = rows[state]
            if row is None:
                row = rows[state] = self._next_state[state].tolist()
            state = row[byte]
            if state < 0:
                return None
        return state

    def accepts(self, token_ids: Iterable[int]) -> bool:
        """True when ``token_ids`` (optionally ending in EOS) is a complete, valid output."""
        state: Optional[int] = self.initial_state
        for token in token_ids:
            state = self.advance(state, token)  # type: ignore[arg-type]
            if state is None:
                return False
        return self.is_accepting(state)  # type: ignore[arg-type]

    def walk(self, token_ids: Iterable[int], state: Optional[int] = None) -> int:
        """Advance through ``token_ids`` from ``state`` (default: initial); a rejection gives :data:`DEAD`."""
        current = self.initial_state if state is None else state
        for token in token_ids:
            nxt = self.step(current, int(token))  # step keeps DONE: generate pads finished rows
            if nxt is None:
                return DEAD
            current = nxt
        return current
