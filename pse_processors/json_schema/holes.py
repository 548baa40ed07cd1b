"""Holes: references to named grammar rules, written inside regex fragments.

A hole is a rule name between two plane-16 private-use characters that fragments never
contain (:func:`check_no_markers` refuses a schema that does).

Example:
    >>> hole_names("a" + HOLE_OPEN + "ref_0" + HOLE_CLOSE + "b")
    ['ref_0']
"""

from __future__ import annotations

import json
import re
from typing import Any

from ..errors import UnsupportedSchemaError

HOLE_OPEN = "\U0010fff0"
HOLE_CLOSE = "\U0010fff1"


def check_no_markers(schema: Any) -> None:
    """Refuse a schema whose text holds the hole markers (plane-16 private use, never real text)."""
    text = json.dumps(schema, ensure_ascii=False)
    if HOLE_OPEN in text or HOLE_CLOSE in text:
        raise UnsupportedSchemaError("const", "#", "U+10FFF0/U+10FFF1 are reserved by the grammar engine")


def hole_names(fragment: str) -> list:
    """The rule names of the holes in ``fragment``, in order."""
    return re.findall(f"{HOLE_OPEN}([A-Za-z0-9_]+){HOLE_CLOSE}", fragment)
