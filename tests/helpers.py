"""What the tests share: output checks, tiny models, fuzz schemas, and the helpers of the TF/Flax,
notebook and pickling tests. Fixtures live in ``tests/conftest.py``; tests import from here
(``from tests.helpers import validate``), never from a conftest.

Nothing here touches the Hugging Face hub, and importing this module imports no ML framework:
every framework is imported inside the function that needs it, so the module serves both test
environments (main: transformers 5; tf_flax: transformers 4.57 with TensorFlow and Flax).

Run as a module (``python -m tests.helpers IN OUT``, from the repository root) it is the fresh
process of :func:`observe_in_fresh_process`.
"""

from __future__ import annotations

import functools
import hashlib
import importlib
import importlib.util
import json
import os
import pickle
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest

#: The repository root.
ROOT = Path(__file__).resolve().parents[1]

#: Prompts of the batch fuzz tests (different lengths: left padding).
PROMPTS = ["Give me JSON:", "Data", "Here is the answer in JSON format, nothing else:", "{"]


# --- checking outputs -------------------------------------------------------------------------


def validate(schema, text: str):
    """Parse and validate ``text`` against ``schema`` with jsonschema; return the value."""
    import jsonschema

    value = json.loads(text)
    jsonschema.validate(value, schema, cls=jsonschema.Draft202012Validator)
    return value


def structured_part(result: str, prompt: str, tokenizer) -> str:
    """The generated structure in ``tokenizer.decode(outputs[0])``: after the prompt, without the
    EOS and pad tokens that end it."""
    assert result.startswith(prompt), (result, prompt)
    text = result[len(prompt):]
    for special in {tokenizer.eos_token, tokenizer.pad_token} - {None}:
        text = text.split(special)[0]
    return text


def check_engine_rows(engine, outputs, rows: int, schema) -> int:
    """Rows of a ``StructuringEngine.generate`` output, in any framework's array type: every finished
    row parses and validates against ``schema``; an unfinished one (cut off by ``max_new_tokens``) is
    a live prefix of the constraint. Returns how many rows finished."""
    from pse_processors import InvalidOutputError

    finished = 0
    for row in range(rows):
        try:
            value = engine.parse(outputs, row=row)
        except InvalidOutputError:
            generated = np.asarray(outputs[row]).tolist()[engine.last_generation.prompt_length:]
            assert engine.last_generation.matcher.walk(generated) >= 0, "the row left the constraint"
            continue
        validate(schema, json.dumps(value))
        finished += 1
    return finished


def left_padded(tokenizer, texts, pad_id):
    """``texts`` tokenized and left-padded with ``pad_id``: (input ids, attention mask) as torch tensors."""
    import torch

    rows = [tokenizer(t, add_special_tokens=False)["input_ids"] for t in texts]
    width = max(len(r) for r in rows)
    ids = torch.tensor([[pad_id] * (width - len(r)) + r for r in rows])
    mask = torch.tensor([[0] * (width - len(r)) + [1] * len(r) for r in rows])
    return ids, mask


def check_rows(processor, schema, sequences, prompt_length, eos_ids):
    """Rows generated with the PyTorch processor: every finished row validates (and equals ``parse``),
    every unfinished one is a live prefix. Returns how many finished."""
    from pse_processors import InvalidOutputError

    finished = 0
    for row in sequences:
        generated = row[prompt_length:].tolist()
        if any(t in eos_ids for t in generated):
            value = processor.parse(row, prompt_length=prompt_length)
            end = next(i for i, t in enumerate(generated) if t in eos_ids)
            text = processor.matcher.vocabulary.decode(generated[:end]).decode("utf-8")
            assert validate(schema, text) == value
            assert all(t in eos_ids or t == 0 for t in generated[end:]), "only EOS/pad after EOS"
            finished += 1
        else:
            # Cut off by max_new_tokens: a prefix of a valid output, never a rejected token.
            state = processor.matcher.walk(generated)
            assert state >= 0, f"row left the constraint: {generated}"
            with pytest.raises(InvalidOutputError):
                if not processor.matcher.is_accepting(state):
                    processor.parse(row, prompt_length=prompt_length)
                else:
                    raise InvalidOutputError("accepting but no EOS yet")
    return finished


# --- tiny random-weight models ----------------------------------------------------------------


def tiny_llama_torch(vocab_size: int, seed: int, eos: int, pad: int):
    """A random-weight transformers Llama (2 layers, width 32)."""
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    torch.manual_seed(seed)
    config = LlamaConfig(
        vocab_size=vocab_size, hidden_size=32, intermediate_size=64, num_hidden_layers=2,
        num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=1024,
        bos_token_id=1, eos_token_id=eos, pad_token_id=pad, tie_word_embeddings=False,
    )
    model = LlamaForCausalLM(config).eval()
    model.generation_config.eos_token_id = eos
    model.generation_config.pad_token_id = pad
    return model


@functools.lru_cache(maxsize=None)
def smol_tokenizer_mlx():
    """mlx-lm's ``TokenizerWrapper`` of the embedded SmolLM2 tokenizer (converted from its GGUF
    without torch)."""
    from mlx_lm.tokenizer_utils import load as load_tokenizer

    from pse_processors.compiler.compiler import user_cache_dir
    from pse_processors.embedded import MODEL_ENV, smollm2_gguf_path
    from pse_processors.mlx_embedded import tokenizer_dir

    root = Path(os.environ.get(MODEL_ENV) or user_cache_dir() / "models")
    return load_tokenizer(tokenizer_dir(smollm2_gguf_path(), root))


def tiny_llama_mlx(vocab_size: int, seed: int = 0, dtype=None):
    """A random-weight mlx-lm Llama (2 layers, width 32); ``dtype`` casts its parameters."""
    import mlx.core as mx
    from mlx_lm.models.llama import Model, ModelArgs

    mx.random.seed(seed)
    args = ModelArgs(
        model_type="llama", hidden_size=32, num_hidden_layers=2, intermediate_size=64, num_attention_heads=4,
        num_key_value_heads=2, rms_norm_eps=1e-5, vocab_size=vocab_size, rope_theta=10000.0, tie_word_embeddings=False,
    )
    model = Model(args)
    if dtype is not None:
        model.set_dtype(dtype)
    mx.eval(model.parameters())
    model.eval()
    return model


# --- fuzz schemas -----------------------------------------------------------------------------

#: A short string: random-weight models finish the schemas that hold it.
S = {"type": "string", "maxLength": 6}

#: Schemas for generation fuzzing: strings are short so that random-weight models finish.
FUZZ_SCHEMAS: list[dict] = [
    {"type": "boolean"},
    {"type": "integer"},
    {"type": "number"},
    {"type": "null"},
    {"enum": ["red", "green", "blue", 1, None, True]},
    {"const": {"a": [1, 2], "b": "x"}},
    S,
    {"type": "string", "minLength": 2, "maxLength": 3},
    {"type": "object", "properties": {"name": S, "age": {"type": "integer"}}, "required": ["name", "age"]},
    {"type": "object", "properties": {"a": S, "b": {"type": "boolean"}, "c": {"type": "null"}}, "required": ["b"]},
    {"type": "object", "properties": {"x": {"type": "number"}, "y": {"type": "number"}}, "additionalProperties": False},
    {"type": "array", "items": {"type": "integer"}, "minItems": 1, "maxItems": 4},
    {"type": "array", "items": S, "maxItems": 3},
    {"type": "array", "prefixItems": [{"type": "boolean"}, S], "items": False, "minItems": 1},
    {"type": ["integer", "null"]},
    {"anyOf": [{"type": "integer"}, S, {"type": "array", "items": {"type": "boolean"}, "maxItems": 2}]},
    {"oneOf": [{"type": "object", "properties": {"k": {"const": "a"}}, "required": ["k"]}, {"type": "string", "maxLength": 4}]},
    {
        "type": "object",
        "properties": {"user": {"$ref": "#/$defs/user"}, "tags": {"type": "array", "items": {"enum": ["x", "y"]}, "maxItems": 3}},
        "required": ["user"],
        "$defs": {"user": {"type": "object", "properties": {"id": {"type": "integer"}, "nick": S}, "required": ["id"]}},
    },
    {
        "$defs": {"node": {"type": "object", "properties": {"v": {"type": "integer"}, "next": {"$ref": "#/$defs/node"}}, "required": ["v"]}},
        "$ref": "#/$defs/node",
    },
    {"allOf": [{"type": "object", "properties": {"a": {"type": "integer"}}, "required": ["a"]}, {"properties": {"b": S}, "required": ["b"]}]},
    {"type": "object", "properties": {"name": {"type": "string", "maxLength": 4}, "emoji": {"type": "string", "minLength": 1, "maxLength": 2}}, "required": ["name", "emoji"]},
    {"type": "object", "properties": {"items": {"type": "array", "items": {"type": "object", "properties": {"q": {"type": "integer"}}, "required": ["q"]}, "maxItems": 2}}, "required": ["items"]},
    {"type": ["object", "null"], "properties": {"ok": {"type": "boolean"}}, "required": ["ok"]},
]


# --- the TF/Flax environment (tests/tf_flax) --------------------------------------------------
#
# In the main environment these tests skip. ``bash scripts/test.sh`` runs them in the legacy
# environment (transformers 4.57.6 with TensorFlow and Flax) with ``PSE_REQUIRE_LEGACY=1``, where a
# framework that cannot be imported is a failure, not a skip. Heavy objects are cached per process
# with ``functools.cache`` so every test module shares them.

LEGACY_REQUIRED = os.environ.get("PSE_REQUIRE_LEGACY") == "1"
PAD = 0  # pad (0, <|endoftext|>) != EOS (2, <|im_end|>)


def require_legacy(*modules: str) -> None:
    """Import ``modules`` and transformers 4.x; skip the calling module without them, unless required."""
    try:
        for name in modules:
            importlib.import_module(name)
        import transformers

        if int(transformers.__version__.split(".")[0]) >= 5:
            raise ImportError(f"transformers {transformers.__version__} has no TF/Flax generation (needs < 5)")
    except ImportError as exc:
        if LEGACY_REQUIRED:
            raise ImportError(f"PSE_REQUIRE_LEGACY=1 but the legacy test environment is incomplete: {exc}") from exc
        pytest.skip(f"legacy environment only: {exc}", allow_module_level=True)


@functools.cache
def legacy_tokenizer() -> Any:
    """SmolLM2's tokenizer, left-padding. The cached folder was saved by transformers 5, whose
    tokenizer class 4.57 does not know, so load it as a plain fast tokenizer."""
    from transformers import PreTrainedTokenizerFast

    from pse_processors.embedded import smollm2_dir

    tok = PreTrainedTokenizerFast.from_pretrained(smollm2_dir())
    tok.padding_side = "left"
    return tok


def left_padded_arrays(texts: list[str] = PROMPTS) -> tuple[np.ndarray, np.ndarray]:
    """``texts`` tokenized by :func:`legacy_tokenizer`, left-padded with :data:`PAD`: numpy
    (input ids, attention mask)."""
    tok = legacy_tokenizer()
    rows = [tok(t, add_special_tokens=False)["input_ids"] for t in texts]
    width = max(len(r) for r in rows)
    ids = np.array([[PAD] * (width - len(r)) + r for r in rows], dtype=np.int32)
    mask = np.array([[0] * (width - len(r)) + [1] * len(r) for r in rows], dtype=np.int32)
    return ids, mask


def check_in_graph_rows(processor: Any, schema: Any, sequences: Any, prompt_length: int) -> int:
    """Rows generated with a TF/Flax processor: every finished row validates with jsonschema (and
    equals ``parse``); every unfinished row is a live prefix of the grammar. Returns how many rows
    finished."""
    from pse_processors import InvalidOutputError

    grammar = processor.matcher
    eos = grammar.vocabulary.eos_token_ids
    finished = 0
    for row in np.asarray(sequences):
        generated = [int(t) for t in row[prompt_length:]]
        end = next((i for i, t in enumerate(generated) if t in eos), None)
        if end is not None:
            text = grammar.vocabulary.decode(generated[:end]).decode("utf-8")
            value = processor.parse(row, prompt_length=prompt_length)
            assert validate(schema, text) == value, text
            assert all(t in eos or t == PAD for t in generated[end:]), f"only EOS/pad after EOS: {generated}"
            finished += 1
        else:
            state = grammar.walk(generated)
            assert state >= 0, f"row left the constraint: {grammar.vocabulary.decode(generated)!r}"
            if not grammar.is_accepting(state):
                with pytest.raises(InvalidOutputError):
                    processor.parse(row, prompt_length=prompt_length)
    return finished


def smollm2_legacy_config() -> dict:
    """The embedded SmolLM2's config.json, with the top-level ``rope_theta`` transformers 4.57 reads."""
    from pse_processors.embedded import smollm2_dir

    values = json.loads((smollm2_dir() / "config.json").read_text())
    # transformers 5 writes rope_parameters; 4.57 reads a top-level rope_theta (else 10000).
    values["rope_theta"] = values.get("rope_theta") or values["rope_parameters"]["rope_theta"]
    return values


@functools.cache
def smollm2_tf_model():
    """The embedded SmolLM2 as TFMistralForCausalLM (TF has no Llama; Mistral with
    ``sliding_window=None`` is the same network and honours ``rope_theta``), output layer tied."""
    import tensorflow as tf
    from transformers import MistralConfig, TFMistralForCausalLM

    from pse_processors.embedded import smollm2_dir

    c = smollm2_legacy_config()
    mistral = MistralConfig(
        vocab_size=c["vocab_size"], hidden_size=c["hidden_size"], intermediate_size=c["intermediate_size"],
        num_hidden_layers=c["num_hidden_layers"], num_attention_heads=c["num_attention_heads"],
        num_key_value_heads=c["num_key_value_heads"], head_dim=c["head_dim"],
        max_position_embeddings=c["max_position_embeddings"], rms_norm_eps=c["rms_norm_eps"], rope_theta=c["rope_theta"],
        sliding_window=None, tie_word_embeddings=True, bos_token_id=1, eos_token_id=2, pad_token_id=PAD,
    )
    model = TFMistralForCausalLM.from_pretrained(smollm2_dir(), from_pt=True, config=mistral)
    model.lm_head.kernel.assign(tf.transpose(model.model.embed_tokens.embeddings))  # tied in SmolLM2
    return model


@functools.cache
def smollm2_flax_model():
    """The embedded SmolLM2 as FlaxLlamaForCausalLM (rope_theta hard-coded to 10000 there), output
    layer tied."""
    from transformers import FlaxLlamaForCausalLM, LlamaConfig

    from pse_processors.embedded import smollm2_dir

    c = smollm2_legacy_config()
    keep = {k: v for k, v in c.items() if k not in ("rope_parameters", "dtype", "transformers_version", "architectures")}
    model = FlaxLlamaForCausalLM.from_pretrained(smollm2_dir(), from_pt=True, config=LlamaConfig(**keep))
    model.params["lm_head"]["kernel"] = model.params["model"]["embed_tokens"]["embedding"].T  # tied in SmolLM2
    return model


# --- notebooks (tests/apps/test_notebooks.py, tests/tf_flax/test_notebooks.py) ----------------
#
# Execution goes through ``scripts/execute_notebooks.py``, the code that ``scripts/notebooks.sh``
# uses to save the outputs, so CI runs the notebooks exactly as they were recorded.

NOTEBOOKS = sorted((ROOT / "notebooks").glob("*.ipynb"))
#: Each notebook runs in under 3 minutes on the 2-core test machines; this only catches a runaway.
NOTEBOOK_LIMIT_S = 600


def _notebook_executor():
    spec = importlib.util.spec_from_file_location("execute_notebooks", ROOT / "scripts" / "execute_notebooks.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)  # type: ignore[union-attr]
    return module


def notebooks_of(env: str) -> list[Path]:
    """The notebooks recorded in environment ``env`` ("main" or "legacy")."""
    executor = _notebook_executor()
    return [path for path in NOTEBOOKS if executor.notebook_env(path) == env]


def run_notebook(path: Path) -> None:
    """Execute ``path`` in a fresh kernel of this Python; fail on any cell error (nbclient raises
    CellExecutionError with the cell and its traceback) or on a runaway notebook."""
    start = time.perf_counter()
    notebook = _notebook_executor().execute(path, timeout=NOTEBOOK_LIMIT_S)
    elapsed = time.perf_counter() - start
    errors = [o for cell in notebook.cells if cell.cell_type == "code" for o in cell.outputs if o.output_type == "error"]
    assert not errors, errors
    assert elapsed < NOTEBOOK_LIMIT_S, f"{path.name} took {elapsed:.0f} s"


# --- pickling: observe objects along token paths, here or in a fresh process ------------------

PICKLE_PROMPT = [28, 77, 1004]  # arbitrary text ids before the constrained part
PICKLE_MAX_NEW_TOKENS = 12  # the in-graph processors' buffer: prompt + this


def matcher_of(obj: Any) -> Any:
    """The matcher behind a matcher, a processor or an engine."""
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
            ids = PICKLE_PROMPT + path[:k]
            if kind == "PSELogitsProcessor":
                import torch

                out = processor(torch.tensor([ids]), torch.from_numpy(base.copy())).numpy()
            elif kind == "MLXPSELogitsProcessor":
                import mlx.core as mx

                out = np.array(processor(mx.array([ids]), mx.array(base)))
            else:  # the in-graph processors see the whole padded buffer
                buffer = np.zeros((1, len(PICKLE_PROMPT) + PICKLE_MAX_NEW_TOKENS), dtype=np.int32)
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
    """What each object shows along its paths: its matcher's identity, masks and (processors) scores."""
    from pse_processors import Matcher, Vocabulary

    found = {}
    for name, obj in objects.items():
        if isinstance(obj, Vocabulary):
            tokens = hashlib.sha256(pickle.dumps(obj.token_bytes)).hexdigest()
            found[name] = {"fingerprint": obj.fingerprint, "tokens": tokens}
            continue
        grammar = matcher_of(obj)
        seen = {
            "fingerprint": grammar.vocabulary.fingerprint, "backend": grammar.backend, "kind": grammar.spec.kind,
            "masks": _masks(grammar, paths[name]),
        }
        if not isinstance(obj, Matcher) and not hasattr(obj, "last_generation"):  # not an engine
            seen["scores"] = _scores(obj, paths[name], grammar.vocab_size)
        found[name] = seen
    return found


def observe_in_fresh_process(objects: dict, paths: dict, timeout: float = 300) -> dict:
    """:func:`observe` on the objects pickled into a file and unpickled by a new interpreter."""
    with tempfile.TemporaryDirectory() as folder:
        source, target = Path(folder) / "in.pkl", Path(folder) / "out.pkl"
        source.write_bytes(pickle.dumps((objects, paths)))
        env = {**os.environ, "PYTHONPATH": str(ROOT), "HF_HUB_OFFLINE": "1", "OMP_NUM_THREADS": "1"}
        command = [sys.executable, "-m", "tests.helpers", str(source), str(target)]
        done = subprocess.run(command, env=env, cwd=ROOT, capture_output=True, text=True, timeout=timeout)
        assert done.returncode == 0, done.stderr[-3000:]
        return pickle.loads(target.read_bytes())


def spawn_worker(processor: Any, path: list[int]) -> list[str]:
    """Run in a ``spawn`` pool: the processed-score digests of ``processor`` along ``path``."""
    return _scores(processor, [path], processor.matcher.vocab_size)


# --- the serve environment (tests/vllm) -------------------------------------------------------
#
# vLLM's CPU build (requirements/serve.txt) runs the engine tests of tests/vllm. Elsewhere they
# skip; ``bash scripts/test.sh`` runs them in the serve environment with ``PSE_REQUIRE_SERVE=1``,
# where a vLLM that cannot be imported is a failure, not a skip.

SERVE_REQUIRED = os.environ.get("PSE_REQUIRE_SERVE") == "1"
#: vLLM's CPU engine in the test process: one engine process, one thread, 1 GiB of KV cache.
VLLM_ENV = {
    "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1", "VLLM_CPU_KVCACHE_SPACE": "1",
    "VLLM_ENABLE_V1_MULTIPROCESSING": "0", "OMP_NUM_THREADS": "1",
}


def require_vllm() -> Any:
    """Import and return vLLM (with :data:`VLLM_ENV` set); skip the calling module without it,
    unless ``PSE_REQUIRE_SERVE=1``."""
    for name, value in VLLM_ENV.items():
        os.environ.setdefault(name, value)
    try:
        import vllm
    except ImportError as exc:
        if SERVE_REQUIRED:
            raise ImportError(f"PSE_REQUIRE_SERVE=1 but the serve test environment has no vLLM: {exc}") from exc
        pytest.skip(f"serve environment only (vLLM): {exc}", allow_module_level=True)
    return vllm


if __name__ == "__main__":
    objects, paths = pickle.loads(Path(sys.argv[1]).read_bytes())
    Path(sys.argv[2]).write_bytes(pickle.dumps(observe(objects, paths)))
