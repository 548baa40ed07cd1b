"""The grammar engine's matcher API, engine choice and error messages (no model needed)."""

from __future__ import annotations

import json

import numpy as np
import pytest

import pse_processors as pse
from pse_processors import Grammar, SchemaError
from pse_processors.runtime.device_tables import in_graph_constraint
from pse_processors.matchers.automaton import DEAD, DONE
from pse_processors.vocabulary.llg_tokenizer import lltokenizer_for

BYTES = pse.Vocabulary([bytes([b]) for b in range(256)] + [None, None], eos_token_ids=[256])
EOS = 256
ANY = {}
TREE = {
    "type": "object",
    "properties": {"children": {"type": "array", "items": {"$ref": "#"}}},
    "required": ["children"],
}


def ids(text: str) -> list:
    return list(text.encode("utf-8"))


def test_lltokenizer_sees_our_bytes_and_never_allows_special_tokens(smol_tokenizer):
    vocab = pse.Vocabulary.from_tokenizer(smol_tokenizer)
    tok = lltokenizer_for(vocab)
    assert tok.vocab_size == vocab.size and set(tok.eos_tokens) == set(vocab.eos_token_ids)
    spelled = [i for i, b in enumerate(vocab.token_bytes) if b is not None]
    for i in spelled[:: len(spelled) // 200]:
        assert tok.decode_bytes([i]) == vocab.token_bytes[i]
    grammar = pse.compile(Grammar("start: /(.|\\n)+/"), vocab)
    allowed = grammar.allowed_mask(grammar.initial_state)
    unspelled = [i for i, b in enumerate(vocab.token_bytes) if b is None and i not in vocab.eos_token_ids]
    assert unspelled and not allowed[unspelled].any()  # <|im_start|> and friends never appear as text
    assert allowed[spelled].sum() > 0.9 * len(spelled)


def test_matcher_api_on_the_grammar_engine():
    grammar = pse.compile(TREE, BYTES, backend="llguidance")
    assert grammar.backend == "llguidance"
    deep = json.dumps({"children": [{"children": [{"children": [{"children": [{"children": []}]}]}]}]})
    assert grammar.accepts(ids(deep) + [EOS])
    assert not grammar.accepts(ids(deep)[:-1] + [EOS])
    assert not grammar.accepts(ids('{"children":[1]}') + [EOS])
    state = grammar.walk(ids(deep))
    assert grammar.is_accepting(state) and grammar.allowed_token_ids(state).tolist() == [EOS]
    assert grammar.advance(state, EOS) == DONE and grammar.step(DONE, 7) == DONE
    assert grammar.walk(ids('{"x')) == DEAD and grammar.allowed_token_ids(DEAD).tolist() == [EOS]
    # The same path gives the same state: masks are cached per state, as on the automaton.
    assert grammar.walk(ids(deep)) == state
    words = grammar.bitmask(grammar.initial_state)
    bits = np.unpackbits(words.view(np.uint8), bitorder="little")[: grammar.vocab_size].astype(bool)
    assert (bits == grammar.allowed_mask(grammar.initial_state)).all()
    assert grammar.allowed_token_ids(grammar.initial_state).tolist() == [ord("{")]


def test_evicted_matchers_are_replayed(monkeypatch):
    from pse_processors.matchers import llguidance as pushdown

    monkeypatch.setattr(pushdown, "_MATCHERS", 2)
    grammar = pse.compile(Grammar('start: "(" start ")" | "x"'), BYTES)
    path = ids("((((((x))))))")
    states = [grammar.walk(path[:n]) for n in range(len(path) + 1)]
    masks = [grammar.allowed_token_ids(s).tolist() for s in states]  # most matchers evicted by now
    assert masks[0] == [ord("("), ord("x")] and masks[6] == [ord("("), ord("x")] and masks[-1] == [EOS]
    assert masks[7] == [ord(")")]


def test_engine_choice():
    flat = {"type": "object", "properties": {"a": {"type": "integer"}}, "required": ["a"]}
    assert pse.compile(flat, BYTES).backend == "dfa"
    assert pse.compile(TREE, BYTES).backend == "llguidance"  # recursive: auto picks the grammar engine
    assert pse.compile(ANY, BYTES).backend == "llguidance"  # any value nests without a limit
    assert pse.compile(TREE, BYTES, backend="dfa").backend == "dfa"
    assert pse.compile(flat, BYTES, backend="llguidance").backend == "llguidance"
    # Over a byte-automaton limit: auto falls back to the grammar engine.
    long = {"type": "string", "maxLength": 3000}
    with pytest.raises(pse.CompileLimitError):
        pse.compile(long, BYTES, backend="dfa", max_regex_length=5000)
    grammar = pse.compile(long, BYTES, max_regex_length=5000)
    assert grammar.backend == "llguidance" and grammar.accepts(ids(json.dumps("a" * 3000)) + [EOS])
    assert not grammar.accepts(ids(json.dumps("a" * 3001)) + [EOS])
    with pytest.raises(ValueError, match="backend must be one of"):
        pse.compile(flat, BYTES, backend="earley")
    with pytest.raises(SchemaError, match="runs on llguidance only"):
        pse.compile(Grammar('start: "a"'), BYTES, backend="dfa")


def test_any_value_at_any_depth_only_on_the_grammar_engine():
    deep = json.dumps([[[[[{"a": [1, {"b": None}]}]]]]])
    assert pse.compile(ANY, BYTES).accepts(ids(deep) + [EOS])
    assert not pse.compile(ANY, BYTES, backend="dfa").accepts(ids(deep) + [EOS])
    extra = {"type": "object", "properties": {"a": {"type": "integer"}}, "additionalProperties": True}
    grammar = pse.compile(extra, BYTES)
    assert grammar.backend == "llguidance"
    assert grammar.accepts(ids(json.dumps({"a": 1, "b": {"c": [[[{"d": []}]]]}})) + [EOS])
    assert not grammar.accepts(ids(json.dumps({"a": "1"})) + [EOS])


def test_in_graph_processors_accept_only_the_byte_automaton():
    with pytest.raises(ValueError, match="backend='dfa' only"):
        in_graph_constraint("TFPSELogitsProcessor", TREE, BYTES, max_new_tokens=8, prompt_length=None,
                            generation_config=None, eos_token_ids=None, max_table_bytes=1 << 30,
                            compile_options={"backend": "llguidance"})
    grammar = pse.compile(TREE, BYTES)
    with pytest.raises(ValueError, match=r"compile it with .*\(backend='dfa'\)"):
        in_graph_constraint("FlaxPSELogitsProcessor", grammar, None, max_new_tokens=8, prompt_length=None,
                            generation_config=None, eos_token_ids=None, max_table_bytes=1 << 30, compile_options={})
    core = in_graph_constraint("TFPSELogitsProcessor", TREE, BYTES, max_new_tokens=8, prompt_length=None,
                               generation_config=None, eos_token_ids=None, max_table_bytes=1 << 30, compile_options={})
    assert core.matcher.backend == "dfa"  # auto is not the default there: recursion unrolled
    with pytest.raises(pse.CompileLimitError, match="in-graph"):
        grammar.dense_automaton


@pytest.mark.parametrize(
    "lark, line, words",
    [
        ('start: "a" b\nb: "b" c\n', 2, "unknown name"),
        ('start: "a" b\n\nb: /[/\n', 3, "regex"),
        ("start: (\n", 1, ""),
    ],
)
def test_grammar_errors_name_the_line(lark, line, words):
    with pytest.raises(SchemaError, match=rf"{words}.*\(at grammar line {line}\)"):
        pse.compile(Grammar(lark), BYTES)


def test_grammar_constraint_needs_text():
    with pytest.raises(SchemaError):
        Grammar("   ")


def test_dummy_prefix_vocabulary_allows_one_leading_space():
    vocab = pse.Vocabulary([bytes([b]) for b in range(256)] + [None], eos_token_ids=[256], dummy_prefix=True)
    grammar = pse.compile(Grammar('start: "(" start ")" | "x"'), vocab)
    assert grammar.accepts(ids(" (x)") + [EOS]) and grammar.accepts(ids("(x)") + [EOS])
    assert not grammar.accepts(ids("  (x)") + [EOS])
    tree = pse.compile(TREE, vocab)
    assert tree.backend == "llguidance" and tree.accepts(ids(' {"children":[]}') + [EOS])


def test_pydantic_result_types_share_one_grammar():
    pydantic = pytest.importorskip("pydantic")

    class Node(pydantic.BaseModel):
        name: str
        children: list["Node"] = []

    grammar = pse.compile(Node, BYTES)
    assert grammar.backend == "llguidance"
    from pse_processors.runtime.results import parse_output

    text = json.dumps({"name": "a", "children": [{"name": "b", "children": [{"name": "c", "children": []}]}]})
    value = parse_output(grammar, ids(text) + [EOS])
    assert isinstance(value, Node) and value.children[0].children[0].name == "c"


def test_packed_masks_match_the_bool_masks_along_random_paths():
    """bitmask() comes straight from llguidance's packed words (EOS set in place); allowed_mask()
    is unpacked from them on demand: both must say the same, EOS iff accepting, no bit past
    the vocabulary (258 ids: the last word is partial)."""
    grammar = pse.compile(TREE, BYTES, backend="llguidance")
    size = grammar.vocab_size
    rng = np.random.default_rng(0)
    seen_accepting = False
    for _ in range(20):
        state = grammar.initial_state
        for _ in range(40):
            words = grammar.bitmask(state)
            assert words.dtype == np.int32 and words.shape == ((size + 31) // 32,) and not words.flags.writeable
            bits = np.unpackbits(words.view(np.uint8), bitorder="little")
            assert not bits[size:].any()
            mask = grammar.allowed_mask(state)
            assert (bits[:size].astype(bool) == mask).all()
            assert bool(mask[EOS]) == grammar.is_accepting(state)
            seen_accepting |= grammar.is_accepting(state)
            token = int(rng.choice(np.flatnonzero(mask)))
            if token == EOS:
                break
            state = grammar.advance(state, token)
    assert seen_accepting


def test_grammar_of_many_optional_properties_is_linear():
    """Each tail of an object's optional members is one rule: the grammar grows linearly
    with the properties (it was quadratic: every tail copied into every rule before it)."""
    from pse_processors.json_schema import json_schema_to_grammar

    def size(n: int) -> int:
        schema = {"type": "object", "properties": {f"p{i}": {"type": "integer"} for i in range(n)}}
        return len(json_schema_to_grammar(schema).lark)

    small, large = size(40), size(160)
    assert large < 5 * small, (small, large)  # quadratic growth would be about 16x
    grammar = pse.compile({"type": "object", "properties": {f"p{i}": {"type": "integer"} for i in range(160)}},
                          BYTES, backend="llguidance")
    assert grammar.accepts(ids('{"p3":1,"p150":2}') + [EOS]) and not grammar.accepts(ids('{"p150":2,"p3":1}') + [EOS])
