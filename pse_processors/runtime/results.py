"""Turning a generated output back into a Python value, checked against the constraint."""

from __future__ import annotations

import json
from typing import Any, Iterable, Union

import numpy as np

from ..errors import InvalidOutputError
from ..matchers import Matcher


def parse_output(matcher: Matcher, output: Union[str, bytes, Iterable[int]]) -> Any:
    """Parse one output: a dict/list/... for JSON Schemas, a Pydantic instance for models,
    the string for regexes and choices.

    ``output`` is the generated text, or the generated token ids (EOS and padding allowed at
    the end). Token ids are checked by the automaton itself, so a truncated output raises.

    For a vocabulary with a dummy prefix (Llama-2-style SentencePiece), one leading space is
    removed first, as the tokenizer's own decoder does: that space is the ``▁`` the model
    emits on its first token, not part of the value.

    Raises:
        InvalidOutputError: the output is incomplete or does not satisfy the constraint.
    """
    if isinstance(output, (str, bytes)):
        text = output.decode("utf-8") if isinstance(output, bytes) else output
    else:
        ids = [int(i) for i in np.asarray(output).reshape(-1).tolist()]
        eos = matcher.vocabulary.eos_token_ids
        end = next((i for i, t in enumerate(ids) if t in eos), len(ids))
        if not matcher.accepts(ids[:end]):
            raise InvalidOutputError(
                "the generated tokens do not form a complete output of the constraint "
                "(was generation cut off by max_new_tokens?): "
                f"{matcher.vocabulary.decode(ids[:end])[:200]!r}"
            )
        try:
            text = matcher.vocabulary.decode(ids[:end]).decode("utf-8")
        except UnicodeDecodeError as exc:
            raise InvalidOutputError(f"the output is not valid UTF-8: {exc}") from exc
    spec = matcher.spec
    if spec.leading_space and text.startswith(" "):
        text = text[1:]
    if spec.kind != "json":
        return text
    if spec.result_type is not None:
        try:
            return spec.result_type.model_validate_json(text)
        except Exception as exc:  # pydantic.ValidationError, without importing pydantic
            raise InvalidOutputError(f"the output does not validate as {spec.result_type.__name__}: {exc}") from exc
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise InvalidOutputError(f"the output is not valid JSON: {exc}: {text[:200]!r}") from exc
