"""The TensorFlow and Flax processors pickle as their recipe and mask identically in a fresh process."""

from __future__ import annotations

import pickle

import pytest

from tests.helpers import legacy_tokenizer, require_legacy

require_legacy("tensorflow", "jax", "flax")

from tests import helpers  # noqa: E402
import pse_processors as pse  # noqa: E402
from pse_processors import FlaxPSELogitsProcessor, TFPSELogitsProcessor  # noqa: E402

SCHEMA = {
    "type": "object",
    "properties": {"ok": {"type": "boolean"}, "n": {"type": "integer"}, "s": {"type": "string", "maxLength": 8}},
    "required": ["ok", "n"],
}


@pytest.fixture(scope="module")
def processors():
    tok = legacy_tokenizer()
    options = {"max_new_tokens": helpers.PICKLE_MAX_NEW_TOKENS}
    return {
        "grammar": pse.compile(SCHEMA, tok, backend="dfa"),
        "tf": TFPSELogitsProcessor(SCHEMA, tok, **options),
        "flax": FlaxPSELogitsProcessor(SCHEMA, tok, **options),
    }


def test_round_trip_in_a_fresh_process_gives_identical_masks_and_scores(processors):
    paths = {
        name: helpers.random_paths(helpers.matcher_of(obj), 2, helpers.PICKLE_MAX_NEW_TOKENS - 2, seed=i)
        for i, (name, obj) in enumerate(processors.items())
    }
    here = helpers.observe(processors, paths)
    there = helpers.observe_in_fresh_process(processors, paths)
    for name in here:
        assert there[name] == here[name], name
    assert "scores" in here["tf"] and "scores" in here["flax"]


def test_options_travel_and_tables_do_not(processors):
    processor = processors["tf"]
    processor._tables(processor.matcher.vocab_size)  # device tables now in the grammar's device cache
    data = pickle.dumps(processor)
    assert len(data) < len(pickle.dumps(processor.matcher.vocabulary)) + 20_000
    clone = pickle.loads(data)
    assert clone._core.max_new_tokens == helpers.PICKLE_MAX_NEW_TOKENS and clone._core.prompt_length is None


def test_engines_with_tf_and_jax_adapters_pickle():
    from pse_processors.adapters import JAXAdapter, TensorFlowAdapter

    for adapter in (TensorFlowAdapter(device="/CPU:0"), JAXAdapter(dtype="float32", platform="cpu")):
        engine = pse.StructuringEngine(SCHEMA, adapter=adapter, tokenizer=legacy_tokenizer())
        clone = pickle.loads(pickle.dumps(engine))
        assert type(clone.adapter) is type(adapter) and clone.adapter.device == adapter.device
        assert clone.matcher(clone.tokenizer) is engine.matcher(engine.tokenizer)
        assert clone.matcher(clone.tokenizer).backend == "dfa"
