"""Byte-exact vocabularies: byte-level BPE (SmolLM2) and SentencePiece byte fallback."""

from __future__ import annotations

import json
import random

import pytest

import pse_processors as pse
from pse_processors import Vocabulary, VocabularyError

TEXTS = ['{"name": "Zoë 😀 — 東京", "n": -1.5e3}', "naïve café\n\t\\\"", "𝔘𝔫𝔦𝔠𝔬𝔡𝔢 ✓ ünïcödé", "  spaces  "]


def test_smollm2_bytes_round_trip(smol_tokenizer):
    vocab = Vocabulary.from_tokenizer(smol_tokenizer)
    for text in TEXTS:
        ids = smol_tokenizer(text, add_special_tokens=False)["input_ids"]
        assert vocab.decode(ids) == text.encode("utf-8")
    rng = random.Random(0)
    for token_id in rng.sample(range(17, len(smol_tokenizer)), 500):
        data = vocab.token_bytes[token_id]
        assert data is not None
        try:
            text = data.decode("utf-8")
        except UnicodeDecodeError:
            continue  # a partial UTF-8 token: the tokenizer shows U+FFFD, we keep the bytes
        assert smol_tokenizer.decode([token_id]) == text


def test_special_tokens_never_emit_text(smol_tokenizer):
    vocab = Vocabulary.from_tokenizer(smol_tokenizer)
    for token_id in smol_tokenizer.all_special_ids + list(smol_tokenizer.added_tokens_decoder):
        assert vocab.token_bytes[token_id] is None
    grammar = pse.compile({"type": "string"}, smol_tokenizer)
    inside_string = grammar.advance(grammar.initial_state, smol_tokenizer.convert_tokens_to_ids('"'))
    allowed = set(grammar.allowed_token_ids(inside_string).tolist())
    assert not allowed & set(smol_tokenizer.added_tokens_decoder)
    assert len(allowed) > 40000


def test_partial_utf8_tokens_are_kept_as_bytes(smol_tokenizer):
    vocab = Vocabulary.from_tokenizer(smol_tokenizer)
    partial = [b for b in vocab.token_bytes if b is not None and not _is_utf8(b)]
    assert len(partial) > 100
    assert all(b"\xef\xbf\xbd" not in b for b in partial)


def _is_utf8(data: bytes) -> bool:
    try:
        data.decode("utf-8")
        return True
    except UnicodeDecodeError:
        return False


def test_eos_is_a_set_from_tokenizer_config_and_caller(smol_tokenizer):
    from transformers import GenerationConfig

    config = GenerationConfig(eos_token_id=[2, 0])
    vocab = Vocabulary.from_tokenizer(smol_tokenizer, eos_token_ids=[5], generation_config=config)
    assert vocab.eos_token_ids == {0, 2, 5}
    assert Vocabulary.from_tokenizer(smol_tokenizer).eos_token_ids == {smol_tokenizer.eos_token_id}
    # <|endoftext|> (0) is a well-known end token that SmolLM2 has as a special token: opt-in.
    assert Vocabulary.from_tokenizer(smol_tokenizer, well_known_eos=True).eos_token_ids == {smol_tokenizer.eos_token_id, 0}
    grammar = pse.compile({"type": "boolean"}, smol_tokenizer, eos_token_ids=[5], generation_config=config)
    ids = smol_tokenizer("true", add_special_tokens=False)["input_ids"]
    state = grammar.walk(ids)
    assert {0, 2, 5} <= set(grammar.allowed_token_ids(state).tolist())
    assert grammar.accepts(ids + [5]) and grammar.accepts(ids + [0]) and not grammar.accepts([5])


def test_fingerprint_is_stable_and_specific(smol_tokenizer):
    a = Vocabulary(list(Vocabulary.from_tokenizer(smol_tokenizer).token_bytes), [2])
    b = Vocabulary(list(a.token_bytes), [2])
    assert a.fingerprint == b.fingerprint
    assert Vocabulary(list(a.token_bytes), [0, 2]).fingerprint != a.fingerprint
    changed = list(a.token_bytes)
    changed[100] = b"zz"
    assert Vocabulary(changed, [2]).fingerprint != a.fingerprint


def test_vocabulary_errors():
    with pytest.raises(VocabularyError, match="no EOS"):
        Vocabulary([b"a"], eos_token_ids=[])
    with pytest.raises(VocabularyError, match="outside the vocabulary"):
        Vocabulary([b"a"], eos_token_ids=[3])
    with pytest.raises(VocabularyError, match="neither a Hugging Face tokenizer"):
        Vocabulary.from_tokenizer(object(), eos_token_ids=[0])


def sentencepiece_tokenizer():
    """A small Llama-2-style tokenizer: ▁ for spaces, <0xNN> byte fallback, <s>/</s> specials."""
    from tokenizers import Tokenizer, decoders, models, normalizers, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    vocab = {"<unk>": 0, "<s>": 1, "</s>": 2}
    for byte in range(256):
        vocab[f"<0x{byte:02X}>"] = len(vocab)
    for piece in ["▁", "h", "e", "l", "o", "▁h", "he", "ll", "▁hello", "{", "}", '"', ":", "a", "b", "1", "é"]:
        vocab[piece] = len(vocab)
    merges = [("▁", "h"), ("h", "e")]
    model = models.BPE(vocab=vocab, merges=merges, byte_fallback=True, unk_token="<unk>")
    tok = Tokenizer(model)
    tok.normalizer = normalizers.Sequence([normalizers.Prepend("▁"), normalizers.Replace(" ", "▁")])
    tok.pre_tokenizer = pre_tokenizers.Metaspace(replacement="▁", prepend_scheme="never")
    tok.decoder = decoders.Sequence([decoders.Replace("▁", " "), decoders.ByteFallback(), decoders.Fuse(), decoders.Strip(" ", 1, 0)])
    return PreTrainedTokenizerFast(tokenizer_object=tok, bos_token="<s>", eos_token="</s>", unk_token="<unk>")


def test_sentencepiece_byte_fallback():
    tokenizer = sentencepiece_tokenizer()
    vocab = Vocabulary.from_tokenizer(tokenizer)
    get = tokenizer.convert_tokens_to_ids
    assert vocab.token_bytes[get("▁hello")] == b" hello"
    assert vocab.token_bytes[get("<0xE2>")] == b"\xe2"
    assert vocab.token_bytes[get("<0x41>")] == b"A"
    assert vocab.token_bytes[get("é")] == "é".encode()
    assert vocab.token_bytes[get("<s>")] is None and vocab.token_bytes[get("<unk>")] is None
    assert vocab.eos_token_ids == {get("</s>")}
    # A JSON string with a character outside the vocabulary is spelled with byte tokens.
    grammar = pse.compile({"type": "string"}, tokenizer)
    text = json.dumps("a→b", ensure_ascii=False).encode()
    ids = [get('"'), get("a")] + [get(f"<0x{b:02X}>") for b in "→".encode()] + [get("b"), get('"'), get("</s>")]
    assert vocab.decode(ids) == text
    assert grammar.accepts(ids)


def test_added_plain_tokens_keep_their_text(smol_tokenizer):
    from copy import deepcopy

    tokenizer = deepcopy(smol_tokenizer)
    tokenizer.add_tokens(["zzplain", "<my_control>"])
    vocab = Vocabulary.from_tokenizer(tokenizer)
    assert vocab.token_bytes[tokenizer.convert_tokens_to_ids("zzplain")] == b"zzplain"
    assert vocab.token_bytes[tokenizer.convert_tokens_to_ids("<my_control>")] is None
