"""Stage 1: constraints, what the user asks for, parsed once (``spec.py``: :class:`Regex`,
:class:`Choice`, :class:`Grammar`, JSON Schemas and Pydantic models -> one
:class:`ParsedConstraint`, then a :class:`ConstraintSpec`; ``schema.py``: :class:`Schema`)::

    >>> from pse_processors.constraints import parse_constraint, Choice
    >>> parse_constraint(Choice(["yes", "no"])).kind
    'choice'
"""

from __future__ import annotations

from .schema import Schema
from .spec import Choice, Constraint, ConstraintSpec, Grammar, ParsedConstraint, Regex, parse_constraint

__all__ = ["Choice", "Constraint", "ConstraintSpec", "Grammar", "ParsedConstraint", "Regex", "Schema", "parse_constraint"]
