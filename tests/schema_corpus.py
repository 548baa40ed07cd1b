"""A corpus of real-world-shaped JSON Schemas written for the tests (no outside data).

Five families, the shapes that users bring: function-calling tools, Pydantic-generated
schemas, nested records, recursive structures and conditionals, plus small constrained
scalars. :data:`CORPUS` joins them with ``tests.helpers.FUZZ_SCHEMAS``: over 100 in all.
Each entry is ``(name, schema)``.
"""

from __future__ import annotations

import datetime
import enum
from typing import Any, Literal, Optional, Union

from pydantic import BaseModel, Field

from tests.helpers import FUZZ_SCHEMAS

STR: dict = {"type": "string", "maxLength": 12}
INT: dict = {"type": "integer"}
NUM: dict = {"type": "number"}
BOOL: dict = {"type": "boolean"}


def obj(properties: dict, required: Optional[list] = None, closed: bool = True, **extra: Any) -> dict:
    """An object schema; ``required`` defaults to every property."""
    schema = {"type": "object", "properties": properties, "required": list(properties) if required is None else required}
    if closed:
        schema["additionalProperties"] = False
    schema.update(extra)
    return schema


def tool(name: str, arguments: dict) -> dict:
    """A function call in the OpenAI tools style: ``{"name": ..., "arguments": {...}}``."""
    return obj({"name": {"const": name}, "arguments": arguments})


# --- function calling -------------------------------------------------------------------

FUNCTION_CALLS: dict[str, dict] = {
    "get_weather": tool("get_weather", obj({"city": STR, "unit": {"enum": ["celsius", "fahrenheit"]}}, ["city"])),
    "send_email": tool("send_email", obj({"to": {"type": "string", "format": "email"}, "subject": STR, "body": STR})),
    "search_web": tool("search_web", obj({"query": STR, "max_results": {"type": "integer", "minimum": 1, "maximum": 10}}, ["query"])),
    "create_event": tool("create_event", obj({
        "title": STR, "date": {"type": "string", "format": "date"}, "attendees": {"type": "array", "items": STR, "maxItems": 3},
    }, ["title", "date"])),
    "set_alarm": tool("set_alarm", obj({"time": {"type": "string", "pattern": "^[0-2][0-9]:[0-5][0-9]$"}, "repeat": BOOL})),
    "convert_currency": tool("convert_currency", obj({
        "amount": {"type": "number", "exclusiveMinimum": 0}, "from": {"enum": ["USD", "EUR", "GBP", "JPY"]},
        "to": {"enum": ["USD", "EUR", "GBP", "JPY"]},
    })),
    "book_flight": tool("book_flight", obj({
        "origin": {"type": "string", "pattern": "^[A-Z]{3}$"}, "destination": {"type": "string", "pattern": "^[A-Z]{3}$"},
        "passengers": {"type": "integer", "minimum": 1, "maximum": 9}, "class": {"enum": ["economy", "business"]},
    }, ["origin", "destination"])),
    "get_stock_price": tool("get_stock_price", obj({"ticker": {"type": "string", "pattern": "^[A-Z]{1,5}$"}})),
    "translate": tool("translate", obj({"text": STR, "target_language": {"type": "string", "minLength": 2, "maxLength": 2}})),
    "calculate": tool("calculate", obj({"expression": STR, "precision": {"type": "integer", "minimum": 0, "maximum": 8}}, ["expression"])),
    "run_sql": tool("run_sql", obj({"query": STR, "params": {"type": "array", "items": {"type": ["string", "number", "null"]}, "maxItems": 3}}, ["query"])),
    "update_ticket": tool("update_ticket", obj({
        "id": INT, "status": {"enum": ["open", "pending", "closed"]}, "comment": {"type": ["string", "null"], "maxLength": 12},
    }, ["id", "status"])),
    "resize_image": tool("resize_image", obj({
        "url": {"type": "string", "format": "uri"}, "width": {"type": "integer", "minimum": 1, "maximum": 4096},
        "height": {"type": "integer", "minimum": 1, "maximum": 4096},
    })),
    "play_music": tool("play_music", obj({"artist": STR, "shuffle": BOOL, "volume": {"type": "number", "minimum": 0, "maximum": 1}}, ["artist"])),
    "get_directions": tool("get_directions", obj({
        "from": STR, "to": STR, "mode": {"enum": ["driving", "walking", "transit", "cycling"]}, "avoid": {
            "type": "array", "items": {"enum": ["tolls", "highways", "ferries"]}, "maxItems": 3},
    }, ["from", "to"])),
    "order_pizza": tool("order_pizza", obj({
        "size": {"enum": ["S", "M", "L"]}, "toppings": {"type": "array", "items": STR, "minItems": 1, "maxItems": 3},
        "delivery": obj({"street": STR, "zip": {"type": "string", "pattern": "^[0-9]{5}$"}}),
    })),
    "list_files": tool("list_files", obj({"path": STR, "recursive": BOOL, "pattern": STR}, ["path"])),
    "set_thermostat": tool("set_thermostat", obj({"temperature": {"type": "integer", "minimum": 10, "maximum": 30, "multipleOf": 2}})),
    "no_arguments": tool("refresh", obj({})),
    "any_of_tools": {"anyOf": [
        tool("lookup", obj({"key": STR})), tool("store", obj({"key": STR, "value": {"type": ["string", "integer", "boolean"]}})),
    ]},
}


# --- Pydantic-generated -----------------------------------------------------------------

class Color(str, enum.Enum):
    red = "red"
    green = "green"
    blue = "blue"


class Person(BaseModel):
    name: str = Field(max_length=12)
    age: int = Field(ge=0, le=130)
    email: Optional[str] = Field(default=None, max_length=12)


class Address(BaseModel):
    street: str = Field(max_length=12)
    city: str = Field(max_length=12)
    country_code: str = Field(pattern=r"^[A-Z]{2}$")


class Employee(BaseModel):
    person: Person
    address: Address
    skills: list[str] = Field(max_length=3)
    favourite: Color = Color.blue


class Item(BaseModel):
    sku: str = Field(pattern=r"^[A-Z]{3}-[0-9]{3}$")
    quantity: int = Field(gt=0, le=99)
    price: float = Field(ge=0)


class Order(BaseModel):
    id: int
    items: list[Item] = Field(min_length=1, max_length=3)
    status: Literal["new", "paid", "shipped"]
    note: Optional[str] = Field(default=None, max_length=12)


class Event(BaseModel):
    title: str = Field(max_length=12)
    day: datetime.date
    all_day: bool = False


class Cat(BaseModel):
    kind: Literal["cat"]
    lives: int = Field(ge=0, le=9)


class Dog(BaseModel):
    kind: Literal["dog"]
    good: bool


class Pet(BaseModel):
    pet: Union[Cat, Dog] = Field(discriminator="kind")


class Measurement(BaseModel):
    value: float
    unit: Literal["m", "kg", "s"]
    error: Optional[float] = None


class Tagged(BaseModel):
    tags: dict[str, int]
    flags: list[Color] = Field(max_length=3)


class Sentiment(BaseModel):
    label: Literal["positive", "negative", "neutral"]
    score: float = Field(ge=0, le=1)


class Entities(BaseModel):
    people: list[str] = Field(max_length=3)
    places: list[str] = Field(max_length=3)
    dates: list[datetime.date] = Field(max_length=2)


class TreeNode(BaseModel):
    value: int
    children: list["TreeNode"] = Field(default_factory=list, max_length=2)


class Point(BaseModel):
    x: float
    y: float


class Polygon(BaseModel):
    name: str = Field(max_length=12)
    vertices: tuple[Point, Point, Point]


PYDANTIC_MODELS: list[type[BaseModel]] = [
    Person, Address, Employee, Item, Order, Event, Pet, Measurement, Tagged, Sentiment, Entities, TreeNode, Polygon,
]


# --- nested records -----------------------------------------------------------------------

NESTED_RECORDS: dict[str, dict] = {
    "invoice": obj({
        "number": {"type": "string", "pattern": "^INV-[0-9]{4}$"},
        "customer": obj({"name": STR, "vat": {"type": ["string", "null"], "maxLength": 12}}),
        "lines": {"type": "array", "items": obj({"desc": STR, "qty": {"type": "integer", "minimum": 1}, "unit_price": NUM}), "maxItems": 3},
        "total": NUM,
    }),
    "address_book": {"type": "array", "items": obj({
        "name": STR, "phones": {"type": "array", "items": obj({"kind": {"enum": ["home", "work", "mobile"]}, "number": STR}), "maxItems": 2},
    }), "maxItems": 3},
    "package_json": obj({
        "name": {"type": "string", "pattern": "^[a-z][a-z0-9-]{0,10}$"}, "version": {"type": "string", "pattern": "^[0-9]+\\.[0-9]+\\.[0-9]+$"},
        "private": BOOL, "dependencies": {"type": "object", "additionalProperties": {"type": "string", "maxLength": 8}, "maxProperties": 3},
    }, ["name", "version"]),
    "pod_spec": obj({
        "apiVersion": {"const": "v1"}, "kind": {"const": "Pod"},
        "metadata": obj({"name": STR, "labels": {"type": "object", "additionalProperties": STR, "maxProperties": 2}}, ["name"]),
        "spec": obj({"containers": {"type": "array", "minItems": 1, "maxItems": 2, "items": obj({
            "name": STR, "image": STR, "ports": {"type": "array", "items": obj({"containerPort": {"type": "integer", "minimum": 1, "maximum": 65535}}), "maxItems": 2},
        }, ["name", "image"])}}),
    }),
    "recipe": obj({
        "title": STR, "servings": {"type": "integer", "minimum": 1, "maximum": 12},
        "ingredients": {"type": "array", "items": obj({"item": STR, "grams": {"type": "number", "minimum": 0}}), "maxItems": 3},
        "steps": {"type": "array", "items": STR, "maxItems": 3},
    }),
    "weather_report": obj({
        "location": obj({"lat": {"type": "number", "minimum": -90, "maximum": 90}, "lon": {"type": "number", "minimum": -180, "maximum": 180}}),
        "hourly": {"type": "array", "items": obj({"hour": {"type": "integer", "minimum": 0, "maximum": 23}, "temp": NUM}), "maxItems": 3},
    }),
    "user_profile": obj({
        "id": {"type": "string", "format": "uuid"}, "handle": {"type": "string", "pattern": "^@[a-z0-9_]{1,8}$"},
        "settings": obj({"theme": {"enum": ["light", "dark"]}, "notifications": obj({"email": BOOL, "push": BOOL})}),
    }),
    "bank_transfer": obj({
        "from_iban": {"type": "string", "pattern": "^[A-Z]{2}[0-9]{2}[A-Z0-9]{4,10}$"}, "to_iban": {"type": "string", "pattern": "^[A-Z]{2}[0-9]{2}[A-Z0-9]{4,10}$"},
        "amount": obj({"value": {"type": "number", "exclusiveMinimum": 0}, "currency": {"enum": ["EUR", "USD"]}}),
        "reference": {"type": "string", "maxLength": 12},
    }, ["from_iban", "to_iban", "amount"]),
    "library_catalogue": obj({"books": {"type": "array", "maxItems": 2, "items": obj({
        "isbn": {"type": "string", "pattern": "^[0-9]{13}$"}, "title": STR, "authors": {"type": "array", "items": STR, "minItems": 1, "maxItems": 2},
        "year": {"type": "integer", "minimum": 1450, "maximum": 2100},
    })}}),
    "sensor_batch": obj({"device": STR, "readings": {"type": "array", "maxItems": 4, "items": {
        "type": "array", "prefixItems": [{"type": "integer", "minimum": 0}, NUM], "items": False, "minItems": 2}}}),
    "open_object": {"type": "object", "properties": {"id": INT, "name": STR}, "required": ["id"]},
    "matrix": obj({"rows": {"type": "array", "maxItems": 3, "items": {"type": "array", "items": {"type": "integer", "minimum": -9, "maximum": 9}, "minItems": 2, "maxItems": 2}}}),
    "http_request": obj({
        "method": {"enum": ["GET", "POST", "PUT", "DELETE"]}, "path": {"type": "string", "pattern": "^/[a-z/]{0,10}$"},
        "headers": {"type": "object", "patternProperties": {"^[A-Z][a-z-]{0,8}$": STR}, "additionalProperties": False, "maxProperties": 2},
        "body": {"type": ["object", "null"], "maxProperties": 1, "additionalProperties": INT},
    }, ["method", "path"]),
    "course_schedule": obj({"course": STR, "sessions": {"type": "array", "maxItems": 2, "items": obj({
        "day": {"enum": ["mon", "tue", "wed", "thu", "fri"]}, "start": {"type": "string", "format": "time"}, "room": {"type": ["string", "integer"], "maxLength": 6},
    })}}),
    "geojson_point": obj({"type": {"const": "Feature"}, "geometry": obj({
        "type": {"const": "Point"}, "coordinates": {"type": "array", "items": NUM, "minItems": 2, "maxItems": 2}}),
        "properties": {"type": "object", "additionalProperties": {"type": ["string", "number"], "maxLength": 8}, "maxProperties": 2},
    }),
    "chat_message": obj({"role": {"enum": ["system", "user", "assistant"]}, "content": STR, "tool_calls": {"type": "array", "maxItems": 1, "items": obj({
        "id": STR, "function": obj({"name": STR, "arguments": STR})})}}, ["role", "content"]),
    "survey_answer": obj({"respondent": INT, "answers": {"type": "object", "properties": {
        "q1": {"type": "integer", "minimum": 1, "maximum": 5}, "q2": {"enum": ["yes", "no"]}, "q3": STR}, "minProperties": 1, "additionalProperties": False}}),
    "timestamps": obj({"created": {"type": "string", "format": "date-time"}, "updated": {"type": ["string", "null"], "format": "date-time"}}),
    "nullable_everything": obj({"a": {"type": ["integer", "null"]}, "b": {"type": ["string", "null"], "maxLength": 12}, "c": {"type": ["array", "null"], "items": BOOL, "maxItems": 2}}),
    "deep_nesting": obj({"a": obj({"b": obj({"c": obj({"d": obj({"e": {"type": "integer"}})})})})}),
}


# --- recursive structures -----------------------------------------------------------------

RECURSIVE: dict[str, dict] = {
    "binary_tree": {"$defs": {"node": obj({"v": INT, "left": {"anyOf": [{"$ref": "#/$defs/node"}, {"type": "null"}]},
                                            "right": {"anyOf": [{"$ref": "#/$defs/node"}, {"type": "null"}]}})}, "$ref": "#/$defs/node"},
    "nary_tree": {"$defs": {"node": obj({"name": STR, "children": {"type": "array", "items": {"$ref": "#/$defs/node"}, "maxItems": 2}}, ["name"])},
                  "$ref": "#/$defs/node"},
    "linked_list": {"$defs": {"cell": obj({"head": INT, "tail": {"oneOf": [{"$ref": "#/$defs/cell"}, {"type": "null"}]}})}, "$ref": "#/$defs/cell"},
    "comment_thread": {"$defs": {"comment": obj({"author": STR, "text": STR, "replies": {"type": "array", "items": {"$ref": "#/$defs/comment"}, "maxItems": 2}}, ["author", "text"])},
                       "type": "object", "properties": {"post": STR, "comments": {"type": "array", "items": {"$ref": "#/$defs/comment"}, "maxItems": 2}}, "required": ["post"]},
    "file_tree": {"$defs": {"entry": {"oneOf": [
        obj({"type": {"const": "file"}, "name": STR, "size": {"type": "integer", "minimum": 0}}),
        obj({"type": {"const": "dir"}, "name": STR, "entries": {"type": "array", "items": {"$ref": "#/$defs/entry"}, "maxItems": 2}}),
    ]}}, "$ref": "#/$defs/entry"},
    "expression_ast": {"$defs": {"expr": {"anyOf": [
        {"type": "integer"},
        obj({"op": {"enum": ["+", "-", "*"]}, "args": {"type": "array", "items": {"$ref": "#/$defs/expr"}, "minItems": 2, "maxItems": 2}}),
    ]}}, "$ref": "#/$defs/expr"},
    "org_chart": {"$defs": {"employee": obj({"name": STR, "title": STR, "reports": {"type": "array", "items": {"$ref": "#/$defs/employee"}, "maxItems": 2}}, ["name"])},
                  "$ref": "#/$defs/employee"},
    "json_in_json": obj({"kind": STR, "payload": {}}),
    "any_value_map": {"type": "object", "additionalProperties": True, "maxProperties": 3},
    "category_hierarchy": {"$defs": {"cat": obj({"id": INT, "parent": {"anyOf": [{"$ref": "#/$defs/cat"}, {"type": "null"}]}}, ["id"])},
                           "type": "array", "items": {"$ref": "#/$defs/cat"}, "maxItems": 2},
}


# --- conditionals and combinators ---------------------------------------------------------

CONDITIONALS: dict[str, dict] = {
    "if_then_else_country": {"type": "object", "properties": {"country": {"enum": ["US", "CA"]}, "postal": {"type": "string"}},
                             "required": ["country", "postal"], "additionalProperties": False,
                             "if": {"properties": {"country": {"const": "US"}}},
                             "then": {"properties": {"postal": {"pattern": "^[0-9]{5}$"}}},
                             "else": {"properties": {"postal": {"pattern": "^[A-Z][0-9][A-Z] [0-9][A-Z][0-9]$"}}}},
    "dependent_required": {"type": "object", "properties": {"card": {"type": "string", "pattern": "^[0-9]{4}$"}, "cvv": {"type": "string", "pattern": "^[0-9]{3}$"}, "name": STR},
                           "dependentRequired": {"card": ["cvv"]}, "additionalProperties": False},
    "discriminated_oneof": {"oneOf": [
        obj({"shape": {"const": "circle"}, "radius": {"type": "number", "minimum": 0}}),
        obj({"shape": {"const": "rect"}, "w": {"type": "number", "minimum": 0}, "h": {"type": "number", "minimum": 0}}),
    ]},
    "overlapping_oneof": {"oneOf": [{"type": "integer", "minimum": 0, "maximum": 10}, {"type": "integer", "minimum": 5, "maximum": 20}]},
    "not_string": {"not": {"type": "string"}, "type": ["integer", "string", "boolean"]},
    "allof_mixins": {"allOf": [
        {"type": "object", "properties": {"id": INT}, "required": ["id"]},
        {"properties": {"created": {"type": "string", "format": "date"}}, "required": ["created"]},
        {"properties": {"label": STR}},
    ]},
    "anyof_with_bounds": {"anyOf": [{"type": "string", "maxLength": 3}, {"type": "number", "minimum": 100}]},
    "enum_not": {"enum": ["a", "b", "c", "d"], "not": {"enum": ["b", "c"]}},
    "if_without_else": {"type": "object", "properties": {"paid": BOOL, "receipt": STR}, "required": ["paid"], "additionalProperties": False,
                        "if": {"properties": {"paid": {"const": True}}}, "then": {"required": ["receipt"]}},
    "contains_bounds": {"type": "array", "items": {"type": "integer", "minimum": 0, "maximum": 9}, "contains": {"const": 7}, "minContains": 1, "maxContains": 2},
    "min_max_properties": {"type": "object", "additionalProperties": {"type": "integer"}, "minProperties": 1, "maxProperties": 2},
    "tuple_array": {"type": "array", "prefixItems": [{"enum": ["x", "y"]}, INT], "items": BOOL, "maxItems": 4},
    "number_ranges": obj({"pct": {"type": "number", "minimum": 0, "maximum": 100}, "step": {"type": "integer", "multipleOf": 5, "minimum": 0, "maximum": 50},
                          "neg": {"type": "integer", "exclusiveMaximum": 0, "minimum": -99}}),
}


SCALARS: dict[str, dict] = {
    "email": {"type": "string", "format": "email"},
    "date": {"type": "string", "format": "date"},
    "uuid": {"type": "string", "format": "uuid"},
    "ipv4": {"type": "string", "format": "ipv4"},
    "semver": {"type": "string", "pattern": "^[0-9]{1,2}\\.[0-9]{1,2}\\.[0-9]{1,2}$"},
    "bounded_number": {"type": "number", "minimum": -1.5, "maximum": 2.5},
    "multiple_of_three": {"type": "integer", "multipleOf": 3, "minimum": -30, "maximum": 30},
    "const_string": {"const": "ok"},
    "mixed_enum": {"enum": [0, 1.5, "x", None, False, [1], {"a": 1}]},
    "empty_array": {"type": "array", "maxItems": 0},
}


def pydantic_schemas() -> dict[str, dict]:
    return {f"pydantic_{model.__name__}": model.model_json_schema() for model in PYDANTIC_MODELS}


def corpus() -> list[tuple[str, dict]]:
    """Every schema of the corpus, named, in a fixed order."""
    named: dict[str, dict] = {}
    for family in (FUNCTION_CALLS, pydantic_schemas(), NESTED_RECORDS, RECURSIVE, CONDITIONALS, SCALARS):
        named.update(family)
    named.update({f"fuzz_{i}": schema for i, schema in enumerate(FUZZ_SCHEMAS)})
    return list(named.items())
