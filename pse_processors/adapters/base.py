"""The adapter base class: what every framework adapter provides, and the default generation path.

A built-in adapter (PyTorch, TensorFlow, JAX) runs the model's native ``generate`` with the
framework's logits processor. A custom adapter implements only :meth:`FrameworkAdapter.mask_logits`
and :meth:`FrameworkAdapter.sample_token`; the engine then runs its own decode loop
(:mod:`pse_processors.adapters.decode_loop`) over a model callable that returns logits.
"""

from __future__ import annotations

import abc
import importlib
import logging
import weakref
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable

import numpy as np

if TYPE_CHECKING:  # pragma: no cover
    from ..engine import StructuringEngine

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

    :meth:`to_numpy` turns the framework's arrays into numpy (default: ``np.asarray``).

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
    """

    #: A short name of the framework, for messages.
    framework: str = "custom"
    #: The back end the engine compiles for by default (``compile(engine=...)``): the in-graph
    #: TF and JAX processors need whole tables, so their adapters set ``"dfa"``.
    grammar_engine: str = "auto"

    #: Attributes holding per-process caches (models, processors): a pickle carries them empty.
    _transient: tuple[str, ...] = ("_processors", "_models", "_cast", "_half", "compiled")

    def __init__(self, **options: Any) -> None:
        self.options = options

    def __getstate__(self) -> dict:
        state = dict(self.__dict__)
        for name in self._transient:
            if isinstance(state.get(name), dict):
                state[name] = {}
        return state

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

    def generate(self, engine: "StructuringEngine", model: Any, input_ids: Any, tokenizer: Any, **kwargs: Any) -> Any:
        """Generate under ``engine``'s constraint. This default runs the engine's own decode loop
        with :meth:`mask_logits` and :meth:`sample_token`; built-in adapters call the framework's
        ``generate`` instead. Returns ``[batch, prompt + new]`` int64 numpy ids."""
        from .decode_loop import decode

        grammar = engine.grammar(tokenizer)
        ids = np.asarray(self.to_numpy(input_ids)).astype(np.int64)
        if ids.ndim == 1:
            ids = ids[None, :]
        if ids.ndim != 2:
            raise ValueError(f"input_ids must be [batch, length] or [length], got shape {ids.shape}")
        pad = kwargs.pop("pad_token_id", None)
        if pad is None:
            pad = tokenizer.pad_token_id if getattr(tokenizer, "pad_token_id", None) is not None else min(grammar.vocabulary.eos_token_ids)
        outputs = decode(self, grammar, model, ids, pad_token_id=int(pad), **kwargs)
        engine._record(grammar, ids.shape[1])
        return outputs


#: id(model) -> (weak reference to the model, its tokenizer), for loaders that return both.
_KNOWN_TOKENIZERS: dict = {}


def remember_tokenizer(model: Any, tokenizer: Any) -> None:
    """Record ``model``'s tokenizer, for loaders that return ``(model, tokenizer)`` (mlx-lm's
    ``load``, :func:`pse_processors.embedded.load_smollm2_mlx`): ``engine.generate(model, ids)``
    then finds it. The record goes with the model."""
    key = id(model)
    _KNOWN_TOKENIZERS[key] = (weakref.ref(model, lambda _ref: _KNOWN_TOKENIZERS.pop(key, None)), tokenizer)


def remembered_tokenizer(model: Any) -> Any:
    """The tokenizer recorded by :func:`remember_tokenizer` or set as ``model.tokenizer``, else None."""
    entry = _KNOWN_TOKENIZERS.get(id(model))
    if entry is not None and entry[0]() is model:
        return entry[1]
    return getattr(model, "tokenizer", None)


def load_tokenizer_of(model: Any) -> Any:
    """Load a model's tokenizer: one recorded with the model (:func:`remember_tokenizer`), else
    from ``model.name_or_path`` (local files only).

    transformers 4.x cannot read some tokenizer configs that transformers 5 writes; a folder
    with a ``tokenizer.json`` then loads as a plain fast tokenizer.

    Raises:
        TypeError: the model does not name a folder with a tokenizer; the message says to pass
            ``tokenizer=``.
    """
    known = remembered_tokenizer(model)
    if known is not None:
        return known
    name = getattr(model, "name_or_path", "") or getattr(getattr(model, "config", None), "_name_or_path", "")
    hint = "pass tokenizer= to StructuringEngine or to generate()"
    if not name:
        raise TypeError(f"could not find the tokenizer of this {type(model).__name__}: it names no folder; {hint}")
    try:
        from transformers import AutoTokenizer
    except ImportError as exc:
        raise TypeError(f"could not load the tokenizer of {name!r} (transformers is not installed); {hint}") from exc
    try:
        return AutoTokenizer.from_pretrained(name, local_files_only=True)
    except Exception as exc:  # noqa: BLE001 - any failure means: try the plain file, else ask the caller
        if (Path(name) / "tokenizer.json").is_file():
            from transformers import PreTrainedTokenizerFast

            logger.info("loading %s/tokenizer.json as a plain fast tokenizer (%s)", name, exc)
            return PreTrainedTokenizerFast.from_pretrained(name, local_files_only=True)
        raise TypeError(f"could not load the tokenizer of {name!r} from local files ({exc}); {hint}") from exc
