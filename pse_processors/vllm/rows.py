"""Each constrained request's state in a vLLM batch: walked incrementally from its live output ids.

vLLM hands a logits processor each new request once, with ``output_ids``: the request's own
list of generated ids, which vLLM keeps appending to. A row index is a request (vLLM moves
requests between rows and says so), so a request's state is kept with the request and advanced
by the ids appended since the last step: ``(consumed, last id, state)``.

This is the eager processors' prefix-keyed state (:mod:`pse_processors.runtime.prefix_states`)
without the lookups: there, a row's index says nothing about its history (beam search reorders
rows, assisted decoding rolls back), so the whole prefix is the key. Here the list *is* the
history, and it only changes in ways that are detected:

- it grows by the ids sampled since the last step: they are walked from the saved state;
- it shrinks (vLLM discards tokens after a KV-load failure) or its last consumed id changed:
  the walk starts again from the beginning, so a state never outlives the ids it came from;
- under async scheduling vLLM appends ``-1`` placeholders and replaces them with the sampled
  ids just before the logits processors run, but only for processors registered explicitly
  (``logits_processors=[...]``), not for entry-point ones. A placeholder still there when the
  masks are computed means this step's mask cannot be known: the request is stopped (only its
  stop ids are allowed) and the reason logged, rather than masked from a stale state.
  (``validate_params`` refuses such requests up front where it can see the configuration.)

A request that vLLM preempts and resumes comes back as a new request with its ids so far,
which are walked from the start. This module needs neither vLLM nor torch.

Example:
    >>> import pse_processors as pse
    >>> from pse_processors.vllm.compiling import MatcherCache
    >>> from pse_processors.vllm.requests import request_from_extra_args
    >>> vocab = pse.Vocabulary([b"a", b"b", None], eos_token_ids=[2])
    >>> rows = RowStates(MatcherCache(lambda: vocab))
    >>> ids = []
    >>> rows.add(0, request_from_extra_args({"pse": {"regex": "ab"}}), ids, stop_ids={2})
    >>> [(index, matcher.allowed_token_ids(state).tolist()) for index, matcher, state, _ in rows.current()]
    [(0, [0])]
    >>> ids.append(0)
    >>> [matcher.allowed_token_ids(state).tolist() for _, matcher, state, _ in rows.current()]
    [[1]]
    >>> rows.move(0, 3, swap=False); sorted(rows.indices())
    [3]
"""

from __future__ import annotations

import logging
from concurrent.futures import Future
from typing import Iterable, Iterator, Optional

from ..matchers import DEAD, Matcher
from .compiling import MatcherCache
from .requests import ConstraintRequest

logger = logging.getLogger(__name__)

PLACEHOLDER_ERROR = (
    "vLLM did not hand this request's sampled ids to the processor before masking (async scheduling with "
    "an entry-point logits processor): it is stopped. Register the processor explicitly "
    "(--logits-processors pse_processors.vllm:VLLMPSELogitsProcessor) or serve with --no-async-scheduling."
)


class RequestState:
    """One constrained request: its matcher (once compiled), its live ids and how far they are walked."""

    __slots__ = ("request", "future", "matcher", "output_ids", "prompt_ids", "consumed", "last", "state", "stop_ids", "error")

    def __init__(
        self, request: Optional[ConstraintRequest], future: "Optional[Future[Matcher]]", output_ids: list, stop_ids: frozenset
    ) -> None:
        self.request = request
        self.future = future
        self.matcher: Optional[Matcher] = None
        self.output_ids = output_ids
        #: The prompt's ids, where vLLM gives them: a constraint may start from what the prompt opened
        #: (``Matcher.initial_state_for``: a reasoning block the chat template began).
        self.prompt_ids: Optional[list] = None
        self.consumed = 0
        self.last = -1
        self.state = 0
        #: The ids that end this request in vLLM: all it may sample when its constraint failed.
        self.stop_ids = stop_ids
        #: Why the constraint could not be run (the request then gets only its stop ids).
        self.error: Optional[str] = None

    def initial(self) -> int:
        """The state before the first output id."""
        matcher = self.matcher
        return matcher.initial_state if self.prompt_ids is None else matcher.initial_state_for(self.prompt_ids)  # type: ignore[union-attr]

    def advance(self) -> int:
        """The state after every id in ``output_ids`` (``DEAD`` after a rejected one)."""
        matcher = self.matcher
        ids = self.output_ids
        n = len(ids)
        consumed = self.consumed
        if n < consumed or (consumed and ids[consumed - 1] != self.last):
            consumed, self.state = 0, self.initial()
        state = self.state
        step = matcher.step  # type: ignore[union-attr]
        while consumed < n:
            token = ids[consumed]
            if token < 0:  # an async-scheduling placeholder vLLM did not replace: see the module docstring
                self.error = PLACEHOLDER_ERROR
                logger.error("pse: %s", PLACEHOLDER_ERROR)
                return DEAD
            if state != DEAD:
                nxt = step(state, token)
                state = DEAD if nxt is None else nxt
            consumed += 1
        if consumed:
            self.last = ids[consumed - 1]
        self.consumed, self.state = consumed, state
        return state


class RowStates:
    """The constrained requests of a batch, by row (vLLM v1) or request slot (Model Runner V2).

    Rows without a constraint have no entry, so a batch without any costs nothing.
    """

    def __init__(self, matchers: MatcherCache) -> None:
        self.matchers = matchers
        self._rows: dict[int, RequestState] = {}

    def __len__(self) -> int:
        return len(self._rows)

    def __contains__(self, index: int) -> bool:
        return index in self._rows

    def get(self, index: int) -> Optional[RequestState]:
        return self._rows.get(index)

    def indices(self) -> Iterable[int]:
        return self._rows.keys()

    def add(
        self, index: int, request: Optional[ConstraintRequest], output_ids: list, stop_ids: Iterable[int] = (),
        error: Optional[str] = None, prompt_ids: Optional[list] = None,
    ) -> None:
        """Row ``index`` now holds a new request (replacing whatever was there): ``request``, or
        unconstrained (``None``), or one whose constraint could not be read (``error``: it may only stop)."""
        if request is None and error is None:
            self._rows.pop(index, None)
            return
        future = self.matchers.submit(request) if request is not None else None
        row = self._rows[index] = RequestState(request, future, output_ids, frozenset(stop_ids))
        row.error, row.prompt_ids = error, prompt_ids

    def remove(self, index: int) -> None:
        self._rows.pop(index, None)

    def move(self, source: int, target: int, swap: bool) -> None:
        """The request of ``source`` moves to ``target``; with ``swap``, ``target``'s moves to ``source``."""
        moving = self._rows.pop(source, None)
        other = self._rows.pop(target, None)
        if moving is not None:
            self._rows[target] = moving
        if swap and other is not None:
            self._rows[source] = other

    def update(self, removed: Iterable[int], added: Iterable[tuple], moved: Iterable[tuple], request_of) -> None:
        """Apply one vLLM ``BatchUpdate``, in its order: removed, then added, then moved.

        ``added`` holds ``(index, params, prompt_ids, output_ids)``; ``request_of(params)`` reads
        a request's ``(constraint or None, stop ids, error or None)``; ``moved`` holds ``(source, target, direction)``, a
        direction whose name is ``"SWAP"`` swapping the two rows."""
        for index in removed:
            self.remove(index)
        for index, params, prompt_ids, output_ids in added:
            request, stop_ids, error = request_of(params)
            self.add(index, request, output_ids, stop_ids, error, prompt_ids)
        for source, target, direction in moved:
            self.move(source, target, getattr(direction, "name", direction) == "SWAP")

    def current(self, indices: Optional[Iterable[int]] = None) -> Iterator[tuple[int, Optional[Matcher], int, RequestState]]:
        """``(index, matcher, state, request state)`` of each constrained row (of ``indices`` only,
        if given), its state advanced over the ids sampled since the last call.

        Waits for a matcher still compiling. ``matcher`` is ``None`` when the constraint could not
        be compiled for this model (logged once; the request may then only stop)."""
        rows = self._rows
        for index in rows if indices is None else indices:
            row = rows.get(index)
            if row is None:
                continue
            if row.matcher is None and row.error is None:
                try:
                    row.matcher = row.future.result()  # type: ignore[union-attr]
                    row.state = row.initial()
                except Exception as exc:  # noqa: BLE001 - never take the engine down for one request
                    row.error = f"{type(exc).__name__}: {exc}"
                    logger.error(
                        "pse: the constraint of a request could not be compiled for this model (%s); the request "
                        "is stopped at once", row.error,
                    )
            if row.matcher is None or row.error is not None:
                yield index, None, DEAD, row
            else:
                state = row.advance()
                yield index, (None if row.error is not None else row.matcher), state, row
