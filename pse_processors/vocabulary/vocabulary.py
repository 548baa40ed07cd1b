"""Byte-exact vocabularies: what bytes each token id emits.

The automaton works on UTF-8 bytes, so every token id must map to the exact bytes the
tokenizer's decoder produces for it. Special and control tokens map to ``None``: they are
never allowed inside a structure. EOS is a *set* of ids, allowed only once the constraint
is complete.

Sources:

- Hugging Face tokenizers: byte-level BPE (Llama-3, Qwen, SmolLM2, GPT-2) maps GPT-2's
  printable characters back to bytes; SentencePiece-style vocabularies (Llama-2, Gemma) map
  ``▁`` to a space and ``<0xNN>`` byte-fallback tokens to their single byte. Tokens that are
  not valid UTF-8 on their own keep their exact bytes.
- tiktoken ``Encoding`` objects: the bytes of each rank; every special token is excluded.

A vocabulary whose tokenizer adds a *dummy prefix* (a ``▁`` or space prepended to the text,
as Llama-2's SentencePiece does) has ``dummy_prefix=True``: its encoding of ``{"a": 1}``
starts with ``▁{``, and a model emits its first token that way. Constraints compiled for it
accept one optional leading space, which ``parse`` removes (as the tokenizer's decoder does).
"""

from __future__ import annotations

import hashlib
import json
import logging
import re
import weakref
from dataclasses import dataclass, field
from typing import Any, Iterable, Mapping, Optional, Sequence

from ..errors import VocabularyError
from .packing import check_fingerprint, pack_vocabulary, unpack_tokens
from .specials import chat_template_of, checked_special_tokens, named_specials

logger = logging.getLogger(__name__)

_BYTE_FALLBACK = re.compile(r"^<0x([0-9A-Fa-f]{2})>$")
# Added tokens that look like markup (<|im_start|>, <start_of_turn>, [INST]) are control
# tokens even where the tokenizer forgot to flag them special.
_CONTROL_LIKE = re.compile(r"^(<[^<>\s]+>|\[[A-Za-z_/]+\])$")

#: Well-known end-of-turn / end-of-text tokens. Chat models stop on several of them (Llama-3.1
#: on ``<|eot_id|>``, ``<|eom_id|>`` and ``<|end_of_text|>``; Qwen3 on ``<|im_end|>`` and
#: ``<|endoftext|>``; Gemma 3 on ``<end_of_turn>`` and ``<eos>``). Those a tokenizer has as
#: special (never-text) tokens join the EOS set of a tiktoken ``Encoding`` (which names no EOS
#: of its own), or of any tokenizer with ``well_known_eos=True`` (see
#: :meth:`Vocabulary.from_tokenizer` and :func:`well_known_eos_ids`).
WELL_KNOWN_EOS_TOKENS: tuple[str, ...] = (
    "<|eot_id|>", "<|eom_id|>", "<|end_of_text|>",  # Llama 3.x
    "<|im_end|>", "<|endoftext|>",  # ChatML: Qwen, SmolLM2, GPT-style tiktoken encodings
    "<end_of_turn>", "<eos>",  # Gemma
    "</s>",  # Llama-2, Mistral
    "<|end|>", "<|return|>",  # Phi-3, gpt-oss
)


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
        dummy_prefix: the tokenizer prepends a space (SentencePiece's ``▁``) to the text it
            encodes, so a model's first token carries one leading space that decoding strips.
            Constraints then accept one optional leading space (see the module docstring).
        special_tokens: names of byte-less tokens (``{"<think>": 151667}``), which markers of
            structure in free text may name (see :mod:`~pse_processors.vocabulary.specials`).
        chat_template: the tokenizer's chat template, which tool-call formats are read from.

    Example:
        >>> from pse_processors import Vocabulary
        >>> vocab = Vocabulary([b"{", b"}", b'"a"', b":", b"1", None], eos_token_ids=[5])
        >>> vocab.size, sorted(vocab.eos_token_ids)
        (6, [5])
    """

    token_bytes: tuple
    eos_token_ids: frozenset
    dummy_prefix: bool = False
    fingerprint: str = field(default="", compare=False)
    special_tokens: Mapping[str, int] = field(default_factory=dict, compare=False)
    chat_template: Optional[str] = field(default=None, compare=False)

    def __init__(
        self, token_bytes: Sequence[Optional[bytes]], eos_token_ids: Iterable[int], *, dummy_prefix: bool = False,
        special_tokens: Optional[Mapping[str, int]] = None, chat_template: Optional[str] = None,
    ) -> None:
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
        object.__setattr__(self, "dummy_prefix", bool(dummy_prefix))
        digest = hashlib.sha256(json.dumps(sorted(eos)).encode())
        if dummy_prefix:  # absent otherwise, so fingerprints of other vocabularies are unchanged
            digest.update(b"dummy_prefix\0")
        for b in tokens:
            digest.update(b"\xff\xff" if b is None else len(b).to_bytes(2, "little") + b)
        object.__setattr__(self, "fingerprint", digest.hexdigest()[:32])
        # Not fingerprinted: neither changes what a token spells (see specials.py).
        object.__setattr__(self, "special_tokens", checked_special_tokens(special_tokens, tokens))
        object.__setattr__(self, "chat_template", chat_template if isinstance(chat_template, str) else None)

    def __reduce__(self) -> tuple:
        # One bytes blob and an int32 length array: a quarter of the size of a tuple of bytes
        # objects, and the fingerprint is checked again on the other side.
        blob, lengths = pack_vocabulary(self.token_bytes)
        return unpack_vocabulary, (
            blob, lengths, sorted(self.eos_token_ids), self.dummy_prefix, self.fingerprint, dict(self.special_tokens),
            self.chat_template,
        )

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
        *,
        well_known_eos: Optional[bool] = None,
    ) -> "Vocabulary":
        """Build (or fetch from a per-tokenizer cache) the vocabulary of a tokenizer.

        ``tokenizer`` is a Hugging Face tokenizer, a tiktoken ``Encoding`` or a ``Vocabulary``.

        EOS is the union of:

        - the tokenizer's ``eos_token_id`` (tiktoken: ``eot_token``, when it has one);
        - ``generation_config.eos_token_id`` (an int or a list);
        - ``eos_token_ids``;
        - with ``well_known_eos``, each of :data:`WELL_KNOWN_EOS_TOKENS` that the tokenizer has
          as a special token (never as text). The default is true for a tiktoken ``Encoding``
          and false for Hugging Face tokenizers: EOS should be exactly the ids that stop
          ``generate`` (pass ``generation_config``), because once the output is complete
          only EOS ids are allowed, and an id that does not stop generation would repeat.
        """
        if isinstance(tokenizer, Vocabulary):
            if eos_token_ids is None and generation_config is None:
                return tokenizer
            eos = set(tokenizer.eos_token_ids) | _eos_from(None, eos_token_ids, generation_config)
            return cls(
                tokenizer.token_bytes, eos, dummy_prefix=tokenizer.dummy_prefix,
                special_tokens=tokenizer.special_tokens, chat_template=tokenizer.chat_template,
            )
        tiktoken = _is_tiktoken(tokenizer)
        eos = _eos_from(None if tiktoken else tokenizer, eos_token_ids, generation_config)
        size = tokenizer.n_vocab if tiktoken else len(tokenizer) if hasattr(tokenizer, "__len__") else 0
        if well_known_eos is None:
            well_known_eos = tiktoken
        key = (tuple(sorted(eos)), size, well_known_eos)  # add_tokens() grows the size
        try:
            per_tokenizer = _CACHE.setdefault(tokenizer, {})
        except TypeError:  # not weak-referenceable
            per_tokenizer = {}
        if key not in per_tokenizer:
            if tiktoken:
                token_bytes, specials, extra_eos = _tiktoken_token_bytes(tokenizer)
                dummy_prefix = False
            else:
                token_bytes, specials, extra_eos, dummy_prefix = _hf_token_bytes(tokenizer)
            eos |= extra_eos
            if well_known_eos:
                eos |= {specials[name] for name in WELL_KNOWN_EOS_TOKENS if name in specials}
            names = named_specials(tokenizer, token_bytes, specials if tiktoken else None)
            per_tokenizer[key] = cls(
                token_bytes, eos, dummy_prefix=dummy_prefix, special_tokens=names, chat_template=chat_template_of(tokenizer)
            )
        return per_tokenizer[key]


_CACHE: "weakref.WeakKeyDictionary[Any, dict]" = weakref.WeakKeyDictionary()


def well_known_eos_ids(tokenizer: Any) -> set[int]:
    """Ids of the :data:`WELL_KNOWN_EOS_TOKENS` that ``tokenizer`` has as special tokens.

    For a model whose ``generation_config`` is not at hand:
    ``pse.compile(schema, tokenizer, eos_token_ids=well_known_eos_ids(tokenizer))``.
    """
    if _is_tiktoken(tokenizer):
        specials = {name: tokenizer.encode_single_token(name) for name in tokenizer.special_tokens_set}
    else:
        added = getattr(tokenizer, "added_tokens_decoder", {}) or {}
        specials = {getattr(t, "content", str(t)): i for i, t in added.items() if getattr(t, "special", True)}
    return {specials[name] for name in WELL_KNOWN_EOS_TOKENS if name in specials}


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


def _is_tiktoken(tokenizer: Any) -> bool:
    """A tiktoken ``Encoding`` (checked by shape, so tiktoken is never imported here)."""
    return all(hasattr(tokenizer, name) for name in ("decode_single_token_bytes", "n_vocab", "special_tokens_set"))


def _tiktoken_token_bytes(encoding: Any) -> tuple[list[Optional[bytes]], dict[str, int], set[int]]:
    """Bytes of every rank of a tiktoken ``Encoding``; special tokens and unused ids are ``None``."""
    specials = {name: encoding.encode_single_token(name) for name in encoding.special_tokens_set}
    result: list[Optional[bytes]] = [None] * encoding.n_vocab
    ranks = getattr(encoding, "_mergeable_ranks", None)
    if isinstance(ranks, dict):
        for data, rank in ranks.items():
            if 0 <= rank < len(result):
                result[rank] = bytes(data)
    else:
        for index in range(len(result)):
            try:
                result[index] = encoding.decode_single_token_bytes(index)
            except KeyError:
                pass  # an unused id
    for index in specials.values():
        result[index] = None
    eos = {specials["<|endoftext|>"]} if "<|endoftext|>" in specials else set()  # Encoding.eot_token
    logger.debug("built a tiktoken vocabulary of %d tokens (%d special)", len(result), len(specials))
    return result, specials, eos


def _backend_spec(tokenizer: Any) -> Optional[dict]:
    backend = getattr(tokenizer, "backend_tokenizer", None)
    return json.loads(backend.to_str()) if backend is not None else None


def _components(spec: Any) -> list[dict]:
    """A normalizer / pre-tokenizer spec and, for a Sequence, its members (recursively)."""
    if not isinstance(spec, dict):
        return []
    found = [spec]
    for member in (spec.get("normalizers") or []) + (spec.get("pretokenizers") or []):
        found += _components(member)
    return found


def _has_dummy_prefix(tokenizer: Any, spec: Optional[dict]) -> bool:
    """Whether encoding prepends a space (``▁``) to the text: SentencePiece's dummy prefix."""
    if spec is None:
        return bool(getattr(tokenizer, "add_prefix_space", False) or getattr(tokenizer, "add_dummy_prefix", False))
    for part in _components(spec.get("normalizer")):
        if part.get("type") == "Prepend" and str(part.get("prepend", "")).strip("\u2581 ") == "":
            return True
    for part in _components(spec.get("pre_tokenizer")):
        if part.get("type") == "Metaspace":
            scheme = part.get("prepend_scheme")
            if scheme in ("always", "first") or (scheme is None and part.get("add_prefix_space")):
                return True
        if part.get("type") == "ByteLevel" and part.get("add_prefix_space"):
            return True
    return False


def _decoder_kind(tokenizer: Any, spec: Optional[dict] = None) -> str:
    """'byte_level' or 'sentencepiece', read from the fast tokenizer's decoder."""
    if spec is not None:
        text = json.dumps(spec.get("decoder"), ensure_ascii=False) + json.dumps(spec.get("pre_tokenizer"), ensure_ascii=False)
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


def _added_token_bytes(content: str, kind: str) -> bytes:
    """What the decoder emits for a plain (non-special) added token.

    The tokenizers library runs added tokens through the decoder too: a SentencePiece
    decoder turns ``▁`` into a space (Gemma's ``▁▁`` … runs of spaces are added tokens), and
    the byte-level decoder maps a token whose characters are all in GPT-2's table to bytes,
    any other token to its UTF-8.
    """
    if kind == "byte_level":
        try:
            return bytes(_UNICODE_TO_BYTE[ch] for ch in content)
        except KeyError:
            return content.encode("utf-8")
    return content.replace("\u2581", " ").encode("utf-8")


def _hf_token_bytes(tokenizer: Any) -> tuple[list[Optional[bytes]], dict[str, int], set[int], bool]:
    """Token bytes, special tokens by name, extra EOS ids and the dummy-prefix flag."""
    if not hasattr(tokenizer, "get_vocab"):
        raise VocabularyError(
            f"{type(tokenizer).__name__} is neither a Hugging Face tokenizer (no get_vocab()) nor a tiktoken Encoding"
        )
    spec = _backend_spec(tokenizer)
    kind = _decoder_kind(tokenizer, spec)
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
    specials: dict[str, int] = {}  # tokens flagged special, by content
    added = getattr(tokenizer, "added_tokens_decoder", {}) or {}
    for index, token in added.items():
        content = getattr(token, "content", str(token))
        special = bool(getattr(token, "special", True))
        if index >= size:
            continue
        if special:
            specials[content] = index
        if special or _CONTROL_LIKE.match(content):
            result[index] = None
        else:
            result[index] = _added_token_bytes(content, kind)
    for index in getattr(tokenizer, "all_special_ids", []) or []:
        if 0 <= index < size:
            result[index] = None
    unk = getattr(tokenizer, "unk_token_id", None)
    if unk is not None and 0 <= unk < size:
        result[unk] = None
    if not any(result):
        raise VocabularyError(f"{type(tokenizer).__name__} has no token that emits text")
    dummy_prefix = _has_dummy_prefix(tokenizer, spec)
    logger.debug("built a %s vocabulary of %d tokens (dummy prefix: %s)", kind, size, dummy_prefix)
    return result, specials, set(), dummy_prefix


def unpack_vocabulary(
    blob: bytes, lengths: bytes, eos_token_ids: list, dummy_prefix: bool, fingerprint: str,
    special_tokens: Optional[dict] = None, chat_template: Optional[str] = None,
) -> Vocabulary:
    """The :class:`Vocabulary` that ``Vocabulary.__reduce__`` packed; checks its fingerprint."""
    vocabulary = Vocabulary(
        unpack_tokens(blob, lengths), eos_token_ids, dummy_prefix=dummy_prefix, special_tokens=special_tokens,
        chat_template=chat_template,
    )
    check_fingerprint(vocabulary, fingerprint, "the unpickled vocabulary")
    return vocabulary
