"""Processor time per generate step inside free text and inside the structure (issue 23).

    nice -n 19 python -m benchmarks.freetext_step [--steps 32] [--generations 3] [--save benchmarks/results/freetext_step.json]

On the embedded SmolLM2-135M-Instruct (torch, ``torch.set_num_threads(1)``), batch 1 and 16, the
rows are teacher-forced with the tokenizer's own spelling of real outputs:
``<think>`` + free reasoning text + ``</think>`` + a JSON instance of :data:`SCHEMA` (each row of
a batch its own text and instance). At every step the model runs one decode step with its KV
cache (timed: the *unconstrained step*) and each contender is called once on its own copy of
those logits, in an order that rotates from step to step:

* free-text part (the first ``--steps`` tokens of the reasoning): ``Reasoning(SCHEMA)`` inside
  its block, ``Delimited(SCHEMA)`` and ``Tools([...], format="hermes")`` on the same text (no
  ``<think>`` prefix for those two), and a processor that only copies the logits (the floor);
* structured part (the JSON answer after ``</think>``): ``Reasoning(SCHEMA)``'s answer against
  today's ``PSELogitsProcessor(SCHEMA)`` on the same JSON tokens alone.

Reported per contender: the processor call's median and p90 in µs, and the step ratio
``(forward + processor) / forward`` (the goal for free text: at most 1.02), both from the same
run. The first generation is the warm-up (first-use mask work) and is left out. Every forced
token is checked against each mask outside the timed region.
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import sys
import time
from datetime import datetime, timezone
from pathlib import Path

try:
    from ._common import command_line, percentile, save_json
except ImportError:  # run as a file: no package, so no relative import
    raise SystemExit("run it from the repository root as a module: python -m benchmarks.freetext_step ...") from None

SCHEMA = {
    "type": "object",
    "properties": {"name": {"type": "string", "maxLength": 40}, "age": {"type": "integer", "minimum": 0},
                   "city": {"type": "string", "maxLength": 40}, "tags": {"type": "array", "items": {"type": "string"}}},
    "required": ["name", "age", "city", "tags"], "additionalProperties": False,
}
NAMES = ["Alice Martin", "Bob Stone", "Chen Wei", "Dara Okafor", "Eve Lund", "Farid Haddad", "Gita Rao", "Hugo Lenz"]
CITIES = ["Oslo", "Paris", "Lagos", "Kyoto", "Lima", "Perth", "Quebec", "Turin"]
THOUGHTS = [
    "The text names one person and gives an age and a city, so I will copy those and add two short tags that say what",
    "First find the name, then the age in years, then where the person lives; the tags should be plain words from the",
    "Reading the message again: there is a name at the start and the age follows it, the city is mentioned near the end",
    "I need to be careful with the age, it must be a whole number, and the city should be spelled exactly as in the text",
]
TOOLS = [{"name": "lookup", "parameters": {"type": "object", "properties": {"q": {"type": "string"}}, "required": ["q"]}}]


def rows_for(tokenizer, batch: int, steps: int) -> list[dict]:
    """Per row: the reasoning tokens (``steps`` long), the ``<think>`` and ``</think>`` spellings, the JSON tokens."""
    rows = []
    for index in range(batch):
        thought = " ".join(THOUGHTS[(index + k) % len(THOUGHTS)] for k in range(3))
        free = tokenizer(thought, add_special_tokens=False)["input_ids"][:steps]
        value = {"name": NAMES[index % 8], "age": 20 + index, "city": CITIES[(index * 3) % 8],
                 "tags": ["person", "contact", f"row{index}"]}
        rows.append({"free": free, "json": tokenizer(json.dumps(value), add_special_tokens=False)["input_ids"]})
    return rows


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=32, help="free-text steps per generation (default 32)")
    parser.add_argument("--generations", type=int, default=3, help="generations per batch size, the first a warm-up")
    parser.add_argument("--batches", default="1,16")
    parser.add_argument("--save", type=Path, help="write the results as JSON")
    args = parser.parse_args()
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    import pse_processors as pse
    from pse_processors.embedded import smollm2_dir

    torch.set_num_threads(1)
    folder = smollm2_dir()
    tokenizer = AutoTokenizer.from_pretrained(folder)
    model = AutoModelForCausalLM.from_pretrained(folder).eval()
    config = model.generation_config
    prompt = tokenizer.apply_chat_template([{"role": "user", "content": "Think, then give the person as JSON."}],
                                           add_generation_prompt=True, tokenize=False)
    prompt_ids = tokenizer(prompt, add_special_tokens=False)["input_ids"]
    think = tokenizer("<think>", add_special_tokens=False)["input_ids"]
    close = tokenizer("</think>", add_special_tokens=False)["input_ids"]

    def copy_only(ids, scores):
        return scores.clone()

    makers = {
        "free": {
            "reasoning": lambda: pse.PSELogitsProcessor(pse.Reasoning(SCHEMA), tokenizer, generation_config=config),
            "delimited": lambda: pse.PSELogitsProcessor(pse.Delimited(SCHEMA), tokenizer, generation_config=config),
            "tools": lambda: pse.PSELogitsProcessor(pse.Tools(TOOLS, format="hermes"), tokenizer, generation_config=config),
            "copy only": lambda: copy_only,
        },
        "structured": {
            "reasoning answer": lambda: pse.PSELogitsProcessor(pse.Reasoning(SCHEMA), tokenizer, generation_config=config),
            "schema alone (today)": lambda: pse.PSELogitsProcessor(SCHEMA, tokenizer, generation_config=config),
        },
    }
    report: dict = {
        "benchmark": "freetext_step", "command": command_line("freetext_step"),
        "date": datetime.now(timezone.utc).isoformat(timespec="seconds"), "machine": platform.platform(),
        "torch": torch.__version__, "pse_processors": pse.__version__, "steps": args.steps,
        "generations": args.generations, "note": "shared 2-core machine under load (nice -n 19); ratios are within one run",
        "results": {},
    }
    for batch in (int(b) for b in args.batches.split(",")):
        rows = rows_for(tokenizer, batch, args.steps)
        json_steps = min(len(r["json"]) for r in rows)
        times: dict = {part: {name: [] for name in group} for part, group in makers.items()}
        forwards: dict = {"free": [], "structured": []}
        for generation in range(args.generations):
            # Each contender's rows: reasoning ones start with <think>; the others hold the free text alone,
            # and today's processor the JSON alone. The model reads the reasoning rows.
            sequences = [think + r["free"] + close + r["json"][:json_steps] for r in rows]
            starts = {"free": len(think), "structured": len(think) + args.steps + len(close)}
            processors = {part: {name: make() for name, make in group.items()} for part, group in makers.items()}
            past = None
            ids = torch.tensor([prompt_ids] * batch)
            with torch.inference_mode():
                for step in range(len(sequences[0])):  # `step` tokens of `sequences` are in `ids`
                    began = time.perf_counter()
                    out = model(input_ids=ids if past is None else ids[:, -1:], past_key_values=past, use_cache=True)
                    logits = out.logits[:, -1, :].float()
                    forward = time.perf_counter() - began
                    past = out.past_key_values
                    timed = ("free" if starts["free"] <= step < starts["free"] + args.steps
                             else "structured" if step >= starts["structured"] else None)
                    following = torch.tensor([s[step] for s in sequences])
                    calls = []
                    for part, group in processors.items():
                        for name, processor in group.items():
                            if name.startswith("reasoning"):  # sees the whole output, from its first token
                                calls.append((part, name, processor, ids))
                            elif part == timed == "free":
                                calls.append((part, name, processor, torch.tensor(
                                    [prompt_ids + r["free"][: step - starts["free"]] for r in rows])))
                            elif part == timed == "structured":
                                calls.append((part, name, processor, torch.tensor(
                                    [prompt_ids + r["json"][: step - starts["structured"]] for r in rows])))
                    shift = step % len(calls)
                    for part, name, processor, row_ids in calls[shift:] + calls[:shift]:
                        scores = logits.clone()
                        began = time.perf_counter()
                        masked = processor(row_ids, scores)
                        spent = time.perf_counter() - began
                        if name != "copy only" and (part == timed or name.startswith("reasoning")):
                            allowed = torch.isfinite(masked[torch.arange(batch), following])
                            assert bool(allowed.all()), (name, step, tokenizer.decode(following[:1]))
                        if generation and part == timed:
                            times[part][name].append(spent)
                    if generation and timed:
                        forwards[timed].append(forward)
                    ids = torch.cat([ids, following[:, None]], dim=1)
        result: dict = {}
        for part, group in times.items():
            forward = statistics.median(forwards[part])
            result[part] = {"forward_median_us": round(forward * 1e6), "contenders": {}}
            for name, values in group.items():
                if not values:
                    raise RuntimeError(f"{name} was never timed in the {part} part (batch {batch})")
                median = statistics.median(values)
                result[part]["contenders"][name] = {
                    "median_us": round(median * 1e6, 1), "p90_us": round(percentile(values, 0.9) * 1e6, 1),
                    "step_ratio": round((forward + median) / forward, 4), "calls": len(values),
                }
        report["results"][f"batch {batch}"] = result
        print(f"batch {batch}: {json.dumps(result)}", file=sys.stderr, flush=True)
    print(json.dumps(report, indent=2))
    if args.save:
        save_json(args.save, report)
    return 0


if __name__ == "__main__":
    sys.exit(main())
