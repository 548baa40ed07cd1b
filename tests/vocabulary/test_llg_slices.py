"""llguidance's slices fit inside our JSON strings (issue 26's speed regression).

llguidance adds a slice's whole mask without walking the token trie only where the slice lies
inside an allowed lexeme. Its default slices allow U+10FFFD-U+10FFFF, which our JSON strings
leave out (the byte automaton's sentinels), so none applied inside our strings and every mask
there walked the trie. The slices our tokenizer carries must stay inside our string character
class, whatever either of them becomes.
"""

from __future__ import annotations

import re

import numpy as np
import pytest

import pse_processors as pse
from pse_processors.json_schema import fragments
from pse_processors.vocabulary.llg_tokenizer import SLICES, lltokenizer_for

# Every ASCII character, the edges of each UTF-8 length, and plane 16 around the sentinels.
SAMPLES = [chr(c) for c in range(0x80)] + [chr(c) for c in (0x7FF, 0x800, 0xFFFF, 0x10000, 0x100000, 0x10FFFC)]
SAMPLES += [chr(c) for c in range(fragments.SENTINELS[0], fragments.SENTINELS[1] + 1)]


def _python_class(regex_class: str) -> re.Pattern:
    """A Rust-syntax character class as a Python regex (``\\x{10FFFD}`` -> ``\\U0010fffd``)."""
    return re.compile(re.sub(r"\\x\{([0-9a-fA-F]+)\}", lambda m: f"\\U{int(m.group(1), 16):08x}", regex_class))


def test_string_slices_lie_inside_our_json_string_class():
    ours = _python_class(fragments._RAW_CLASS)
    for slice_regex in SLICES[1:]:
        klass = _python_class(slice_regex[: slice_regex.rindex("]") + 1])
        inside = [ch for ch in SAMPLES if klass.fullmatch(ch)]
        assert all(ours.fullmatch(ch) for ch in inside), [hex(ord(c)) for c in inside if not ours.fullmatch(c)]
        assert "a" in inside and "\U0010fffc" in inside  # and they still hold most of the vocabulary's text
    sentinels = [chr(c) for c in range(fragments.SENTINELS[0], fragments.SENTINELS[1] + 1)]
    assert not any(ours.fullmatch(ch) for ch in sentinels)


@pytest.mark.parametrize("backend", ["llguidance", "dfa"])
def test_masks_inside_a_string_are_unchanged_by_the_slices(backend):
    """Inside a string the mask is the vocabulary's string tokens, the sentinels' tokens left out."""
    tokens = [b'{"k": "', b"abc", b"a b", b'"', b'x"', b"\\n", b"\x7f", "\U0010fffc".encode(), "\U0010fffd".encode(),
              "\U0010ffffa".encode(), b"\n", b"}", None]
    vocab = pse.Vocabulary(tokens, [len(tokens) - 1])
    assert lltokenizer_for(vocab).vocab_size == len(tokens)
    schema = {"type": "object", "properties": {"k": {"type": "string"}}, "required": ["k"], "additionalProperties": False}
    matcher = pse.compile(schema, vocab, backend=backend)
    mask = matcher.allowed_mask(matcher.walk([0]))
    allowed = {tokens[i] for i in np.flatnonzero(mask)}
    assert allowed == {b"abc", b"a b", b'"', b'x"', b"\\n", b"\x7f", "\U0010fffc".encode(), b"}"}
