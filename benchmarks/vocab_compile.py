"""Vocabulary build time and compile time per tokenizer family (Gemma 3's 262k is the stress case).

    python -m benchmarks.vocab_compile [--repeat 3] [--names llama3_1,gemma3] [--json out.json]

For each tokenizer (``pse_processors.assets``; run ``python scripts/fetch_assets.py`` first):

- ``load``: ``AutoTokenizer.from_pretrained`` of the cached folder;
- ``vocab``: :meth:`Vocabulary.from_tokenizer` (token bytes, specials, EOS set, fingerprint),
  per-tokenizer cache cleared between repeats;
- ``trie``: the token trie the lazy grammar walks, built once per vocabulary (it is cached in
  memory and on disk, so a compile does not pay it again);
- per schema, ``compile``: :func:`pse_processors.compile` with the disk cache off and the
  memory cache cleared (byte automaton + first mask; the trie is already built), and ``masks``: every mask
  on the path of the tokenizer's encoding of a sample document (the lazy per-state work a
  generation pays), then ``materialize`` (the dense tables jit/XLA frameworks need), when the grammar has it.

Medians over ``--repeat`` runs; prints a Markdown table.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from pathlib import Path

try:
    from ._common import save_json
except ImportError:  # run as a file: no package, so no relative import
    raise SystemExit("run it from the repository root as a module: python -m benchmarks.vocab_compile ...") from None

os.environ["PSE_PROCESSORS_CACHE_DIR"] = "off"  # cold compiles
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

import pse_processors as pse  # noqa: E402
from pse_processors.vocabulary import vocabulary as vocabulary_module  # noqa: E402
from pse_processors.assets import TOKENIZER_NAMES, load_tokenizer, tiktoken_encoding  # noqa: E402

SCHEMAS = {
    "2-prop object": (
        {"type": "object", "properties": {"name": {"type": "string"}, "age": {"type": "integer"}}, "required": ["name", "age"]},
        {"name": "Zoë 😀 Smith", "age": 42},
    ),
    "nested record": (
        {
            "type": "object",
            "properties": {
                "id": {"type": "integer"},
                "name": {"type": "string", "maxLength": 40},
                "status": {"enum": ["active", "inactive", "banned"]},
                "address": {
                    "type": "object",
                    "properties": {"city": {"type": "string"}, "zip": {"type": "string", "minLength": 5, "maxLength": 5}},
                    "required": ["city"],
                },
                "tags": {"type": "array", "items": {"type": "string"}, "maxItems": 5},
                "score": {"type": "number"},
            },
            "required": ["id", "name", "status"],
        },
        {"id": 7, "name": "東京 café", "status": "active", "address": {"city": "Paris", "zip": "75001"},
         "tags": ["a", "b\n"], "score": -1.5e-3},
    ),
    "any JSON": ({}, {"k": [1, "two", None], "emoji": "🎉", "n": {"x": -0.5}}),
}


def _median(fn, repeat: int) -> tuple[float, object]:
    times, result = [], None
    for _ in range(repeat):
        start = time.perf_counter()
        result = fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times), result


def _encode(tokenizer, text: str) -> list[int]:
    if hasattr(tokenizer, "encode_ordinary"):  # tiktoken
        return tokenizer.encode_ordinary(text)
    return tokenizer(text, add_special_tokens=False)["input_ids"]


def bench(name: str, repeat: int) -> dict:
    start = time.perf_counter()
    tokenizer = tiktoken_encoding("llama3_1") if name == "tiktoken:llama3_1" else load_tokenizer(name)
    row: dict = {"name": name, "load_s": time.perf_counter() - start}

    def build():
        vocabulary_module._CACHE.pop(tokenizer, None)
        return pse.Vocabulary.from_tokenizer(tokenizer)

    row["vocab_s"], vocab = _median(build, repeat)
    row["size"] = vocab.size
    try:  # the lazy grammar's token trie, built once per vocabulary (then cached in memory and on disk)
        from pse_processors.vocabulary.token_trie import TokenTrie

        row["trie_s"], _ = _median(lambda: TokenTrie.build(vocab), repeat)
    except ImportError:
        row["trie_s"] = None
    row["schemas"] = {}
    for label, (schema, sample) in SCHEMAS.items():
        def cold():
            pse.clear_memory_cache()
            return pse.compile(schema, tokenizer)

        compile_s, grammar = _median(cold, repeat)
        ids = _encode(tokenizer, json.dumps(sample, ensure_ascii=False))
        pse.clear_memory_cache()
        grammar = pse.compile(schema, tokenizer)
        start = time.perf_counter()
        state = grammar.initial_state
        for token in ids:
            grammar.allowed_mask(state)
            state = grammar.advance(state, token)
            assert state is not None, (name, label)
        assert grammar.is_accepting(state)
        masks_s = time.perf_counter() - start
        entry = {"compile_s": compile_s, "masks_s": masks_s, "tokens": len(ids), "states": grammar.num_states}
        if grammar.backend == "dfa":  # the byte automaton: dense tables on demand
            start = time.perf_counter()
            grammar.dense_automaton  # noqa: B018 - materializes them
            entry["materialize_s"] = time.perf_counter() - start
        row["schemas"][label] = entry
    return row


def main() -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.vocab_compile", description=__doc__.split("\n")[0])
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--names", default=",".join([*TOKENIZER_NAMES, "tiktoken:llama3_1"]))
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    rows = [bench(name, args.repeat) for name in args.names.split(",")]
    print(f"| tokenizer | vocab size | load | Vocabulary build | trie build | {' | '.join(f'{s}: compile / path masks' for s in SCHEMAS)} | dense tables (nested record) |")
    print("|---|---|---|---|---|" + "---|" * (len(SCHEMAS) + 1))
    for row in rows:
        cells = [
            f"{e['compile_s'] * 1000:.0f} ms / {e['masks_s'] * 1000:.0f} ms ({e['states']} states)"
            for e in row["schemas"].values()
        ]
        trie = "n/a" if row["trie_s"] is None else f"{row['trie_s']:.2f} s"
        dense = row["schemas"]["nested record"].get("materialize_s")
        dense_cell = "n/a" if dense is None else f"{dense:.2f} s"
        print(
            f"| {row['name']} | {row['size']:,} | {row['load_s']:.2f} s | {row['vocab_s']:.2f} s | {trie} | "
            f"{' | '.join(cells)} | {dense_cell} |"
        )
    if args.json:
        save_json(args.json, rows, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
