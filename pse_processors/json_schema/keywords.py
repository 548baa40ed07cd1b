"""The JSON Schema keyword vocabularies the compiler and the negation rules share."""

ANNOTATIONS = frozenset(
    {
        "$schema", "$id", "$comment", "$vocabulary", "title", "description", "default", "examples",
        "deprecated", "readOnly", "writeOnly", "contentEncoding", "contentMediaType",
        "contentSchema", "$defs", "definitions", "discriminator", "xml", "externalDocs", "example",
    }
)
# Internal keywords (lexemes.py), behind the hole marker U+10FFF0 (holes.py) that no user schema
# holds: patterns a string must also match, and patterns it must not match. Assertions, so that
# the negation rules and the value checks that do not know them answer "not exact"/"undecided".
ALSO_PATTERNS = "\U0010fff0also-patterns"
NOT_PATTERNS = "\U0010fff0not-patterns"
# Every keyword that asserts something; anything else is an annotation or unknown (ignored).
ASSERTIONS = frozenset(
    {
        ALSO_PATTERNS, NOT_PATTERNS,
        "type", "enum", "const", "nullable", "properties", "required", "additionalProperties",
        "patternProperties", "propertyNames", "minProperties", "maxProperties", "items", "prefixItems",
        "additionalItems", "minItems", "maxItems", "uniqueItems", "contains", "minContains", "maxContains",
        "minLength", "maxLength", "pattern", "format", "minimum", "maximum", "exclusiveMinimum",
        "exclusiveMaximum", "multipleOf", "allOf", "anyOf", "oneOf", "not", "if", "then", "else",
        "dependentRequired", "dependentSchemas", "dependencies", "unevaluatedProperties",
        "unevaluatedItems", "$ref", "$dynamicRef", "$recursiveRef",
    }
)
ALL_TYPES = ("object", "array", "string", "number", "integer", "boolean", "null")
# Where subschemas sit: a schema (or, for "items", a list of them), a list of schemas, or an
# object of named schemas. The rest of a schema's values are data.
SCHEMA_KEYWORDS = frozenset(
    {
        "items", "additionalItems", "additionalProperties", "contains", "not", "if", "then", "else",
        "propertyNames", "unevaluatedItems", "unevaluatedProperties",
    }
)
SCHEMA_LIST_KEYWORDS = frozenset({"allOf", "anyOf", "oneOf", "prefixItems"})
SCHEMA_MAP_KEYWORDS = frozenset({"properties", "patternProperties", "$defs", "definitions", "dependentSchemas"})
NUMBER_KEYWORDS = ("minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum", "multipleOf")
COUNT_KEYWORDS = (
    "minLength", "maxLength", "minItems", "maxItems", "minProperties", "maxProperties", "minContains", "maxContains",
)
