"""The adapter base class: what every framework adapter provides, and the default generation path.

A built-in adapter (PyTorch, TensorFlow, JAX, MLX) runs the model's native generation with the
framework's logits processor. A custom adapter implements only :meth:`FrameworkAdapter.mask_logits`
and :meth:`FrameworkAdapter.sample_token`; the engine then runs its own decode loop
(:mod:`pse_processors.adapters.decode_loop`) over a model callable that returns logits.

The adapters sit below the engine and never import it. The engine passes itself to
:meth:`FrameworkAdapter.generate` as an :class:`EngineLike` (it only asks it for the matcher),
and the adapter hands back a :class:`Generation`: the output and what the engine's ``parse``
needs about it.
"""

from __future__ import annotations

import abc
import importlib
import logging
import warnings
from dataclasses import dataclass
from typing import Any, Callable, Iterable, Optional, Protocol

import numpy as np

from .. import defaults
from ..compiler.options import CompileOptions
from ..matchers import Matcher
from .checks import check_model_fits
from .decode_loop import decode
from .tokenizers import load_tokenizer_of, remember_tokenizer, remembered_tokenizer

__all__ = [
    "EXTRAS", "EngineLike", "FrameworkAdapter", "Generation", "cached_for", "load_tokenizer_of",
    "remember_tokenizer", "remembered_tokenizer", "require",
]

logger = logging.getLogger(__name__)

#: The extra of pse-processors that installs each framework, for the ImportError hint.
EXTRAS = {"torch": "torch", "tensorflow": "tf", "jax": "flax", "flax": "flax", "mlx": "mlx", "mlx_lm": "mlx"}


def require(adapter: str, *modules: str) -> None:
    """Import ``modules`` or raise an ImportError that names the extra to install.

    Adapters call this in ``__init__``: importing :mod:`pse_processors.adapters` never needs a
    framework, constructing an adapter for a missing one fails with the fix.
    """
    for name in modules:
        try:
            importlib.import_module(name)
        except ImportError as exc:
            extra = EXTRAS.get(name.split(".")[0], name)
            raise ImportError(
                f"{adapter} needs {name}, which cannot be imported ({exc}); install it with "
                f"`pip install 'pse-processors[{extra}]'`"
            ) from exc


def cached_for(cache: dict, key: Any, owner: Any, make: Callable[[], Any]) -> Any:
    """``cache[key]``, made by ``make()`` on a miss. Entries keep ``owner`` (whose ``id()`` is in
    ``key``): a new object that reuses a dead one's id is a miss, not a stale hit.

    Example:
        >>> cache, owner = {}, object()
        >>> cached_for(cache, id(owner), owner, lambda: "made"), cached_for(cache, id(owner), owner, lambda: "again")
        ('made', 'made')
    """
    entry = cache.get(key)
    if entry is None or entry[0] is not owner:
        entry = cache[key] = (owner, make())
    return entry[1]


class EngineLike(Protocol):
    """What an adapter asks of the engine that drives it (:class:`~pse_processors.StructuringEngine`).

    The engine compiles; the adapter only moves tensors and calls the framework's generation."""

    def matcher(
        self, tokenizer: Any, generation_config: Any = None, *, eos_token_ids: Optional[Iterable[int]] = None
    ) -> Matcher:
        """The matcher of the engine's constraint for ``tokenizer`` (see ``StructuringEngine.matcher``)."""


@dataclass(frozen=True)
class Generation:
    """What :meth:`FrameworkAdapter.generate` hands back to the engine.

    Attributes:
        outputs: the framework's own output, which ``engine.generate`` returns unchanged.
        matcher: the matcher the rows were generated under (``engine.parse`` checks them with it).
        prompt_length: the prompt's width (``engine.parse`` skips it).
        processor: the logits processor that ran, or None (the engine's own decode loop).

    Example:
        >>> Generation(outputs=[[1, 2, 3]], matcher=None, prompt_length=2).prompt_length
        2
    """

    outputs: Any
    matcher: Optional[Matcher]
    prompt_length: int
    processor: Any = None


class FrameworkAdapter(abc.ABC):
    """Base class of the framework adapters of :class:`~pse_processors.StructuringEngine`.

    Subclassing it and implementing :meth:`mask_logits` and :meth:`sample_token` is enough to
    run the engine on a framework that pse_processors does not ship. The engine then drives
    its own decode loop, and the model must be a callable with this protocol:

    - ``model(input_ids)`` takes ``[batch, length]`` token ids, as :meth:`to_framework` makes
      them (default: a numpy ``int64`` array), with no padding;
    - it returns logits ``[batch, length, vocab]`` (the last position is used) or
      ``[batch, vocab]``, or an object whose ``.logits`` is one of those;
    - there is no KV cache: the whole sequence is passed on every step.

    :meth:`to_numpy` turns the framework's arrays into numpy (default: ``np.asarray``). A
    subclass that defines ``__init__`` calls ``super().__init__()``.

    Example:
        >>> import numpy as np
        >>> from pse_processors.adapters import FrameworkAdapter
        >>> class NumpyAdapter(FrameworkAdapter):
        ...     def mask_logits(self, logits, mask_indices):
        ...         masked = np.full_like(logits, -np.inf)
        ...         masked[mask_indices] = logits[mask_indices]
        ...         return masked
        ...     def sample_token(self, logits, temperature=1.0):
        ...         return logits.argmax(axis=-1)
        >>> adapter = NumpyAdapter()
        >>> adapter.mask_logits(np.zeros((1, 3)), (np.array([0]), np.array([2]))).tolist()
        [[-inf, -inf, 0.0]]
        >>> adapter.backend
        'auto'
    """

    #: A short name of the framework, for messages.
    framework: str = "custom"
    #: The back end the engine compiles for when its options leave ``backend="auto"``: the
    #: in-graph TF and JAX processors need the dense automaton, so their adapters set ``"dfa"``.
    backend: str = defaults.BACKEND

    #: Attributes holding per-process caches (models, processors): a pickle carries them empty.
    _transient: tuple[str, ...] = ("_processors", "_models", "_cast", "_half", "compiled")

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        old = cls.__dict__.get("grammar_engine")
        if isinstance(old, str):  # a subclass written for 0.1 sets the old name
            warnings.warn(
                f"{cls.__name__}.grammar_engine is deprecated: set backend = {old!r} instead",
                DeprecationWarning, stacklevel=2,
            )
            cls.backend = _backend_named(old)
            del cls.grammar_engine  # the deprecated property below answers for it

    def __init__(self, **options: Any) -> None:
        self.options = options
        self._processors: dict = {}  # (matcher id, prompt_length, max_new_tokens) -> (matcher, processor)

    def __getstate__(self) -> dict:
        state = dict(self.__dict__)
        for name in self._transient:
            if isinstance(state.get(name), dict):
                state[name] = {}
        return state

    @property
    def grammar_engine(self) -> str:
        """Deprecated (0.1): :attr:`backend` under its old name."""
        warnings.warn("FrameworkAdapter.grammar_engine is deprecated: use backend", DeprecationWarning, stacklevel=2)
        return self.backend

    @grammar_engine.setter
    def grammar_engine(self, value: str) -> None:
        warnings.warn("FrameworkAdapter.grammar_engine is deprecated: use backend", DeprecationWarning, stacklevel=2)
        self.backend = _backend_named(value)

    @abc.abstractmethod
    def mask_logits(self, logits: Any, mask_indices: tuple[np.ndarray, np.ndarray]) -> Any:
        """Return ``logits`` ``[batch, vocab]`` with every entry set to -inf except those at
        ``mask_indices``: the ``(rows, token_ids)`` pair of int64 numpy arrays that
        ``np.nonzero`` gives for the allowed-token mask (the entries that keep their value)."""

    @abc.abstractmethod
    def sample_token(self, logits: Any, temperature: float = 1.0) -> Any:
        """Pick one token id per row of the masked ``logits`` ``[batch, vocab]``: ``[batch]`` ids.
        The engine passes ``temperature=0.0`` for greedy decoding (``do_sample=False``)."""

    def to_numpy(self, array: Any) -> np.ndarray:
        """A framework array as a numpy array."""
        return np.asarray(array)

    def to_framework(self, input_ids: np.ndarray) -> Any:
        """The ``[batch, length]`` int64 numpy ids as the model takes them (default: unchanged)."""
        return input_ids

    def find_tokenizer(self, model: Any) -> Any:
        """The model's tokenizer, when the model says where it came from (a local folder)."""
        return load_tokenizer_of(model)

    def logits_processor(
        self, matcher: Matcher, *, prompt_length: Optional[int] = None, max_new_tokens: Optional[int] = None
    ) -> Any:
        """The framework's logits processor for ``matcher``: one call for every adapter.

        The in-graph processors find the generated part of their buffer by position, so they
        take its shape: ``prompt_length`` (the prompt's width; TensorFlow) or ``max_new_tokens``
        (the generation's length; JAX). The eager ones (PyTorch, MLX) track prefixes and need
        neither. One processor is kept per matcher and shape (compiled traces capture it);
        subclasses make it in :meth:`new_processor`.

        Raises:
            NotImplementedError: the adapter has no framework processor (a custom adapter: the
                engine runs its own decode loop).
        """
        return cached_for(
            self._processors, (id(matcher), prompt_length, max_new_tokens), matcher,
            lambda: self.new_processor(matcher, prompt_length=prompt_length, max_new_tokens=max_new_tokens),
        )

    def new_processor(self, matcher: Matcher, *, prompt_length: Optional[int], max_new_tokens: Optional[int]) -> Any:
        """A new logits processor for ``matcher`` (what :meth:`logits_processor` caches)."""
        raise NotImplementedError(
            f"{type(self).__name__} has no logits processor: the engine runs its own decode loop "
            "with mask_logits and sample_token"
        )

    def generate(self, engine: EngineLike, model: Any, input_ids: Any, tokenizer: Any, **kwargs: Any) -> Generation:
        """Generate under ``engine``'s constraint. This default runs the engine's own decode loop
        with :meth:`mask_logits` and :meth:`sample_token`, whose outputs are ``[batch, prompt + new]``
        int64 numpy ids; built-in adapters call the framework's generation instead."""
        matcher = engine.matcher(tokenizer)
        check_model_fits(model, tokenizer, matcher)
        ids = np.asarray(self.to_numpy(input_ids)).astype(np.int64)
        if ids.ndim == 1:
            ids = ids[None, :]
        if ids.ndim != 2:
            raise ValueError(f"input_ids must be [batch, length] or [length], got shape {ids.shape}")
        pad = kwargs.pop("pad_token_id", None)
        if pad is None:
            pad = tokenizer.pad_token_id if getattr(tokenizer, "pad_token_id", None) is not None else min(matcher.vocabulary.eos_token_ids)
        outputs = decode(self, matcher, model, ids, pad_token_id=int(pad), **kwargs)
        return Generation(outputs, matcher, ids.shape[1])


def _backend_named(name: str) -> str:
    """``name`` as a back end of today (``"grammar"`` was llguidance's name); ValueError if unknown."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # the caller has warned already
        return CompileOptions(backend=name).backend
