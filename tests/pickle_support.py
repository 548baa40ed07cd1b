"""Helpers of the pickling tests: observe objects along token paths, here or in a fresh process.

Run as a script (``python pickle_support.py IN OUT``) it unpickles ``{name: object}`` and the
token paths from ``IN`` and writes what it observes to ``OUT``: the parent compares that with
what the original objects show. Nothing here reads outside the repository.
"""

from __future__ import annotations

import hashlib
import os
import pickle
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
PROMPT = [28, 77, 1004]  # arbitrary text ids before the constrained part
MAX_NEW_TOKENS = 12  # the in-graph processors' buffer: prompt + this


def grammar_of(obj: Any) -> Any:
    """The compiled grammar behind a grammar, a processor or an engine."""
    from pse_processors import Matcher

    if isinstance(obj, Matcher):
        return obj
    if hasattr(obj, "last_generation"):  # StructuringEngine
        return obj.matcher(obj.tokenizer)
    return obj.matcher


def random_paths(grammar: Any, count: int, length: int, seed: int) -> list[list[int]]:
    """``count`` valid token paths of at most ``length`` tokens, random but reproducible."""
    rng = np.random.default_rng(seed)
    eos = grammar.vocabulary.eos_token_ids
    paths = []
    for _ in range(count):
        state, path = grammar.initial_state, []
        while len(path) < length:
            allowed = grammar.allowed_token_ids(state).tolist()
            text = [t for t in allowed if t not in eos]
            token = int(rng.choice(text or allowed))
            path.append(token)
            if token in eos:
                break
            state = grammar.advance(state, token)
        paths.append(path)
    return paths


def _masks(grammar: Any, paths: list[list[int]]) -> list[list[bytes]]:
    """The packed allowed set after every prefix of every path."""
    out = []
    for path in paths:
        state, seen = grammar.initial_state, []
        for token in path:
            seen.append(np.packbits(grammar.allowed_mask(state)).tobytes())
            state = grammar.advance(state, token)
        out.append(seen)
    return out


def _scores(processor: Any, paths: list[list[int]], width: int) -> list[str]:
    """A digest of the processed scores (fixed scores) after every prefix of every path."""
    kind = type(processor).__name__
    base = np.random.default_rng(0).standard_normal((1, width)).astype(np.float32)
    digests = []
    for path in paths:
        if hasattr(processor, "reset"):
            processor.reset()
        for k in range(len(path)):
            ids = PROMPT + path[:k]
            if kind == "PSELogitsProcessor":
                import torch

                out = processor(torch.tensor([ids]), torch.from_numpy(base.copy())).numpy()
            elif kind == "MLXPSELogitsProcessor":
                import mlx.core as mx

                out = np.array(processor(mx.array([ids]), mx.array(base)))
            else:  # the in-graph processors see the whole padded buffer
                buffer = np.zeros((1, len(PROMPT) + MAX_NEW_TOKENS), dtype=np.int32)
                buffer[0, : len(ids)] = ids
                if kind == "TFPSELogitsProcessor":
                    import tensorflow as tf

                    out = processor(tf.constant(buffer), tf.constant(base), len(ids)).numpy()
                else:
                    import jax.numpy as jnp

                    out = np.asarray(processor(jnp.asarray(buffer), jnp.asarray(base), len(ids)))
            digests.append(hashlib.sha256(np.ascontiguousarray(out, dtype=np.float32).tobytes()).hexdigest())
    return digests


def observe(objects: dict, paths: dict) -> dict:
    """What each object shows along its paths: its grammar's identity, masks and (processors) scores."""
    from pse_processors import Matcher, Vocabulary

    found = {}
    for name, obj in objects.items():
        if isinstance(obj, Vocabulary):
            tokens = hashlib.sha256(pickle.dumps(obj.token_bytes)).hexdigest()
            found[name] = {"fingerprint": obj.fingerprint, "tokens": tokens}
            continue
        grammar = grammar_of(obj)
        seen = {
            "fingerprint": grammar.vocabulary.fingerprint, "engine": grammar.backend, "kind": grammar.spec.kind,
            "masks": _masks(grammar, paths[name]),
        }
        if not isinstance(obj, Matcher) and not hasattr(obj, "compile_options"):
            seen["scores"] = _scores(obj, paths[name], grammar.vocab_size)
        found[name] = seen
    return found


def observe_in_fresh_process(objects: dict, paths: dict, timeout: float = 300) -> dict:
    """:func:`observe` on the objects pickled into a file and unpickled by a new interpreter."""
    with tempfile.TemporaryDirectory() as folder:
        source, target = Path(folder) / "in.pkl", Path(folder) / "out.pkl"
        source.write_bytes(pickle.dumps((objects, paths)))
        env = {**os.environ, "PYTHONPATH": str(ROOT), "HF_HUB_OFFLINE": "1", "OMP_NUM_THREADS": "1"}
        command = [sys.executable, __file__, str(source), str(target)]
        done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=timeout)
        assert done.returncode == 0, done.stderr[-3000:]
        return pickle.loads(target.read_bytes())


def spawn_worker(processor: Any, path: list[int]) -> list[str]:
    """Run in a ``spawn`` pool: the processed-score digests of ``processor`` along ``path``."""
    return _scores(processor, [path], processor.matcher.vocab_size)


if __name__ == "__main__":
    objects, paths = pickle.loads(Path(sys.argv[1]).read_bytes())
    Path(sys.argv[2]).write_bytes(pickle.dumps(observe(objects, paths)))
