"""``backend="auto"``'s warm start: llguidance runs until the byte automaton is built.

Building a byte automaton costs 5 ms to a few seconds (outlines-core, then a dense table),
while the same schema's grammar runs on llguidance within milliseconds. For a JSON Schema
that the automaton can hold, ``auto`` therefore answers the first masks from the grammar
and builds the automaton on a background thread (outlines-core releases the GIL
while it builds). Once it is built, every later step runs on it: a state of the grammar
is translated by replaying its token path through the automaton, once. Before it takes over,
the same background thread gives every state of the automaton its mask
(:meth:`~pse_processors.matchers.automaton.AutomatonMatcher.precompute_masks`, bounded by
``defaults.PRECOMPUTE_MAX_STATES``), so no mask of the automaton walks the token trie while
the model waits. The build may instead wait until llguidance has computed ``build_after`` masks
(:meth:`HandoffMatcher.start_build`): the vLLM processor's choice for schemas that few requests use.

Both back ends compile the same schema from the same compiler output, so they allow the
same tokens (``tests/matchers/test_backend_agreement.py``); a path the automaton does not accept
(none is known) simply stays on llguidance. States are ints as everywhere else:
llguidance's node ids below :data:`AUTOMATON_OFFSET`, the automaton's states
above it. Mask ids are this grammar's own, so the processors' device caches see one id
per allowed set whichever back end computed it.
"""

from __future__ import annotations

import copy
import logging
import os
import queue
import threading
import time
import warnings
import weakref
from typing import Any, Callable, Optional

import numpy as np

from .. import defaults
from ..constraints.spec import ConstraintSpec
from ..deprecation import deprecated_names
from .base import DEAD, DONE, Matcher

logger = logging.getLogger(__name__)

#: Automaton state ``s`` is handed out as ``AUTOMATON_OFFSET + s`` (llguidance node ids stay below).
AUTOMATON_OFFSET = 1 << 30


class _Shared:
    """What every view of one :class:`HandoffMatcher` shares (``with_spec`` copies share it)."""

    def __init__(self, pushdown: Matcher) -> None:
        self.pushdown = pushdown
        self.automaton: Optional[Matcher] = None
        self.error: Optional[BaseException] = None
        self.done = threading.Event()
        self.translated: dict = {}  # llguidance node -> automaton state (None: not on the automaton)
        self.mask_ids: tuple = ({}, {})  # [on llguidance?]: that back end's mask id -> ours
        self.lock = threading.Lock()
        self.precompute = True  # every automaton mask computed by the builder (HandoffMatcher.precompute)
        self.build: Optional[Callable[[], Matcher]] = None  # a deferred build, queued once llguidance
        self.build_after, self.pushdown_masks = 0, 0  # has computed build_after masks (pushdown_masks)


class HandoffMatcher(Matcher):
    """A JSON Schema grammar that starts on llguidance and hands off to the byte
    automaton once a background thread has built it; built by :func:`pse_processors.compile`
    (``backend="auto"``) when the automaton is neither in memory nor on disk.

    It has the matcher API of :class:`~pse_processors.Matcher`; ``backend`` is
    ``"dfa"`` (the back end it settles on). :meth:`settled` waits for the automaton.

    Example:
        >>> import uuid
        >>> import pse_processors as pse
        >>> vocab = pse.Vocabulary([bytes([c]) for c in b'"0123456789abcdef-'] + [None], eos_token_ids=[18])
        >>> text = str(uuid.uuid4())  # a constant no cache holds yet
        >>> grammar = pse.compile({"const": text}, vocab)
        >>> type(grammar).__name__, grammar.backend
        ('HandoffMatcher', 'dfa')
        >>> tokens = [vocab.token_bytes.index(bytes([c])) for c in f'"{text}"'.encode()]
        >>> grammar.accepts(tokens + [18]), grammar.accepts(tokens[:-1] + [18])
        (True, False)
        >>> grammar.settled().backend, grammar.ready, grammar.accepts(tokens + [18])
        ('dfa', True, True)
    """

    def __init__(
        self, pushdown: Matcher, spec: ConstraintSpec, build: Callable[[], Matcher], build_after: Optional[int] = None
    ) -> None:
        super().__init__(pushdown.vocabulary, spec)
        self._shared = _Shared(pushdown)
        if build_after is None:
            _submit(self._shared, build)
        else:  # deferred: see start_build
            self._shared.build, self._shared.build_after = build, build_after

    def start_build(self) -> bool:
        """Queue the automaton's build now if it was deferred (``build_after``); True if this call queued it.

        Else it starts once llguidance has computed ``build_after`` masks (of distinct states), or in
        :meth:`settled`: a grammar few tokens go through never pays for an automaton, one in steady use gets it.

        Example:
            >>> import uuid
            >>> import pse_processors as pse
            >>> from pse_processors.compiler import Compiler
            >>> vocab = pse.Vocabulary([bytes([c]) for c in b'"0123456789abcdef-'] + [None], eos_token_ids=[18])
            >>> grammar = Compiler(vocab, handoff_after=2).compile({"const": str(uuid.uuid4())})
            >>> grammar.building, grammar.allowed_token_ids(grammar.initial_state).tolist()
            (False, [0])
            >>> grammar.allowed_token_ids(grammar.walk([0])).size, grammar.building  # the second mask starts it
            (1, True)
            >>> grammar.start_build(), grammar.settled().backend
            (False, 'dfa')
        """
        shared = self._shared
        with shared.lock:
            build, shared.build = shared.build, None
        if build is None:
            return False
        _submit(shared, build)
        return True

    @property
    def building(self) -> bool:
        """False while the automaton's build is deferred (see :meth:`start_build`); True once it is queued."""
        return self._shared.build is None

    # -- the two back ends ----------------------------------------------------------------------
    @property
    def backend(self) -> str:  # type: ignore[override]
        """``"dfa"``; ``"llguidance"`` when the automaton could not be built (it then never will)."""
        return "llguidance" if self._shared.error is not None else "dfa"

    @property
    def ready(self) -> bool:
        """True once the automaton is built (later steps run on it)."""
        return self._shared.automaton is not None

    def settled(self, timeout: Optional[float] = None) -> Matcher:
        """The byte automaton's :class:`~pse_processors.Matcher`, waiting for its build.

        Raises what building it raised (e.g. ``CompileLimitError``), or ``TimeoutError``."""
        shared = self._shared
        self.start_build()
        if not shared.done.wait(timeout):
            raise TimeoutError(f"the byte automaton was not built within {timeout} s")
        if shared.error is not None:
            raise shared.error
        return shared.automaton  # type: ignore[return-value]

    @property
    def precompute(self) -> bool:
        """Whether the builder thread computes every mask of the automaton once it is built
        (default True: no later step computes one). A caller that needs few masks of many
        constraints sets it False before the build ends, and each mask is computed on first use:
        the vLLM processor, where a request visits tens of states of an automaton of thousands
        (a 2,000-state schema on SmolLM2's 49k tokens: 2 s of CPU up front, about 1 ms a mask)."""
        return self._shared.precompute

    @precompute.setter
    def precompute(self, value: bool) -> None:
        self._shared.precompute = bool(value)

    @property
    def pushdown(self) -> Matcher:
        """The llguidance matcher that answers until the automaton is built (and for good if it cannot be)."""
        return self._shared.pushdown

    def with_spec(self, spec: ConstraintSpec) -> "HandoffMatcher":
        """The same grammar (back ends, states and masks shared) with another spec, e.g. another result type."""
        view = copy.copy(self)
        view.spec = spec
        return view

    @property
    def initial_state(self) -> int:  # type: ignore[override]
        automaton = self._shared.automaton
        return 0 if automaton is None else AUTOMATON_OFFSET + automaton.initial_state

    @property
    def num_states(self) -> int:
        automaton = self._shared.automaton
        return self._shared.pushdown.num_states if automaton is None else automaton.num_states

    def automaton_grammar(self, timeout: Optional[float] = None) -> Matcher:
        """Deprecated (0.1): use :meth:`settled`."""
        warnings.warn("automaton_grammar() is deprecated: use settled()", DeprecationWarning, stacklevel=2)
        return self.settled(timeout)

    @property
    def dense_automaton(self) -> Any:
        """The automaton's dense automaton (waits for it: the in-graph processors need it)."""
        return self.settled().dense_automaton

    @property
    def nbytes(self) -> int:
        automaton = self._shared.automaton
        return 0 if automaton is None else automaton.nbytes

    def __repr__(self) -> str:
        on = "automaton" if self.ready else "llguidance, automaton building"
        return f"HandoffMatcher({self.spec.kind}, on the {on}, vocab {self.vocab_size})"

    def _inner(self, state: int) -> tuple[Matcher, int]:
        """The back end that answers for ``state`` (>= 0), and the state in its numbering."""
        if state >= AUTOMATON_OFFSET:
            return self._shared.automaton, state - AUTOMATON_OFFSET  # type: ignore[return-value]
        return self._shared.pushdown, state

    def _on_automaton(self, node: int) -> Optional[int]:
        """The automaton state after llguidance ``node``'s token path, or ``None``."""
        shared = self._shared
        translated = shared.translated
        if node in translated:
            return translated[node]
        pushdown, automaton = shared.pushdown, shared.automaton
        path = []
        current = node
        while current != 0 and current not in translated:
            path.append(pushdown._token[current])
            current = pushdown._parent[current]
        start = automaton.initial_state if current == 0 else translated[current]  # type: ignore[union-attr]
        state = DEAD if start is None else automaton.walk(reversed(path), start)  # type: ignore[union-attr]
        found = None if state == DEAD else state
        if found is None:
            logger.warning("the byte automaton rejects a path llguidance took; it stays on llguidance")
        with shared.lock:
            translated[node] = found
        return found

    # -- the matcher API ------------------------------------------------------------------------
    def is_accepting(self, state: int) -> bool:
        if state < 0:
            return state == DONE
        inner_matcher, inner = self._inner(state)
        return inner_matcher.is_accepting(inner)

    def step(self, state: int, token_id: int) -> Optional[int]:
        if state < 0:
            return DONE if state == DONE else None
        if state >= AUTOMATON_OFFSET:
            return _offset(self._shared.automaton.step(state - AUTOMATON_OFFSET, token_id))  # type: ignore[union-attr]
        if self._shared.automaton is not None:
            on_automaton = self._on_automaton(state)
            if on_automaton is not None:
                return _offset(self._shared.automaton.step(on_automaton, token_id))
        return self._shared.pushdown.step(state, token_id)

    def _compute_mask(self, state: int) -> int:
        inner_matcher, inner = self._inner(state)
        shared = self._shared
        if shared.build is not None and inner_matcher is shared.pushdown:  # a deferred build: count llguidance's work
            shared.pushdown_masks += 1
            if shared.pushdown_masks >= shared.build_after:
                self.start_build()
        inner_id = inner_matcher.mask_id(inner)
        ids = self._shared.mask_ids[inner_matcher is self._shared.pushdown]
        mask_id = ids.get(inner_id)
        if mask_id is None:  # an allowed set this engine has not shown before: digest it here
            packed = inner_matcher.bitmask(inner)  # read-only, shared; EOS set iff accepting
            mask_id = ids[inner_id] = self._mask_id_for(state, packed.tobytes())
            if self._packed.get(mask_id) is None:
                self._packed.put(mask_id, packed)
        else:
            with self._lock:
                self._mask_of_state[state] = mask_id
        return mask_id

    def _walk(self, state: int) -> tuple[np.ndarray, bool]:
        inner_matcher, inner = self._inner(state)
        return inner_matcher._walk(inner)


def _offset(state: Optional[int]) -> Optional[int]:
    return state if state is None or state < 0 else AUTOMATON_OFFSET + state


# -- the background builder: one thread, builds in order ---------------------------------------
# Each job is (work, ref, arg): ``work(ref, arg)`` runs on the builder thread; ``ref`` is a weak
# reference to what the job is for, so a job whose owner is gone costs nothing.
_Job = tuple[Callable[[weakref.ref, Any], None], weakref.ref, Any]
_queue: "queue.Queue[_Job]" = queue.Queue()
_worker: Optional[threading.Thread] = None
_worker_lock = threading.Lock()
_current: Optional[_Job] = None  # the job running now: a forked child starts it again


def _submit(shared: _Shared, build: Callable[[], Matcher]) -> None:
    _enqueue((_build, weakref.ref(shared), build))


def _enqueue(job: _Job) -> None:
    global _worker
    _queue.put(job)
    with _worker_lock:
        if _worker is None or not _worker.is_alive():
            _worker = threading.Thread(target=_run, name="pse-automaton-builder", daemon=True)
            _worker.start()


def _run() -> None:
    global _current
    while True:
        job = _queue.get()
        _current = job
        try:
            job[0](job[1], job[2])
        finally:
            _current = None
            _queue.task_done()


def _after_fork_in_child() -> None:
    """A forked child (a DataLoader worker, multiprocessing's default start on Linux) has no
    builder thread: queue again the jobs that were waiting or running in the parent."""
    global _queue, _worker, _worker_lock, _current
    pending = ([_current] if _current is not None else []) + list(_queue.queue)
    _queue, _worker, _worker_lock, _current = queue.Queue(), None, threading.Lock(), None
    for job in pending:
        if job[1]() is not None:
            _enqueue(job)


if hasattr(os, "register_at_fork"):  # not on Windows, which has no fork
    os.register_at_fork(after_in_child=_after_fork_in_child)


def _build(ref: "weakref.ref[_Shared]", build: Callable[[], Matcher]) -> None:
    shared = ref()
    if shared is None:  # nobody holds the grammar any more: skip its build
        return
    del shared  # do not keep it alive while building
    try:
        automaton, error = build(), None
    except Exception as exc:  # noqa: BLE001 - kept for automaton_grammar() to raise
        automaton, error = None, exc
        logger.info("the byte automaton could not be built (%s): staying on llguidance", exc)
    if automaton is not None and getattr(ref(), "precompute", False):
        _precompute(weakref.ref(automaton), None)
    shared = ref()
    if shared is not None:
        shared.automaton, shared.error = automaton, error
        shared.done.set()


def _precompute(ref: "weakref.ref[Matcher]", _arg: Any = None) -> None:
    matcher = ref()
    precompute = getattr(matcher, "precompute_masks", None)
    if precompute is None or getattr(matcher, "mask_precompute", None) is not None:
        return
    try:  # every mask now, on this thread: none walks the trie on the caller's
        precompute()
    except Exception as exc:  # noqa: BLE001 - the automaton still runs, its masks computed on first use
        logger.warning("precomputing the automaton's masks failed (%s): they are computed on first use", exc)


def precompute_in_background(matcher: Matcher) -> bool:
    """Queue ``matcher.precompute_masks()`` on the builder thread, once per matcher: for a byte
    automaton that was not built by a hand-off (loaded from the disk cache, or ``backend="dfa"``),
    whose masks would otherwise walk the token trie on their first visit, on the caller's thread.
    The eager processors call it when they are built. Until it has run, masks are computed on first
    use as before. Returns whether a job was queued (False: nothing to precompute, already
    precomputed or queued, or more than ``defaults.PRECOMPUTE_MAX_STATES`` states).

    Example:
        >>> import pse_processors as pse
        >>> vocab = pse.Vocabulary([b"a", b"b", b"ab", None], eos_token_ids=[3])
        >>> matcher = pse.compile(pse.Regex("a(ba)*b?"), vocab, backend="dfa")  # a matcher no other example precomputed
        >>> precompute_in_background(matcher), wait_for_builds(60), matcher.mask_precompute is not None
        (True, True, True)
        >>> precompute_in_background(matcher)  # already done
        False
    """
    if getattr(matcher, "precompute_masks", None) is None or getattr(matcher, "mask_precompute", None) is not None:
        return False
    if matcher.num_states > defaults.PRECOMPUTE_MAX_STATES:
        return False
    with _worker_lock:
        if getattr(matcher, "_precompute_queued", False):
            return False
        matcher._precompute_queued = True  # type: ignore[attr-defined]
    _enqueue((_precompute, weakref.ref(matcher), None))
    return True


def wait_for_builds(timeout: Optional[float] = None) -> bool:
    """Wait until every queued automaton build has finished (tests, benchmarks); False on timeout."""
    deadline = None if timeout is None else time.monotonic() + timeout
    while _queue.unfinished_tasks:
        if deadline is not None and time.monotonic() > deadline:
            return False
        time.sleep(0.002)
    return True


__getattr__ = deprecated_names(__name__, {"HandoffGrammar": (HandoffMatcher, "HandoffMatcher")})
