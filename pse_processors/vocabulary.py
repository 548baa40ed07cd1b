"""Byte-exact vocabularies: what bytes each token id emits.

The automaton works on UTF-8 bytes, so every token id must map to the exact bytes the
tokenizer's decoder produces for it. Special and control tokens map to ``None``: they are
never allowed inside a structure. EOS is a *set* of ids, allowed only once the constraint
is complete.
"""

from __future__ import annotations

import hashlib
import json
import logging
import re
import weakref
from dataclasses import dataclass, field
from typing import Any, Iterable, Optional, Sequence

from .errors import VocabularyError

logger = logging.getLogger(__name__)

_BYTE_FALLBACK = re.compile(r"^<0x([0-9A-Fa-f]{2})>$")
# Added tokens that look like markup (<|im_start|>, <start_of_turn>, [INST]) are control
# tokens even where the tokenizer forgot to flag them special.
_CONTROL_LIKE = re.compile(r"^(<[^<>\s]+>|\[[A-Z_/]+\])$")


def _bytes_to_unicode() -> dict[int, str]:
    """GPT-2's reversible byte → printable-character table used by byte-level BPE."""
    printable = list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1)) + list(range(ord("®"), ord("ÿ") + 1))
    chars = printable[:]
    extra = 0
    for b in range(256):
        if b not in printable:
            printable.append(b)
            chars.append(256 + extra)
            extra += 1
    return dict(zip(printable, (chr(c) for c in chars)))


_UNICODE_TO_BYTE = {ch: b for b, ch in _bytes_to_unicode().items()}


@dataclass(frozen=True, eq=False)
class Vocabulary:
    """A byte-exact view of a tokenizer.

    Args:
        token_bytes: for each token id, the bytes it emits, or ``None`` if the token may never
            appear inside a structure (special, control, empty or unused ids).
        eos_token_ids: ids that end generation; allowed only when the constraint is complete.

    Example:
        >>> from pse_processors import Vocabulary
        >>> vocab = Vocabulary([b"{", b"}", b'"a"', b":", b"1", None], eos_token_ids=[5])
        >>> vocab.size, sorted(vocab.eos_token_ids)
        (6, [5])
    """

    token_bytes: tuple
    eos_token_ids: frozenset
    fingerprint: str = field(default="", compare=False)

    def __init__(self, token_bytes: Sequence[Optional[bytes]], eos_token_ids: Iterable[int]) -> None:
        tokens = tuple(None if not b else bytes(b) for b in token_bytes)
        eos = frozenset(int(i) for i in eos_token_ids)
        if not eos:
            raise VocabularyError("the tokenizer has no EOS token: pass eos_token_ids=[...]")
        bad = sorted(i for i in eos if not 0 <= i < len(tokens))
        if bad:
            raise VocabularyError(f"EOS ids {bad} are outside the vocabulary of {len(tokens)} tokens")
        tokens = tuple(None if i in eos else b for i, b in enumerate(tokens))
        object.__setattr__(self, "token_bytes", tokens)
        object.__setattr__(self, "eos_token_ids", eos)
        digest = hashlib.sha256(json.dumps(sorted(eos)).encode())
        for b in tokens:
            digest.update(b"\xff\xff" if b is None else len(b).to_bytes(2, "little") + b)
        object.__setattr__(self, "fingerprint", digest.hexdigest()[:32])

    @property
    def size(self) -> int:
        """Number of token ids (the tokenizer's length, not the model's logits width)."""
        return len(self.token_bytes)

    def decode(self, token_ids: Iterable[int]) -> bytes:
        """Concatenate the bytes of ``token_ids``, skipping EOS and special tokens."""
        out = bytearray()
        for i in token_ids:
            b = self.token_bytes[i] if 0 <= i < len(self.token_bytes) else None
            if b is not None:
                out += b
        return bytes(out)

    @classmethod
    def from_tokenizer(
        cls,
        tokenizer: Any,
        eos_token_ids: Optional[Iterable[int]] = None,
        generation_config: Any = None,
    ) -> "Vocabulary":
        """Build (or fetch from a per-tokenizer cache) the vocabulary of a Hugging Face tokenizer.

        EOS is the union of the tokenizer's ``eos_token_id``, ``generation_config.eos_token_id``
        and ``eos_token_ids``.
        """
        if isinstance(tokenizer, Vocabulary):
            if eos_token_ids is None and generation_config is None:
                return tokenizer
            eos = set(tokenizer.eos_token_ids) | _eos_from(None, eos_token_ids, generation_config)
            return cls(tokenizer.token_bytes, eos)
        eos = _eos_from(tokenizer, eos_token_ids, generation_config)
        key = (tuple(sorted(eos)), len(tokenizer) if hasattr(tokenizer, "__len__") else 0)  # add_tokens() grows it
        try:
            per_tokenizer = _CACHE.setdefault(tokenizer, {})
        except TypeError:  # not weak-referenceable
            per_tokenizer = {}
        if key not in per_tokenizer:
            per_tokenizer[key] = cls(_hf_token_bytes(tokenizer), eos)
        return per_tokenizer[key]


_CACHE: "weakref.WeakKeyDictionary[Any, dict]" = weakref.WeakKeyDictionary()


def _as_ids(value: Any) -> set[int]:
    if value is None:
        return set()
    if isinstance(value, int):
        return {value}
    return {int(v) for v in value}


def _eos_from(tokenizer: Any, eos_token_ids: Optional[Iterable[int]], generation_config: Any) -> set[int]:
    eos = _as_ids(eos_token_ids)
    if generation_config is not None:
        eos |= _as_ids(getattr(generation_config, "eos_token_id", None))
    if tokenizer is not None:
        eos |= _as_ids(getattr(tokenizer, "eos_token_id", None))
    return eos


def _decoder_kind(tokenizer: Any) -> str:
    """'byte_level' or 'sentencepiece', read from the fast tokenizer's decoder."""
    backend = getattr(tokenizer, "backend_tokenizer", None)
    if backend is not None:
        spec = json.loads(backend.to_str())
        text = json.dumps(spec.get("decoder")) + json.dumps(spec.get("pre_tokenizer"))
        if '"ByteLevel"' in text:
            return "byte_level"
        if '"ByteFallback"' in text or '"Metaspace"' in text or "\u2581" in text:
            return "sentencepiece"
        model_type = (spec.get("model") or {}).get("type")
        if model_type in ("Unigram",) or (spec.get("model") or {}).get("byte_fallback"):
            return "sentencepiece"
    if hasattr(tokenizer, "byte_encoder"):
        return "byte_level"
    if hasattr(tokenizer, "sp_model"):
        return "sentencepiece"
    vocab = tokenizer.get_vocab()
    if any(t.startswith("\u0120") for t in list(vocab)[:5000]):
        return "byte_level"
    if any(t.startswith("\u2581") for t in list(vocab)[:5000]):
        return "sentencepiece"
    raise VocabularyError(
        f"cannot tell how {type(tokenizer).__name__} maps tokens to bytes "
        "(neither byte-level BPE nor SentencePiece); pass a Vocabulary instead"
    )


def _hf_token_bytes(tokenizer: Any) -> list[Optional[bytes]]:
    if not hasattr(tokenizer, "get_vocab"):
        raise VocabularyError(f"{type(tokenizer).__name__} is not a Hugging Face tokenizer (no get_vocab())")
    kind = _decoder_kind(tokenizer)
    vocab: dict[str, int] = tokenizer.get_vocab()
    size = max(len(tokenizer), max(vocab.values()) + 1)
    result: list[Optional[bytes]] = [None] * size
    for token, index in vocab.items():
        if kind == "byte_level":
            try:
                result[index] = bytes(_UNICODE_TO_BYTE[ch] for ch in token)
            except KeyError:
                result[index] = None  # not a byte-level token (an added token; handled below)
        else:
            fallback = _BYTE_FALLBACK.match(token)
            result[index] = bytes([int(fallback.group(1), 16)]) if fallback else token.replace("\u2581", " ").encode("utf-8")
    added = getattr(tokenizer, "added_tokens_decoder", {}) or {}
    for index, token in added.items():
        content = getattr(token, "content", str(token))
        special = bool(getattr(token, "special", True))
        if index >= size:
            continue
        if special or _CONTROL_LIKE.match(content):
            result[index] = None
        else:
            result[index] = content.encode("utf-8")  # added plain text is emitted verbatim
    for index in getattr(tokenizer, "all_special_ids", []) or []:
        if 0 <= index < size:
            result[index] = None
    unk = getattr(tokenizer, "unk_token_id", None)
    if unk is not None and 0 <= unk < size:
        result[unk] = None
    if not any(result):
        raise VocabularyError(f"{type(tokenizer).__name__} has no token that emits text")
    logger.debug("built a %s vocabulary of %d tokens", kind, size)
    return result
