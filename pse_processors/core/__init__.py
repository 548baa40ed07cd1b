"""The framework-free core: vocabulary, JSON Schema compiler, byte automaton, grammar engine, caches.

Nothing here imports an ML framework; the framework modules (``pse_processors.torch``, ``.tf``,
``.flax``, ``.mlx``) only move tensors around what this package computes. Users import the
public names from :mod:`pse_processors` itself::

    >>> from pse_processors.core.vocabulary import Vocabulary
    >>> import pse_processors
    >>> pse_processors.Vocabulary is Vocabulary
    True
"""
