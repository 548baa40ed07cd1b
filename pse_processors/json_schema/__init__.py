"""JSON Schema → regex compilation (strict: enforce a keyword or refuse it by name)."""

from .compiler import SchemaOptions, json_schema_to_regex

__all__ = ["SchemaOptions", "json_schema_to_regex"]
