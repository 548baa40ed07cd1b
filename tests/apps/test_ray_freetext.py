"""Structure inside free text on Ray: :func:`pse_processors.ray.extract` with a
:class:`~pse_processors.Tools` and a :class:`~pse_processors.Reasoning` constraint on one actor
of a local 2-CPU Ray, the unigram tiny model of ``test_cli_freetext`` at temperature 1.5. Each
``value`` is the parse result as JSON; the calls and the answers validate with jsonschema.
"""

from __future__ import annotations

import json

import pytest

from tests.apps.test_cli_freetext import ADD, ITEM, RESULT, SCHEMAS, TOOLS, unigram_dir  # noqa: F401 - a fixture
from tests.helpers import validate

ray = pytest.importorskip("ray")
pytest.importorskip("ray.data")
from tests.apps.test_ray import local_ray  # noqa: E402,F401 - the module's local Ray (a fixture)


@pytest.mark.timeout(300)
def test_tool_calls_and_reasoning_through_the_extractor(local_ray, unigram_dir):  # noqa: F811
    import pse_processors as pse
    from pse_processors.ray import extract

    rows = [{"id": i, "text": f"doc {i}"} for i in range(6)]
    ray.data.DataContext.get_current().execution_options.preserve_order = True
    jobs = {
        "tools": pse.Tools(TOOLS, tool_choice="required", format="llama3_json", parallel=False),
        "reasoning": pse.Reasoning(ITEM, max_tokens=4),
    }
    for kind, constraint in jobs.items():
        out = extract(ray.data.from_items(rows), constraint, prompt_template="Go: {text}", model=unigram_dir,
                      batch_size=3, max_new_tokens=40, temperature=1.5, seed=1, threads=1)
        results = out.take_all()
        assert [r["id"] for r in results] == list(range(6))
        for record in results:
            assert record["error"] is None and record["valid"] is True, record
            value = validate(RESULT, record["value"])
            if kind == "tools":
                [call] = value["tool_calls"]
                validate(SCHEMAS[call["name"]], json.dumps(call["arguments"]))
            else:
                assert value["reasoning"] is not None
                validate(ITEM, json.dumps(value["answer"]))


def test_a_structured_constraint_takes_no_schema_column():
    import pse_processors as pse
    from pse_processors.ray import extract

    with pytest.raises(ValueError, match="schema_column"):
        extract(ray.data.from_items([{"text": "x"}]), pse.Tools(TOOLS, format="hermes"), schema_column="schema",
                prompt_template="{text}")
