"""Model Runner V2 (vLLM's GPU default when Triton is present): each constrained request's output ids.

V1 hands a logits processor each request's live output list; V2 does not. There, a request
is a *slot* (``add_request(slot, params)``), a logits row ``i`` belongs to slot
``ctx.idx_mapping_np[i]``, and the ids live on the device: ``req_states.all_token_ids[slot]``
(prompt, then outputs), with ``prompt_len`` on the host. We keep each constrained slot's output
ids in a host list that :func:`sync_outputs` extends every step before the states advance
(:mod:`.rows` then walks it as it walks V1's list):

- a request's output length at row ``i`` is ``seq_lens_upper_bound_np[i] - prompt_len[slot]``
  (exact without speculative decoding): the ids up to and including the token fed at this row;
- one id more than we hold (plain decoding): it is the token fed at this row, ``ctx.input_ids[i]``;
  one small device-to-host copy per step for all such rows together;
- anything else (a resumed request, a chunked prefill) is read from ``all_token_ids`` again;
- a request's prompt ids are read once, the first time it is seen.

With speculative decoding a request owns several logits rows whose draft ids are not committed;
pse requests are refused up front then (``validate_params``); rows that get here anyway may
only stop (:func:`draft_rows`). This module needs torch, not vLLM.
"""

from __future__ import annotations

from typing import Any

import torch

from .rows import RowStates


def sync_outputs(rows: RowStates, outputs: dict, ctx: Any, req_states: Any) -> list[tuple[int, int]]:
    """Bring ``outputs`` (slot -> host list of output ids) up to date for this step.

    Returns ``(logits row, slot)`` of each constrained request in the batch."""
    prompt_len = req_states.prompt_len.np
    seq_lens = ctx.seq_lens_upper_bound_np
    placed = [(i, int(slot)) for i, slot in enumerate(ctx.idx_mapping_np.tolist()) if int(slot) in rows]
    grew: list[tuple[int, list]] = []
    for i, slot in placed:
        row = rows.get(slot)
        if row is not None and row.prompt_ids is None:  # once per request: what its constraint may start from
            row.prompt_ids = req_states.all_token_ids.gpu[slot, : int(prompt_len[slot])].tolist()
        ids = outputs.setdefault(slot, [])
        length = max(0, int(seq_lens[i]) - int(prompt_len[slot]))
        if length == len(ids):
            continue
        if length == len(ids) + 1:
            grew.append((i, ids))
            continue
        start = int(prompt_len[slot])
        ids[:] = req_states.all_token_ids.gpu[slot, start : start + length].tolist()
    if grew:
        at = torch.tensor([i for i, _ in grew], dtype=torch.long).to(ctx.input_ids.device, non_blocking=True)
        for (_, ids), token in zip(grew, ctx.input_ids.index_select(0, at).tolist()):
            ids.append(int(token))
    return placed


def draft_rows(rows: RowStates, ctx: Any) -> list[tuple[int, int]]:
    """``(logits row, slot)`` of every row of a constrained request when rows are expanded by
    speculative decoding (more logits rows than requests)."""
    mapping = ctx.expanded_idx_mapping.tolist()
    return [(i, int(slot)) for i, slot in enumerate(mapping) if int(slot) in rows]
