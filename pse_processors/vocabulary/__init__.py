"""The tokenizer side: a byte-exact :class:`Vocabulary` from any tokenizer (``vocabulary.py``),
its byte trie (``token_trie.py``), its llguidance tokenizer (``llg_tokenizer.py``) and how it
pickles (``packing.py``)::

    >>> from pse_processors.vocabulary import Vocabulary
    >>> Vocabulary([b"a", None], eos_token_ids=[1]).size
    2
"""

from __future__ import annotations

from .vocabulary import Vocabulary, well_known_eos_ids

__all__ = ["Vocabulary", "well_known_eos_ids"]
