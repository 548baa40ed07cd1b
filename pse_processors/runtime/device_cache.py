"""Per-matcher caches of what the frameworks put on their devices (masks, tables).

They belong to the runtime, not to the matcher: a matcher is framework-free and immutable,
and it never carries tensors. Each framework module gets its own namespace, kept as long as
the matcher lives (a weak key) and shared by every processor built on that matcher; none of
it travels with a pickle::

    >>> import pse_processors as pse
    >>> matcher = pse.compile(pse.Choice(["a"]), pse.Vocabulary([b"a", None], eos_token_ids=[1]))
    >>> device_cache(matcher, "torch") is device_cache(matcher, "torch"), device_cache(matcher, "mlx") == {}
    (True, True)
"""

from __future__ import annotations

import threading
import weakref
from typing import Any

_caches: "weakref.WeakKeyDictionary[Any, dict]" = weakref.WeakKeyDictionary()
_lock = threading.Lock()


def device_cache(matcher: Any, namespace: str) -> dict:
    """The dict that ``namespace`` (a framework module) keeps for ``matcher``."""
    # Views of one matcher with another result type (``with_spec``) share the caches of the
    # matcher they view: key by the object that owns the masks.
    owner = getattr(matcher, "mask_owner", matcher)
    with _lock:
        per_matcher = _caches.get(owner)
        if per_matcher is None:
            per_matcher = _caches[owner] = {}
        return per_matcher.setdefault(namespace, {})
