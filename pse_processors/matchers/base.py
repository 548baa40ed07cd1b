"""The one matcher protocol every back end implements, and the mask bookkeeping they share.

A matcher is a constraint compiled against one vocabulary. Its states are plain ints (0 or
the automaton's initial state to start, :data:`DONE` after EOS, :data:`DEAD` after a rejected
token), so one matcher serves every row, beam and thread; nothing in it is mutable from the
outside. A back end implements four methods:

- :meth:`Matcher.step`: the state after a token (the hot path);
- :meth:`Matcher.is_accepting`: the text so far is complete;
- :meth:`Matcher._compute_mask`: the mask id of a state never seen, registered with
  :meth:`Matcher._mask_id_for`;
- :meth:`Matcher._walk`: a state's allowed tokens as a bool array (without EOS).

The rest (mask ids per distinct allowed set, bool and packed masks, ``accepts``, ``walk``)
is written once here. Build matchers with :func:`pse_processors.compile`; the compiler
registers how each back end pickles (as its recipe), so this layer never imports it.
"""

from __future__ import annotations

import hashlib
import threading
import warnings
from abc import ABC, abstractmethod
from typing import Any, Iterable, Optional

import numpy as np

from .. import defaults
from ..caching.lru import SizedLRU
from ..constraints.spec import ConstraintSpec
from ..errors import VocabularyError
from ..vocabulary.vocabulary import Vocabulary

DONE = -1
DEAD = -2
_EOS_ONLY = -1  # the mask id of DONE and DEAD
#: The 0.1 names of the back ends, for the deprecated ``engine`` attribute.
_OLD_NAMES = {"dfa": "dfa", "llguidance": "grammar"}


def padding_allowance(tokens: int) -> int:
    """How many logits past a tokenizer of ``tokens`` tokens a model may have: ``max(1024, 3%)``.

    Models pad their embedding past the tokenizer: to a multiple of 64 or 128 (Phi-3: 32,064
    logits for 32,011 tokens; Qwen2.5: 151,936 for 151,665), with reserved ids (Phi-2 and
    CodeGen: 51,200 for 50,295; Command-R: 256,000 for 255,029), up to 2.3% (DeepSeek-LLM:
    102,400 for 100,015). Another family's tokenizer is usually much further off (Llama-2's
    32,000 tokens on SmolLM2's 49,152 logits; Llama-3's 128,256 on Qwen's 151,936).

    Example:
        >>> padding_allowance(49_152), padding_allowance(151_665)
        (1474, 4549)
    """
    return max(1024, tokens * 3 // 100)


class Matcher(ABC):
    """The matcher API over a compiled constraint: plain ints and numpy arrays, no framework.

    Example:
        >>> import pse_processors as pse
        >>> vocab = pse.Vocabulary([b"a", b"b", b"ab", None], eos_token_ids=[3])
        >>> matcher = pse.compile(pse.Regex("ab?"), vocab)
        >>> state = matcher.advance(matcher.initial_state, 0)
        >>> sorted(matcher.allowed_token_ids(state).tolist()), matcher.is_accepting(state)
        ([1, 3], True)
        >>> matcher.accepts([2, 3]), matcher.accepts([1]), isinstance(matcher, pse.Matcher)
        (True, False, True)
    """

    #: The back end: ``"dfa"`` (the byte automaton) or ``"llguidance"``.
    backend: str = "dfa"
    initial_state: int = 0

    def __init__(self, vocabulary: Vocabulary, spec: ConstraintSpec) -> None:
        self.vocabulary = vocabulary
        self.spec = spec
        self._eos = np.array(sorted(vocabulary.eos_token_ids), dtype=np.int64)
        self._eos_set = vocabulary.eos_token_ids
        self._lock = threading.Lock()
        # Many states allow the same tokens (every position inside a string, say): masks are
        # cached per distinct allowed set, not per state.
        self._masks = SizedLRU(defaults.MASK_CACHE_BYTES, lambda mask: mask.nbytes)
        # Packed int32 bitmasks by mask id (what bitmask() returns): 32x smaller than the bool
        # masks, and llguidance computes them first.
        self._packed = SizedLRU(defaults.MASK_CACHE_BYTES, lambda mask: mask.nbytes)
        self._mask_of_state: dict[int, int] = {}
        self._mask_by_digest: dict[bytes, int] = {}
        self._state_of_mask: list[int] = []
        self._token_bytes = vocabulary.token_bytes
        #: The matcher whose masks this one shares (itself, or the one a ``with_spec`` view
        #: copies): what the runtime's device caches are keyed by.
        self.mask_owner: Matcher = self
        #: ``(constraint, compile options)`` that the compiler built this from: what a pickle holds.
        self.recipe: Optional[tuple[Any, dict]] = None
        #: Where a generation starts given its prompt (``Reasoning``'s prompt detection, set by the
        #: compiler; see :mod:`~pse_processors.matchers.prompts`), or ``None``: always :attr:`initial_state`.
        self.prompt_scanner: Optional[Any] = None

    # -- what a back end implements -------------------------------------------------------------
    @abstractmethod
    def step(self, state: int, token_id: int) -> Optional[int]:
        """The hot-path :meth:`advance` for a live state (>= 0) or ``DONE`` and a Python int.

        ``DONE`` stays ``DONE`` whatever the token (generate pads finished rows)."""

    @abstractmethod
    def is_accepting(self, state: int) -> bool:
        """True when the text so far is complete: EOS is allowed."""

    @abstractmethod
    def _compute_mask(self, state: int) -> int:
        """The mask id of a state seen for the first time."""

    @abstractmethod
    def _walk(self, state: int) -> tuple[np.ndarray, bool]:
        """The tokens ``state`` allows (without EOS) and whether it is accepting."""

    # -- what every back end shares -----------------------------------------------------------
    def initial_state_for(self, prompt_ids: Iterable[int]) -> int:
        """The state a generation after ``prompt_ids`` starts in: :attr:`initial_state`, unless the
        constraint reads its prompt (a :class:`~pse_processors.Reasoning` block that the chat template
        opened or closed already). The runtime calls it once per new row, never per step.

        Example:
            >>> import pse_processors as pse
            >>> matcher = pse.compile(pse.Regex("a"), pse.Vocabulary([b"a", None], eos_token_ids=[1]))
            >>> matcher.initial_state_for([0, 0]) == matcher.initial_state
            True
        """
        scanner = self.prompt_scanner
        return self.initial_state if scanner is None else scanner(prompt_ids)

    @property
    def engine(self) -> str:
        """Deprecated (0.1): the back end under its old name (``"grammar"`` for llguidance); use :attr:`backend`."""
        warnings.warn("Matcher.engine is deprecated: use Matcher.backend", DeprecationWarning, stacklevel=2)
        return _OLD_NAMES.get(self.backend, self.backend)

    @property
    def dense_automaton(self) -> Any:
        """The whole automaton over token classes, for the in-graph processors (the byte automaton only)."""
        raise NotImplementedError(f"{type(self).__name__} has no dense automaton")

    @property
    def tables(self) -> Any:
        """Deprecated (0.1): use :attr:`dense_automaton`."""
        warnings.warn("Matcher.tables is deprecated: use Matcher.dense_automaton", DeprecationWarning, stacklevel=2)
        return self.dense_automaton

    @property
    def vocab_size(self) -> int:
        return self.vocabulary.size

    @property
    def num_masks(self) -> int:
        """Distinct allowed sets seen so far."""
        return len(self._state_of_mask)

    @property
    def nbytes(self) -> int:
        """Bytes of the compiled artifact this matcher holds (what the compiler's memory cache weighs)."""
        return 0

    def settled(self, timeout: Optional[float] = None) -> "Matcher":
        """The matcher that later steps run on: this one, or for a hand-off its automaton (waited for)."""
        return self

    def __copy__(self) -> "Matcher":
        # A shallow copy shares the caches (``with_spec`` views); only pickling rebuilds.
        clone = object.__new__(type(self))
        clone.__dict__.update(self.__dict__)
        return clone

    def check_logits_width(self, width: int, source: str = "the logits are") -> None:
        """Raise ``VocabularyError`` unless logits ``width`` ids wide fit this tokenizer: they cover
        every usable token, and are not wider than any padding of a vocabulary explains
        (:func:`padding_allowance`). ``source`` says what is ``width`` wide, for the message.

        Example:
            >>> import pse_processors as pse
            >>> matcher = pse.compile(pse.Regex("a"), pse.Vocabulary([b"a", None], eos_token_ids=[1]))
            >>> matcher.check_logits_width(64)  # padded: fine
            >>> matcher.check_logits_width(5000)  # doctest: +ELLIPSIS
            Traceback (most recent call last):
            ...
            pse_processors.errors.VocabularyError: the tokenizer has 2 tokens but the logits are 5000 wide: 4998 more ids ...
        """
        vocabulary = self.vocabulary
        if width <= 0:
            raise VocabularyError(f"the logits must be at least one id wide, got {width}")
        if vocabulary.size > width:
            usable = [i for i in range(width, vocabulary.size) if vocabulary.token_bytes[i] is not None]
            usable += [i for i in vocabulary.eos_token_ids if i >= width]
            if usable:
                raise VocabularyError(
                    f"the tokenizer has {vocabulary.size} tokens but {source} only {width} wide (token ids "
                    f"{sorted(usable)[:5]} have no logit): this tokenizer does not belong to this model"
                )
        elif width - vocabulary.size > padding_allowance(vocabulary.size):
            raise VocabularyError(
                f"the tokenizer has {vocabulary.size} tokens but {source} {width} wide: {width - vocabulary.size} more ids than "
                f"models pad their vocabulary by (at most {padding_allowance(vocabulary.size)} for this size), "
                "so this tokenizer does not belong to this model"
            )

    def mask_id(self, state: int) -> int:
        """Id of the allowed-token set of ``state``: states with equal sets share it.

        ``DONE`` and ``DEAD`` (EOS only) share the id -1."""
        if state < 0:
            return _EOS_ONLY
        found = self._mask_of_state.get(state)
        if found is None:
            found = self._compute_mask(state)
        return found

    def mask_ids(self, states: list[int]) -> list[int]:
        """:meth:`mask_id` of each state: one dictionary read per state once its mask is known (a batch's hot path)."""
        found = list(map(self._mask_of_state.get, states))
        if None in found:
            mask_id = self.mask_id
            found = [mask_id(state) if found_id is None else found_id for found_id, state in zip(found, states)]
        return found  # type: ignore[return-value]

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

        Ids past the vocabulary are False; EOS ids are True in accepting states."""
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
            if full is None:  # evicted, or computed packed: walk the state again
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
