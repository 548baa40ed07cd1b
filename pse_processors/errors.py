"""Exceptions raised by pse_processors.

Every error a caller can cause derives from :class:`PSEError`, so ``except PSEError`` catches
all of them; each also derives from the built-in type a Python user would expect
(``ValueError`` for bad input, ``RuntimeError`` for a failure during generation).
"""

from __future__ import annotations


class PSEError(Exception):
    """Base class of every pse_processors error."""


class SchemaError(PSEError, ValueError):
    """The constraint is malformed (not valid JSON, not a JSON Schema, a bad regex...)."""

    def __init__(self, message: str, pointer: str = "") -> None:
        self.pointer = pointer
        super().__init__(f"{message} (at {pointer or '#'})" if pointer is not None else message)

    def __reduce__(self) -> tuple:
        # Rebuilt from the final message, not __init__'s arguments (which subclasses change), so
        # that every schema error crosses processes (Ray, multiprocessing) as raised.
        return _rebuild_error, (type(self), str(self), dict(self.__dict__))


class UnsupportedSchemaError(SchemaError):
    """A JSON Schema keyword cannot be enforced exactly, so it is refused rather than ignored.

    Attributes:
        keyword: the refused keyword, e.g. ``"uniqueItems"``.
        pointer: the JSON pointer of the schema that holds it, e.g. ``"#/properties/tags"``.
    """

    def __init__(self, keyword: str, pointer: str, reason: str = "") -> None:
        self.keyword = keyword
        detail = f": {reason}" if reason else ""
        super().__init__(f"unsupported JSON Schema keyword {keyword!r}{detail}", pointer)


class UnsatisfiableConstraintError(PSEError, ValueError):
    """No string (or no string the tokenizer can spell) satisfies the constraint."""


class CompileLimitError(PSEError, ValueError):
    """The constraint is too large to compile within the configured limits."""


class VocabularyError(PSEError, ValueError):
    """The tokenizer cannot be turned into a byte-exact vocabulary, or does not fit the model."""


class InvalidLogitsError(PSEError, ValueError):
    """The scores handed to a processor are unusable (NaN, wrong shape, wrong dtype)."""


class ConstraintConflictError(PSEError, RuntimeError):
    """Another logits processor or generation setting forbids every token the constraint allows.

    Typical causes: ``min_new_tokens`` forbids EOS when the structure is complete, or
    ``forced_eos_token_id`` forces EOS while the structure is still open.
    """


class InvalidOutputError(PSEError, ValueError):
    """A generated output does not satisfy the constraint (e.g. it was cut off by ``max_new_tokens``)."""


class UnsupportedRegexError(UnsupportedSchemaError):
    """A construct of a :class:`~pse_processors.Regex` that no back end can enforce exactly, refused
    by name: a look-around, a back-reference, a word boundary, an atomic group, a possessive
    quantifier, an anchor that is not at the start or end of the pattern...

    Attributes:
        keyword: the construct, e.g. ``"look-ahead"`` or ``"anchor"``.
        position: its index in the pattern.
        pattern: the pattern.
    """

    def __init__(self, construct: str, position: int, pattern: str, message: str) -> None:
        SchemaError.__init__(self, message, None)  # type: ignore[arg-type] - no JSON pointer: a bare regex
        self.keyword = construct
        self.pointer = ""
        self.position = position
        self.pattern = pattern


def _rebuild_error(cls: type, message: str, attributes: dict) -> Exception:
    """Unpickle a :class:`SchemaError` (or subclass): its message and attributes, as raised.

    Example:
        >>> import pickle
        >>> error = pickle.loads(pickle.dumps(UnsupportedSchemaError("uniqueItems", "#/tags")))
        >>> type(error).__name__, error.keyword, error.pointer, str(error)
        ('UnsupportedSchemaError', 'uniqueItems', '#/tags', "unsupported JSON Schema keyword 'uniqueItems' (at #/tags)")
    """
    error = Exception.__new__(cls)
    Exception.__init__(error, message)
    error.__dict__.update(attributes)
    return error
