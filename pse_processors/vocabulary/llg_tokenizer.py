"""An llguidance ``LLTokenizer`` built from our byte-exact :class:`~pse_processors.Vocabulary`.

llguidance's own constructors read a Hugging Face ``tokenizer.json``; building from the
vocabulary instead means every tokenizer family we read (byte-level BPE, SentencePiece with
byte fallback, tiktoken, a plain ``Vocabulary``) works, and both engines see the same bytes
for every id. Tokens without bytes (special, control, unused ids) become llguidance
*special* tokens, which a grammar never allows as text; the EOS set is passed as is.

llguidance tokenizes the bytes a grammar forces at its start (to allow every token that
begins with them), so it needs an encoder: a greedy longest match over the vocabulary
gives a valid spelling, which is all it needs.

The tokenizer carries llguidance's *slices* (``SLICES``): token sets whose mask is added
whole, without walking the token trie, wherever every one of their tokens is allowed; inside a
JSON string that is most of the vocabulary. llguidance's default slices allow any character
but ``"``, ``\\`` and controls, while our JSON strings also leave out U+10FFFD-U+10FFFF (the
byte automaton's sentinels, ``json_schema.fragments.SENTINELS``): no default slice fits inside
our strings, and every mask there walked the whole trie (2-3x slower). Ours leave the same
characters out, so they fit in our strings and in every lexeme the default ones fit in.
"""

from __future__ import annotations

import threading
import weakref
from typing import Any

from .vocabulary import Vocabulary

# llguidance.LLTokenizer.general_slices() (1.9.1) less the sentinels U+10FFFD-U+10FFFF.
_STRING_SLICE_CLASS = '[^"\\\\\\x00-\\x1F\\x7F\\x{10FFFD}-\\x{10FFFF}]'
#: The slices every LLTokenizer built here carries (see the module's docstring).
SLICES = ("[\\x20\\x0A\\x0D\\x09]+", _STRING_SLICE_CLASS + "{1,10}", _STRING_SLICE_CLASS + "{1,30}", _STRING_SLICE_CLASS + "+")

_cache: "weakref.WeakKeyDictionary[Vocabulary, Any]" = weakref.WeakKeyDictionary()
_lock = threading.Lock()


def require_llguidance() -> Any:
    """Import llguidance, or raise an ImportError that says how to install it."""
    try:
        import llguidance
    except ImportError as exc:  # pragma: no cover - a core dependency; missing only on odd platforms
        raise ImportError(
            f"the grammar engine needs llguidance ({exc}); install it with `pip install llguidance==1.9.1`"
        ) from exc
    return llguidance


class _VocabularyTokenizer:
    """The duck-typed tokenizer ``llguidance.TokenizerWrapper`` reads."""

    def __init__(self, vocabulary: Vocabulary) -> None:
        self.eos_token_id = min(vocabulary.eos_token_ids)
        self.bos_token_id = None
        tokens = []
        special = []
        for i, data in enumerate(vocabulary.token_bytes):
            if data is None:  # a name only llguidance's debug output shows
                tokens.append(f"<|pse_special_{i}|>".encode())
                special.append(i)
            else:
                tokens.append(data)
        self.tokens = tokens
        self.special_token_ids = special
        self._ids: dict[bytes, int] = {}
        for i, data in enumerate(vocabulary.token_bytes):
            if data is not None:
                self._ids.setdefault(data, i)
        self._longest = max((len(b) for b in self._ids), default=1)

    def __call__(self, text: Any) -> list[int]:
        data = text.encode("utf-8") if isinstance(text, str) else bytes(text)
        out: list[int] = []
        i = 0
        while i < len(data):
            for j in range(min(len(data), i + self._longest), i, -1):
                found = self._ids.get(data[i:j])
                if found is not None:
                    out.append(found)
                    i = j
                    break
            else:  # no token spells this byte: the grammar cannot produce it through this vocabulary
                i += 1
        return out


def lltokenizer_for(vocabulary: Vocabulary) -> Any:
    """The ``llguidance.LLTokenizer`` of ``vocabulary`` (built once per vocabulary, then shared).

    Example:
        >>> from pse_processors import Vocabulary
        >>> vocab = Vocabulary([b"a", b"b", b"ab", None, None], eos_token_ids=[3])
        >>> tok = lltokenizer_for(vocab)
        >>> tok.vocab_size, tok.eos_tokens, tok.is_special_token(4), tok.decode_bytes([2, 0])
        (5, [3], True, b'aba')
    """
    with _lock:
        found = _cache.get(vocabulary)
    if found is not None:
        return found
    llguidance = require_llguidance()
    wrapper = llguidance.TokenizerWrapper(_VocabularyTokenizer(vocabulary))
    built = llguidance.LLTokenizer(wrapper, n_vocab=vocabulary.size, eos_token=sorted(vocabulary.eos_token_ids),
                                  slices=list(SLICES))
    with _lock:
        return _cache.setdefault(vocabulary, built)
