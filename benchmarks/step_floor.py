"""The floor under a processor step that returns a new tensor: the tensor work alone, per batch size.

    python -m benchmarks.step_floor

One thread, float32 ``[batch, 49152]`` scores (SmolLM2's width), 64 MB written between calls to
evict the caches as a forward pass does; CPU µs per call (median of 60) for the cheapest masking
(one mask broadcast), the gather-and-add our processor runs when rows are in different states,
that plus the row maxima (the NaN/-inf check), and a bare ``clone`` (writing a tensor of the
scores' size). The last column is batch 64 over batch 1: what issue 25's "batch 64 at most 4x
batch 1" asks of a whole processor step.
"""

from __future__ import annotations

import statistics
import time


def main() -> int:
    import torch

    torch.set_num_threads(1)
    junk = torch.empty(16 << 20)
    width = 49152

    def cpu_us(work, calls: int = 60) -> float:
        spent = []
        for _ in range(calls):
            junk.add_(1.0)
            start = time.thread_time_ns()
            work()
            spent.append((time.thread_time_ns() - start) / 1e3)
        return statistics.median(spent)

    results: dict[int, dict[str, float]] = {}
    for batch in (1, 16, 64):
        scores = torch.randn(batch, width)
        table = torch.zeros(64, width)
        table[:, ::3] = -float("inf")
        rows = torch.randint(0, 32, (batch,))
        results[batch] = {
            "`scores + mask` (one mask, broadcast)": cpu_us(lambda: scores + table[0]),
            "gather the rows' masks + add (rows in different states)": cpu_us(lambda: table.index_select(0, rows).add_(scores)),
            "`scores + mask`, then the row maxima (`amax`)": cpu_us(lambda: (scores + table[0]).amax(dim=-1)),
            "`scores.clone()` alone": cpu_us(lambda: scores.clone()),
        }
    print("| operation | batch 1 | batch 16 | batch 64 | 64 / 1 |")
    print("|---|---:|---:|---:|---:|")
    for name in results[1]:
        cells = " | ".join(f"{results[b][name]:,.0f}" for b in (1, 16, 64))
        print(f"| {name} | {cells} | {results[64][name] / results[1][name]:.1f}x |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
