"""A vocabulary's tokens as a byte trie, walked through a byte automaton one state at a time.

Walking the trie from a state visits only the prefixes the automaton keeps alive, so a state
that allows a handful of keys costs microseconds and a state inside a free string (where most
of the vocabulary is allowed) about a millisecond for 128k tokens. Nodes are numbered in
breadth-first order, so the children of a node are contiguous and every level is walked with
a few vectorized numpy operations.

Building a trie takes about a second for 128k tokens; it is cached per vocabulary in memory
and, next to the grammars, on disk.
"""

from __future__ import annotations

import dataclasses
import io
import logging
import threading
import time
import weakref
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO, Optional, Union

import numpy as np

from ..caching.store import CacheEntry, DiskStore, entry_binding
from .vocabulary import Vocabulary

logger = logging.getLogger(__name__)

_FORMAT = 1


@dataclass(frozen=True)
class TokenTrie:
    """The trie; node 0 is the root (the empty prefix).

    - ``byte``: uint8 ``[nodes]``, the last byte of each node's prefix;
    - ``first_child`` / ``num_children``: int32 ``[nodes]``, the contiguous children of each node;
    - ``token_node``: int32 ``[vocab]``, the node where each token ends, or ``nodes`` (a slot
      that is always rejected) for tokens that may never be generated;
    - ``symbol_tokens``: int64 ``[K]``, byte-less tokens that are symbols of the automaton
      (markers of structure in free text, :meth:`with_symbols`): token ``symbol_tokens[k]`` is a
      virtual node whose one "byte" is column ``256 + k`` of the automaton. Empty (K = 0) for
      every other constraint.

    Example:
        >>> from pse_processors import Vocabulary
        >>> from pse_processors.matchers.byte_automaton import ByteAutomaton
        >>> trie = TokenTrie.build(Vocabulary([b"a", b"ab", b"b", None], eos_token_ids=[3]))
        >>> dfa = ByteAutomaton.build("ab?")
        >>> [dfa.walk(b"a"), dfa.walk(b"ab"), None, None] == [s if s >= 0 else None for s in trie.next_states(dfa.next_state, 0)]
        True
    """

    byte: np.ndarray
    first_child: np.ndarray
    num_children: np.ndarray
    token_node: np.ndarray
    symbol_tokens: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.int64), compare=False)

    @property
    def num_nodes(self) -> int:
        return int(self.byte.shape[0])

    @classmethod
    def build(cls, vocabulary: Vocabulary) -> "TokenTrie":
        start = time.perf_counter()
        tokens = [b for b in vocabulary.token_bytes if b]
        prefixes = {token[:i] for token in set(tokens) for i in range(1, len(token) + 1)}
        levels: dict[int, list[bytes]] = {}
        for prefix in prefixes:
            levels.setdefault(len(prefix), []).append(prefix)
        node_of: dict[bytes, int] = {b"": 0}
        order: list[bytes] = [b""]
        for length in sorted(levels):
            level = sorted(levels[length], key=lambda p: (node_of[p[:-1]], p[-1]))
            for prefix in level:
                node_of[prefix] = len(order)
                order.append(prefix)
        count = len(order)
        parent = np.fromiter((node_of[p[:-1]] for p in order[1:]), dtype=np.int64, count=count - 1)
        byte = np.zeros(count, dtype=np.uint8)
        byte[1:] = np.fromiter((p[-1] for p in order[1:]), dtype=np.uint8, count=count - 1)
        # Children are contiguous and sorted by parent: searchsorted gives each node's range.
        nodes = np.arange(count)
        first = np.searchsorted(parent, nodes, side="left") + 1
        last = np.searchsorted(parent, nodes, side="right") + 1
        token_node = np.fromiter(
            (node_of[b] if b else count for b in vocabulary.token_bytes), dtype=np.int32, count=vocabulary.size
        )
        trie = cls(byte, first.astype(np.int32), (last - first).astype(np.int32), token_node)
        logger.info("token trie: %d nodes for %d tokens in %.2fs", count, vocabulary.size, time.perf_counter() - start)
        return trie

    def node_states(self, next_state: np.ndarray, state: int) -> np.ndarray:
        """int32 ``[nodes + 1]``: the automaton's state after each node's prefix from ``state``, or -1."""
        result = np.full(self.num_nodes + 1, -1, dtype=np.int32)
        nodes = np.arange(self.first_child[0], self.first_child[0] + self.num_children[0], dtype=np.int64)
        states = next_state[state, self.byte[nodes]]
        while True:
            live = states >= 0
            nodes, states = nodes[live], states[live]
            if not nodes.size:
                return result
            result[nodes] = states
            counts = self.num_children[nodes]
            inner = counts > 0
            if not inner.any():
                return result
            counts, firsts, states = counts[inner], self.first_child[nodes[inner]], states[inner]
            # Expand every live node into its children: child j of parent i is firsts[i] + j.
            ends = np.cumsum(counts)
            which = np.repeat(np.arange(counts.size), counts)
            nodes = firsts[which] + (np.arange(int(ends[-1])) - (ends - counts)[which])
            states = next_state[states[which], self.byte[nodes]]

    def next_states(self, next_state: np.ndarray, state: int) -> np.ndarray:
        """int32 ``[vocab]``: the state after each token from ``state``, or -1 when it is rejected."""
        states = self.node_states(next_state, state)[self.token_node]
        if self.symbol_tokens.size:  # symbol k's token reads column 256 + k
            states[self.symbol_tokens] = next_state[state, 256 : 256 + self.symbol_tokens.size]
        return states

    def walk_tokens(self, next_state: np.ndarray, states: np.ndarray, token_ids: np.ndarray) -> np.ndarray:
        """int32 ``[len(states), len(token_ids)]``: the state after each token from each state, or -1.

        The tokens' bytes are walked side by side from every state (one vectorized step per
        byte position), so a few hundred tokens from thousands of states take milliseconds: what
        a dense automaton needs once its token classes are known (one token per class).

        Example:
            >>> from pse_processors import Vocabulary
            >>> from pse_processors.matchers.byte_automaton import ByteAutomaton
            >>> trie = TokenTrie.build(Vocabulary([b"a", b"ab", b"b", None], eos_token_ids=[3]))
            >>> dfa = ByteAutomaton.build("ab?")
            >>> rows = trie.walk_tokens(dfa.next_state, np.array([0, dfa.walk(b"a")]), np.arange(4))
            >>> np.array_equal(rows, np.stack([trie.next_states(dfa.next_state, s) for s in (0, dfa.walk(b"a"))]))
            True
        """
        states = np.asarray(states, dtype=np.int64)
        token_ids = np.asarray(token_ids, dtype=np.int64)
        columns = self._byte_columns(self.token_node[token_ids])  # [depth, tokens], right-aligned, -1 pads
        width = next_state.shape[1]
        # One dead row appended: index -1 reads it, so a rejected walk stays rejected without a branch.
        table = np.vstack([next_state, np.full((1, width), -1, dtype=next_state.dtype)]).reshape(-1)
        out = np.empty((states.size, token_ids.size), dtype=np.int32)
        chunk = max(1, (1 << 22) // max(1, token_ids.size))  # about 4M cells at a time
        for lo in range(0, states.size, chunk):
            current = np.repeat(states[lo : lo + chunk, None], token_ids.size, axis=1)
            for column in columns:
                live = column >= 0
                current[:, live] = table[current[:, live] * width + column[live]]
            out[lo : lo + chunk] = current
        empty = self.token_node[token_ids] == self.num_nodes  # byte-less tokens: rejected unless a symbol
        out[:, empty] = -1
        if self.symbol_tokens.size:
            for k, token in enumerate(self.symbol_tokens.tolist()):
                out[:, token_ids == token] = next_state[states, 256 + k][:, None]
        return out

    def _byte_columns(self, nodes: np.ndarray) -> list[np.ndarray]:
        """The bytes of each node's prefix as columns (first byte first), right-aligned, -1 before."""
        parent = self.__dict__.get("_parent")
        if parent is None:  # children are contiguous and sorted by parent (see build)
            parent = np.zeros(self.num_nodes + 1, dtype=np.int64)
            parent[1 : self.num_nodes] = np.repeat(np.arange(self.num_nodes), self.num_children)
            object.__setattr__(self, "_parent", parent)  # a cache on a frozen dataclass
        current = np.where(nodes >= self.num_nodes, 0, nodes).astype(np.int64)
        columns = []
        while current.any():
            columns.append(np.where(current > 0, self.byte[np.minimum(current, self.num_nodes - 1)].astype(np.int64), -1))
            current = parent[current]
        return columns[::-1]

    def with_symbols(self, token_ids: "list[int] | tuple[int, ...]") -> "TokenTrie":
        """This trie with ``token_ids`` (byte-less tokens) as symbols 0..K-1 (see the class docstring).

        Example:
            >>> from pse_processors import Vocabulary
            >>> trie = TokenTrie.build(Vocabulary([b"a", None, None], eos_token_ids=[2])).with_symbols([1])
            >>> table = np.full((2, 257), -1, dtype=np.int32)  # 256 bytes and one symbol
            >>> table[0, ord("a")], table[0, 256] = 0, 1
            >>> trie.next_states(table, 0).tolist()
            [0, 1, -1]
        """
        return dataclasses.replace(self, symbol_tokens=np.asarray(list(token_ids), dtype=np.int64))

    def save(self, path: Union[Path, BinaryIO], fingerprint: str) -> None:
        np.savez(
            path, byte=self.byte, first_child=self.first_child, num_children=self.num_children,
            token_node=self.token_node, check=np.array([_FORMAT, len(fingerprint)]),
            fingerprint=np.frombuffer(fingerprint.encode(), dtype=np.uint8),
        )

    @classmethod
    def load(cls, path: Union[Path, BinaryIO], vocabulary: Vocabulary) -> "TokenTrie":
        with np.load(path, allow_pickle=False) as data:
            if bytes(data["fingerprint"]).decode() != vocabulary.fingerprint or int(data["check"][0]) != _FORMAT:
                raise ValueError("the file belongs to another vocabulary")
            trie = cls(data["byte"], data["first_child"], data["num_children"], data["token_node"])
        count = trie.num_nodes
        if (
            trie.token_node.shape != (vocabulary.size,) or trie.first_child.shape != (count,)
            or trie.num_children.shape != (count,) or int(trie.token_node.max(initial=0)) > count
            or int((trie.first_child + trie.num_children).max()) > count
        ):
            raise ValueError("inconsistent trie arrays")
        return trie


_tries: "weakref.WeakKeyDictionary[Vocabulary, TokenTrie]" = weakref.WeakKeyDictionary()
_lock = threading.Lock()


def trie_for(vocabulary: Vocabulary, store: Optional[DiskStore]) -> TokenTrie:
    """The vocabulary's trie: from memory, else from ``store`` (the disk cache), else built."""
    with _lock:
        trie = _tries.get(vocabulary)
        if trie is not None:
            return trie
        if isinstance(store, Path):  # a cache folder
            store = DiskStore(store)
        entry = cache_entry(vocabulary, store) if store is not None else None
        payload = entry.load("trie") if entry is not None else None
        if payload is not None:
            try:
                trie = TokenTrie.load(io.BytesIO(payload), vocabulary)
            except Exception as exc:  # noqa: BLE001 - any unreadable file is rebuilt
                logger.warning("ignoring the corrupt trie cache file %s (%s)", entry.path, exc)  # type: ignore[union-attr]
        if trie is None:
            trie = TokenTrie.build(vocabulary)
            if entry is not None:
                entry.save(lambda handle: trie.save(handle, vocabulary.fingerprint), "trie")
        _tries[vocabulary] = trie
        return trie


def cache_entry(vocabulary: Vocabulary, store: DiskStore) -> CacheEntry:
    """The ``tries/`` entry of ``vocabulary``: bound to its fingerprint (and the library version)."""
    return store.entry("tries", entry_binding("tries", _FORMAT, vocabulary.fingerprint), ".npz")
