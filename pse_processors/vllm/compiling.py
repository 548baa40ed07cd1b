"""Compiling each distinct constraint once, for one model, off the decode loop.

vLLM calls a logits processor's ``update_state`` when a request joins the batch, then runs the
model's forward pass, then calls ``apply``. :class:`MatcherCache` starts a new constraint's
compile in ``update_state`` on a background thread, so it overlaps that forward pass (the
compiler is Python, but outlines-core and llguidance release the GIL and so does torch's
forward), and ``apply`` waits only for what is left of it. Requests with the same constraint
(:attr:`~.requests.ConstraintRequest.key`) share one future, and the compiler's own caches
(memory, disk) make a repeated constraint cost a dictionary lookup.

A JSON Schema that no cache holds runs on llguidance (compiled in milliseconds), and its byte
automaton is built in the background only once llguidance has computed
``defaults.VLLM_HANDOFF_AFTER_MASKS`` of its masks: most new schemas of a server serve a few
requests, for which the build (5 ms to seconds of CPU) and a trie walk per automaton state
cost more than llguidance's masks; a schema in steady use gets the automaton (cached masks).
The model's vocabulary is read on the same thread when the processor is built (:meth:`MatcherCache.preload`).

This module needs neither vLLM nor torch.

Example:
    >>> import pse_processors as pse
    >>> from pse_processors.vllm.requests import request_from_extra_args
    >>> vocab = pse.Vocabulary([b"yes", b"no", None], eos_token_ids=[2])
    >>> cache = MatcherCache(lambda: vocab)
    >>> request = request_from_extra_args({"pse": {"choice": ["yes", "no"]}})
    >>> matcher = cache.submit(request).result()
    >>> matcher.accepts([1, 2]), cache.submit(request).result() is matcher
    (True, True)
    >>> cache.close()
"""

from __future__ import annotations

import logging
import threading
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Callable, Optional

from .. import defaults
from ..caching.lru import SizedLRU
from ..compiler.compiler import Compiler
from ..matchers import HandoffMatcher, Matcher
from ..vocabulary.llg_tokenizer import lltokenizer_for
from ..vocabulary.vocabulary import Vocabulary
from .requests import ConstraintRequest

logger = logging.getLogger(__name__)


class MatcherCache:
    """Compiled matchers by request key, compiled on one background thread.

    Args:
        vocabulary: returns the model's :class:`~pse_processors.Vocabulary`; called once, on
            the background thread, the first time a constraint is compiled (reading a 128k
            tokenizer takes about a second, which no request without a constraint should wait for).
        max_items: how many distinct constraints keep their future (the compiler keeps its own
            caches besides).
        handoff_after: llguidance masks of a new JSON Schema before its automaton is built
            (``None``: at once, as ``pse_processors.compile`` does).
    """

    def __init__(
        self, vocabulary: Callable[[], Vocabulary], max_items: int = defaults.MEMORY_CACHE_ENTRIES,
        handoff_after: Optional[int] = defaults.VLLM_HANDOFF_AFTER_MASKS,
    ) -> None:
        self._vocabulary_source = vocabulary
        self.handoff_after = handoff_after
        self._vocabulary: Optional[Vocabulary] = None
        self._vocabulary_lock = threading.Lock()
        self._futures = SizedLRU(max_items=max_items)
        self._executor: Optional[ThreadPoolExecutor] = None

    def vocabulary(self) -> Vocabulary:
        """The model's vocabulary (built on first use)."""
        with self._vocabulary_lock:
            if self._vocabulary is None:
                self._vocabulary = self._vocabulary_source()
            return self._vocabulary

    def preload(self) -> "Future[None]":
        """Read the model's vocabulary (and llguidance's view of it) on the background thread now,
        not when the first constrained request arrives (about a second of CPU for a 49k tokenizer,
        which that request's first step would wait for). A failure is logged, and the first
        compile tries again."""
        return self._pool().submit(self._preload)

    def _preload(self) -> None:
        try:
            lltokenizer_for(self.vocabulary())
        except Exception as exc:  # noqa: BLE001 - the first compile reads it again and reports it
            logger.info("pse: reading the model's vocabulary ahead of the first constrained request failed (%s)", exc)

    def _pool(self) -> ThreadPoolExecutor:
        if self._executor is None:
            self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="pse-vllm-compile")
        return self._executor

    def submit(self, request: ConstraintRequest) -> "Future[Matcher]":
        """The future matcher of ``request``: started now unless an equal request started it."""
        future = self._futures.get(request.key)
        if future is None:
            future = self._pool().submit(self._compile, request)
            self._futures.put(request.key, future)
        return future

    def _compile(self, request: ConstraintRequest) -> Matcher:
        matcher = Compiler(self.vocabulary(), request.options, handoff_after=self.handoff_after).compile(request.constraint)
        lazy_masks(matcher)
        matcher.allowed_mask(matcher.initial_state)  # the first mask too, while the forward pass runs
        return matcher

    def close(self) -> None:
        """Stop the background thread (compiles already started finish first)."""
        if self._executor is not None:
            self._executor.shutdown(wait=True)
            self._executor = None


def lazy_masks(matcher: Matcher) -> Matcher:
    """Masks on first use: a warm start's automaton (:class:`~pse_processors.matchers.HandoffMatcher`)
    does not compute all of its masks when its background build ends.

    The eager processors want that (no step computes a mask afterwards); a server does not: a
    request visits tens of states of an automaton of thousands, the device table keeps the masks
    that were used, and the precomputation (2 s of CPU for a 2,000-state schema on SmolLM2's
    vocabulary) would compete with the forward pass for every new schema."""
    if isinstance(matcher, HandoffMatcher):
        matcher.precompute = False
    return matcher
