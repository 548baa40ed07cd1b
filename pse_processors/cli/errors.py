"""The command line's own errors, and the exit code of every error it reports.

Exit codes: 0 success; 2 bad usage or a bad constraint (the message names the cause and, for a
schema, the JSON pointer); 1 any other failure.
"""

from __future__ import annotations

from ..errors import CompileLimitError, SchemaError, UnsatisfiableConstraintError, VocabularyError

EXIT_OK = 0
EXIT_FAILURE = 1
EXIT_USAGE = 2

#: Library errors that are the user's constraint's fault: reported with exit code 2 (a
#: VocabularyError: a marker of --reasoning/--delimited/--tools the tokenizer cannot produce).
CONSTRAINT_ERRORS = (SchemaError, UnsatisfiableConstraintError, CompileLimitError, VocabularyError)


class UsageError(Exception):
    """A bad argument, a missing file, an unknown framework...: reported with exit code 2.

    Example:
        >>> str(UsageError("--batch-size must be at least 1"))
        '--batch-size must be at least 1'
    """


class CommandFailed(Exception):
    """A failure the command explains itself (the message is enough): exit code 1."""


def exit_code(exc: BaseException) -> int:
    """The exit code for an error that reached ``main``.

    Example:
        >>> from pse_processors.errors import UnsupportedSchemaError
        >>> exit_code(UnsupportedSchemaError("uniqueItems", "#/properties/tags")), exit_code(RuntimeError())
        (2, 1)
    """
    if isinstance(exc, (UsageError, *CONSTRAINT_ERRORS)):
        return EXIT_USAGE
    return EXIT_FAILURE
