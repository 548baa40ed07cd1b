"""Byte-exact vocabularies of the tokenizers people use: Llama-3.1, Qwen3, Gemma 3, Llama-2, SmolLM2.

The four npm tokenizers are fetched by scripts/fetch_assets.py (pse_processors.assets); the
fifth is the embedded model's. Per tokenizer:

- every token's bytes agree with the tokenizer's own decoder;
- round trip: the tokenizer's own encoding of a few hundred random JSON documents (multi-byte
  characters, emoji, escapes, numbers), with and without ``ensure_ascii``, is accepted token by
  token by a schema the documents satisfy and by the generic JSON value;
- no escape: random walks through the automaton always give valid UTF-8 that validates, no
  special token but EOS is ever allowed, and EOS exactly in accepting states.
"""

from __future__ import annotations

import json
import random
import unicodedata

import numpy as np
import pytest

import pse_processors as pse
from pse_processors import Vocabulary
from pse_processors.assets import TOKENIZER_NAMES, load_tokenizer
from pse_processors.runtime.results import parse_output
from pse_processors.vocabulary.vocabulary import well_known_eos_ids

from tests.helpers import validate

DOC_SCHEMA = {
    "type": "object",
    "properties": {
        "id": {"type": "integer"},
        "name": {"type": "string"},
        "score": {"type": "number"},
        "ok": {"type": "boolean"},
        "tags": {"type": "array", "items": {"type": "string"}},
        "note": {"type": ["string", "null"]},
        "meta": {},
    },
    "required": ["id", "name"],
}
ANY_SCHEMA: dict = {}
# Bounded, so that every random walk ends: short strings, few items, a small enum.
WALK_SCHEMA = {
    "type": "object",
    "properties": {
        "name": {"type": "string", "maxLength": 6},
        "n": {"type": "integer"},
        "x": {"type": "number"},
        "tag": {"enum": ["a", "Zoë 😀", None, 3]},
        "xs": {"type": "array", "items": {"type": "string", "maxLength": 3}, "maxItems": 2},
    },
    "required": ["name", "n"],
}
N_DOCS = 200
N_WALKS = 25

_POOLS = [
    "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ",
    "0123456789",
    " ",
    "  ",
    ' !"#$%&\'()*+,-./:;=?@[\\]^_`{|}~',  # no '>': no '<b>'-style markup (see test_markup_added_tokens)
    "\n\t\r\b\f\x00\x01\x1f\x7f",
    "éñüßçøåÆŒ€£¥°±§¶",
    "東京日本語中文한국어",
    "שלוםمرحبا",
    "😀🎉👍🏽👩‍💻🇫🇷❤️✓→∑∞",
    "𝔘𝔫𝔦𝔠𝔬𝔡𝔢𐍈",
    "e\u0301a\u0308\u200b\u00a0\ufeff",  # combining marks (NFC changes them), zero-width, nbsp, BOM
]


def random_string(rng: random.Random, max_len: int = 12) -> str:
    return "".join(rng.choice(rng.choice(_POOLS)) for _ in range(rng.randint(0, max_len)))


def random_number(rng: random.Random):
    kind = rng.randrange(6)
    if kind == 0:
        return rng.randint(-10, 10)
    if kind == 1:
        return rng.randint(-(10**12), 10**12)
    if kind == 2:
        return round(rng.uniform(-1e6, 1e6), rng.randint(0, 6))
    if kind == 3:
        return rng.choice([0.0, -0.0, 1e-7, 1.5e300, -2.5e-300, 1e22, 895730.721])
    if kind == 4:
        return rng.uniform(-1, 1) * 10 ** rng.randint(-30, 30)
    return rng.randint(0, 999)


def random_value(rng: random.Random, depth: int):
    """Any JSON value with at most ``depth`` levels of arrays/objects."""
    kinds = ["str", "num", "bool", "null"] + (["arr", "obj"] * 2 if depth > 0 else [])
    kind = rng.choice(kinds)
    if kind == "str":
        return random_string(rng)
    if kind == "num":
        return random_number(rng)
    if kind == "bool":
        return rng.random() < 0.5
    if kind == "null":
        return None
    if kind == "arr":
        return [random_value(rng, depth - 1) for _ in range(rng.randint(0, 3))]
    return {random_string(rng, 6): random_value(rng, depth - 1) for _ in range(rng.randint(0, 3))}


def random_doc(rng: random.Random) -> dict:
    """A document of DOC_SCHEMA, properties in schema order (the automaton's order)."""
    doc: dict = {"id": rng.randint(-(10**9), 10**9), "name": random_string(rng, 20)}
    if rng.random() < 0.7:
        doc["score"] = random_number(rng)
    if rng.random() < 0.5:
        doc["ok"] = rng.random() < 0.5
    if rng.random() < 0.6:
        doc["tags"] = [random_string(rng) for _ in range(rng.randint(0, 4))]
    if rng.random() < 0.5:
        doc["note"] = None if rng.random() < 0.3 else random_string(rng)
    if rng.random() < 0.6:
        doc["meta"] = random_value(rng, 2)  # any_value_depth=2
    return doc


_TOKENIZERS: dict = {}


def family(name: str):
    if name not in _TOKENIZERS:
        _TOKENIZERS[name] = load_tokenizer(name, fetch=True)
    return _TOKENIZERS[name]


@pytest.fixture(scope="module", params=TOKENIZER_NAMES)
def tokenizer(request):
    return family(request.param)


def _expected_text(tokenizer, ids) -> str:
    """What the tokenizer's own decoder makes of ``ids`` (the dummy-prefix space stripped)."""
    return tokenizer.decode(ids, skip_special_tokens=False, clean_up_tokenization_spaces=False)


_NFC: dict = {}


def _normalize(tokenizer, text: str) -> str:
    """The text the tokenizer actually encodes: Qwen's NFC normalizer changes bytes."""
    if id(tokenizer) not in _NFC:
        spec = json.loads(tokenizer.backend_tokenizer.to_str())
        _NFC[id(tokenizer)] = '"NFC"' in json.dumps(spec.get("normalizer"))
    return unicodedata.normalize("NFC", text) if _NFC[id(tokenizer)] else text


def test_token_bytes_match_the_tokenizers_decoder(tokenizer):
    """Every token that is valid UTF-8 alone decodes (after an anchor token) to exactly its bytes."""
    vocab = Vocabulary.from_tokenizer(tokenizer)
    assert vocab.size == len(tokenizer)
    anchor = tokenizer("a", add_special_tokens=False)["input_ids"][-1]
    anchor_text = tokenizer.decode([anchor])
    ids, texts, partial = [], [], 0
    for index, data in enumerate(vocab.token_bytes):
        if data is None:
            continue
        try:
            texts.append(data.decode("utf-8"))
            ids.append(index)
        except UnicodeDecodeError:
            partial += 1  # kept as bytes: the tokenizer shows U+FFFD for them
    assert len(ids) > 0.95 * vocab.size - 6500  # Gemma has 6,242 unused added tokens
    assert partial >= 100  # byte-level partial tokens or <0xNN> byte fallback
    decoded = tokenizer.batch_decode([[anchor, i] for i in ids], clean_up_tokenization_spaces=False)
    mismatches = [(i, t, d) for i, t, d in zip(ids, texts, decoded) if d != anchor_text + t]
    assert mismatches == []
    # Every special token (and every markup-like added token) is excluded.
    for index, token in tokenizer.added_tokens_decoder.items():
        if token.special:
            assert vocab.token_bytes[index] is None, token
    for index in tokenizer.all_special_ids:
        assert vocab.token_bytes[index] is None


EXPECTED_EOS = {
    "llama3_1": {"<|end_of_text|>", "<|eot_id|>"},  # the npm tokenizer names 128008 a reserved token
    "qwen3": {"<|im_end|>", "<|endoftext|>"},
    "gemma3": {"<end_of_turn>", "<eos>"},
    "llama2": {"</s>"},
    "smollm2": {"<|im_end|>", "<|endoftext|>"},
}
DUMMY_PREFIX = {"llama2"}


@pytest.mark.parametrize("name", TOKENIZER_NAMES)
def test_eos_set_and_dummy_prefix(name):
    tokenizer = family(name)
    vocab = Vocabulary.from_tokenizer(tokenizer)
    assert vocab.eos_token_ids == {tokenizer.eos_token_id}  # by default: the tokenizer's + config + caller
    assert vocab.dummy_prefix == (name in DUMMY_PREFIX)
    known = Vocabulary.from_tokenizer(tokenizer, well_known_eos=True)
    assert set(tokenizer.convert_ids_to_tokens(sorted(known.eos_token_ids))) == EXPECTED_EOS[name]
    assert well_known_eos_ids(tokenizer) | {tokenizer.eos_token_id} == known.eos_token_ids
    assert known.token_bytes == vocab.token_bytes
    grammar = pse.compile({"type": "boolean"}, tokenizer, eos_token_ids=well_known_eos_ids(tokenizer))
    ids = tokenizer("false", add_special_tokens=False)["input_ids"]
    for eos in known.eos_token_ids:
        assert grammar.accepts(ids + [eos]) and not grammar.accepts([eos])


def test_llama3_1_multiple_eos_from_generation_config():
    from transformers import GenerationConfig

    tokenizer = family("llama3_1")
    config = GenerationConfig(eos_token_id=[128001, 128008, 128009])  # Llama-3.1-Instruct's
    grammar = pse.compile({"type": "boolean"}, tokenizer, generation_config=config)
    assert grammar.vocabulary.eos_token_ids == {128001, 128008, 128009}
    ids = tokenizer("true", add_special_tokens=False)["input_ids"]
    assert not set(grammar.allowed_token_ids(grammar.initial_state).tolist()) & {128001, 128008, 128009}
    state = grammar.walk(ids)
    assert {128001, 128008, 128009} <= set(grammar.allowed_token_ids(state).tolist())
    for eos in (128001, 128008, 128009):
        assert grammar.accepts(ids + [eos])
        assert parse_output(grammar, ids + [eos, 128004]) is True


def _check_round_trip(tokenizer, grammar, doc, ensure_ascii: bool) -> bool:
    """True when the encoding is accepted; False when the tokenizer's normalizer made the text
    invalid JSON (then the automaton must reject it)."""
    text = json.dumps(doc, ensure_ascii=ensure_ascii)
    ids = tokenizer(text, add_special_tokens=False)["input_ids"]
    vocab = grammar.vocabulary
    raw = vocab.decode(ids).decode("utf-8")
    expected = _normalize(tokenizer, text)
    assert raw == (" " + expected if vocab.dummy_prefix else expected)
    assert _expected_text(tokenizer, ids) == expected
    if expected != text:
        try:
            json.loads(expected)
        except json.JSONDecodeError:
            # Qwen's NFC normalizer composes the "n" of a "\n" escape with a following combining
            # mark into "ń": the tokenizer's own encoding is no longer JSON.
            assert not grammar.accepts(ids)
            return False
    state = grammar.initial_state
    for position, token in enumerate(ids):
        state = grammar.advance(state, token)
        assert state is not None, (
            f"token {position} {tokenizer.convert_ids_to_tokens(token)!r} rejected after "
            f"{vocab.decode(ids[:position])!r}"
        )
    assert grammar.is_accepting(state)
    eos = min(vocab.eos_token_ids)
    assert grammar.accepts(ids + [eos])
    assert parse_output(grammar, ids + [eos]) == json.loads(expected)
    return True


def test_round_trip_random_documents(tokenizer):
    schema_grammar = pse.compile(DOC_SCHEMA, tokenizer)
    any_grammar = pse.compile(ANY_SCHEMA, tokenizer)
    rng = random.Random(1234)
    results = []
    for _ in range(N_DOCS):
        doc = random_doc(rng)
        validate(DOC_SCHEMA, json.dumps(doc))
        any_doc = random_value(rng, 2)
        for ensure_ascii in (True, False):
            results.append(_check_round_trip(tokenizer, schema_grammar, doc, ensure_ascii))
            results.append(_check_round_trip(tokenizer, any_grammar, doc.get("meta", any_doc), ensure_ascii))
            results.append(_check_round_trip(tokenizer, any_grammar, any_doc, ensure_ascii))
    assert sum(results) >= 0.97 * len(results)  # NFC breaks a few escapes for Qwen3, none elsewhere
    assert all(results) or tokenizer.backend_tokenizer.normalizer is not None


def _random_walk(grammar, rng: random.Random, forbidden: np.ndarray, eos: np.ndarray, max_steps: int):
    """Walk choosing allowed tokens: among a sample of allowed tokens, pick a next state uniformly
    (so long runs of digit or string tokens do not dominate), then a token that reaches it."""
    state, ids = grammar.initial_state, []
    for _ in range(max_steps):
        mask = grammar.allowed_mask(state)
        assert not mask[forbidden].any(), "a special token is allowed"
        accepting = grammar.is_accepting(state)
        assert mask[eos].all() == accepting and mask[eos].any() == accepting, "EOS allowed iff accepting"
        allowed = np.flatnonzero(mask)
        assert len(allowed) > 0
        if accepting and rng.random() < 0.4:
            token = int(rng.choice(eos.tolist()))
            ids.append(token)
            assert grammar.advance(state, token) is not None
            return ids, True
        sample = [int(t) for t in rng.sample(allowed.tolist(), min(64, len(allowed))) if t not in set(eos.tolist())]
        by_state: dict = {}
        for token in sample:
            nxt = grammar.advance(state, token)
            assert nxt is not None, "an allowed token is rejected by advance()"
            by_state.setdefault(nxt, []).append(token)
        if not by_state:  # only EOS allowed
            continue
        nxt = rng.choice(sorted(by_state))
        ids.append(rng.choice(by_state[nxt]))
        state = nxt
    return ids, False


@pytest.mark.parametrize("schema", [WALK_SCHEMA, ANY_SCHEMA], ids=["bounded", "any"])
def test_no_escape_random_walks(tokenizer, schema):
    # The walk picks among distinct next *automaton* states, so that it finishes: the byte
    # automaton (the grammar engine's states are token paths; see test_grammar_engine.py).
    grammar = pse.compile(schema, tokenizer, backend="dfa")
    vocab = grammar.vocabulary
    assert grammar.vocabulary.eos_token_ids == {tokenizer.eos_token_id}
    grammar = pse.compile(schema, tokenizer, eos_token_ids=well_known_eos_ids(tokenizer), backend="dfa")  # several EOS ids
    vocab = grammar.vocabulary
    eos = np.array(sorted(vocab.eos_token_ids))
    special = {i for i, b in enumerate(vocab.token_bytes) if b is None} | set(tokenizer.all_special_ids)
    special |= {i for i, t in tokenizer.added_tokens_decoder.items() if t.special}
    forbidden = np.array(sorted(special - vocab.eos_token_ids))
    rng = random.Random(99)
    finished = 0
    for _ in range(N_WALKS):
        ids, done = _random_walk(grammar, rng, forbidden, eos, max_steps=120)
        data = vocab.decode(ids)
        if not done:
            assert not grammar.accepts(ids)
            continue
        finished += 1
        text = data.decode("utf-8")  # never a partial character
        assert not vocab.dummy_prefix or not text.startswith("  ")
        value = validate(schema, text[1:] if vocab.dummy_prefix and text.startswith(" ") else text)
        assert parse_output(grammar, ids) == value
    assert finished >= (N_WALKS if schema is WALK_SCHEMA else N_WALKS // 2)


def test_sentencepiece_dummy_prefix_policy():
    """Llama-2 encodes {"a": 1} as ▁{" …: accepted, one leading space at most, parse strips it."""
    llama2 = family("llama2")
    schema = {"type": "object", "properties": {"a": {"type": "integer"}}, "required": ["a"]}
    grammar = pse.compile(schema, llama2)
    assert grammar.spec.leading_space
    ids = llama2('{"a": 1}', add_special_tokens=False)["input_ids"]
    assert llama2.convert_ids_to_tokens(ids)[0] == '▁{"'
    assert grammar.accepts(ids) and parse_output(grammar, ids) == {"a": 1}
    get = llama2.convert_tokens_to_ids
    no_prefix = [get("{"), get('"'), get("a"), get('":'), get("▁"), get("1"), get("}")]
    assert grammar.accepts(no_prefix) and parse_output(grammar, no_prefix) == {"a": 1}
    assert grammar.advance(grammar.walk([get("▁")]), get("▁")) is None  # no second space
    assert not grammar.accepts([get("▁▁")] + no_prefix)
    choice = pse.compile(pse.Choice(["yes", "no"]), llama2)
    yes = llama2("yes", add_special_tokens=False)["input_ids"]
    assert llama2.convert_ids_to_tokens(yes) == ["▁yes"] and parse_output(choice, yes) == "yes"
    # Without a dummy prefix (Gemma 3, byte-level BPE) no leading space is accepted.
    for name in ("gemma3", "llama3_1"):
        tokenizer = family(name)
        grammar = pse.compile(schema, tokenizer)
        assert not grammar.spec.leading_space
        space = tokenizer(" ", add_special_tokens=False)["input_ids"]
        assert len(space) == 1 and grammar.advance(grammar.initial_state, space[0]) is None


def test_markup_added_tokens_are_excluded_but_spellable():
    """Gemma's non-special <b>, <table> … and Qwen's <think>, <tool_call> are never allowed as one
    token, but the same text is still reachable through ordinary tokens."""
    gemma = family("gemma3")
    vocab = Vocabulary.from_tokenizer(gemma)
    get = gemma.convert_tokens_to_ids
    assert vocab.token_bytes[get("<b>")] is None and vocab.token_bytes[get("<unused0>")] is None
    assert vocab.token_bytes[get("▁▁")] == b"  "  # an added token of plain text, through the decoder
    assert vocab.token_bytes[get("\n\n")] == b"\n\n"
    grammar = pse.compile({"type": "string"}, gemma)
    assert grammar.accepts([get('"'), get("<"), get("b"), get(">"), get('"')])
    qwen = family("qwen3")
    qvocab = Vocabulary.from_tokenizer(qwen)
    assert qvocab.token_bytes[qwen.convert_tokens_to_ids("<think>")] is None


def test_tiktoken_encoding_from_llama3_ranks():
    pytest.importorskip("tiktoken")
    from pse_processors.assets import tiktoken_encoding

    encoding = tiktoken_encoding("llama3_1")
    hf = family("llama3_1")
    vocab = Vocabulary.from_tokenizer(encoding)
    assert vocab.token_bytes == Vocabulary.from_tokenizer(hf).token_bytes
    assert vocab.eos_token_ids == {128001, 128009}  # well-known special tokens; no <|endoftext|>
    assert not vocab.dummy_prefix
    assert Vocabulary.from_tokenizer(encoding) is vocab  # cached per encoding
    grammar = pse.compile(DOC_SCHEMA, encoding)
    any_grammar = pse.compile(ANY_SCHEMA, encoding)
    rng = random.Random(7)
    for _ in range(50):
        doc, any_doc = random_doc(rng), random_value(rng, 2)
        for ensure_ascii in (True, False):
            for g, value in ((grammar, doc), (any_grammar, any_doc)):
                text = json.dumps(value, ensure_ascii=ensure_ascii)
                ids = encoding.encode(text)
                assert ids == hf(text, add_special_tokens=False)["input_ids"]
                assert vocab.decode(ids) == text.encode()
                assert g.accepts(ids + [128009]) and g.accepts(ids + [128001])
    state = grammar.walk(encoding.encode('{"id": 1, "name": "'))
    allowed = set(grammar.allowed_token_ids(state).tolist())
    assert not allowed & set(range(128000, 128256))


def test_asset_resolver(monkeypatch, tmp_path):
    from pse_processors import assets

    for name in assets.NPM_TOKENIZERS:  # fetched by scripts/fetch_assets.py, with their pinned source
        folder = assets.tokenizer_path(name)
        assert (folder / "tokenizer.json").is_file() and (folder / "tokenizer_config.json").is_file()
        source = json.loads((folder / ".source.json").read_text())
        assert source["version"] == assets.NPM_TOKENIZERS[name].version
    with pytest.raises(KeyError, match="unknown tokenizer"):
        assets.tokenizer_path("gpt5")
    monkeypatch.setenv(assets.TOKENIZERS_ENV, str(tmp_path))
    with pytest.raises(FileNotFoundError, match="fetch_assets.py"):
        assets.tokenizer_path("llama2")
    (tmp_path / "llama2").mkdir()
    (tmp_path / "llama2" / "tokenizer.json").write_text("{}")  # unpacked by hand: no marker, not trusted
    with pytest.raises(FileNotFoundError):
        assets.tokenizer_path("llama2")
