"""lm-format-enforcer's tokenizer data for a transformers tokenizer (maskbench, processor_step).

lm-format-enforcer 0.11.3's transformers integration (``build_token_enforcer_tokenizer_data``)
imports ``transformers.tokenization_utils``, which transformers 5 removed; this is the same
construction, written against the tokenizer.
"""

from __future__ import annotations

from typing import Any


def lmfe_tokenizer_data(tokenizer: Any, vocab_size: int, use_bitmask: bool) -> Any:
    """``TokenEnforcerTokenizerData`` for the first ``vocab_size`` ids, as lm-format-enforcer builds it."""
    from lmformatenforcer import TokenEnforcerTokenizerData

    special = set(tokenizer.all_special_ids)
    token_0 = tokenizer.encode("0", add_special_tokens=False)[-1]
    regular = []
    for token in range(vocab_size):
        if token in special:
            continue
        after_0 = tokenizer.decode([token_0, token])[1:]  # keeps a word-start token's leading space
        regular.append((token, after_0, len(after_0) > len(tokenizer.decode([token]))))

    def decode(tokens: list) -> str:
        return tokenizer.decode(tokens).rstrip("\ufffd")

    return TokenEnforcerTokenizerData(regular, decode, tokenizer.eos_token_id, use_bitmask, vocab_size)
