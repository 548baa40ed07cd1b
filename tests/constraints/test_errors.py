"""Every exception a user can meet crosses process boundaries as raised (Ray and multiprocessing
pickle the errors of their workers)."""

from __future__ import annotations

import pickle

import pytest

import pse_processors as pse
from pse_processors import errors

ERRORS = [
    errors.SchemaError("not a schema", "#/items"),
    errors.UnsupportedSchemaError("uniqueItems", "#/properties/tags", "not enforced"),
    errors.UnsupportedRegexError("look-ahead", 3, "a(?=b)", "look-aheads are refused (at position 3)"),
    errors.UnsatisfiableConstraintError("nothing matches"),
    errors.CompileLimitError("too large"),
    errors.VocabularyError("not this model's tokenizer"),
    errors.InvalidLogitsError("NaN"),
    errors.ConstraintConflictError("EOS forbidden"),
    errors.InvalidOutputError("cut off"),
]


@pytest.mark.parametrize("error", ERRORS, ids=lambda e: type(e).__name__)
def test_errors_pickle_with_their_message_and_attributes(error):
    clone = pickle.loads(pickle.dumps(error))
    assert type(clone) is type(error) and str(clone) == str(error)
    assert clone.__dict__ == error.__dict__


def test_a_real_refusal_pickles():
    with pytest.raises(errors.UnsupportedSchemaError) as caught:
        pse.compile({"type": "string", "format": "regex"}, pse.Vocabulary([b"a", None], eos_token_ids=[1]))
    clone = pickle.loads(pickle.dumps(caught.value))
    assert (clone.keyword, clone.pointer, str(clone)) == (caught.value.keyword, caught.value.pointer, str(caught.value))
