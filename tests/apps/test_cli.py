"""The command line, run as a user runs it: a subprocess of ``python -m pse_processors``.

``python -m`` with this repository first on PYTHONPATH runs this checkout's code (an installed
``pse-processors`` script may belong to another checkout); a test below checks that the console
script in pyproject.toml points at the same ``main``. Batch tests use a tiny random-weight
Llama saved with the SmolLM2 tokenizer (fast, and a good fuzzer); one test runs SmolLM2.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from tests.helpers import ROOT, validate


LABEL_SCHEMA = {
    "type": "object",
    "properties": {"label": {"enum": ["spam", "ham"]}, "score": {"type": "integer", "minimum": 0, "maximum": 9}},
    "required": ["label", "score"],
    "additionalProperties": False,
}
BAD_LINES = {5: "this line is not JSON {", 13: json.dumps({"body": "no text field here"})}


def cli_env(tmp_path: Path) -> dict:
    env = dict(os.environ)
    env.update(
        PYTHONPATH=str(ROOT) + os.pathsep + env.get("PYTHONPATH", ""), HF_HUB_OFFLINE="1", TRANSFORMERS_OFFLINE="1",
        OMP_NUM_THREADS="1", PSE_PROCESSORS_CACHE_DIR=str(tmp_path / "cache"), PYTHONUNBUFFERED="1",
    )
    return env


def cli(tmp_path: Path, *args: str, timeout: float = 600) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "pse_processors", *args], capture_output=True, text=True, env=cli_env(tmp_path),
        timeout=timeout, cwd=tmp_path,
    )


def write_inputs(path: Path, count: int = 20) -> None:
    lines = []
    for number in range(1, count + 1):
        text = f"Message {number}: win a free prize now" if number % 2 else f"Message {number}: lunch at noon?"
        lines.append(BAD_LINES.get(number, json.dumps({"text": text, "id": f"m{number}"})))
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")


def check_output(path: Path, count: int = 20) -> list[dict]:
    """``count`` records for input lines 1..count in order; the bad lines (only) have an error."""
    records = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]
    assert [r["line"] for r in records] == list(range(1, count + 1))
    errors = {r["line"] for r in records if "error" in r}
    assert errors == set(BAD_LINES), [r for r in records if "error" in r]
    assert "not JSON" in records[4]["error"] and "'text'" in records[12]["error"]
    for record in records:
        if "value" in record:
            validate(LABEL_SCHEMA, json.dumps(record["value"]))
            assert record["id"] == f"m{record['line']}"
    return records


def extract_args(model: Path, source: Path, target: Path, *extra: str) -> list[str]:
    return [
        "extract", "--input", str(source), "--output", str(target), "--schema", json.dumps(LABEL_SCHEMA),
        "--model", str(model), "--max-new-tokens", "40", "--temperature", "1.5", "--seed", "3",
        "--prompt-template", "Classify as JSON: {text}", "--threads", "1", *extra,
    ]


def test_extract_resumes_after_a_kill_without_duplicates(tmp_path, tiny_model_dir):
    source, target = tmp_path / "docs.jsonl", tmp_path / "out.jsonl"
    write_inputs(source)
    process = subprocess.Popen(
        [sys.executable, "-m", "pse_processors", *extract_args(tiny_model_dir, source, target, "--batch-size", "1")],
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=cli_env(tmp_path), cwd=tmp_path,
    )
    deadline = time.monotonic() + 600
    while time.monotonic() < deadline and process.poll() is None:
        if target.exists() and target.read_bytes().count(b"\n") >= 3:
            process.send_signal(signal.SIGKILL)
            break
        time.sleep(0.005)
    process.wait(timeout=60)
    assert process.returncode == -signal.SIGKILL, process.stderr.read().decode()
    process.stderr.close()
    done = target.read_bytes()
    assert 3 <= done.count(b"\n") < 20
    complete = done[: done.rfind(b"\n") + 1]
    # A kill during a write leaves a partial last line: resume must cut it off and redo that line.
    with target.open("ab") as handle:
        handle.write(b'{"line": 99, "val')

    result = cli(tmp_path, *extract_args(tiny_model_dir, source, target, "--batch-size", "3", "--resume"))
    assert result.returncode == 0, result.stderr
    assert target.read_bytes().startswith(complete)  # the lines done before the kill are kept, not redone
    check_output(target)

    again = cli(tmp_path, *extract_args(tiny_model_dir, source, target, "--resume"))  # nothing left to do
    assert again.returncode == 0, again.stderr
    check_output(target)
    refused = cli(tmp_path, *extract_args(tiny_model_dir, source, target))  # would overwrite: refused
    assert refused.returncode == 2 and "--resume" in refused.stderr and "Traceback" not in refused.stderr


def test_extract_batches_with_too_long_lines_and_quiet(tmp_path, tiny_model_dir):
    source, target = tmp_path / "docs.jsonl", tmp_path / "out.jsonl"
    write_inputs(source)
    lines = source.read_text(encoding="utf-8").splitlines()
    lines[7] = json.dumps({"text": "word " * 600, "id": "m8"})  # over the tiny model's 512-token context
    source.write_text("\n".join(lines), encoding="utf-8")  # and no newline after the last line
    result = cli(tmp_path, *extract_args(tiny_model_dir, source, target, "--batch-size", "4", "--quiet"))
    assert result.returncode == 0, result.stderr
    assert result.stdout == "" and result.stderr == ""  # --quiet: no progress bar
    records = [json.loads(line) for line in target.read_text(encoding="utf-8").splitlines()]
    assert [r["line"] for r in records] == list(range(1, 21))
    assert {r["line"] for r in records if "error" in r} == set(BAD_LINES) | {8}
    assert "context of 512 tokens" in records[7]["error"] and records[7]["id"] == "m8"
    for record in records:
        if "value" in record:
            validate(LABEL_SCHEMA, json.dumps(record["value"]))


def test_compile_refused_schema_exits_2_with_keyword_and_pointer(tmp_path):
    schema = {"type": "object", "properties": {"tags": {"type": "array", "items": {"type": "string"},
                                                         "unevaluatedItems": False}}}
    result = cli(tmp_path, "compile", "--schema", json.dumps(schema))
    assert result.returncode == 2
    assert "'unevaluatedItems'" in result.stderr and "#/properties/tags" in result.stderr
    assert "Traceback" not in result.stderr and result.stdout == ""
    path = tmp_path / "schema.json"
    path.write_text(json.dumps({"type": "object", "properties": {"x": {"type": "strin"}}}))
    result = cli(tmp_path, "compile", "--schema", str(path))
    assert result.returncode == 2 and "'strin'" in result.stderr and "#/properties/x/type" in result.stderr


def test_compile_reports_the_backend(tmp_path, tiny_model_dir):
    """A recursive schema compiles for llguidance by default; --backend dfa unrolls it, and --tables
    (the TF/Flax tables) needs the automaton. The report keeps its 0.1 field and names."""
    cell = {"$defs": {"c": {"type": "object", "properties": {"v": {"type": "integer"}, "next": {"$ref": "#/$defs/c"}},
                            "required": ["v"]}}, "$ref": "#/$defs/c"}
    base = ("compile", "--schema", json.dumps(cell), "--tokenizer", str(tiny_model_dir), "--json", "--quiet")
    result = cli(tmp_path, *base)
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert report["engine"] == "grammar" and report["grammar_rules"] >= 1 and "automaton_states" not in report
    result = cli(tmp_path, *base, "--backend", "dfa", "--tables")
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["engine"] == "dfa" and "deprecated" not in result.stderr
    result = cli(tmp_path, *base, "--tables")
    assert result.returncode == 2 and "--backend dfa" in result.stderr and "Traceback" not in result.stderr


def test_engine_is_a_deprecated_alias_of_backend(tmp_path, tiny_model_dir):
    """--engine (and its old value "grammar") still works, with a one-line warning on stderr."""
    base = ("compile", "--regex", "[a-z]{1,5}", "--tokenizer", str(tiny_model_dir), "--json", "--quiet")
    for engine, backend, reported in (("grammar", "llguidance", "grammar"), ("dfa", "dfa", "dfa")):
        result = cli(tmp_path, *base, "--engine", engine)
        assert result.returncode == 0, result.stderr
        assert json.loads(result.stdout)["engine"] == reported
        assert result.stderr.splitlines() == [
            f"WARNING pse_processors.cli.constraint_args: --engine is deprecated: use --backend {backend}"
        ]
    result = cli(tmp_path, *base, "--engine", "dfa", "--backend", "dfa")
    assert result.returncode == 2 and "not allowed with" in result.stderr


def test_compile_reports_and_warms_the_cache(tmp_path, tiny_model_dir):
    result = cli(tmp_path, "compile", "--schema", json.dumps(LABEL_SCHEMA), "--tokenizer", str(tiny_model_dir), "--json", "--tables", "--backend", "dfa")
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert report["kind"] == "json" and report["vocab_size"] == 49152
    assert report["automaton_states"] > 10 and report["distinct_masks"] >= 2 and report["regex_chars"] > 20
    assert report["disk_cache"] == str(tmp_path / "cache")
    info = cli(tmp_path, "cache", "info", "--json")
    assert info.returncode == 0, info.stderr
    folders = json.loads(info.stdout)["folders"]
    assert all(folders[name]["files"] >= 1 for name in ("regexes", "grammars", "tries", "tables")), folders
    cleared = cli(tmp_path, "cache", "clear")
    assert cleared.returncode == 0 and not (tmp_path / "cache" / "grammars").exists()


LATER_PROCESS = """
import json, sys
import pse_processors as pse
import pse_processors.compiler.regexes as regexes
import pse_processors.matchers.automaton as automaton
import pse_processors.matchers.byte_automaton as byte_automaton
import pse_processors.vocabulary.token_trie as token_trie
from transformers import AutoTokenizer

def built(what):
    def fail(*args, **kwargs):
        raise AssertionError(f"a later process built the {what}: compile did not warm the cache")
    return fail

regexes.json_schema_to_regex = built("regex")
byte_automaton.ByteAutomaton.build = classmethod(built("byte automaton"))
token_trie.TokenTrie.build = classmethod(built("token trie"))
automaton.materialize = built("dense tables")
tokenizer = AutoTokenizer.from_pretrained(sys.argv[1])
matcher = pse.compile(json.loads(sys.argv[2]), tokenizer)  # the default backend, as generate runs it
dense = matcher.dense_automaton if sys.argv[3] == "tables" else None
accepts = lambda text: matcher.accepts(tokenizer.encode(text, add_special_tokens=False) + [tokenizer.eos_token_id])
print(json.dumps({"matcher": type(matcher).__name__, "states": matcher.num_states,
                  "valid": accepts(sys.argv[4]), "hello": accepts('"hello"')}))
"""


@pytest.mark.parametrize("tables", [False, True])
def test_compile_warms_everything_a_later_process_loads(tmp_path, tiny_model_dir, tables):
    """The default backend ("auto") starts a schema on llguidance while its automaton builds: compile
    waits for the automaton and writes it, with the regex, the token trie and the dense tables (which
    the automaton's mask precomputation builds: --tables or not), so that a later process builds
    nothing; the report's figures are the automaton's, and no temporary file is left."""
    valid = json.dumps({"label": "ham", "score": 3})
    validate(LABEL_SCHEMA, valid)
    args = ["compile", "--schema", json.dumps(LABEL_SCHEMA), "--tokenizer", str(tiny_model_dir), "--json", "--quiet"]
    result = cli(tmp_path, *args, *(["--tables"] if tables else []))
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert report["engine"] == "dfa" and report["automaton_states"] > 10 and "masks_computed" not in report
    expected = {"regex", "automaton", "token_trie", "dense_automaton"}
    assert set(report["cached_files"]) == expected and all(Path(path).is_file() for path in report["cached_files"].values())
    cache = tmp_path / "cache"
    assert not list(cache.rglob("*.tmp"))
    later = subprocess.run(
        [sys.executable, "-c", LATER_PROCESS, str(tiny_model_dir), json.dumps(LABEL_SCHEMA), "tables" if tables else "-", valid],
        capture_output=True, text=True, env=cli_env(tmp_path), timeout=600,
    )
    assert later.returncode == 0, later.stderr
    assert json.loads(later.stdout) == {"matcher": "AutomatonMatcher", "states": report["automaton_states"], "valid": True, "hello": False}
    assert "WARNING" not in later.stderr, later.stderr


def test_compile_with_a_refused_cache_folder_warns_and_reports_it(tmp_path, tiny_model_dir):
    cache = tmp_path / "cache"
    cache.mkdir()
    cache.chmod(0o777)
    result = cli(tmp_path, "compile", "--regex", "[a-z]{1,5}", "--tokenizer", str(tiny_model_dir), "--json", "--quiet")
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert report["disk_cache"] is None and "other users can write" in report["disk_cache_refused"]
    assert report["cached_files"] == {} and list(cache.iterdir()) == []
    assert result.stderr.count("not using the compile cache") == 1, result.stderr


def test_usage_errors_exit_2_without_traceback(tmp_path):
    cases = [
        (["generate", "--prompt", "x", "--schema", "missing.json"], "no such file"),
        (["generate", "--prompt", "x", "--schema", "{not json"], "not valid JSON"),
        (["generate", "--prompt", "x", "--pydantic", "no_such_module:Model"], "cannot import"),
        (["generate", "--prompt", "x", "--regex", "[a-z]+", "--model", str(tmp_path / "nowhere")], "not a folder"),
        (["extract", "--input", str(tmp_path / "nowhere.jsonl"), "--output", "o.jsonl", "--regex", "a"], "no such file"),
        (["extract", "--regex", "a"], "--input"),
        (["generate", "--prompt", "x"], "give a constraint: --schema"),  # --tools alone is one too
    ]
    for args, message in cases:
        result = cli(tmp_path, *args)
        assert result.returncode == 2, (args, result.stderr)
        assert message in result.stderr and "Traceback" not in result.stderr, (args, result.stderr)


def test_a_framework_that_is_not_installed_is_a_clear_usage_error(tmp_path):
    """--framework mlx where mlx cannot be imported: exit 2, naming the missing package and the extra."""
    script = textwrap.dedent(
        """
        import sys

        class Block:
            def find_spec(self, name, path=None, target=None):
                if name.split(".")[0] in ("mlx", "mlx_lm"):
                    raise ModuleNotFoundError(f"blocked: {name}", name=name)
                return None
        sys.meta_path.insert(0, Block())
        from pse_processors.cli import main
        sys.exit(main(["generate", "--prompt", "x", "--regex", "[a-z]+", "--framework", "mlx"]))
        """
    )
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, env=cli_env(tmp_path),
                            timeout=600, cwd=tmp_path)
    assert result.returncode == 2, result.stderr
    assert "needs mlx and mlx_lm" in result.stderr and "pse-processors[mlx]" in result.stderr
    assert "Traceback" not in result.stderr


def test_console_script_entry_point():
    tomllib = pytest.importorskip("tomllib")  # Python 3.11+
    from pse_processors.cli import main

    scripts = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["scripts"]
    module, _, name = scripts["pse-processors"].partition(":")
    import importlib

    assert getattr(importlib.import_module(module), name) is main


@pytest.mark.model
def test_generate_on_smollm2_prints_json_that_validates(tmp_path):
    schema = {
        "type": "object",
        "properties": {"name": {"type": "string", "maxLength": 20}, "age": {"type": "integer", "minimum": 0, "maximum": 150}},
        "required": ["name", "age"],
        "additionalProperties": False,
    }
    (tmp_path / "person.json").write_text(json.dumps(schema))
    result = cli(
        tmp_path, "generate", "--schema", "person.json", "--prompt", "Alice is 31 years old. Give her name and age as JSON.",
        "--max-new-tokens", "30",
    )
    assert result.returncode == 0, result.stderr
    value = validate(schema, result.stdout)
    assert value["age"] == 31 and "Alice" in value["name"]
    # The old single-text extract usage still works, with a regex constraint.
    result = cli(tmp_path, "extract", "Alice is 31 years old. How old is Alice? Digits only.", "--regex", "[0-9]{1,3}",
                 "--max-new-tokens", "4", "-q")
    assert result.returncode == 0 and result.stdout.strip().isdigit(), result.stderr


@pytest.mark.model
def test_generate_and_extract_with_mlx(tmp_path):
    """--framework mlx: the embedded SmolLM2 read from its GGUF by mlx-lm (runs once MLX support is installed)."""
    import importlib.util

    if importlib.util.find_spec("pse_processors.mlx") is None or importlib.util.find_spec("mlx_lm") is None:
        pytest.skip("no MLX support in this version or environment")
    schema = {"type": "object", "properties": {"name": {"type": "string", "maxLength": 20},
                                               "age": {"type": "integer", "minimum": 0, "maximum": 150}},
              "required": ["name", "age"], "additionalProperties": False}
    result = cli(tmp_path, "generate", "--framework", "mlx", "--schema", json.dumps(schema), "--prompt",
                 "Alice is 31 years old. Give her name and age as JSON.", "--max-new-tokens", "30", "-q")
    assert result.returncode == 0, result.stderr
    assert validate(schema, result.stdout) == {"name": "Alice", "age": 31}
    source, target = tmp_path / "in.jsonl", tmp_path / "out.jsonl"
    source.write_text('{"text": "Bob is 42."}\nnot json\n{"text": "Carol is 7."}\n')
    result = cli(tmp_path, "extract", "--framework", "mlx", "--input", str(source), "--output", str(target), "--schema",
                 json.dumps(schema), "--prompt-template", "Name and age as JSON: {text}", "--max-new-tokens", "30", "-q")
    assert result.returncode == 0, result.stderr
    records = [json.loads(line) for line in target.read_text().splitlines()]
    assert [r["line"] for r in records] == [1, 2, 3] and "error" in records[1]
    for record in (records[0], records[2]):
        validate(schema, json.dumps(record["value"]))


def test_recover_cuts_at_the_first_unusable_line_and_refuses_another_input(tmp_path):
    from pse_processors.cli.errors import UsageError
    from pse_processors.cli.jsonl import recover

    path = tmp_path / "out.jsonl"
    good = b'{"line": 1, "value": 1}\n{"line": 2, "error": "x"}\n'
    path.write_bytes(good + b'{"line": 3, "value": [1, \n{"line": 4, "value": 4}\n')  # a torn line, then more
    assert recover(path) == 2 and path.read_bytes() == good
    assert recover(path) == 2 and path.read_bytes() == good  # idempotent
    path.write_bytes(b'{"line": 1, "value": 1}\n{"line": 5, "value": 5}\n')
    with pytest.raises(UsageError, match="another input"):
        recover(path)
    path.write_bytes(b"")
    assert recover(path) == 0


def test_generate_with_a_lark_grammar(tmp_path, tiny_model_dir):
    """--grammar takes a .lark file or its text; a random model's output is in the grammar's language;
    a grammar that cannot be run exits 2 naming its line."""
    path = tmp_path / "answer.lark"
    path.write_text('start: WORD ("," WORD)?\nWORD: /(yes|no|maybe)/\n')
    for seed in ("1", "2", "3"):
        result = cli(tmp_path, "generate", "--grammar", str(path), "--prompt", "Answer:", "--model", str(tiny_model_dir),
                     "--temperature", "1.5", "--seed", seed, "--max-new-tokens", "12", "--quiet")
        assert result.returncode == 0, result.stderr
        words = result.stdout.strip().split(",")
        assert 1 <= len(words) <= 2 and set(words) <= {"yes", "no", "maybe"}, result.stdout
    result = cli(tmp_path, "compile", "--grammar", 'start: a\na: "x" b', "--quiet")
    assert result.returncode == 2 and "line 2" in result.stderr and "Traceback" not in result.stderr


def test_bad_constraints_exit_2_with_one_line_and_no_traceback(tmp_path, tiny_model_dir):
    """Issue 22: non-finite bounds, lone surrogates, deep nesting (a 50,000-level file breaks
    json.loads itself), malformed and unsupported regexes: exit 2 with a one-line message that
    names the cause, never exit 1 with a RecursionError, decimal.InvalidOperation or UnicodeEncodeError."""
    deep = tmp_path / "deep.json"
    deep.write_text('{"items": ' * 50_000 + "{}" + "}" * 50_000)
    cases = [
        (["--schema", str(deep)], "nests deeper than 256 levels"),
        (["--schema", '{"type": "number", "maximum": NaN}'], "maximum must be a finite number, not nan: JSON has no NaN or Infinity (at #/maximum)"),
        (["--schema", '{"type": "integer", "minimum": 1e999}'], "minimum must be a finite number, not inf"),
        (["--schema", '{"type": "number", "minimum": 1e308}'], "bounds with that many significant digits"),
        (["--schema", '{"enum": ["ok", "\\ud800"]}'], "holds a lone surrogate U+D800, which no UTF-8 text can contain (at #/enum/1)"),
        (["--regex", "(unclosed"], "invalid regex '(unclosed': unclosed group (at position 0)"),
        (["--regex", "(?=a)b"], "has a look-ahead '(?=' at position 0"),
        (["--regex", "a$b"], "has the anchor '$' at position 1"),
        (["--choices", "ok", "\udcff"], "Choice item 1 ('\\udcff') holds a lone surrogate U+DCFF"),  # argv byte 0xff
    ]
    for args, message in cases:
        result = cli(tmp_path, "compile", *args, "--quiet")
        assert result.returncode == 2, (args, result.stderr)
        assert result.stderr.count("\n") == 1 and result.stderr.startswith("pse-processors compile: error: bad constraint: ")
        assert message in result.stderr and "Traceback" not in result.stderr, (args, result.stderr)
    # ^...$ (refused as unsatisfiable before): the anchors are no-ops of a full match.
    result = cli(tmp_path, "compile", "--regex", "^[0-9]{3}$", "--tokenizer", str(tiny_model_dir), "--json", "--quiet",
                 "--backend", "dfa")
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["regex_chars"] == len("[0-9]{3}")
