"""JSON Schema → regex (byte automaton) and → Lark grammar (grammar engine) compilation.

Strict: every keyword is enforced or refused by name, the same way in both outputs."""

from .compiler import SchemaGrammar, SchemaOptions, json_schema_to_grammar, json_schema_to_regex

__all__ = ["SchemaGrammar", "SchemaOptions", "json_schema_to_grammar", "json_schema_to_regex"]
