"""Bad JSON Schemas end in a named error with its JSON pointer, never a raw Python exception.

Python's ``json`` reads ``NaN``, ``Infinity`` and ``1e999`` (as ``inf``), and ``"\\ud800"`` (a lone
surrogate); huge integers are exact; and every walker of a schema recurses once per level. Each
such input, on both back ends and through every entry point, is a ``SchemaError`` (or a
``CompileLimitError`` where the schema is valid but past what can be compiled).
"""

from __future__ import annotations

import json

import pytest

import pse_processors as pse
from pse_processors.constraints.spec import parse_constraint
from pse_processors.errors import CompileLimitError, PSEError, SchemaError
from pse_processors.json_schema import json_schema_to_grammar, json_schema_to_regex

BACKENDS = ("dfa", "llguidance", "auto")
CHARS = [bytes([c]) for c in range(32, 127)]
VOCAB = pse.Vocabulary(CHARS + [None], eos_token_ids=[len(CHARS)])
EOS = len(CHARS)


@pytest.fixture(autouse=True)
def no_disk_cache(monkeypatch):
    monkeypatch.setenv("PSE_PROCESSORS_CACHE_DIR", "off")


def ids(text: str) -> list:
    return [CHARS.index(bytes([b])) for b in text.encode()] + [EOS]


def refused(constraint, error=SchemaError, match=None) -> list:
    """The messages of ``error`` from every entry point and back end (each must raise it)."""
    messages = []
    for backend in BACKENDS:
        with pytest.raises(error, match=match) as caught:
            pse.compile(constraint, VOCAB, backend=backend)
        messages.append(str(caught.value))
    schema = json.loads(constraint) if isinstance(constraint, str) else constraint
    for entry in (json_schema_to_regex, json_schema_to_grammar):
        with pytest.raises(error, match=match):
            entry(schema)
    return messages


NON_FINITE = {"NaN": float("nan"), "Infinity": float("inf"), "-Infinity": float("-inf")}


@pytest.mark.parametrize("keyword", ["minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum", "multipleOf"])
@pytest.mark.parametrize("spelling", ["NaN", "Infinity", "-Infinity", "1e999", "-1e999"])
@pytest.mark.parametrize("type_name", ["number", "integer"])
def test_non_finite_bounds_are_schema_errors_with_their_pointer(keyword, spelling, type_name):
    text = '{"type": "object", "properties": {"x": {"type": "%s", "%s": %s}}}' % (type_name, keyword, spelling)
    for constraint in (text, json.loads(text)):
        for message in refused(constraint, SchemaError, match=f"{keyword} must be a finite number"):
            assert message.endswith(f"(at #/properties/x/{keyword})"), message


@pytest.mark.parametrize("value", list(NON_FINITE.values()))
@pytest.mark.parametrize(
    "make",
    [
        lambda v: {"const": v},
        lambda v: {"enum": [1, v]},
        lambda v: {"const": {"a": [1, v]}},
        lambda v: {"type": "number", "not": {"enum": [1, v]}},  # was a raw decimal.InvalidOperation
        lambda v: {"not": {"const": v}},
        lambda v: {"allOf": [{"minimum": 0}, {"minimum": v}]},  # was silently dropped by the merge
        lambda v: {"enum": [1, 2], "maximum": v},  # was decided against the bound and accepted
        lambda v: {"$defs": {"n": {"exclusiveMaximum": v}}, "$ref": "#/$defs/n"},
    ],
)
def test_non_finite_numbers_in_any_subschema_are_refused(make, value):
    messages = refused(make(value), SchemaError, match="(not a JSON number|must be a finite number)")
    assert all("(at #" in message for message in messages)


def test_non_finite_values_name_the_place():
    messages = refused({"const": {"a": [1, float("nan")]}})
    assert messages[0] == "const value: NaN is not a JSON number (at #/const/a/1)"
    messages = refused({"type": "object", "properties": {"k": {"enum": ["x", float("-inf")]}}})
    assert messages[0] == "enum value: -Infinity is not a JSON number (at #/properties/k/enum/1)"


def test_bounds_of_the_wrong_type_are_schema_errors():
    """A string bound next to an enum was a raw TypeError from the value checks."""
    for schema in ({"enum": [1, 2, "x"], "minimum": "3"}, {"const": "ab", "maxLength": "2"}, {"const": 1, "maximum": None}):
        refused(schema, SchemaError, match="must be a (number|non-negative integer)")


def test_big_numbers_that_compile_still_do():
    """Huge but finite values are valid JSON: flat regexes compile on both back ends as before."""
    for backend in ("dfa", "llguidance"):
        matcher = pse.compile({"type": "number", "maximum": 1.7976931348623157e308}, VOCAB, backend=backend)
        assert matcher.accepts(ids("12.5")) and matcher.accepts(ids("-3"))
        matcher = pse.compile({"type": "integer", "minimum": -(10**400)}, VOCAB, backend=backend)
        assert matcher.accepts(ids("7"))
        matcher = pse.compile({"const": 10**40}, VOCAB, backend=backend)
        assert matcher.accepts(ids(str(10**40))) and not matcher.accepts(ids("1"))
        matcher = pse.compile({"type": "number", "minimum": 0.123456789012345678901234567890123}, VOCAB, backend=backend)
        assert matcher.accepts(ids("0.2")) and not matcher.accepts(ids("0.1"))


@pytest.mark.parametrize(
    "schema",
    [
        {"type": "number", "minimum": 1e308},  # was a raw RecursionError on llguidance
        {"type": "number", "minimum": 10**400},
        {"type": "number", "exclusiveMaximum": 1e-320},  # was "Failed to build DFA error building NFA"
        {"type": "number", "maximum": -(10**100) - 1},
    ],
)
def test_bounds_with_too_many_digits_are_compile_limit_errors(schema):
    keyword = next(k for k in schema if k != "type")
    for message in refused(schema, CompileLimitError, match="bounds with that many significant digits"):
        assert keyword in message and "at #" in message and "NFA" not in message


@pytest.mark.parametrize("keyword", ["minLength", "maxLength", "minItems", "maxItems", "minProperties", "maxProperties"])
def test_counts_past_32_bits_are_compile_limit_errors(keyword):
    schema = {keyword: 10**400, "type": {"L": "string", "I": "array", "P": "object"}[keyword[3]]}
    for message in refused(schema, CompileLimitError, match=f"{keyword} is a 401-digit number"):
        assert message.endswith(f"(at #/{keyword})")
    refused({keyword: 2**32, "type": schema["type"]}, CompileLimitError, match="4,294,967,296")


def _nested(depth: int, kind: str):
    schema: dict = {"type": "integer"}
    for _ in range(depth):
        schema = {"type": "array", "items": schema} if kind == "items" else {kind: [schema]}
    return schema


@pytest.mark.parametrize("depth", [500, 5_000, 50_000])
@pytest.mark.parametrize("kind", ["items", "allOf", "anyOf"])
def test_deep_nesting_is_a_schema_error_at_any_depth(depth, kind):
    schema = _nested(depth, kind)
    messages = refused(schema, SchemaError, match="the schema nests deeper than 256 levels")
    assert all(len(message) < 200 for message in messages)
    with pytest.raises(SchemaError, match="nests deeper than 256 levels"):
        parse_constraint(schema)


@pytest.mark.parametrize("depth", [500, 50_000])
def test_deep_json_text_is_a_schema_error(depth):
    text = '{"items": ' * depth + "{}" + "}" * depth  # json.loads itself recurses past its limit
    for backend in ("dfa", "llguidance"):
        with pytest.raises(SchemaError, match="nests deeper than 256 levels"):
            pse.compile(text, VOCAB, backend=backend)
    with pytest.raises(SchemaError, match="nests deeper than 256 levels"):
        json_schema_to_regex(text)


def test_nesting_within_the_limit_still_compiles():
    schema = _nested(60, "allOf")
    for backend in ("dfa", "llguidance"):
        assert pse.compile(schema, VOCAB, backend=backend).accepts(ids("42"))


S = "\ud800"


@pytest.mark.parametrize(
    "schema, pointer, what",
    [
        ({"enum": ["x", "a" + S]}, "#/enum/1", "the string"),
        ({"const": {"k": ["a" + S]}}, "#/const/k/0", "the string"),
        ({"const": {"a" + S: 1}}, "#/const", "the key"),
        ({"type": "string", "pattern": "a" + S}, "#/pattern", "the pattern"),
        ({"type": "object", "properties": {"a" + S: {"type": "integer"}}}, "#/properties", "the property name"),
        ({"type": "object", "required": ["a" + S]}, "#/required", "the property name"),
        ({"type": "object", "patternProperties": {"^a" + S: {}}}, "#/patternProperties", "the pattern"),
        ({"type": "string", "not": {"enum": ["a", S]}}, "#/not/enum/1", "the string"),
        ('{"const": "\\ud83d"}', "#/const", "the string"),  # JSON text with an escaped lone surrogate
    ],
)
def test_lone_surrogates_in_schema_strings_are_named(schema, pointer, what):
    for message in refused(schema, SchemaError, match="lone surrogate"):
        assert what in message and message.endswith(f"(at {pointer})"), message
        message.encode("utf-8")  # the message itself is printable: the surrogate is escaped


def test_lone_surrogates_in_annotations_are_harmless():
    """Annotations never reach the output: a surrogate or NaN there is not refused (Pydantic writes
    ``default: inf`` for a float field whose default is infinity)."""
    schema = {"type": "object", "description": S, "properties": {"x": {"type": "number", "default": float("inf"),
                                                                       "examples": [float("nan"), S]}}}
    for backend in ("dfa", "llguidance"):
        assert pse.compile(schema, VOCAB, backend=backend).accepts(ids('{"x": 1}'))


def test_every_refusal_is_a_pse_error_with_one_line():
    cases = [{"maximum": float("nan")}, {"minimum": 1e308, "type": "number"}, _nested(5_000, "items"), {"enum": [S]},
             '{"maximum": NaN}', '{"maxItems": 1e999}', '{"const": 1e999}']
    for case in cases:
        for backend in BACKENDS:
            with pytest.raises(PSEError) as caught:
                pse.compile(case, VOCAB, backend=backend)
            assert "\n" not in str(caught.value)
