"""Per-row state keyed by token prefix: beam reordering, rollback, pruning, new prompts."""

from __future__ import annotations

import numpy as np

import pse_processors as pse
from pse_processors.matchers.automaton import DONE
from pse_processors.runtime.prefix_states import PrefixStates

# tokens: 0 "[" 1 "]" 2 "1" 3 "," 4 "7" (prompt filler) 5 EOS
VOCAB = pse.Vocabulary([b"[", b"]", b"1", b",", b"7", None], eos_token_ids=[5])
SCHEMA = {"type": "array", "items": {"type": "integer"}}


def grammar():
    return pse.compile(SCHEMA, VOCAB)


def rows(*seqs):
    return np.array(seqs, dtype=np.int64)


def test_states_follow_prefixes_not_row_indices():
    g = grammar()
    tracker = PrefixStates(g)
    prompt = [4, 4]
    assert tracker.states(rows(prompt, prompt)) == [g.initial_state] * 2
    tracker.states(rows(prompt + [0], prompt + [0]))
    a, b = prompt + [0, 2], prompt + [0, 1]
    first = tracker.states(rows(a, b))
    # Beam search swaps the rows: each row's state moves with its content.
    swapped = tracker.states(rows(b + [5], a + [3]))
    assert swapped[0] == DONE and swapped[1] == g.walk([0, 2, 3])
    assert first == [g.walk([0, 2]), g.walk([0, 1])]


def test_rollback_and_pruning():
    g = grammar()
    tracker = PrefixStates(g, max_bytes=8 * 40)  # room for a few rows only
    seq = [4]
    tracker.states(rows(seq))
    for token in [0, 2, 3, 2, 3, 2, 3, 2]:
        seq.append(token)
        assert tracker.states(rows(seq)) == [g.walk(seq[1:])]
    assert tracker._bytes <= 8 * 40
    # Assisted decoding rolls back to a recent, shorter prefix.
    assert tracker.states(rows(seq[:-2] + [1])) == [g.walk(seq[1:-2] + [1])]
    assert g.is_accepting(g.walk(seq[1:-2] + [1]))


def test_rejected_token_means_new_prompt_and_pad_after_eos_stays_done():
    g = grammar()
    tracker = PrefixStates(g)
    tracker.states(rows([4]))
    assert tracker.states(rows([4, 1])) == [g.initial_state]  # "]" cannot follow: a new prompt
    tracker.states(rows([4, 0]))
    tracker.states(rows([4, 0, 1]))
    assert tracker.states(rows([4, 0, 1, 5])) == [DONE]
    assert tracker.states(rows([4, 0, 1, 5, 4])) == [DONE]


def test_new_prompt_starts_fresh_and_reset():
    g = grammar()
    tracker = PrefixStates(g)
    tracker.states(rows([4, 4]))
    tracker.states(rows([4, 4, 0]))
    # New prompts, also ones that start with an earlier prompt: new generations.
    assert tracker.states(rows([4, 4, 4, 4, 4])) == [g.initial_state]
    assert tracker.states(rows([4, 4, 0, 2, 4])) == [g.initial_state]
    # The ambiguous case: an old prompt plus one generated token looks like a continuation...
    assert tracker.states(rows([4, 4, 0])) == [g.walk([0])]
    tracker.reset()
    # ...until reset() forgets it.
    assert tracker.states(rows([4, 4, 0])) == [g.initial_state]


def test_plain_decoding_keys_its_rows_only_when_a_lookup_needs_them():
    """The fast path keeps no per-row keys; the first call that needs a lookup (here a beam swap back
    to rows three steps old) finds them, and the memory cap bounds what is written then."""
    g = grammar()
    tracker = PrefixStates(g, max_bytes=8 * 200)
    prompt = [4] * 10
    a, b = prompt + [0, 2, 3, 2, 3, 2], prompt + [0, 2, 2, 2, 3, 2]  # "[1,1,1" and "[111,1"
    tracker.states(rows(prompt, prompt))
    for n in range(len(prompt) + 1, len(a) + 1):
        assert tracker.states(rows(a[:n], b[:n])) == [g.walk(a[len(prompt):n]), g.walk(b[len(prompt):n])]
    assert len(tracker._states) == 1 and tracker._pending  # only the prompt is keyed (both rows share it)
    swapped = tracker.states(rows(b[:-3] + [1], a[:-3] + [2]))  # parents from three calls ago, other rows
    assert swapped == [g.walk(b[len(prompt):-3] + [1]), g.walk(a[len(prompt):-3] + [2])]
    assert swapped[0] != swapped[1] and min(swapped) >= 0
    assert tracker._bytes <= 8 * 200 and not tracker._pending
