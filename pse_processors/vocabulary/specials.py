"""What a :class:`~pse_processors.Vocabulary` keeps of its tokenizer besides token bytes: the names
of its byte-less tokens and its chat template.

Structure inside free text (:class:`~pse_processors.Reasoning`, :class:`~pse_processors.Tools`...)
needs both: a marker such as Qwen3's ``<think>`` is one added token without bytes, found by its
name, and a tool-call format is read from the chat template. Neither changes what any token
spells, so neither is part of the vocabulary's fingerprint.

Example:
    >>> from pse_processors import Vocabulary
    >>> vocab = Vocabulary([b"a", None, None], eos_token_ids=[2], special_tokens={"<think>": 1})
    >>> dict(vocab.special_tokens), vocab.chat_template is None
    ({'<think>': 1}, True)
"""

from __future__ import annotations

from types import MappingProxyType
from typing import Any, Mapping, Optional

from ..errors import VocabularyError


def checked_special_tokens(names: Optional[Mapping[str, int]], tokens: tuple) -> Mapping[str, int]:
    """``names`` (token text -> id) as a read-only mapping, each id a byte-less token of ``tokens``.

    Raises:
        VocabularyError: a name is not a non-empty string, or its id is outside the vocabulary or
            spells text (a token with bytes is text, not a special token).
    """
    checked: dict[str, int] = {}
    for name, index in dict(names or {}).items():
        if not isinstance(name, str) or not name:
            raise VocabularyError(f"special token names must be non-empty strings, not {name!r}")
        if isinstance(index, bool) or not isinstance(index, int) or not 0 <= index < len(tokens):
            raise VocabularyError(f"special token {name!r} has id {index!r}, outside the vocabulary of {len(tokens)} tokens")
        if tokens[index] is not None:
            raise VocabularyError(
                f"special token {name!r} (id {index}) spells {tokens[index]!r}: only byte-less tokens are special"
            )
        checked[name] = index
    return MappingProxyType(checked)


def named_specials(tokenizer: Any, token_bytes: list, tiktoken_specials: Optional[dict] = None) -> dict[str, int]:
    """The byte-less tokens of ``tokenizer`` that have a name: its added tokens (Hugging Face) or
    special tokens (tiktoken) whose entry in ``token_bytes`` is ``None``."""
    if tiktoken_specials is not None:
        return {name: index for name, index in tiktoken_specials.items() if 0 <= index < len(token_bytes)}
    added = getattr(tokenizer, "added_tokens_decoder", {}) or {}
    found: dict[str, int] = {}
    for index, token in added.items():
        content = getattr(token, "content", str(token))
        if isinstance(index, int) and 0 <= index < len(token_bytes) and token_bytes[index] is None and content:
            found.setdefault(content, index)
    return found


def chat_template_of(tokenizer: Any) -> Optional[str]:
    """The tokenizer's chat template text (several named templates joined), or ``None``."""
    template = getattr(tokenizer, "chat_template", None)
    if isinstance(template, dict):
        template = "\n".join(str(t) for t in template.values())
    elif isinstance(template, (list, tuple)):  # [{"name": ..., "template": ...}, ...]
        template = "\n".join(str(t.get("template", "")) if isinstance(t, dict) else str(t) for t in template)
    return template if isinstance(template, str) and template else None
