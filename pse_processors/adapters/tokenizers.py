"""Finding a model's tokenizer, so that ``engine.generate(model, input_ids)`` needs no ``tokenizer=``.

Loaders that return ``(model, tokenizer)`` record the pair (:func:`remember_tokenizer`); other
models are asked where they came from (``model.name_or_path``, a local folder)::

    >>> from pse_processors.adapters import remember_tokenizer, load_tokenizer_of
    >>> class Model:
    ...     pass
    >>> model = Model()
    >>> remember_tokenizer(model, "its tokenizer")
    >>> load_tokenizer_of(model)
    'its tokenizer'
"""

from __future__ import annotations

import logging
import weakref
from pathlib import Path
from typing import Any

logger = logging.getLogger(__name__)

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
