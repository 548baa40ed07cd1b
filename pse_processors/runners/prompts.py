"""Prompt templates: each row's text goes where ``{text}`` is."""

from __future__ import annotations


def fill_template(template: str, text: str) -> str:
    """``template`` with ``text`` where ``{text}`` is.

    Example:
        >>> fill_template('Extract {"a": ...} from: {text}', 'doc')
        'Extract {"a": ...} from: doc'
    """
    return template.replace("{text}", text)  # not str.format: templates often hold JSON braces
