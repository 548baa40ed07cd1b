"""Markers (``<think>``, ``` ```json ``` ...) resolved against a vocabulary: text, special tokens, or both.

A marker is given as text. Against a vocabulary it becomes *units*: where a stretch of it is
exactly the name of a byte-less (special or added) token, that token; the rest stays text,
matched byte-exactly with any tokenization. On Qwen3 ``"<think>"`` is the single token 151667 and
``"<tool_call>\\n"`` is that token then the text ``"\\n"``; on Llama 3.1 both are plain text. A
token's spelling as text is then forbidden in every free text of the construct, so a marker is
never ambiguous. A marker that the tokenizer cannot produce (no sequence of tokens spells its
text) raises :class:`~pse_processors.VocabularyError` naming it.

Example:
    >>> from pse_processors import Vocabulary
    >>> vocab = Vocabulary([b"<", b"think", b">", b"\\n", None, None], eos_token_ids=[5], special_tokens={"<think>": 4})
    >>> resolve_marker("<think>\\n", vocab, "start").units, resolve_marker("</x>", Vocabulary([b"<", b"/", b"x", b">", None], eos_token_ids=[4]), "end").units
    ((4, b'\\n'), (b'</x>',))
"""

from __future__ import annotations

import threading
import weakref
from dataclasses import dataclass
from typing import Any, Optional

from ..errors import SchemaError, VocabularyError
from ..json_schema.document import lone_surrogate


@dataclass(frozen=True)
class Marker:
    """A resolved marker: ``text`` as given, ``units`` bytes and special-token ids in order."""

    text: str
    units: tuple

    @property
    def tokens(self) -> list[int]:
        """The special tokens among the units."""
        return [u for u in self.units if isinstance(u, int)]

    @property
    def lead_text(self) -> Optional[bytes]:
        """The text the marker starts with, or ``None`` when it starts with a token."""
        return self.units[0] if isinstance(self.units[0], bytes) else None


def check_marker_text(text: Any, what: str) -> str:
    """``text`` if it is a usable marker: a non-empty str without lone surrogates.

    Raises:
        SchemaError: it is not.
    """
    if not isinstance(text, str) or not text:
        raise SchemaError(f"the {what} marker must be a non-empty string, not {text!r}", None)  # type: ignore[arg-type]
    where = lone_surrogate(text)
    if where is not None:
        raise SchemaError(
            f"the {what} marker {text!r} holds a lone surrogate U+{ord(text[where]):04X}: no UTF-8 text can contain it",
            None,  # type: ignore[arg-type]
        )
    return text


def resolve_marker(text: str, vocabulary: Any, what: str) -> Marker:
    """``text`` as units of ``vocabulary`` (see the module docstring).

    Raises:
        VocabularyError: the tokenizer cannot produce the marker, or it names an EOS token.
    """
    names = {name: index for name, index in vocabulary.special_tokens.items()}
    longest = max((len(n) for n in names), default=0)
    units: list = []
    run = ""
    at = 0
    while at < len(text):
        found = None
        for size in range(min(longest, len(text) - at), 0, -1):  # the longest token name here
            index = names.get(text[at : at + size])
            if index is not None:
                found = (size, index)
                break
        if found is None:
            run += text[at]
            at += 1
            continue
        if found[1] in vocabulary.eos_token_ids:
            raise VocabularyError(
                f"the {what} marker {text!r} holds {text[at:at + found[0]]!r}, an EOS token of this tokenizer: "
                "the output would end there"
            )
        if run:
            units.append(run.encode("utf-8"))
            run = ""
        units.append(found[1])
        at += found[0]
    if run:
        units.append(run.encode("utf-8"))
    for unit in units:
        if isinstance(unit, bytes) and spell(vocabulary, unit) is None:
            raise VocabularyError(
                f"the {what} marker {text!r} cannot be produced by this tokenizer: no sequence of its tokens spells "
                f"{unit.decode('utf-8')!r}"
            )
    return Marker(text, tuple(units))


_tables: "weakref.WeakKeyDictionary[Any, dict]" = weakref.WeakKeyDictionary()
_lock = threading.Lock()


def spell(vocabulary: Any, data: bytes) -> Optional[list[int]]:
    """Token ids whose bytes are exactly ``data`` (longest tokens that leave a spellable rest), or
    ``None`` when no sequence of tokens spells it. For markers: short texts, called at compile time.

    Example:
        >>> from pse_processors import Vocabulary
        >>> spell(Vocabulary([b"<", b"/", b"</", b"x", None], eos_token_ids=[4]), b"</x"), spell(Vocabulary([b"a", None], eos_token_ids=[1]), b"b")
        ([2, 3], None)
    """
    with _lock:
        by_bytes = _tables.get(vocabulary)
        if by_bytes is None:
            by_bytes = {}
            for index, token in enumerate(vocabulary.token_bytes):
                if token is not None and len(token) <= 64:
                    by_bytes.setdefault(token, index)
            _tables[vocabulary] = by_bytes
    size = len(data)
    best: list[Optional[int]] = [None] * (size + 1)  # token length that starts a spelling here
    best[size] = 0
    for begin in range(size - 1, -1, -1):
        for end in range(min(size, begin + 64), begin, -1):
            if best[end] is not None and data[begin:end] in by_bytes:
                best[begin] = end - begin
                break
    if best[0] is None and size:
        return None
    out, at = [], 0
    while at < size:
        length = best[at]
        out.append(by_bytes[data[at : at + length]])  # type: ignore[operator]
        at += length  # type: ignore[operator]
    return out


def spelling_of_marker(vocabulary: Any, units: tuple) -> list[int]:
    """Token ids that produce ``units`` (text spelled by :func:`spell`, tokens as themselves)."""
    out: list[int] = []
    for unit in units:
        out.extend((spell(vocabulary, unit) or []) if isinstance(unit, bytes) else [unit])
    return out
