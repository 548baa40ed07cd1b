"""The JSON Schema keyword vocabularies the compiler and the negation rules share."""

ANNOTATIONS = frozenset(
    {
        "$schema", "$id", "$comment", "$vocabulary", "title", "description", "default", "examples",
        "deprecated", "readOnly", "writeOnly", "contentEncoding", "contentMediaType",
        "contentSchema", "$defs", "definitions", "discriminator", "xml", "externalDocs", "example",
    }
)
# Every keyword that asserts something; anything else is an annotation or unknown (ignored).
ASSERTIONS = frozenset(
    {
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
