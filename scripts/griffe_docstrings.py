"""A griffe extension for the site's API reference (mkdocs.yml loads it): our docstrings are
Google style with a few reStructuredText habits, which it turns into what mkdocstrings renders.

- ``Example:`` becomes ``Examples:``, the section whose ``>>>`` lines griffe renders as code
  (``Example:`` alone is an admonition, where ``>>>`` reads as nested quotes);
- Sphinx roles become code: ``:class:`~pse_processors.Schema``` -> ```Schema```,
  ``:func:`pse_processors.compile``` -> ```pse_processors.compile```;
- a paragraph ending in ``::`` before an indented block ends in ``:``.

The source files are not touched; only what the site shows.
"""

from __future__ import annotations

import re
from typing import Any

from griffe import Extension

_EXAMPLE = re.compile(r"^(\s*)Example:[ \t]*$", re.MULTILINE)
_ROLE = re.compile(r":(?:class|func|mod|meth|attr|data|exc|obj|const):`(~?)([^`]+)`")
_LITERAL = re.compile(r"::\n\n")


def markdown_docstring(text: str) -> str:
    """``text`` with the three rewrites above.

    Examples:
        >>> markdown_docstring("See :class:`~pse_processors.Schema`.\\n\\nExample:\\n    >>> 1\\n    1")
        'See `Schema`.\\n\\nExamples:\\n    >>> 1\\n    1'
    """
    text = _EXAMPLE.sub(r"\1Examples:", text)
    text = _ROLE.sub(lambda m: f"`{m.group(2).rsplit('.', 1)[-1] if m.group(1) else m.group(2)}`", text)
    return _LITERAL.sub(":\n\n", text)


class MarkdownDocstrings(Extension):
    def on_instance(self, *, obj: Any, **kwargs: Any) -> None:
        if obj.docstring is not None:
            obj.docstring.value = markdown_docstring(obj.docstring.value)
