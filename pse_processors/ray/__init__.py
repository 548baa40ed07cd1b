"""Structured extraction over a Ray Dataset: one model and one compiled constraint per actor.

:class:`PSEExtractor` is a callable class for ``Dataset.map_batches``; :func:`extract` wires it
up. The same code runs on a local Ray (``ray.init()``) and on a cluster
(``ray.init(address=...)``). Needs the ``[ray]`` extra: ``pip install 'pse-processors[ray]'``.

Example:
    >>> import ray, pse_processors.ray as pse_ray  # doctest: +SKIP
    >>> ray.init()  # doctest: +SKIP
    >>> docs = ray.data.from_items([{"text": "Alice is 31."}, {"text": "Bob is 42."}])  # doctest: +SKIP
    >>> schema = {"type": "object", "properties": {"age": {"type": "integer"}}, "required": ["age"]}
    >>> out = pse_ray.extract(docs, schema, prompt_template="The age as JSON: {text}")  # doctest: +SKIP
    >>> out.take(1)  # doctest: +SKIP
    [{'text': 'Alice is 31.', 'value': '{"age": 31}', 'valid': True, 'error': None}]
"""

from __future__ import annotations

try:
    import ray  # noqa: F401
    import ray.data  # noqa: F401
except ImportError as exc:  # a clear hint instead of a bare ModuleNotFoundError
    raise ImportError(
        f"pse_processors.ray needs Ray Data ({exc}); install it with `pip install 'pse-processors[ray]'`"
    ) from exc

from .extractor import PSEExtractor
from .job import extract

__all__ = ["PSEExtractor", "extract"]
