"""A vLLM request's ``extra_args["pse"]``: read, checked without a tokenizer, and parsed back (no vLLM needed)."""

from __future__ import annotations

import json
from types import SimpleNamespace

import pytest

import pse_processors as pse
from pse_processors.errors import CompileLimitError, InvalidOutputError, PSEError, SchemaError, UnsupportedSchemaError
from pse_processors.vllm import RequestConflictError, extra_args, parse, request_from_extra_args, vllm_xargs
from pse_processors.vllm.requests import check_request

SCHEMA = {"type": "object", "properties": {"name": {"type": "string", "maxLength": 8}, "age": {"type": "integer"}},
          "required": ["name", "age"]}


def test_requests_without_pse_are_not_constrained() -> None:
    assert request_from_extra_args(None) is None
    assert request_from_extra_args({}) is None
    assert request_from_extra_args({"kv_transfer_params": {"x": 1}}) is None


def test_a_schema_as_dict_as_json_text_and_through_vllm_xargs_is_one_request() -> None:
    as_dict = request_from_extra_args({"pse": {"json_schema": SCHEMA}})
    as_text = request_from_extra_args({"pse": {"json_schema": json.dumps(SCHEMA)}})
    as_xargs = request_from_extra_args(vllm_xargs(SCHEMA))
    assert as_dict.key == as_text.key == as_xargs.key
    assert as_dict.constraint == SCHEMA and as_dict.kind == "json_schema"
    # vllm_xargs values may only be strings, numbers or lists
    assert isinstance(vllm_xargs(SCHEMA)["pse"], str)


@pytest.mark.parametrize(
    "constraint, kind",
    [(pse.Regex("[0-9]{3}"), "regex"), (pse.Choice(["yes", "no"]), "choice"),
     (pse.Grammar('start: "a" | "b"'), "grammar"), (SCHEMA, "json_schema"), (pse.Schema(SCHEMA), "json_schema")],
)
def test_every_kind_round_trips_through_extra_args_and_compiles(constraint, kind) -> None:
    args = extra_args(constraint)
    json.dumps(args)  # plain JSON: what msgspec carries to the engine
    request = request_from_extra_args(args)
    assert request.kind == kind
    assert check_request(request) is not None


def test_only_changed_options_are_sent_and_they_change_the_key() -> None:
    assert "options" not in extra_args(SCHEMA)["pse"]
    args = extra_args(SCHEMA, whitespace="compact")
    assert args["pse"]["options"] == {"whitespace": "compact"}
    request = request_from_extra_args(args)
    assert request.options.whitespace == "compact"
    assert request.key != request_from_extra_args(extra_args(SCHEMA)).key
    assert request_from_extra_args({"pse": json.dumps(args["pse"])}).options.whitespace == "compact"


def test_pydantic_models_send_their_schema_and_parse_to_instances() -> None:
    pydantic = pytest.importorskip("pydantic")

    class Person(pydantic.BaseModel):
        name: str
        age: int

    args = extra_args(Person)
    assert args["pse"]["json_schema"] == Person.model_json_schema()
    value = parse(SimpleNamespace(text='{"name": "Al", "age": 3}', finish_reason="stop"), Person)
    assert isinstance(value, Person) and value.age == 3


@pytest.mark.parametrize(
    "pse_value, words",
    [
        ("{not json", "not valid JSON"),
        (42, "must be an object"),
        ({}, "exactly one of"),
        ({"regex": "a", "choice": ["a"]}, "exactly one of"),
        ({"json": {}}, "unknown keys 'json'"),
        ({"json_schema": "{oops"}, "'json_schema'] is not valid JSON"),
        ({"json_schema": [1, 2]}, "must be a JSON Schema"),
        ({"regex": 5}, "must be a string"),
        ({"choice": "yes"}, "must be a list of strings"),
        ({"choice": ["yes", 3]}, "non-empty list of non-empty strings"),
        ({"grammar": ""}, "non-empty Lark grammar"),
        ({"regex": "a", "options": {"max_states": 10**9}}, "may not set 'max_states'"),
        ({"regex": "a", "options": {"whitespace": "wide"}}, "whitespace"),
        ({"regex": "a", "options": "[1]"}, "must be an object"),
    ],
)
def test_a_malformed_request_is_a_named_value_error(pse_value, words) -> None:
    with pytest.raises(SchemaError, match=None) as info:
        request_from_extra_args({"pse": pse_value})
    assert words in str(info.value)
    assert isinstance(info.value, ValueError) and isinstance(info.value, PSEError)


@pytest.mark.parametrize(
    "pse_value, error, words",
    [
        ({"json_schema": {"$dynamicRef": "#meta"}}, UnsupportedSchemaError, "$dynamicRef"),
        ({"json_schema": {"type": "strin"}}, SchemaError, "strin"),
        ({"regex": "(unclosed"}, SchemaError, ""),
        ({"grammar": "start: undefined_rule"}, SchemaError, "undefined_rule"),
        ({"json_schema": {"type": "string", "pattern": "^" + "(a|b)" * 60_000 + "$"}}, CompileLimitError, ""),
    ],
)
def test_check_request_raises_what_compiling_for_the_model_raises(pse_value, error, words) -> None:
    request = request_from_extra_args({"pse": pse_value})
    with pytest.raises(error) as info:
        check_request(request)
    assert words in str(info.value)
    assert isinstance(info.value, ValueError)


def test_request_conflicts_are_value_errors_for_vllm() -> None:
    # vLLM answers a ValueError from validate_params with HTTP 400; any other type is a 500.
    assert issubclass(RequestConflictError, ValueError) and issubclass(RequestConflictError, pse.errors.ConstraintConflictError)


def test_parse_reads_vllm_and_openai_outputs() -> None:
    done = SimpleNamespace(text='{"name": "Bo", "age": 7}', finish_reason="stop")
    assert parse(SimpleNamespace(outputs=[done]), SCHEMA) == {"name": "Bo", "age": 7}
    assert parse(done, {"pse": {"json_schema": SCHEMA}}) == {"name": "Bo", "age": 7}
    assert parse(done, vllm_xargs(SCHEMA)) == {"name": "Bo", "age": 7}
    chat = SimpleNamespace(choices=[SimpleNamespace(message=SimpleNamespace(content="no"), finish_reason="stop")])
    assert parse(chat, pse.Choice(["yes", "no"])) == "no"
    assert parse("123", pse.Regex("[0-9]+")) == "123"
    assert parse(" 123", pse.Regex("[0-9]+")) == "123"  # a dummy-prefix tokenizer's leading space


@pytest.mark.parametrize(
    "text, reason, words",
    [
        ('{"name": "Bo", "age": 7', "length", "cut off by max_tokens"),
        ('{"name": "Bo"}', "stop", "does not satisfy"),
        ('{"name": "Bo", "age": 7} trailing', "stop", "does not satisfy"),
        ('{"name": "Bobbobbobbob", "age": 7}', "stop", "does not satisfy"),  # maxLength 8
    ],
)
def test_parse_refuses_outputs_the_constraint_rejects(text, reason, words) -> None:
    with pytest.raises(InvalidOutputError, match=words):
        parse(SimpleNamespace(text=text, finish_reason=reason), SCHEMA)


def test_parse_refuses_an_output_cut_by_max_tokens_even_where_it_happens_to_be_complete() -> None:
    # "12" matches [0-9]+, but max_tokens stopped a number the constraint let go on: not the value.
    assert parse(SimpleNamespace(text="12", finish_reason="stop"), pse.Regex("[0-9]+")) == "12"
    with pytest.raises(InvalidOutputError, match="cut off by max_tokens"):
        parse(SimpleNamespace(text="12", finish_reason="length"), pse.Regex("[0-9]+"))


def test_parse_needs_an_output() -> None:
    with pytest.raises(TypeError, match="has no text"):
        parse(SimpleNamespace(), SCHEMA)


# -- structure in free text: Reasoning, Delimited, Tools ----------------------------------------

TOOLS = [{"name": "add", "description": "Add.", "parameters": {"type": "object", "properties": {"a": {"type": "integer"}},
                                                                "required": ["a"]}}]


@pytest.mark.parametrize(
    "constraint, kind",
    [(pse.Reasoning(SCHEMA, max_tokens=32), "reasoning"),
     (pse.Reasoning(pse.Tools(TOOLS, format="hermes"), start="<t>", end="</t>"), "reasoning"),
     (pse.Reasoning(pse.Delimited(pse.Choice(["a", "b"]))), "reasoning"),
     (pse.Delimited(pse.Regex("[0-9]+"), min_count=1, max_count=2), "delimited"),
     (pse.Tools(TOOLS, tool_choice="required", parallel=False), "tools")],
)
def test_structure_in_free_text_round_trips_through_vllm_xargs_and_is_checked(constraint, kind) -> None:
    args = vllm_xargs(constraint)
    assert isinstance(args["pse"], str) and kind in json.loads(args["pse"])
    request = request_from_extra_args(args)
    assert request.kind == kind and request.constraint == constraint
    assert check_request(request) is not None  # Tools without a format: checked as hermes calls


def test_a_tool_list_alone_is_tools_with_its_defaults() -> None:
    assert request_from_extra_args({"pse": {"tools": TOOLS}}).constraint == pse.Tools(TOOLS)


@pytest.mark.parametrize(
    "pse_value, error, words",
    [
        ({"reasoning": {"answr": {"regex": "a"}}}, SchemaError, "unknown keys 'answr'; Reasoning takes 'answer', 'start'"),
        ({"reasoning": {"start": "<t>"}}, SchemaError, "extra_args['pse']['reasoning'] needs 'answer'"),
        ({"reasoning": {"answer": {"regex": "a"}, "max_tokens": 0}}, SchemaError, "max_tokens (the thinking budget) must be an int >= 1"),
        ({"reasoning": {"answer": {"regex": "a"}, "start": ""}}, SchemaError, "start marker"),
        ({"reasoning": {"answer": {"reasoning": {"answer": {"regex": "a"}}}}}, SchemaError,
         "['reasoning']['answer'] must hold exactly one of 'json_schema', 'regex', 'choice', 'grammar', 'delimited', 'tools'"),
        ({"reasoning": {"answer": "a"}}, SchemaError, "['reasoning']['answer'] must be an object such as"),
        ({"delimited": {"constraint": {"tools": TOOLS}}}, SchemaError, "['delimited']['constraint'] must hold exactly one of"),
        ({"delimited": {"constraint": {"regex": "a"}, "min_count": 2, "max_count": 1}}, SchemaError, "max_count"),
        ({"tools": "add"}, SchemaError, "must be an object of Tools's arguments"),
        ({"tools": {"tools": ["add"]}}, SchemaError, "['tools']['tools'] must be a list of OpenAI function specs"),
        ({"tools": {"tools": TOOLS, "format": "xml"}}, SchemaError, "format must be one of hermes"),
        ({"tools": {"tools": TOOLS, "tool_choice": "sub"}}, SchemaError, "tool_choice 'sub'"),
        ({"tools": [{"name": "a", "parameters": {"$dynamicRef": "#m"}}]}, UnsupportedSchemaError, "'$dynamicRef' (at #/tools/a/parameters)"),
    ],
)
def test_a_malformed_structured_request_is_a_named_value_error(pse_value, error, words) -> None:
    with pytest.raises(error) as info:
        check_request(request_from_extra_args({"pse": pse_value}))
    assert words in str(info.value)
    assert isinstance(info.value, ValueError) and isinstance(info.value, PSEError)


def test_parse_splits_reasoning_from_its_answer_and_checks_both() -> None:
    constraint = pse.Reasoning(SCHEMA, max_tokens=2)  # the budget counts model tokens: text cannot show it
    done = SimpleNamespace(text='<think>Al is 3, so.</think>\n{"name": "Al", "age": 3}', finish_reason="stop")
    result = parse(done, constraint)
    assert result.reasoning == "Al is 3, so." and result.answer == {"name": "Al", "age": 3}
    with pytest.raises(InvalidOutputError):
        parse(SimpleNamespace(text='<think>x</think>{"name": 1, "age": 3}', finish_reason="stop"), constraint)
    with pytest.raises(InvalidOutputError):
        parse(SimpleNamespace(text='{"name": "Al", "age": 3}', finish_reason="stop"), constraint)
