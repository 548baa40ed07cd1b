"""JSON-Schema-Test-Suite (draft 2020-12): no invalid instance is ever accepted.

The suite's draft 2020-12 files are vendored under ``tests/data/json-schema-test-suite`` (MIT,
see its SOURCE.md). The per-keyword table is published in docs/conformance.md
(``python -m benchmarks.conformance tests/data/json-schema-test-suite``).
"""

from __future__ import annotations

import pytest

from benchmarks import conformance
from tests.helpers import ROOT

SUITE = ROOT / "tests" / "data" / "json-schema-test-suite"


@pytest.fixture(scope="module", params=["dfa", "llguidance"])
def results(request):
    """The suite's results on each back end: the byte automaton and llguidance."""
    if not SUITE.exists():
        pytest.fail(f"the vendored JSON-Schema-Test-Suite is missing at {SUITE}")
    return conformance.run(SUITE, backend=request.param)


def test_no_invalid_instance_is_accepted(results):
    escapes = [e for r in results.values() for e in r.escapes]
    assert not escapes, "\n".join(escapes)


def test_valid_instances_are_mostly_accepted(results):
    valid = sum(r.valid for r in results.values())
    accepted = sum(r.valid_accepted for r in results.values())
    refused = sum(r.refused for r in results.values())
    groups = sum(r.groups for r in results.values())
    # Floors from the run recorded in docs/conformance.md: a drop is a regression.
    assert accepted >= 285 and accepted / valid >= 0.6, (accepted, valid)
    assert refused <= 200, (refused, groups)


@pytest.mark.parametrize("keyword", ["type", "enum", "const", "required", "minimum", "maxLength", "anyOf", "allOf"])
def test_core_keywords_compile(results, keyword):
    assert results[keyword].refused <= 3 and results[keyword].invalid_rejected == results[keyword].invalid
