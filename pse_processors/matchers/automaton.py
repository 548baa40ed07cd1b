"""The byte-automaton matcher: a byte automaton walked lazily through the vocabulary's token trie.

A state's allowed tokens are computed the first time the state is seen (about a millisecond
inside a free string on a 128k vocabulary, microseconds elsewhere) and cached per distinct
allowed set, so compiling costs only the byte automaton and the first mask is almost free.
Stepping a token walks its bytes through the automaton in pure Python.

:meth:`AutomatonMatcher.precompute_masks` instead gives every reachable state its mask id up
front, from the dense automaton (token classes), and keeps each distinct allowed set packed:
``backend="auto"``'s hand-off runs it on its background thread before the automaton takes
over (:mod:`~pse_processors.matchers.handoff`), so no mask of that automaton walks the trie
while the model waits. An automaton loaded from the disk cache (or built with ``backend="dfa"``)
gets the same precomputation on that thread once an eager processor is built over it
(:func:`~pse_processors.matchers.handoff.precompute_in_background`); the dense automaton it
reads is written to the disk cache, so a later process reads it instead of walking every state.

States are the byte automaton's ints (0 is initial), plus :data:`DONE` and :data:`DEAD`
(see ``base.py``).
"""

from __future__ import annotations

import io
import logging
import time
from typing import Optional

import numpy as np

from .. import defaults
from ..caching.store import CacheEntry
from ..constraints.spec import ConstraintSpec
from ..deprecation import deprecated_names
from ..errors import UnsatisfiableConstraintError
from ..vocabulary.token_trie import TokenTrie
from ..vocabulary.vocabulary import Vocabulary
from .base import DEAD, DONE, Matcher
from .byte_automaton import ByteAutomaton
from .dense_automaton import DenseAutomaton, materialize, reachable_states

logger = logging.getLogger(__name__)

__all__ = ["DEAD", "DONE", "AutomatonMatcher"]


class AutomatonMatcher(Matcher):
    """The matcher API over a byte automaton (``backend="dfa"``). Build it with :func:`pse_processors.compile`.

    Example:
        >>> import pse_processors as pse
        >>> vocab = pse.Vocabulary([b"a", b"b", b"ab", None], eos_token_ids=[3])
        >>> matcher = pse.compile(pse.Regex("ab?"), vocab, backend="dfa")
        >>> type(matcher).__name__, matcher.backend, matcher.accepts([0, 1, 3]), matcher.accepts([1, 3])
        ('AutomatonMatcher', 'dfa', True, False)
    """

    backend = "dfa"

    def __init__(self, automaton: ByteAutomaton, trie: TokenTrie, vocabulary: Vocabulary, spec: ConstraintSpec) -> None:
        super().__init__(vocabulary, spec)
        if automaton.num_symbols != trie.symbol_tokens.size:
            raise ValueError(
                f"the automaton has {automaton.num_symbols} symbol columns but the trie {trie.symbol_tokens.size} symbol tokens"
            )
        self.automaton = automaton
        self.trie = trie
        # Symbol tokens (markers that are special tokens) -> their column: read on the byte-less path only.
        self._symbol_column: dict[int, int] = {int(t): 256 + k for k, t in enumerate(trie.symbol_tokens.tolist())}
        self.initial_state: int = automaton.initial
        self._next_state = automaton.next_state
        self._accepting = automaton.accepting
        # Pure-Python views for the per-token hot path: on the cold caches that a forward pass
        # leaves behind, numpy scalar indexing costs microseconds per call, list indexing not.
        self._accepting_list: list[bool] = self._accepting.tolist()
        self._byte_rows: list[Optional[list[int]]] = [None] * automaton.num_states
        self._dense: Optional[DenseAutomaton] = None
        # The dense automaton that precompute_masks() read (or built and wrote to the disk cache), and
        # the states whose masks it answers (their _walk reads it instead of walking the trie).
        self._mask_tables: Optional[DenseAutomaton] = None
        self._precomputed: Optional[np.ndarray] = None
        #: What :meth:`precompute_masks` cost (its return value), once it ran.
        self.mask_precompute: Optional[dict] = None
        #: (disk-cache entry, meta) of :attr:`dense_automaton`'s copy on disk, set by the compiler.
        self.dense_file: Optional[tuple[CacheEntry, dict]] = None

    @property
    def num_states(self) -> int:
        """States of the byte automaton (an upper bound on the states reached between tokens)."""
        return self.automaton.num_states

    @property
    def nbytes(self) -> int:
        return self.automaton.nbytes

    @property
    def dense_automaton(self) -> DenseAutomaton:
        """The whole automaton over token classes (built on first use, then kept).

        Only the jit/XLA processors need it; walking every reachable state takes about a
        millisecond per state on a 128k vocabulary."""
        if self._dense is None:
            with self._lock:
                if self._dense is None:
                    self._dense = self._load_dense()
        return self._dense

    def _load_dense(self) -> DenseAutomaton:
        dense = self._read_dense()
        if dense is not None:
            return dense
        if self._mask_tables is not None:  # precompute_masks() read it, and wrote it if it built it
            return self._mask_tables
        dense = materialize(self._next_state, self._accepting, self.trie, self.vocab_size)
        self._save_dense(dense)
        return dense

    def _save_dense(self, dense: DenseAutomaton) -> None:
        entry, meta = self.dense_file or (None, None)
        if entry is not None:  # only reached when the file is missing or unreadable
            entry.save(lambda handle: dense.save(handle, meta), "dense automaton")

    def _read_dense(self) -> Optional[DenseAutomaton]:
        """The dense automaton from the disk cache, or ``None``."""
        entry, meta = self.dense_file or (None, None)
        payload = entry.load("dense automaton") if entry is not None else None
        if payload is not None:
            try:
                return DenseAutomaton.load(io.BytesIO(payload), meta, self.vocab_size)
            except Exception as exc:  # noqa: BLE001 - any unreadable file is rebuilt
                logger.warning("ignoring the corrupt dense automaton cache file %s (%s)", entry.path, exc)  # type: ignore
        return None

    def precompute_masks(self) -> Optional[dict]:
        """Give every state reachable at a token boundary its mask id, and keep each distinct allowed
        set as a packed bitmask (in the bounded mask cache), from the dense automaton: after this,
        no mask of this matcher walks the token trie (an evicted mask is one gather from the token
        classes). Returns what it cost (``states``, ``masks``, ``seconds``, ``cpu_seconds``, ``bytes``: the dense
        tables, the packed masks and the state -> mask id entries), or ``None`` when the automaton
        has more than ``defaults.PRECOMPUTE_MAX_STATES`` states (its masks stay lazy).

        The dense automaton walks each reachable state through the trie once (about a
        millisecond each on a 49k vocabulary): ``backend="auto"`` runs this on its background
        thread, before the automaton takes over from llguidance.

        Example:
            >>> import pse_processors as pse
            >>> vocab = pse.Vocabulary([b"a", b"b", b"ab", None], eos_token_ids=[3])
            >>> matcher = pse.compile(pse.Regex("(ab)+"), vocab, backend="dfa")
            >>> cost = matcher.precompute_masks()
            >>> cost["states"], cost["masks"], matcher.allowed_token_ids(matcher.walk([2])).tolist()
            (3, 3, [0, 2, 3])
        """
        if self.num_states > defaults.PRECOMPUTE_MAX_STATES:
            logger.info("%d automaton states, over PRECOMPUTE_MAX_STATES: masks stay lazy", self.num_states)
            return None
        start, start_cpu = time.perf_counter(), time.thread_time()
        # Read from the disk cache, or built and written there (~0.3 MB for a 4k-state schema on
        # 49k tokens): a later load reads it.
        dense = self._dense or self._load_dense()
        states = reachable_states(dense)
        allowed = dense.transitions[states] >= 0  # [states, classes]
        accepting = self._accepting[states]
        keys = np.concatenate([np.packbits(allowed, axis=1), accepting[:, None].astype(np.uint8)], axis=1)
        _, first, inverse = np.unique(keys, axis=0, return_index=True, return_inverse=True)
        words = (self.vocab_size + 31) // 32
        ids, packed_bytes = [], 0
        for row in first.tolist():
            state, tokens, accepts = int(states[row]), allowed[row][dense.token_class], bool(accepting[row])
            if not accepts and not tokens.any():
                ids.append(-2)  # a dead end: left to the lazy path, which raises when a row gets there
                continue
            mask_id = self._mask_id_for(state, np.packbits(tokens).tobytes() + bytes([accepts]))
            packed = np.packbits(self._finish(tokens, accepts, words * 32), bitorder="little").view(np.int32)
            packed.setflags(write=False)
            self._packed.put(mask_id, packed)
            packed_bytes += packed.nbytes
            ids.append(mask_id)
        of_state = np.asarray(ids, dtype=np.int64)[inverse.reshape(-1)]
        live = of_state != -2
        with self._lock:
            self._mask_of_state.update(zip(states[live].tolist(), of_state[live].tolist()))
        precomputed = np.zeros(self.num_states, dtype=bool)
        precomputed[states[live]] = True
        self._mask_tables, self._precomputed = dense, precomputed
        cost = {
            "states": int(states.size), "masks": len(first), "seconds": time.perf_counter() - start,
            "cpu_seconds": time.thread_time() - start_cpu,  # this thread's: the wall time holds waits for a core
            # the dense tables, every distinct packed mask, and ~100 bytes per state -> mask id entry
            "bytes": int(dense.transitions.nbytes + dense.token_class.nbytes) + packed_bytes + 100 * int(states.size),
        }
        logger.info("precomputed masks: %(states)d states, %(masks)d masks in %(seconds).2fs (%(bytes)d bytes)", cost)
        self.mask_precompute = cost
        return cost

    def __repr__(self) -> str:
        return f"AutomatonMatcher({self.spec.kind}, {self.num_states} states, vocab {self.vocab_size})"

    def is_accepting(self, state: int) -> bool:
        return state == DONE or (state >= 0 and self._accepting_list[state])

    def _walk(self, state: int) -> tuple[np.ndarray, bool]:
        precomputed = self._precomputed
        if precomputed is not None and precomputed[state]:  # one gather from the token classes
            dense = self._mask_tables
            return (dense.transitions[state] >= 0)[dense.token_class], self._accepting_list[state]
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
            column = self._symbol_column.get(token_id)
            if column is None:
                return None
            data = (column,)  # a marker token is its one symbol
        rows = self._byte_rows
        for byte in data:
            row = rows[state]
            if row is None:
                row = rows[state] = self._next_state[state].tolist()
            state = row[byte]
            if state < 0:
                return None
        return state


__getattr__ = deprecated_names(__name__, {"CompiledGrammar": (Matcher, "pse_processors.Matcher")})
