"""Reasoning, Delimited and Tools without a model: named errors, the thinking budget's masks,
prompt detection on Qwen3's chat template, both back ends' agreement along random walks on the
Qwen3 and Llama-3.1 tokenizers, parse (text and ids, Pydantic tools), free-text masks cached
once, pickling."""

from __future__ import annotations

import pickle

import numpy as np
import pytest

import pse_processors as pse
from pse_processors.matchers.prompts import ANSWER, INSIDE, START
from pse_processors.runtime.results import parse_output
from tests.freetext import conventions as cv

BYTES = pse.Vocabulary([bytes([b]) for b in range(256)] + [None], eos_token_ids=[256])
SPAN_SCHEMA = {"type": "integer", "minimum": 0, "maximum": 99}
CALL = '<tool_call>\n{"name": "add", "arguments": {"a": 1, "b": 2}}\n</tool_call>'


def _tokenizer(name: str):
    transformers = pytest.importorskip("transformers")
    from pse_processors.assets import tokenizer_path

    try:
        tokenizer = transformers.AutoTokenizer.from_pretrained(str(tokenizer_path(name)))
    except FileNotFoundError as exc:  # fetched by scripts/fetch_assets.py
        pytest.skip(str(exc))
    return tokenizer, pse.Vocabulary.from_tokenizer(tokenizer)


@pytest.fixture(scope="module")
def qwen3():
    return _tokenizer("qwen3")


@pytest.fixture(scope="module")
def llama3():
    return _tokenizer("llama3_1")


# --- named errors -------------------------------------------------------------------------------


@pytest.mark.parametrize("budget", [0, -3, True, 2.5, "8"])
def test_a_thinking_budget_below_one_is_refused(budget) -> None:
    with pytest.raises(pse.SchemaError, match="max_tokens"):
        pse.Reasoning(cv.ANSWER, max_tokens=budget)


def test_markers_the_tokenizer_cannot_produce_are_named() -> None:
    vocab = pse.Vocabulary([b"a", b"b", b"<", b">", None], eos_token_ids=[4])
    with pytest.raises(pse.VocabularyError, match=r"end marker '</think>' cannot be produced.*'</think>'"):
        pse.compile(pse.Reasoning(pse.Choice(["a"]), start="<", end="</think>"), vocab)
    with_eos = pse.Vocabulary([b"a", None], eos_token_ids=[1], special_tokens={"<|end|>": 1})
    with pytest.raises(pse.VocabularyError, match="EOS token"):
        pse.compile(pse.Delimited(pse.Choice(["a"]), start="a", end="<|end|>"), with_eos)
    with pytest.raises(pse.SchemaError, match="non-empty"):
        pse.Delimited(cv.SPAN, start="")


def test_tool_choice_naming_an_unknown_tool() -> None:
    with pytest.raises(pse.SchemaError, match=r"tool_choice 'multiply' .*'get_weather', 'add'"):
        pse.Tools(cv.TOOLS, tool_choice="multiply")
    assert pse.Tools(cv.TOOLS, tool_choice={"type": "function", "function": {"name": "add"}}).tool_choice == "add"


def test_a_tool_schema_we_refuse_points_under_the_tool() -> None:
    tools = [{"name": "search", "parameters": {"type": "object", "properties": {"q": {"type": "string", "pattern": "(?=a)b"}}}}]
    with pytest.raises(pse.UnsupportedSchemaError) as info:
        pse.compile(pse.Tools(tools, format="hermes"), BYTES, options=pse.CompileOptions(backend="dfa"))
    assert info.value.pointer == "#/tools/search/parameters/properties/q/pattern"


def test_the_format_must_be_given_when_the_template_does_not_tell(qwen3, llama3) -> None:
    with pytest.raises(pse.SchemaError, match="pass format= one of hermes, llama3_json, mistral"):
        pse.compile(pse.Tools(cv.TOOLS), BYTES)
    assert pse.Tools(cv.TOOLS).resolved_format(qwen3[1]) == "hermes"
    with pytest.raises(pse.SchemaError, match="names no known tool-call syntax"):  # the npm package's template has no tools
        pse.Tools(cv.TOOLS).resolved_format(llama3[1])
    llama31 = pse.Vocabulary(BYTES.token_bytes, BYTES.eos_token_ids, chat_template="{{- 'Environment: ipython\\n' }}")
    assert pse.Tools(cv.TOOLS).resolved_format(llama31) == "llama3_json"


def test_other_refusals() -> None:
    with pytest.raises(pse.SchemaError, match="min_count"):
        pse.Delimited(cv.SPAN, min_count=-1)
    with pytest.raises(pse.SchemaError, match="max_count"):
        pse.Delimited(cv.SPAN, min_count=2, max_count=1)
    with pytest.raises(pse.SchemaError, match="another Reasoning"):
        pse.Reasoning(pse.Reasoning(cv.ANSWER))
    with pytest.raises(pse.SchemaError, match="does not nest"):
        pse.Delimited(pse.Tools(cv.TOOLS))
    with pytest.raises(pse.SchemaError, match="runs on llguidance only"):
        pse.compile(pse.Delimited(pse.Grammar('start: "a"')), BYTES, options=pse.CompileOptions(backend="dfa"))
    with pytest.raises(pse.SchemaError, match="format must be one of"):
        pse.Tools(cv.TOOLS, format="chatml")


# --- the thinking budget ------------------------------------------------------------------------


@pytest.mark.parametrize("backend", ["dfa", "llguidance"])
def test_the_budget_leaves_only_the_way_to_the_end_marker(qwen3, llama3, backend) -> None:
    options = pse.CompileOptions(backend=backend)
    tokenizer, vocab = qwen3
    matcher = pse.compile(pse.Reasoning(cv.ANSWER, max_tokens=3), vocab, options=options)
    words = tokenizer.encode(" one two three four", add_special_tokens=False)
    think, end = vocab.special_tokens["<think>"], vocab.special_tokens["</think>"]
    assert matcher.allowed_mask(matcher.walk([think] + words[:2])).sum() > 100_000  # within the budget: any text
    spent = matcher.walk([think] + words[:3])
    assert matcher.allowed_token_ids(spent).tolist() == [end]  # a token marker: that token only
    assert matcher.step(spent, words[3]) is None

    tokenizer, vocab = llama3  # a text marker: tokens that continue "</think>" from where it stands
    matcher = pse.compile(pse.Reasoning(cv.ANSWER, max_tokens=3), vocab, options=options)
    think = tokenizer.encode("<think>", add_special_tokens=False)
    allowed = matcher.allowed_token_ids(matcher.walk(think + tokenizer.encode(" a b c", add_special_tokens=False)))
    texts = {vocab.token_bytes[t] for t in allowed}
    assert b"</" in texts and b"<" in texts and b"a" not in texts
    assert all(b"</think>".startswith(t) or t.startswith(b"</think>") for t in texts)
    partial = matcher.walk(think + tokenizer.encode(" a b</", add_special_tokens=False))
    assert {vocab.token_bytes[t] for t in matcher.allowed_token_ids(partial)} >= {b"think", b"th"}
    assert all(b"think>".startswith(vocab.token_bytes[t]) or vocab.token_bytes[t].startswith(b"think>")
               for t in matcher.allowed_token_ids(partial))


# --- prompt detection -----------------------------------------------------------------------------


@pytest.mark.parametrize("backend", ["dfa", "llguidance"])
def test_prompt_detection_on_qwen3s_chat_template(qwen3, backend) -> None:
    tokenizer, vocab = qwen3
    messages = [{"role": "user", "content": "Hi"}]
    on, off = (tokenizer.encode(tokenizer.apply_chat_template(messages, add_generation_prompt=True, tokenize=False,
                                                              enable_thinking=thinking), add_special_tokens=False)
               for thinking in (True, False))
    opened = on + tokenizer.encode("<think>\n", add_special_tokens=False)
    matcher = pse.compile(pse.Reasoning(cv.ANSWER), vocab, options=pse.CompileOptions(backend=backend))
    think, end = vocab.special_tokens["<think>"], vocab.special_tokens["</think>"]
    assert matcher.allowed_token_ids(matcher.initial_state_for(on)).tolist() == [think]
    inside = matcher.allowed_mask(matcher.initial_state_for(opened))
    assert inside[end] and not inside[think] and inside.sum() > 100_000
    answer = matcher.allowed_token_ids(matcher.initial_state_for(off))
    assert {vocab.token_bytes[t] for t in answer} >= {b"{", b"\n"} and end not in answer
    body = tokenizer.encode('{"x": 4}', add_special_tokens=False)
    assert parse_output(matcher, body, off).answer == {"x": 4}
    assert parse_output(matcher, tokenizer.encode("Hmm.", add_special_tokens=False) + [end] + body, opened).reasoning == "Hmm."
    with pytest.raises(pse.InvalidOutputError):
        parse_output(matcher, body, on)  # the template left the block to the model: it must open it


def _chat_categories(tokenizer, matcher, messages: list, **template) -> list[int]:
    """The prompt categories after ``messages``: as the template ends the prompt, with ``<think>\\n``
    added (the block opened), with ``<think>\\n\\n</think>\\n\\n`` added (the block closed)."""
    text = tokenizer.apply_chat_template(messages, add_generation_prompt=True, tokenize=False, **template)
    endings = ("", "<think>\n", "<think>\n\n</think>\n\n")
    return [matcher.prompt_scanner.category(tokenizer.encode(text + ending, add_special_tokens=False)) for ending in endings]


def test_prompt_detection_after_earlier_turns_with_closed_blocks(qwen3, llama3) -> None:
    # Qwen3's template keeps the closed block of a tool-calling turn; a new assistant turn follows it.
    tokenizer, vocab = qwen3
    matcher = pse.compile(pse.Reasoning(cv.ANSWER), vocab, options=pse.CompileOptions(backend="dfa"))
    call = {"type": "function", "function": {"name": "get_weather", "arguments": {"city": "Oslo"}}}
    loop = [{"role": "user", "content": "Weather in Oslo?"},
            {"role": "assistant", "reasoning_content": "Call the tool.", "content": "", "tool_calls": [call]},
            {"role": "tool", "content": "Sunny"}]
    assert "</think>\n\n<tool_call>" in tokenizer.apply_chat_template(loop, add_generation_prompt=True, tokenize=False)
    assert _chat_categories(tokenizer, matcher, loop) == [START, INSIDE, ANSWER]
    assert _chat_categories(tokenizer, matcher, loop, enable_thinking=False)[0] == ANSWER  # the template closes it
    prompt = tokenizer.encode(tokenizer.apply_chat_template(loop, add_generation_prompt=True, tokenize=False),
                              add_special_tokens=False)
    think = vocab.special_tokens["<think>"]
    assert matcher.allowed_token_ids(matcher.initial_state_for(prompt)).tolist() == [think]
    body = tokenizer.encode('<think>\nSunny.\n</think>\n\n{"x": 1}', add_special_tokens=False)
    assert parse_output(matcher, body, prompt).reasoning.strip() == "Sunny."
    # Text markers: Llama 3.1's template writes an earlier answer's content as it is.
    tokenizer, vocab = llama3
    matcher = pse.compile(pse.Reasoning(cv.ANSWER, start="<think>", end="</think>"), vocab,
                          options=pse.CompileOptions(backend="dfa"))
    chat = [{"role": "user", "content": "2+2?"}, {"role": "assistant", "content": "<think>\nEasy.\n</think>\n\n4"},
            {"role": "user", "content": "3+3?"}]
    assert _chat_categories(tokenizer, matcher, chat) == [START, INSIDE, ANSWER]
    assert _chat_categories(tokenizer, matcher, chat[:1]) == [START, INSIDE, ANSWER]


# --- both back ends -------------------------------------------------------------------------------


def _walks(dfa, llg, vocab, seed: int, count: int, length: int) -> int:
    """Random walks through the automaton (markers and EOS made likely); every mask must agree."""
    rng = np.random.default_rng(seed)
    special = np.zeros(vocab.size, dtype=bool)
    special[[t for t in vocab.special_tokens.values()] + sorted(vocab.eos_token_ids)] = True
    hot = np.array([b in (b"<", b"</", b"```", b"{", b"\n", b"[", b"]", b'"', b"}") for b in vocab.token_bytes])
    finished = 0
    for _ in range(count):
        a, b, path = dfa.initial_state, llg.initial_state, []
        for _ in range(length):
            mask = dfa.allowed_mask(a)
            assert np.array_equal(mask, llg.allowed_mask(b)), vocab.decode(path)
            allowed, markers, likely = np.flatnonzero(mask), np.flatnonzero(mask & special), np.flatnonzero(mask & hot)
            pick = rng.random()
            token = int(rng.choice(markers if markers.size and pick < 0.3 else likely if likely.size and pick < 0.6 else allowed))
            if token in vocab.eos_token_ids:
                finished += 1
                assert isinstance(parse_output(dfa, path), pse.StructuredOutput)
                break
            path.append(token)
            a, b = dfa.step(a, token), llg.step(b, token)
    return finished


@pytest.mark.parametrize("which", ["qwen3", "llama3"])
def test_back_ends_agree_along_random_walks(which, request) -> None:
    tokenizer, vocab = request.getfixturevalue(which)
    if which == "qwen3":  # markers as special tokens
        cases = [cv.reasoning_case(budget=4), cv.nested_tools_case(), cv.tools_case("hermes"), cv.delimited_case()]
    else:  # markers as text
        cases = [cv.reasoning_case(budget=4), cv.delimited_case(), cv.tools_case("llama3_json"), cv.tools_case("mistral", "required")]
    finished = 0
    for seed, case in enumerate(cases):
        dfa = pse.compile(case.constraint, vocab, options=pse.CompileOptions(backend="dfa"))
        llg = pse.compile(case.constraint, vocab, options=pse.CompileOptions(backend="llguidance"))
        assert (dfa.backend, llg.backend) == ("dfa", "llguidance")
        finished += _walks(dfa, llg, vocab, seed, count=3, length=30)
    assert finished >= 4


# --- parse ---------------------------------------------------------------------------------------


ADD_TOOL = [{"name": "add", "parameters": {"type": "object", "properties": {"a": {"type": "integer"}}, "required": ["a"]}}]


@pytest.mark.parametrize("constraint, text, expected", [
    (pse.Delimited(SPAN_SCHEMA, min_count=1), "No number today.",
     r"it has no span, but Delimited\(min_count=1\) requires 1 \(a span is written between '```json\\n' and '\\n```'\)"),
    (pse.Delimited(SPAN_SCHEMA, start="<n>", end="</n>", min_count=2), "Only <n>4</n>.",
     r"it has 1 span, but Delimited\(min_count=2\) requires 2 \(a span is written between '<n>' and '</n>'\)"),
    (pse.Tools(ADD_TOOL, tool_choice="required", format="hermes"), "I will not call.",
     r"it has no tool call, but Tools\(tool_choice='required'\) requires one \(a call is written as '<tool_call>\\n' \.\.\. '\\n</tool_call>'\)"),
    (pse.Tools(ADD_TOOL, tool_choice="add", format="mistral"), "No.", r"it has no tool call, but Tools\(tool_choice='add'\) requires one .*'\[TOOL_CALLS\]'"),
    (pse.Tools(ADD_TOOL, tool_choice="required", format="llama3_json"), "", r"it has no tool call, .*'<\|python_tag\|>'"),
    (pse.Reasoning(SPAN_SCHEMA), "<think>Let me see",
     r"it has no end marker '</think>', so the reasoning block was never closed"),
    (pse.Reasoning(pse.Delimited(SPAN_SCHEMA, min_count=1)), "<think>Hm.</think> None.", r"it has no span, but Delimited\(min_count=1\)"),
])
def test_incomplete_outputs_name_what_they_lack(constraint, text, expected) -> None:
    matcher = pse.compile(constraint, BYTES)
    with pytest.raises(pse.InvalidOutputError, match="the output is incomplete: " + expected) as info:
        parse_output(matcher, text)
    assert "max_new_tokens" not in str(info.value) or "inside the reasoning" in str(info.value)


def test_incomplete_outputs_blame_the_cut_only_when_cut(qwen3) -> None:
    matcher = pse.compile(pse.Delimited(SPAN_SCHEMA, min_count=1), BYTES)
    with pytest.raises(pse.InvalidOutputError, match=r"incomplete: was generation cut off by max_new_tokens\?"):
        parse_output(matcher, "A span: ```json\n4")  # cut inside the span
    # Text read without its prompt: each start it may have is told.
    matcher = pse.compile(pse.Reasoning(pse.Delimited(SPAN_SCHEMA, min_count=1)), BYTES)
    with pytest.raises(pse.InvalidOutputError, match="if the prompt opened the block, it has no end marker .*; or, "
                                                     "if the prompt closed the block, it has no span"):
        parse_output(matcher, "None.")
    # Token ids with the prompt (Qwen3: <think>, </think>, <tool_call> are special tokens).
    tokenizer, vocab = qwen3
    matcher = pse.compile(pse.Reasoning(pse.Tools(ADD_TOOL, tool_choice="required")), vocab)
    closed = tokenizer.encode("<|im_start|>assistant\n<think>\n\n</think>\n\n", add_special_tokens=False)
    body = tokenizer.encode("No call.", add_special_tokens=False)
    with pytest.raises(pse.InvalidOutputError, match=r"^the output is incomplete: it has no tool call, .*'<tool_call>\\n'"):
        parse_output(matcher, body, closed)
    with pytest.raises(pse.InvalidOutputError, match=r"^the output is incomplete: it has no end marker '</think>'"):
        parse_output(matcher, tokenizer.encode("Hm", add_special_tokens=False), closed[:-2])  # the prompt opened it


def test_parse_text_and_ids_with_pydantic_and_function_tools(qwen3) -> None:
    pydantic = pytest.importorskip("pydantic")

    class Weather(pydantic.BaseModel):
        city: str

    def add(a: int, b: int = 1) -> int:
        """Add two numbers.

        Longer text."""
        return a + b

    tokenizer, vocab = qwen3
    tools = pse.Tools([Weather, add])  # the format from Qwen3's chat template: hermes
    matcher = pse.compile(tools, vocab)
    text = 'Sure.<tool_call>\n{"name": "Weather", "arguments": {"city": "Oslo"}}\n</tool_call> and ' + CALL
    by_text = parse_output(matcher, text)
    by_ids = parse_output(matcher, tokenizer.encode(text, add_special_tokens=False))
    assert by_text == by_ids
    assert by_text.tool_calls[0].arguments == Weather(city="Oslo") and by_text.tool_calls[1].to_dict() == {
        "name": "add", "arguments": {"a": 1, "b": 2}}
    assert by_text.text == "Sure. and " and [kind for kind, _ in by_text.segments] == ["text", "call", "text", "call"]
    assert tools.tools[1].description == "Add two numbers." and tools.tools[1].parameters["required"] == ["a"]
    with pytest.raises(pse.InvalidOutputError, match="incomplete"):
        parse_output(matcher, text[: text.rindex('"b"')])
    with pytest.raises(pse.InvalidOutputError, match="does not satisfy"):
        parse_output(matcher, text.replace('"Oslo"', "3"))


def test_to_dict_is_plain_json_with_pydantic_values_dumped() -> None:
    pydantic = pytest.importorskip("pydantic")
    import json

    import jsonschema

    class Point(pydantic.BaseModel):
        x: int
        y: int

    tools = pse.Tools([Point, {"name": "add", "parameters": cv.ADD}], format="hermes")
    matcher = pse.compile(pse.Reasoning(tools), BYTES)
    text = ('<think>Two calls.</think>Here.<tool_call>\n{"name": "Point", "arguments": {"x": 1, "y": 2}}\n</tool_call>'
            '<tool_call>\n{"name": "add", "arguments": {"a": 3, "b": 4}}\n</tool_call>')
    result = parse_output(matcher, text)
    assert isinstance(result.tool_calls[0].arguments, Point)  # the value itself keeps the instance
    plain = result.to_dict()
    assert json.loads(json.dumps(plain)) == plain == {
        "reasoning": "Two calls.", "text": "Here.", "spans": [], "answer": None,
        "tool_calls": [{"name": "Point", "arguments": {"x": 1, "y": 2}}, {"name": "add", "arguments": {"a": 3, "b": 4}}],
        "segments": [{"text": "Here."}, {"call": {"name": "Point", "arguments": {"x": 1, "y": 2}}},
                     {"call": {"name": "add", "arguments": {"a": 3, "b": 4}}}],
    }
    spans = parse_output(pse.compile(pse.Delimited(Point), BYTES), 'A ```json\n{"x": 5, "y": 6}\n``` B').to_dict()
    assert spans["spans"] == [{"x": 5, "y": 6}] and spans["segments"] == [{"text": "A "}, {"span": {"x": 5, "y": 6}}, {"text": " B"}]
    answer = parse_output(pse.compile(pse.Reasoning(Point), BYTES), '<think>ok</think>{"x": 7, "y": 8}').to_dict()
    jsonschema.validate(answer["answer"], Point.model_json_schema())
    assert answer["answer"] == {"x": 7, "y": 8} and answer["reasoning"] == "ok"
    # The CLI and Ray write the same dict (runners/values.py).
    from pse_processors.runners.values import json_value

    assert json_value(result) == plain and json_value(result.tool_calls[1]) == plain["tool_calls"][1]


def test_free_text_masks_are_cached_once(qwen3) -> None:
    # Free-text steps cost a step and a cached mask: walking ordinary text does not compute new masks.
    tokenizer, vocab = qwen3
    matcher = pse.compile(pse.Tools(cv.TOOLS, format="hermes"), vocab)
    ids = tokenizer.encode("Here is some ordinary prose, with words and numbers 12 34, before any call. " * 4,
                           add_special_tokens=False)
    state = matcher.initial_state
    for token in ids[:10]:
        matcher.mask_id(state)
        state = matcher.step(state, token)
    seen = matcher.num_masks
    for token in ids[10:]:
        matcher.mask_id(state)
        state = matcher.step(state, token)
    assert matcher.num_masks == seen


def test_structured_matchers_pickle_as_their_recipe() -> None:
    for constraint in (pse.Reasoning(pse.Choice(["a"]), start="<t>", end="</t>", max_tokens=3),
                       pse.Tools(cv.TOOLS, format="mistral"), pse.Delimited(cv.SPAN)):
        matcher = pse.compile(constraint, BYTES)
        again = pickle.loads(pickle.dumps(matcher))
        assert type(again) is type(matcher) and again.spec.key == matcher.spec.key
