"""The in-graph walk of structure in free text, with numpy as the framework: the prompt scan
agrees with ``PromptScanner``, and the masks (budget included) agree with the eager matcher
along random paths, on marker tokens and on text markers that tokens split anywhere.

The TF/Flax processors run the same walk (``runtime/in_graph.py``) through their own ops; they
are tested under XLA and ``jax.jit`` in ``tests/tf_flax/test_structure_in_graph.py``.
"""

from __future__ import annotations

import contextlib
import functools

import numpy as np
import pytest

import pse_processors as pse
from pse_processors.runtime.device_tables import in_graph_constraint
from pse_processors.matchers.prompts import ANSWER as CLOSED, INSIDE, START
from pse_processors.runtime.in_graph import GraphTables, _prompt_category, masked
from pse_processors.runtime.structure_tables import structure_tables


class NumpyOps:
    """The in-graph walk's ops in numpy (as in ``runtime/in_graph.py``'s docstring)."""

    constants = staticmethod(contextlib.nullcontext)
    constant = staticmethod(np.asarray)
    int32 = staticmethod(lambda x: np.asarray(x, np.int32))
    where, minimum = staticmethod(np.where), staticmethod(np.minimum)
    gather = staticmethod(lambda table, index: table[index])
    last = staticmethod(lambda found: np.where(found, np.arange(found.shape[1]), -1).max(axis=1))
    take = staticmethod(lambda x, index, axis: np.take(x, index, axis=axis))
    pad = staticmethod(lambda x, n: np.pad(x, ((0, 0), (0, n))))
    initial_states = staticmethod(lambda ids, state: np.full(len(ids), state, np.int32))
    block = staticmethod(lambda x, b, size: x[:, b * size:(b + 1) * size])
    loop = staticmethod(lambda blocks, most, body, state: functools.reduce(lambda s, b: body(b, s), range(int(blocks)), state))
    mask_key = staticmethod(lambda dtype: None)
    masks = staticmethod(lambda allowed, dtype: allowed)
    apply = staticmethod(lambda scores, mask: np.where(mask, scores, -np.inf))


# Single bytes (so any text, and UTF-8 split anywhere), a few multi-byte pieces of the markers,
# multi-byte characters whole and cut, then byte-less tokens: two marker tokens, another special, EOS.
PIECES = [b"<th", b"ink>", b"</", b"think>", b"<think>", b"k>\n\n", b"\xc3\xa9", b"\xe2\x82", b"\xac", b"ab", b" {"]
TOKENS = [bytes([b]) for b in range(256)] + PIECES + [None, None, None, None]
T, END_T, OTHER, EOS = len(TOKENS) - 4, len(TOKENS) - 3, len(TOKENS) - 2, len(TOKENS) - 1
VOCAB = pse.Vocabulary(TOKENS, eos_token_ids=[EOS], special_tokens={"<t>": T, "</t>": END_T, "<other>": OTHER})
ANSWER = {"type": "object", "properties": {"ok": {"type": "boolean"}}, "required": ["ok"], "additionalProperties": False}
MARKERS = {"tokens": ("<t>", "</t>"), "text": ("<think>", "</think>")}


def marker_ids(text: str) -> list[int]:
    return [T] if text == "<t>" else [END_T] if text == "</t>" else list(text.encode())


def random_prompt(rng: np.random.Generator, start: str, end: str) -> list[int]:
    """Text with marker pieces, markers, whitespace, specials that break a match, in random order."""
    parts = [[int(rng.integers(0, 256))], marker_ids(start), marker_ids(end), [OTHER], [10], [32, 13, 9],
             [256 + int(rng.integers(0, len(PIECES)))], marker_ids(start)[:1], marker_ids(end)[:2]]
    return [t for _ in range(int(rng.integers(0, 8))) for t in parts[int(rng.integers(0, len(parts)))]]


def chat_prompts(start: str, end: str) -> dict[str, tuple[list[int], int]]:
    """Qwen3-like chat prompts (``<other>`` standing for ``<|im_end|>``/``<|im_start|>``) and their
    category: a history with a closed block, then a new turn that leaves, opens or closes the block."""

    def turn(role: str, text: bytes) -> list[int]:
        return [OTHER] + list(role.encode() + b"\n" + text) + [OTHER] + [10]

    def block(text: bytes) -> list[int]:
        return marker_ids(start) + list(text) + marker_ids(end) + list(b"\n\n")

    history = turn("user", b"2+2?") + [OTHER] + list(b"assistant\n") + block(b"\nEasy.\n") + list(b"4") + [OTHER, 10]
    history += turn("user", b"And 3+3?")
    assistant = [OTHER] + list(b"assistant\n")
    return {
        "history, new turn": (history + assistant, START),
        "history, block opened": (history + assistant + marker_ids(start) + [10], INSIDE),
        "history, block closed": (history + assistant + block(b"\n\n"), CLOSED),
        "history, block closed, CRLF": (history + assistant + block(b"") + [13, 10, 9, 32], CLOSED),
        "block closed, then text": (assistant + block(b"") + list(b"Sure"), START),
        "text, then a second end": (assistant + block(b"") + list(b"ok ") + marker_ids(end) + [32], CLOSED),
        "tool loop": (history + assistant + block(b"x") + list(b"<tool_call>{}</tool_call>") + [OTHER, 10]
                      + turn("user", b"<tool_response>4</tool_response>") + assistant, START),
    }


@pytest.mark.parametrize("markers", MARKERS)
def test_prompt_scan_agrees_with_prompt_scanner(markers):
    start, end = MARKERS[markers]
    matcher = pse.compile(pse.Reasoning(ANSWER, start=start, end=end), VOCAB, backend="dfa")
    scan = structure_tables(matcher, VOCAB.size + 3).scan
    for name, (prompt, want) in chat_prompts(start, end).items():
        assert (matcher.prompt_scanner.category(prompt), scan.category_of(prompt)) == (want, want), name
    rng = np.random.default_rng(0)
    seen = set()
    for trial in range(1200):
        prompt = random_prompt(rng, start, end)
        if trial % 2:
            prompt.append(VOCAB.size + 1)  # an id past the vocabulary breaks a match too
        want = matcher.prompt_scanner.category(prompt)
        assert scan.category_of(prompt) == want, prompt
        seen.add(want)
    assert seen == {START, INSIDE, CLOSED}


def test_single_token_markers_read_without_a_walk_agree():
    """Qwen3's case: the in-graph category from the markers' last positions and the last token that
    is not whitespace, against PromptScanner (left-padded rows, as generate writes them)."""
    matcher = pse.compile(pse.Reasoning(ANSWER, start="<t>", end="</t>"), VOCAB, backend="dfa")
    width = VOCAB.size + 3
    structure = structure_tables(matcher, width)
    assert structure.scan.marker_tokens == (T, END_T)
    tables = GraphTables(in_graph_constraint("test", pse.Reasoning(ANSWER, start="<t>", end="</t>"), VOCAB,
                                             max_new_tokens=4).tables(width), NumpyOps, structure)
    rng = np.random.default_rng(1)
    chats = [prompt for prompt, _ in chat_prompts("<t>", "</t>").values()]
    rows = chats + [random_prompt(rng, "<t>", "</t>") + [int(rng.choice([10, 32, 65, OTHER, VOCAB.size + 1]))]
                    for _ in range(600)]
    length = max(len(row) for row in rows)
    buffer = np.array([[OTHER] * (length - len(row)) + row + [0] for row in rows], dtype=np.int64)
    ids = np.where(buffer >= width, width, buffer)
    got = _prompt_category(NumpyOps, tables.scan, ids[:, :length], length, np.zeros(len(rows), np.int32))
    want = [matcher.prompt_scanner.category(row) for row in rows]
    np.testing.assert_array_equal(got, want)
    assert set(want) == {START, INSIDE, CLOSED}


@pytest.mark.parametrize("markers", MARKERS)
@pytest.mark.parametrize("budget", [None, 1, 3])
def test_masks_agree_with_the_eager_matcher(markers, budget):
    start, end = MARKERS[markers]
    constraint = pse.Reasoning(pse.Delimited(ANSWER, start="```", end="```"), start=start, end=end, max_tokens=budget)
    core = in_graph_constraint("test", constraint, VOCAB, max_new_tokens=24)
    matcher = core.matcher
    width = VOCAB.size + 3
    tables = GraphTables(core.tables(width), NumpyOps, core.structure_tables(width))
    rng = np.random.default_rng(budget or 0)
    prompts = [[65, 66], [65] + marker_ids(start), [65] + marker_ids(start) + [10] + marker_ids(end), [OTHER] + marker_ids(start)]
    spent = 0
    for trial in range(24):
        prompt = prompts[trial % len(prompts)]
        state = matcher.initial_state_for(prompt)
        buffer = np.zeros((1, len(prompt) + 24), dtype=np.int64)
        buffer[0, : len(prompt)] = prompt
        for step in range(24):
            got = np.isfinite(masked(NumpyOps, tables, buffer, np.zeros((1, width)), len(prompt) + step, len(prompt)))[0]
            want = np.zeros(width, dtype=bool)
            want[: VOCAB.size] = matcher.allowed_mask(state)
            np.testing.assert_array_equal(got, want, err_msg=f"trial {trial}, step {step}")
            allowed = np.flatnonzero(want)
            assert allowed.size, "a dead end"
            # Prefer the multi-byte pieces (so the budget often runs out inside a character).
            pieces = allowed[(allowed >= 0xC0) & (allowed < 256 + len(PIECES))]
            token = int(rng.choice(pieces if pieces.size and rng.random() < 0.6 else allowed))
            buffer[0, len(prompt) + step] = token
            if token == EOS:
                break
            if budget is not None:
                spent += matcher.parts(state)[2] >= budget
            state = matcher.advance(state, token)
    assert budget is None or spent, "the budget never ran out"
