"""Score checks that wait for a row's next token, for lazy frameworks (MLX).

Reading the masked scores inside the hook would make a lazy framework wait for the forward
pass. So each row's best masked score is kept unread, keyed by the row's token prefix, and read
only when the row's next token arrives and is suspect: one the constraint rejects (a sample
from masked scores with a finite allowed maximum never is), or the first or last id, where
mlx-lm's samplers land when every score is NaN or -inf. Framework-free: a pending score is
anything with ``.item()``.

Example:
    >>> import numpy as np, pse_processors as pse
    >>> matcher = pse.compile(pse.Choice(["ab"]), pse.Vocabulary([b"a", b"b", b"x", None], eos_token_ids=[3]))
    >>> checks = DeferredChecks(matcher)
    >>> parent = np.array([2], dtype=np.int64).tobytes()
    >>> checks.record([parent], [matcher.initial_state], np.float32(-np.inf))
    >>> child = np.array([[2, 0]])
    >>> checks.check([child[0].tobytes()], [matcher.initial_state], child, width=4)
    Traceback (most recent call last):
    ...
    pse_processors.errors.ConstraintConflictError: row 0: every token the constraint allows (1 ids) was set to -inf before this processor ran: an earlier processor forced a token the constraint does not allow here (a logits processor or logit_bias before this one banned every token the constraint allows here). Remove the conflicting processor or bias, or raise max_tokens.
"""

from __future__ import annotations

import math
from collections import OrderedDict
from typing import Any

import numpy as np

from ..matchers import Matcher
from .row_checks import MLX_EOS_FORBIDDEN, MLX_REMEDY, MLX_TOKEN_FORCED, bad_row_error

#: Rows whose score check is still waiting for their next token (rolled-back drafts never get one).
MAX_PENDING_CHECKS = 4096


class DeferredChecks:
    """The unread best scores of rows whose next token has not arrived; see the module docstring."""

    def __init__(self, matcher: Matcher, max_pending: int = MAX_PENDING_CHECKS) -> None:
        self.matcher = matcher
        self.max_pending = max_pending
        # key of a row -> (its best masked score, unread; its state)
        self._pending: "OrderedDict[bytes, tuple[Any, int]]" = OrderedDict()

    def clear(self) -> None:
        self._pending.clear()

    def record(self, keys: list[bytes], states: list[int], best: Any) -> None:
        """Keep ``best`` (one score per row, or a scalar for one row) until each row's next token."""
        pending = self._pending
        if len(keys) == 1:
            pending[keys[0]] = (best, states[0])
        else:
            for row, (key, state) in enumerate(zip(keys, states)):
                pending[key] = (best[row], state)
        while len(pending) > self.max_pending:
            pending.popitem(last=False)

    def check(self, keys: list[bytes], states: list[int], rows: np.ndarray, width: int) -> None:
        """Raise if a row's last token was sampled from scores with no allowed, finite token."""
        pending = self._pending
        if not pending:
            return
        initial = self.matcher.initial_state
        for row, key in enumerate(keys):
            found = pending.pop(key[:-8], None)
            if found is None:
                continue
            # A rejected token leaves the row in the initial state (see prefix_states.py).
            token = int(rows[row, -1])
            if states[row] != initial and token != 0 and token != width - 1:
                continue
            value = found[0].item()
            if value != value or value == -math.inf:
                pending.clear()
                raise bad_row_error(
                    self.matcher, row, value, found[1], eos_forbidden=MLX_EOS_FORBIDDEN, token_forced=MLX_TOKEN_FORCED,
                    remedy=MLX_REMEDY,
                )
