"""What the adapters check before generating: their options, and that the tokenizer belongs to the model.

A tokenizer of another model runs silently and produces garbage, so every adapter's ``generate``
calls :func:`check_model_fits` first. It refuses, with a :class:`~pse_processors.VocabularyError`
that names both sides, what can be told from the model alone:

- its vocabulary size (``config.vocab_size``; mlx-lm: ``args.vocab_size``) is smaller than the
  tokenizer's usable ids, or larger by more than models pad their vocabulary (see
  :func:`~pse_processors.matchers.base.padding_allowance`);
- its ``generation_config`` names EOS (or BOS) ids that are ordinary text tokens in this
  tokenizer while the tokenizer's own EOS (BOS) is not among them. Only a clear disagreement
  counts: ids past the tokenizer, a special token, or a missing id on either side pass.

Example:
    >>> flag("PyTorchAdapter", "use_cache", True), flag("MLXAdapter", "use_metal", None, optional=True)
    (True, None)
    >>> flag("PyTorchAdapter", "use_cache", "yes")
    Traceback (most recent call last):
    ...
    TypeError: PyTorchAdapter(use_cache=...) must be True or False, not 'yes'
"""

from __future__ import annotations

from typing import Any, Optional

import numpy as np

from ..errors import VocabularyError
from ..matchers import Matcher


def flag(owner: str, name: str, value: Any, *, optional: bool = False) -> Optional[bool]:
    """``value`` of the boolean option ``name`` of ``owner``; a TypeError naming it for anything but a bool."""
    if value is None and optional:
        return None
    if isinstance(value, (bool, np.bool_)):
        return bool(value)
    choices = "True, False or None" if optional else "True or False"
    raise TypeError(f"{owner}({name}=...) must be {choices}, not {value!r}")


def model_vocab_size(model: Any) -> Optional[tuple[int, str]]:
    """The model's vocabulary size and where it was read (a transformers config, mlx-lm ``args``), or None."""
    config = getattr(model, "config", None)
    text_config = config
    get_text_config = getattr(config, "get_text_config", None)
    if callable(get_text_config):  # multimodal configs keep the language model's size apart
        try:
            text_config = get_text_config()
        except Exception:  # noqa: BLE001 - any config without one: read the top level
            text_config = config
    for source, where in ((text_config, "config.vocab_size"), (config, "config.vocab_size"),
                          (getattr(model, "args", None), "args.vocab_size")):
        size = getattr(source, "vocab_size", None)
        if isinstance(size, (int, np.integer)) and not isinstance(size, bool) and size > 0:
            return int(size), where
    return None


def check_model_fits(model: Any, tokenizer: Any, matcher: Matcher) -> None:
    """Raise ``VocabularyError`` where the model shows that ``tokenizer`` is not its own (see the module docstring)."""
    found = model_vocab_size(model)
    if found is not None:
        size, where = found
        matcher.check_logits_width(size, f"the model's logits ({where}) are")
    generation_config = getattr(model, "generation_config", None)
    if generation_config is not None:
        for name in ("eos_token_id", "bos_token_id"):
            _check_special(name, getattr(generation_config, name, None), tokenizer)


def _check_special(name: str, model_value: Any, tokenizer: Any) -> None:
    """Refuse when every in-range id the model names for ``name`` is plain text in ``tokenizer``."""
    ours = getattr(tokenizer, name, None)
    added = getattr(tokenizer, "added_tokens_decoder", None)
    if model_value is None or not isinstance(ours, int) or not isinstance(added, dict):
        return  # not a Hugging Face tokenizer, or nothing to compare
    model_ids = [int(model_value)] if isinstance(model_value, (int, np.integer)) else [int(i) for i in model_value]
    if not model_ids or ours in model_ids:
        return
    size = len(tokenizer)
    special = set(added) | set(getattr(tokenizer, "all_special_ids", None) or [])
    in_range = [i for i in model_ids if 0 <= i < size]
    if not in_range or any(i in special for i in in_range):
        return
    names = tokenizer.convert_ids_to_tokens(in_range)
    raise VocabularyError(
        f"the model's generation_config.{name} is {model_ids}, which this tokenizer ({size} tokens) spells as "
        f"ordinary text {names}, and the tokenizer's own {name} {ours} ({tokenizer.convert_ids_to_tokens(ours)!r}) "
        "is not among them: this tokenizer does not belong to this model"
    )
