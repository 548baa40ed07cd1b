"""The batch state behind the vLLM processor, driven the way vLLM drives it (no vLLM needed):
rows added, removed and moved as a ``BatchUpdate`` says, live output lists, cached device masks."""

from __future__ import annotations

import enum
import re
from types import SimpleNamespace

import numpy as np
import pytest

torch = pytest.importorskip("torch")

import pse_processors as pse  # noqa: E402
from pse_processors.matchers import DEAD  # noqa: E402
from pse_processors.vllm.compiling import MatcherCache  # noqa: E402
from pse_processors.vllm.masks import DeviceMasks  # noqa: E402
from pse_processors.vllm.requests import request_from_extra_args  # noqa: E402
from pse_processors.vllm.rows import RowStates  # noqa: E402
from pse_processors.vllm.runner_v2 import sync_outputs  # noqa: E402

TOKENS = [b"a", b"b", b"0", b"1", b"x", None]  # 5: EOS
EOS = 5
VOCAB = pse.Vocabulary(TOKENS, eos_token_ids=[EOS])
WIDTH = 8  # logits wider than the tokenizer, as models pad them


class Move(enum.Enum):  # vLLM's MoveDirectionality, by name
    UNIDIRECTIONAL = 1
    SWAP = 2


def request(**spec):
    return request_from_extra_args({"pse": spec})


def of(params):
    """What the processor reads from SamplingParams: (request, stop ids, error)."""
    return params, {EOS}, None


def allowed(matcher, state) -> list[int]:
    return np.flatnonzero(matcher.allowed_mask(state, WIDTH)).tolist()


@pytest.fixture()
def rows():
    cache = MatcherCache(lambda: VOCAB)
    yield RowStates(cache)
    cache.close()


def snapshot(rows: RowStates) -> dict:
    return {index: (request_state.request.kind, allowed(matcher, state))
            for index, matcher, state, request_state in rows.current()}


def test_removed_added_moved_in_vllms_order(rows) -> None:
    letters, digits, choice = request(regex="ab"), request(regex="[01]+"), request(choice=["x"])
    a_ids, d_ids = [], []
    rows.update([], [(0, letters, None, a_ids), (1, None, None, []), (2, digits, None, d_ids)], [], of)
    assert snapshot(rows) == {0: ("regex", [0]), 2: ("regex", [2, 3])}
    a_ids.append(0)
    d_ids.append(3)
    # Row 1 (unconstrained) finishes and vLLM condenses the batch: the last row moves into it.
    rows.update([1], [], [(2, 1, Move.UNIDIRECTIONAL)], of)
    assert snapshot(rows) == {0: ("regex", [1]), 1: ("regex", [2, 3, EOS])}
    # Row 0 finishes; a new request takes its place; then the two rows swap.
    rows.update([0], [(0, choice, None, [])], [], of)
    assert snapshot(rows) == {0: ("choice", [4]), 1: ("regex", [2, 3, EOS])}
    rows.update([], [], [(0, 1, Move.SWAP)], of)
    assert snapshot(rows) == {0: ("regex", [2, 3, EOS]), 1: ("choice", [4])}
    # A request added at 2 and moved onto 0 in the same update replaces what 0 held.
    rows.update([], [(2, letters, None, [])], [(2, 0, Move.UNIDIRECTIONAL)], of)
    assert snapshot(rows) == {0: ("regex", [0]), 1: ("choice", [4])}
    # An unconstrained request replacing a constrained one leaves no state behind.
    rows.update([1], [(1, None, None, [])], [], of)
    assert snapshot(rows) == {0: ("regex", [0])}
    # A finished request that nothing replaces (the batch shrinks) is forgotten.
    rows.update([0], [], [], of)
    assert snapshot(rows) == {}


def test_states_follow_the_live_list_and_rewalk_when_it_changes(rows) -> None:
    ids: list = []
    rows.add(0, request(regex="[01]{3}"), ids, {EOS})
    matcher = rows.get(0).future.result()
    for token in (2, 3):
        ids.append(token)
    (_, _, state, row), = rows.current()
    assert row.consumed == 2 and allowed(matcher, state) == [2, 3]
    ids.append(2)
    ids.append(EOS)
    (_, _, state, _), = rows.current()
    assert allowed(matcher, state) == [EOS]  # DONE: only EOS
    del ids[1:]  # vLLM dropped tokens (KV-load failure): walked again from the start
    (_, _, state, row), = rows.current()
    assert row.consumed == 1 and allowed(matcher, state) == [2, 3]
    ids[0] = 4  # a different id where one was consumed: walked again, rejected
    (_, _, state, _), = rows.current()
    assert state == DEAD and allowed(matcher, state) == [EOS]


def test_a_constraint_starts_where_the_prompt_left_it(rows) -> None:
    # Matcher.initial_state_for(prompt_ids): e.g. a reasoning block the chat template opened.
    matcher = pse.compile(pse.Regex("[ab]x"), VOCAB)
    after_a = matcher.step(matcher.initial_state, 0)
    matcher.prompt_scanner = lambda prompt: after_a if list(prompt)[-1:] == [0] else matcher.initial_state
    try:
        rows.update([], [(0, request(regex="[ab]x"), [9, 0], []), (1, request(regex="[ab]x"), [9], [])], [], of)
        assert snapshot(rows) == {0: ("regex", [4]), 1: ("regex", [0, 1])}
    finally:
        matcher.prompt_scanner = None


def test_a_placeholder_left_in_the_list_stops_the_request_instead_of_masking_from_a_stale_state(rows, caplog) -> None:
    # vLLM's async scheduling appends -1 and replaces it before apply only for explicitly
    # registered processors: a -1 at apply time means this step's state is unknown.
    ids = [2]
    rows.add(0, request(regex="[01]{3}"), ids, {EOS})
    (_, matcher, _, _), = rows.current()
    assert matcher is not None
    ids.append(-1)
    (_, matcher, state, row), = rows.current()
    assert matcher is None and state == DEAD and "--logits-processors" in row.error
    assert "did not hand this request's sampled ids" in caplog.text
    ids[-1] = 3  # it stays stopped: the output already went on without the constraint
    (_, matcher, _, _), = rows.current()
    assert matcher is None


def test_a_constraint_the_model_cannot_spell_stops_its_request_without_raising(rows, caplog) -> None:
    rows.add(0, request(regex="z+"), [], {EOS, 7})  # no token spells "z"
    (_, matcher, state, row), = rows.current()
    assert matcher is None and state == DEAD
    assert "UnsatisfiableConstraintError" in row.error and "could not be compiled" in caplog.text
    masks = DeviceMasks(torch.device("cpu"))
    logits = torch.zeros(1, WIDTH)
    masks.apply(logits, [0], [masks.stop_slot(row.stop_ids, WIDTH)])
    assert torch.isfinite(logits[0]).nonzero().flatten().tolist() == [EOS, 7]


def test_one_compile_per_distinct_constraint(rows) -> None:
    for index in range(4):
        rows.add(index, request(regex="[ab]+"), [], {EOS})
    futures = {id(rows.get(index).future) for index in range(4)}
    assert len(futures) == 1


def test_masks_are_applied_to_constrained_rows_only_in_one_operation() -> None:
    letters = pse.compile(pse.Regex("ab"), VOCAB)
    digits = pse.compile(pse.Regex("[01]+"), VOCAB)
    masks = DeviceMasks(torch.device("cpu"))
    torch.manual_seed(0)
    logits = torch.randn(4, WIDTH)
    before = logits.clone()
    slots = [masks.slot(digits, digits.initial_state, WIDTH), masks.slot(letters, letters.initial_state, WIDTH)]
    out = masks.apply(logits, [3, 1], slots)
    assert out is logits  # in place
    assert torch.equal(out[0], before[0]) and torch.equal(out[2], before[2])  # unconstrained: untouched
    assert torch.isfinite(out[3]).nonzero().flatten().tolist() == [2, 3]
    assert torch.isfinite(out[1]).nonzero().flatten().tolist() == [0]
    assert torch.equal(out[1, 0], before[1, 0])  # allowed scores keep their values
    # every row constrained, in order: the whole tensor at once
    everything = torch.randn(2, WIDTH)
    masks.apply(everything, [0, 1], [slots[1], slots[0]])
    assert torch.isfinite(everything).nonzero().tolist() == [[0, 0], [1, 2], [1, 3]]


def test_the_table_grows_to_its_budget_then_overwrites_old_masks_never_this_steps() -> None:
    # Ten distinct masks (five choices, before and after their one token), four per step, in a
    # six-row budget: the table stops at six rows and overwrites masks that the step does not use.
    keyed = []
    for word in ("a", "b", "0", "1", "x"):
        matcher = pse.compile(pse.Choice([word]), VOCAB)
        keyed += [(matcher, matcher.initial_state), (matcher, matcher.step(matcher.initial_state, TOKENS.index(word.encode())))]
    assert len({(id(m), m.mask_id(s)) for m, s in keyed}) == 10
    masks = DeviceMasks(torch.device("cpu"), max_bytes=6 * WIDTH)
    for step in range(12):
        masks.begin_step()
        # the first mask is needed by every step (as EOS-only is in a real batch): it must stay
        chosen = [keyed[0]] + [keyed[1 + (3 * step + k) % (len(keyed) - 1)] for k in range(3)]
        slots = [masks.slot(matcher, state, WIDTH) for matcher, state in chosen]
        assert len(set(slots)) == 4
        logits = torch.zeros(4, WIDTH)
        masks.apply(logits, [0, 1, 2, 3], slots)
        for row, (matcher, state) in enumerate(chosen):
            assert torch.isfinite(logits[row]).nonzero().flatten().tolist() == allowed(matcher, state)
    assert masks.table.shape[0] == 6


def test_a_step_that_needs_more_masks_than_the_budget_grows_past_it() -> None:
    matchers = [pse.compile(pse.Choice([w]), VOCAB) for w in ("a", "b", "0", "1", "x")]
    masks = DeviceMasks(torch.device("cpu"), max_bytes=2 * WIDTH)
    masks.begin_step()
    slots = [masks.slot(m, m.initial_state, WIDTH) for m in matchers]
    assert len(set(slots)) == 5
    logits = torch.zeros(5, WIDTH)
    masks.apply(logits, list(range(5)), slots)
    assert [torch.isfinite(row).nonzero().flatten().tolist() for row in logits] == [[0], [1], [2], [3], [4]]


def test_a_row_with_every_allowed_token_at_minus_inf_samples_among_them() -> None:
    # vLLM's min_tokens bans EOS before the logits processors run; when only EOS is allowed, the
    # row would be all -inf (sampling it is undefined): its allowed tokens come back at equal scores.
    matcher = pse.compile(pse.Regex("a"), VOCAB)
    done = matcher.step(matcher.initial_state, 0)
    masks = DeviceMasks(torch.device("cpu"))
    logits = torch.zeros(2, WIDTH)
    logits[0, EOS] = float("-inf")
    masks.apply(logits, [0, 1], [masks.slot(matcher, done, WIDTH), masks.slot(matcher, matcher.initial_state, WIDTH)])
    assert torch.isfinite(logits[0]).nonzero().flatten().tolist() == [EOS]
    assert logits[0, EOS] == 0
    assert torch.isfinite(logits[1]).nonzero().flatten().tolist() == [0]


def test_a_tokenizer_wider_than_the_logits_is_named() -> None:
    matcher = pse.compile(pse.Regex("a"), VOCAB)
    with pytest.raises(pse.VocabularyError, match="only 4 wide"):
        DeviceMasks(torch.device("cpu")).slot(matcher, matcher.initial_state, 4)


def test_model_runner_v2_outputs_come_from_the_fed_tokens_and_the_device_history(rows) -> None:
    # Slots 5 and 9 constrained, 7 not; batch positions 0..2 map to slots 9, 7, 5.
    outputs: dict = {}
    for slot in (5, 9):
        outputs[slot] = []
        rows.add(slot, request(regex="[01]+"), outputs[slot], {EOS})
    all_token_ids = torch.zeros(16, 32, dtype=torch.int32)
    all_token_ids[5, :6] = torch.tensor([9, 9, 9, 2, 3, 3])  # prompt of 3, then outputs 2 3 3 (a resumed request)
    prompt_len = np.zeros(16, dtype=np.int32)
    prompt_len[[5, 7, 9]] = [3, 4, 2]
    req_states = SimpleNamespace(prompt_len=SimpleNamespace(np=prompt_len), all_token_ids=SimpleNamespace(gpu=all_token_ids))

    def ctx(seq_lens, input_ids):
        return SimpleNamespace(idx_mapping_np=np.array([9, 7, 5]), seq_lens_upper_bound_np=np.array(seq_lens),
                               input_ids=torch.tensor(input_ids))

    placed = sync_outputs(rows, outputs, ctx([2, 4, 6], [0, 0, 3]), req_states)
    assert placed == [(0, 9), (2, 5)]
    assert rows.get(5).prompt_ids == [9, 9, 9] and rows.get(9).prompt_ids == [0, 0]  # read once, from the device
    assert outputs == {9: [], 5: [2, 3, 3]}  # 9 just finished its prefill; 5 was read back whole
    sync_outputs(rows, outputs, ctx([3, 5, 7], [2, 4, 2]), req_states)
    assert outputs == {9: [2], 5: [2, 3, 3, 2]}  # one step each: the fed tokens
    states = {index: allowed(matcher, state) for index, matcher, state, _ in rows.current()}
    assert states == {5: [2, 3, EOS], 9: [2, 3, EOS]}
    sync_outputs(rows, outputs, ctx([1, 5, 7], [0, 0, 0]), req_states)  # a chunked prefill (seq < prompt): none
    assert outputs[9] == []
