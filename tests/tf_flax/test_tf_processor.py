"""TFPSELogitsProcessor in TensorFlow generate: eager and XLA, sampling, beam search, batches.

Random-weight models sampling at a high temperature walk the automaton almost at random: every
finished row must validate with jsonschema, every unfinished row must be a live prefix.
"""

from __future__ import annotations

import functools
import math

import numpy as np
import pytest

from tests.helpers import FUZZ_SCHEMAS, PAD, check_in_graph_rows, left_padded_arrays, legacy_tokenizer, require_legacy

require_legacy("tensorflow", "tf_keras")

import tensorflow as tf  # noqa: E402
from transformers import GPT2Config, TFGPT2LMHeadModel, TFLogitsProcessorList  # noqa: E402

from pse_processors import InvalidLogitsError, TFPSELogitsProcessor, VocabularyError  # noqa: E402
from pse_processors.runtime.device_tables import device_tables  # noqa: E402

tf.config.threading.set_intra_op_parallelism_threads(1)
tf.config.threading.set_inter_op_parallelism_threads(1)

NEW = 32
SCHEMAS = list(range(len(FUZZ_SCHEMAS)))  # 23 schemas
XLA_SCHEMAS = [0, 2, 4, 6, 8, 9, 11, 13, 15, 16, 17, 19]  # 12: each costs one XLA compile
BEAM_SCHEMAS = [1, 8, 12, 17]


@functools.cache
def tiny_gpt2() -> TFGPT2LMHeadModel:
    """A random-weight GPT-2 over SmolLM2's vocabulary, 64 logits wider than the tokenizer."""
    tok = legacy_tokenizer()
    tf.keras.utils.set_random_seed(3)
    config = GPT2Config(
        vocab_size=len(tok) + 64, n_embd=32, n_layer=2, n_head=2, n_positions=256,
        bos_token_id=1, eos_token_id=tok.eos_token_id, pad_token_id=PAD,
    )
    model = TFGPT2LMHeadModel(config)
    model(tf.constant([[1, 2]]))  # build the weights
    return model


def processor(schema_index: int) -> TFPSELogitsProcessor:
    return TFPSELogitsProcessor(FUZZ_SCHEMAS[schema_index], legacy_tokenizer(), max_new_tokens=NEW)


def sample_kwargs(proc: TFPSELogitsProcessor) -> dict:
    return dict(
        logits_processor=TFLogitsProcessorList([proc]), max_new_tokens=NEW, do_sample=True, temperature=1.5,
        top_k=0, eos_token_id=legacy_tokenizer().eos_token_id, pad_token_id=PAD,
    )


@functools.cache
def xla_sampler(schema_index: int):
    """One XLA-compiled generate per schema, shared by every test that samples that schema."""
    model, proc = tiny_gpt2(), processor(schema_index)
    kwargs = sample_kwargs(proc)

    @tf.function(jit_compile=True)
    def generate(ids, mask, seed):
        return model.generate(input_ids=ids, attention_mask=mask, seed=seed, **kwargs)

    return generate, proc


@pytest.mark.parametrize("schema_index", SCHEMAS)
def test_eager_sampling_batch_left_padded(schema_index):
    model, proc = tiny_gpt2(), processor(schema_index)
    ids, mask = left_padded_arrays()
    out = model.generate(
        input_ids=tf.constant(ids), attention_mask=tf.constant(mask), seed=[schema_index, 1], **sample_kwargs(proc)
    )
    assert out.shape[1] <= ids.shape[1] + NEW
    EAGER_FINISHED[schema_index] = check_in_graph_rows(proc, FUZZ_SCHEMAS[schema_index], out.numpy(), ids.shape[1])


EAGER_FINISHED: dict = {}


def test_eager_sampling_finishes_most_schemas():
    """The eager fuzzing above is only meaningful if rows do finish (checked when it all ran)."""
    if len(EAGER_FINISHED) < len(SCHEMAS):
        pytest.skip("runs after the whole eager sampling test")
    assert sum(1 for n in EAGER_FINISHED.values() if n) >= len(SCHEMAS) // 2, EAGER_FINISHED


@pytest.mark.parametrize("schema_index", XLA_SCHEMAS)
def test_xla_sampling_batch_left_padded(schema_index):
    generate, proc = xla_sampler(schema_index)
    ids, mask = left_padded_arrays()
    finished = 0
    for seed in range(3):  # the same compiled function: no retrace
        out = generate(tf.constant(ids), tf.constant(mask), tf.constant([schema_index, seed]))
        finished += check_in_graph_rows(proc, FUZZ_SCHEMAS[schema_index], out.numpy(), ids.shape[1])
    assert finished >= 1, "no row finished: the fuzz schema is too open for a random model"
    assert generate.experimental_get_tracing_count() == 1


@pytest.mark.parametrize("schema_index", BEAM_SCHEMAS)
def test_beam_search_eager_and_xla(schema_index):
    model, proc = tiny_gpt2(), processor(schema_index)
    ids, mask = left_padded_arrays(["Give me JSON:", "{"])
    kwargs = dict(
        logits_processor=TFLogitsProcessorList([proc]), max_new_tokens=NEW, num_beams=3, num_return_sequences=2,
        eos_token_id=legacy_tokenizer().eos_token_id, pad_token_id=PAD, do_sample=False,
    )
    eager = model.generate(input_ids=tf.constant(ids), attention_mask=tf.constant(mask), **kwargs)
    xla = tf.function(model.generate, jit_compile=True)(input_ids=tf.constant(ids), attention_mask=tf.constant(mask), **kwargs)
    for out in (eager, xla):
        assert out.shape[0] == 4
        check_in_graph_rows(proc, FUZZ_SCHEMAS[schema_index], out.numpy(), ids.shape[1])


@pytest.mark.parametrize("schema_index", [8, 17])
def test_beam_sampling_eager(schema_index):
    model, proc = tiny_gpt2(), processor(schema_index)
    ids, mask = left_padded_arrays(["Give me JSON:", "{"])
    out = model.generate(
        input_ids=tf.constant(ids), attention_mask=tf.constant(mask), logits_processor=TFLogitsProcessorList([proc]),
        max_new_tokens=NEW, num_beams=2, do_sample=True, temperature=1.5, top_k=0, seed=[schema_index, 2],
        eos_token_id=legacy_tokenizer().eos_token_id, pad_token_id=PAD,
    )
    check_in_graph_rows(proc, FUZZ_SCHEMAS[schema_index], out.numpy(), ids.shape[1])


def test_greedy_xla_equals_eager():
    model, proc = tiny_gpt2(), processor(9)  # greedy finishes it (schema 8 never did: nothing validated)
    ids, mask = left_padded_arrays()
    kwargs = dict(logits_processor=TFLogitsProcessorList([proc]), max_new_tokens=NEW, do_sample=False,
                  eos_token_id=legacy_tokenizer().eos_token_id, pad_token_id=PAD)
    eager = model.generate(input_ids=tf.constant(ids), attention_mask=tf.constant(mask), **kwargs).numpy()
    xla = tf.function(model.generate, jit_compile=True)(input_ids=tf.constant(ids), attention_mask=tf.constant(mask), **kwargs)
    xla = xla.numpy()  # all NEW steps: eager stops once every row has finished, XLA pads them
    np.testing.assert_array_equal(eager, xla[:, : eager.shape[1]])
    assert (xla[:, eager.shape[1]:] == PAD).all()
    finished = check_in_graph_rows(proc, FUZZ_SCHEMAS[9], eager, ids.shape[1])
    assert finished >= 1, "no row finished: the fuzz schema is too open for a random model"


@pytest.mark.parametrize("dtype", [tf.float32, tf.float16, tf.bfloat16])
def test_score_dtypes_eager_and_xla(dtype):
    proc = processor(8)
    width = len(legacy_tokenizer()) + 64
    tables = device_tables(proc.matcher, width)
    rng = np.random.default_rng(0)
    prompt = 3
    buffer = np.full((2, prompt + NEW), PAD, dtype=np.int32)
    tokens = legacy_tokenizer()('{"name":"ab', add_special_tokens=False)["input_ids"]
    buffer[0, prompt:prompt + len(tokens)] = tokens
    cur = prompt + len(tokens)
    scores = tf.constant(rng.normal(size=(2, width)), dtype=dtype)
    compiled = tf.function(proc.__call__, jit_compile=True)
    for out in (proc(tf.constant(buffer), scores, cur), compiled(tf.constant(buffer), scores, tf.constant(cur))):
        assert out.dtype == dtype
        allowed = np.isfinite(out.numpy().astype(np.float32))
        np.testing.assert_array_equal(allowed[0], tables.allowed_mask(tables.walk(tokens)))
        np.testing.assert_array_equal(allowed[1], tables.allowed_mask(tables.walk([PAD] * len(tokens))))
        kept = out.numpy()[allowed]
        np.testing.assert_array_equal(kept, scores.numpy()[allowed])


def test_user_errors():
    proc = processor(0)
    width = len(legacy_tokenizer())
    ids = tf.zeros((1, 4 + NEW), tf.int32)
    with pytest.raises(InvalidLogitsError, match="expected input_ids"):
        proc(tf.zeros((4 + NEW,), tf.int32), tf.zeros((1, width)), 4)
    with pytest.raises(InvalidLogitsError, match="floating"):
        proc(ids, tf.zeros((1, width), tf.int32), 4)
    with pytest.raises(VocabularyError, match="only 100 wide"):
        proc(ids, tf.zeros((1, 100)), 4)
    with pytest.raises(InvalidLogitsError, match="max_new_tokens"):
        proc(ids, tf.zeros((1, width)), 2)  # cur_len inside the prompt
    with pytest.raises(InvalidLogitsError, match="max_new_tokens"):
        proc(tf.zeros((1, 8), tf.int32), tf.zeros((1, width)), 4)  # buffer narrower than max_new_tokens
    with pytest.raises(ValueError, match="max_new_tokens"):
        TFPSELogitsProcessor(FUZZ_SCHEMAS[0], legacy_tokenizer())
    with pytest.raises(TypeError, match="tokenizer"):
        TFPSELogitsProcessor(FUZZ_SCHEMAS[0], max_new_tokens=3)
    assert math.isinf(float(proc(ids, tf.zeros((1, width)), 4)[0, 0]))  # pad id 0 is not allowed here
