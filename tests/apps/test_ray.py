"""Extraction over a Ray Dataset (pse_processors.ray) and ``extract --ray``, on a local 2-CPU Ray.

One Ray is started for the module (about 10 s) and shut down at the end. The tiny random-weight
Llama sampling at temperature 1.5 is the fuzzer: every output it finishes must validate.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.helpers import ROOT, validate

ray = pytest.importorskip("ray")
pytest.importorskip("ray.data")


SCHEMAS = [
    {
        "type": "object",
        "properties": {"label": {"enum": ["spam", "ham"]}, "score": {"type": "integer", "minimum": 0, "maximum": 9}},
        "required": ["label", "score"], "additionalProperties": False,
    },
    {
        "type": "object",
        "properties": {"ok": {"type": "boolean"}, "n": {"type": "integer", "minimum": -5, "maximum": 50}},
        "required": ["ok", "n"], "additionalProperties": False,
    },
    {"type": "array", "items": {"enum": ["red", "green", "blue"]}, "minItems": 1, "maxItems": 3},
]
TOO_LONG_FOR_40_TOKENS = {"type": "array", "items": {"type": "boolean"}, "minItems": 100}
REFUSED = {"type": "array", "items": {"type": "string"}, "unevaluatedItems": False}  # strict: not enforceable


@pytest.fixture(scope="module")
def local_ray(tmp_path_factory):
    """A local Ray with 2 CPUs; workers run this checkout, offline, with a fresh disk cache."""
    env_vars = {
        "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]),
        "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1", "OMP_NUM_THREADS": "1", "TOKENIZERS_PARALLELISM": "false",
        "PSE_PROCESSORS_CACHE_DIR": str(tmp_path_factory.mktemp("pse-cache")),
    }
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, runtime_env={"env_vars": env_vars})
    context = ray.data.DataContext.get_current()
    context.enable_progress_bars = False
    saved = context.execution_options.preserve_order
    yield ray
    context.execution_options.preserve_order = saved
    ray.shutdown()


def rows_with_bad_ones(count: int = 200) -> tuple[list[dict], dict[int, str]]:
    """``count`` rows over 3 schemas, and the ids of the 5 bad ones -> a word their error must hold."""
    rows = [
        {"id": i, "text": f"Message {i}: {'win a free prize now' if i % 2 else 'lunch at noon?'}",
         "schema": json.dumps(SCHEMAS[i % 3])}
        for i in range(count)
    ]
    bad = {7: "'text'", 50: "context of 512", 99: "bad schema: the schema is not JSON", 120: "unevaluatedItems",
           181: "max_new_tokens"}
    del rows[7]["text"]  # a missing column (null in the Arrow block)
    rows[50]["text"] = "word " * 600  # over the tiny model's 512-token context
    rows[99]["schema"] = '{"type": "object"'  # not JSON
    rows[120]["schema"] = json.dumps(REFUSED)  # not enforceable: refused by the compiler
    rows[181]["schema"] = json.dumps(TOO_LONG_FOR_40_TOKENS)  # cut off by max_new_tokens
    return rows, bad


def check_results(results: list[dict], count: int, bad: dict[int, str]) -> None:
    ids = [r["id"] for r in results]
    assert sorted(ids) == list(range(count)), "a row was lost or duplicated"
    for record in results:
        if record["id"] in bad:
            assert record["error"] and bad[record["id"]] in record["error"], record
            assert record["value"] is None and record["valid"] is False
        else:
            assert record["error"] is None and record["valid"] is True, record
            validate(json.loads(record["schema"]), record["value"])


@pytest.mark.timeout(300)
def test_200_rows_3_schemas_5_bad_rows_on_2_actors_in_order(local_ray, tiny_model_dir):
    from pse_processors.ray import extract

    rows, bad = rows_with_bad_ones()
    ray.data.DataContext.get_current().execution_options.preserve_order = True
    out = extract(
        ray.data.from_items(rows), schema_column="schema", prompt_template="Classify as JSON: {text}",
        model=tiny_model_dir, concurrency=2, batch_size=25, max_new_tokens=40, temperature=1.5, seed=3, threads=1,
    )
    results = out.take_all()
    assert [r["id"] for r in results] == list(range(200))  # preserve_order: input order
    check_results(results, 200, bad)


@pytest.mark.timeout(300)
def test_a_killed_actor_is_restarted_and_every_row_comes_back_once(local_ray, tiny_model_dir, tmp_path):
    from pse_processors.ray import PSEExtractor

    marker = str(tmp_path / "killed")

    class DiesOnce(PSEExtractor):
        """Kills its own actor (ray.kill) on its second batch, the first time only."""

        calls = 0

        def __call__(self, batch):
            DiesOnce.calls += 1
            if DiesOnce.calls == 2 and not os.path.exists(marker):
                Path(marker).touch()
                ray.kill(ray.get_runtime_context().current_actor, no_restart=False)
            return super().__call__(batch)

    rows = [{"id": i, "text": f"Message {i}"} for i in range(30)]
    ray.data.DataContext.get_current().execution_options.preserve_order = False
    out = ray.data.from_items(rows).map_batches(
        DiesOnce, batch_format="pyarrow", batch_size=10, compute=ray.data.ActorPoolStrategy(size=1),
        fn_constructor_kwargs={"schema": SCHEMAS[0], "prompt_template": "Classify as JSON: {text}",
                               "model": str(tiny_model_dir), "max_new_tokens": 40, "temperature": 1.5, "threads": 1},
        max_restarts=2, max_task_retries=2,
    )
    results = out.take_all()
    assert os.path.exists(marker), "the actor was never killed"
    for record in results:
        record["schema"] = json.dumps(SCHEMAS[0])
    check_results(results, 30, bad={})


def test_job_level_mistakes_are_refused_before_any_actor_starts(local_ray):
    from pse_processors.ray import extract

    docs = ray.data.from_items([{"text": "x"}])
    with pytest.raises(ValueError, match="give a schema"):
        extract(docs, prompt_template="{text}")
    with pytest.raises(ValueError, match=r"\{text\}"):
        extract(docs, SCHEMAS[0], prompt_template="no placeholder")
    with pytest.raises(ValueError, match="not a valid JSON Schema"):
        extract(docs, {"type": 12}, prompt_template="{text}")
    with pytest.raises(ValueError, match="unevaluatedItems"):
        extract(docs, REFUSED, prompt_template="{text}")


def test_extract_cli_with_ray_joins_the_cluster_and_writes_the_local_format(local_ray, tiny_model_dir, tmp_path):
    source, target = tmp_path / "docs.jsonl", tmp_path / "out.jsonl"
    lines = [json.dumps({"text": f"Message {n}: lunch at noon?", "id": f"m{n}"}) for n in range(1, 13)]
    lines[4] = "this line is not JSON {"
    lines[8] = json.dumps({"text": "word " * 600, "id": "m9"})  # over the 512-token context
    source.write_text("\n".join(lines) + "\n", encoding="utf-8")
    env = dict(os.environ, PYTHONPATH=str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", ""), HF_HUB_OFFLINE="1")
    address = ray.get_runtime_context().gcs_address
    result = subprocess.run(
        [sys.executable, "-m", "pse_processors", "extract", "--input", str(source), "--output", str(target),
         "--schema", json.dumps(SCHEMAS[0]), "--model", str(tiny_model_dir), "--max-new-tokens", "40",
         "--temperature", "1.5", "--seed", "3", "--prompt-template", "Classify as JSON: {text}", "--threads", "1",
         "--batch-size", "4", "--ray", address, "--quiet"],
        capture_output=True, text=True, env=env, timeout=300, cwd=tmp_path,
    )
    assert result.returncode == 0, result.stderr
    records = [json.loads(line) for line in target.read_text(encoding="utf-8").splitlines()]
    assert [r["line"] for r in records] == list(range(1, 13))
    assert {r["line"] for r in records if "error" in r} == {5, 9}
    assert "not JSON" in records[4]["error"] and "context of 512" in records[8]["error"]
    for record in records:
        if "value" in record:
            validate(SCHEMAS[0], json.dumps(record["value"]))
            assert record["id"] == f"m{record['line']}"


@pytest.mark.model
@pytest.mark.timeout(400)
def test_smollm2_extracts_10_rows_that_validate(local_ray, smol_dir):
    from pse_processors.ray import extract

    people = [("Alice", 31, "Oslo"), ("Bob", 42, "Paris"), ("Chen", 27, "Taipei"), ("Dana", 55, "Lima"),
              ("Emeka", 38, "Lagos"), ("Farah", 22, "Cairo"), ("Goran", 64, "Zagreb"), ("Hana", 19, "Tokyo"),
              ("Ivan", 47, "Kyiv"), ("Jo", 33, "Perth")]
    rows = [{"id": i, "text": f"{name} is {age} years old and lives in {city}."}
            for i, (name, age, city) in enumerate(people)]
    schema = {
        "type": "object",
        "properties": {"name": {"type": "string", "maxLength": 12}, "age": {"type": "integer", "minimum": 0, "maximum": 120}},
        "required": ["name", "age"], "additionalProperties": False,
    }
    out = extract(
        ray.data.from_items(rows), schema, prompt_template="Extract the person's name and age as JSON.\n\n{text}",
        model=smol_dir, concurrency=1, batch_size=10, max_new_tokens=24, threads=2, num_cpus=2,
    )
    results = sorted(out.take_all(), key=lambda r: r["id"])
    assert [r["id"] for r in results] == list(range(10))
    for record, (name, age, _) in zip(results, people):
        assert record["error"] is None and record["valid"] is True, record
        value = validate(schema, record["value"])
        assert isinstance(value["age"], int)
    # A real model reads most of them right (greedy): the constraint is not all that makes them valid.
    assert sum(json.loads(r["value"])["age"] == age for r, (_, age, _) in zip(results, people)) >= 7


@pytest.mark.parametrize("extra, message", [
    (["--regex", "[0-9]+"], "--ray extracts JSON"),
    (["--schema", '{"type": "integer"}', "--ray-actors", "0"], "--ray-actors must be at least 1"),
    (["--schema", '{"type": "integer"}', "--framework", "mlx"], "--framework torch"),
])
def test_extract_ray_usage_errors_exit_2(tmp_path, extra, message):
    source = tmp_path / "docs.jsonl"
    source.write_text('{"text": "a"}\n', encoding="utf-8")
    env = dict(os.environ, PYTHONPATH=str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", ""), HF_HUB_OFFLINE="1")
    result = subprocess.run(
        [sys.executable, "-m", "pse_processors", "extract", "--input", str(source), "--output", str(tmp_path / "o.jsonl"),
         "--ray", *extra], capture_output=True, text=True, env=env, timeout=120, cwd=tmp_path,
    )
    assert result.returncode == 2 and message in result.stderr and "Traceback" not in result.stderr, result.stderr
