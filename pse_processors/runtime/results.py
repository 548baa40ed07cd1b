"""Turning a generated output back into a Python value, checked against the constraint.

Whatever the output is, the constraint's own matcher decides whether it is valid, so ``parse``
holds for regexes, choices and grammars as it does for JSON Schemas (whose matcher runs the
compiled regex or grammar: exactly our strict semantics). Token ids are walked as they are.
Text is walked as a spelling of its UTF-8 bytes in the vocabulary's tokens: both back ends
accept every spelling of the same bytes (the byte automaton reads bytes, llguidance runs with
``no_forcing``), so any one spelling decides. :func:`spell` prefers single-byte tokens (byte-level
BPE, tiktoken and SentencePiece byte fallback have all 256) and otherwise takes the longest
tokens that still spell the rest. Text that no sequence of tokens spells is invalid too: the
model cannot have produced it.

Cost: a 10 kB text takes a few milliseconds on either back end (``tests/runtime/test_parse.py``
measures it). On llguidance the text is walked by one fresh llguidance matcher, not through the
matcher's int states, which would record a node (and copy a parser) per token.
"""

from __future__ import annotations

import json
import threading
import weakref
from dataclasses import dataclass, field
from typing import Any, Iterable, Optional, Union

import numpy as np

from ..compiler.compiler import compile as compile_constraint
from ..compiler.options import CompileOptions
from ..errors import InvalidOutputError
from ..matchers import Matcher
from ..matchers.handoff import HandoffMatcher
from ..matchers.llguidance import LLGuidanceMatcher, llguidance_matcher
from ..vocabulary.llg_tokenizer import lltokenizer_for
from ..vocabulary.vocabulary import Vocabulary
from .structured import StructuredOutput, parse_structured

_WHAT = {"json": "the JSON Schema", "regex": "the regex", "choice": "the choices", "grammar": "the grammar"}


def parse_output(matcher: Matcher, output: Union[str, bytes, Iterable[int]], prompt: Optional[Iterable[int]] = None) -> Any:
    """Parse one output: a dict/list/... for JSON Schemas, a Pydantic instance for models,
    the string for regexes, choices and grammars, a
    :class:`~pse_processors.runtime.structured.StructuredOutput` for structure in free text
    (:class:`~pse_processors.Reasoning`, :class:`~pse_processors.Delimited`,
    :class:`~pse_processors.Tools`), whose ``prompt`` ids (when given) say where it starts.

    ``output`` is the generated text, or the generated token ids (EOS and padding allowed at
    the end). Either is checked by the constraint's matcher first, so anything the constraint
    does not accept, complete, raises.

    For a vocabulary with a dummy prefix (Llama-2-style SentencePiece), one leading space is
    removed first, as the tokenizer's own decoder does: that space is the ``▁`` the model
    emits on its first token, not part of the value.

    Example:
        >>> import pse_processors as pse
        >>> vocab = pse.Vocabulary([bytes([b]) for b in range(256)] + [None], eos_token_ids=[256])
        >>> parse_output(pse.compile(pse.Choice(["yes", "no"]), vocab), "yes")
        'yes'
        >>> parse_output(pse.compile(pse.Choice(["yes", "no"]), vocab), "maybe")
        Traceback (most recent call last):
        ...
        pse_processors.errors.InvalidOutputError: the output does not satisfy the choices: rejected at character 0: '' ⟨here⟩ 'maybe'
        >>> parse_output(pse.compile({"type": "object", "required": ["name"]}, vocab), b'{"name": 5}')
        {'name': 5}

    Raises:
        InvalidOutputError: the output is incomplete or does not satisfy the constraint.
        TypeError: ``output`` is neither text nor integer token ids.
    """
    if matcher.spec.structure is not None:
        return parse_structured(matcher, output, prompt, spell, _inner_value)
    if isinstance(output, (str, bytes, bytearray)):
        text = _checked_text(matcher, output)
    else:
        text = _checked_ids(matcher, output)
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


def _inner_value(matcher: Matcher, constraint: Any, text: str) -> Any:
    """The value of a constraint inside a structure, parsed from its text as on its own (checked by
    llguidance, which compiles in milliseconds, with the structure's compile options)."""
    options = dict(matcher.recipe[1]) if matcher.recipe is not None else {}
    inner = compile_constraint(constraint, matcher.vocabulary, options=CompileOptions(**options, backend="llguidance"))
    return parse_output(inner, text)


def _checked_ids(matcher: Matcher, output: Any) -> str:
    """The text of generated ids that the matcher accepts (up to the first EOS)."""
    array = np.asarray(output).reshape(-1)
    if array.size and array.dtype.kind not in "iu":
        raise TypeError(f"parse takes the generated text or integer token ids, got {array.dtype} values")
    ids = [int(i) for i in array.tolist()]
    eos = matcher.vocabulary.eos_token_ids
    end = next((i for i, t in enumerate(ids) if t in eos), len(ids))
    if not matcher.accepts(ids[:end]):
        raise InvalidOutputError(
            "the generated tokens do not form a complete output of the constraint "
            "(was generation cut off by max_new_tokens?): "
            f"{matcher.vocabulary.decode(ids[:end])[:200]!r}"
        )
    try:
        return matcher.vocabulary.decode(ids[:end]).decode("utf-8")
    except UnicodeDecodeError as exc:
        raise InvalidOutputError(f"the output is not valid UTF-8: {exc}") from exc


def _checked_text(matcher: Matcher, output: Union[str, bytes, bytearray]) -> str:
    """``output`` as a str, once the matcher accepts a spelling of its bytes."""
    try:
        if isinstance(output, str):
            text, data = output, output.encode("utf-8")
        else:
            data = bytes(output)
            text = data.decode("utf-8")
    except UnicodeError as exc:
        raise InvalidOutputError(f"the output is not valid UTF-8: {exc}") from exc
    what = _WHAT.get(matcher.spec.kind, "the constraint")
    ids = spell(matcher.vocabulary, data)
    if ids is None:
        raise InvalidOutputError(
            f"the output cannot be spelled with the tokenizer's tokens, so the model cannot have produced it: {text[:200]!r}"
        )
    consumed, accepting = walk_text(matcher, ids)
    if consumed < len(ids):
        at = len(matcher.vocabulary.decode(ids[:consumed]).decode("utf-8", errors="ignore"))
        raise InvalidOutputError(
            f"the output does not satisfy {what}: rejected at character {at}: {text[max(0, at - 60):at]!r} "
            f"⟨here⟩ {text[at:at + 40]!r}"
        )
    if not accepting:
        raise InvalidOutputError(f"the output is incomplete: {what} needs more after {text[-100:]!r}")
    return text


def walk_text(matcher: Matcher, ids: list[int]) -> tuple[int, bool]:
    """How many of ``ids`` (a spelling of a text, no EOS) the matcher accepts from its start,
    and whether it accepts them all as a complete output."""
    pushdown = _on_llguidance(matcher)
    if pushdown is not None:
        root = _llguidance_root(pushdown)
        if root is not None:
            walker = root.deep_copy()
            consumed = walker.try_consume_tokens(ids)
            return consumed, consumed == len(ids) and bool(walker.is_accepting())
    if isinstance(matcher, HandoffMatcher):
        matcher = matcher.settled()  # ready: the byte automaton, whose steps are cheap
    state: Optional[int] = matcher.initial_state
    for consumed, token in enumerate(ids):
        state = matcher.step(state, token)  # type: ignore[arg-type]
        if state is None:
            return consumed, False
    return len(ids), matcher.is_accepting(state)  # type: ignore[arg-type]


def _on_llguidance(matcher: Matcher) -> Optional[LLGuidanceMatcher]:
    """The llguidance matcher that answers for ``matcher`` now, else None."""
    if isinstance(matcher, LLGuidanceMatcher):
        return matcher
    if isinstance(matcher, HandoffMatcher) and not matcher.ready:  # building, or failed: still on llguidance
        pushdown = matcher.pushdown
        return pushdown if isinstance(pushdown, LLGuidanceMatcher) else None
    return None


_roots: "weakref.WeakKeyDictionary[Matcher, Any]" = weakref.WeakKeyDictionary()
_roots_lock = threading.Lock()


def _llguidance_root(matcher: LLGuidanceMatcher) -> Any:
    """A fresh llguidance matcher of ``matcher``'s grammar (kept per matcher, copied per walk),
    or None if it cannot be built again (then the int states are walked)."""
    owner = matcher.mask_owner  # with_spec views share the grammar
    with _roots_lock:
        if owner in _roots:
            return _roots[owner]
    root = llguidance_matcher(lltokenizer_for(matcher.vocabulary), matcher.lark)
    found = None if root.is_error() else root
    with _roots_lock:
        _roots[owner] = found
    return found


@dataclass
class _Spelling:
    """What :func:`spell` needs of one vocabulary, built on first use."""

    single: list  # byte -> the id of its single-byte token, or -1
    by_bytes: Optional[dict] = None  # token bytes -> id (only when some byte has no single-byte token)
    lengths: Optional[list] = None  # first byte -> the token lengths that start with it, longest first
    lock: threading.Lock = field(default_factory=threading.Lock)

    def ensure_tokens(self, vocabulary: Vocabulary) -> None:
        with self.lock:
            if self.by_bytes is not None:
                return
            by_bytes: dict[bytes, int] = {}
            lengths: list[set] = [set() for _ in range(256)]
            for index, data in enumerate(vocabulary.token_bytes):
                if data is not None and data not in by_bytes:
                    by_bytes[data] = index
                    lengths[data[0]].add(len(data))
            self.lengths = [sorted(found, reverse=True) for found in lengths]
            self.by_bytes = by_bytes


_spellings: "weakref.WeakKeyDictionary[Vocabulary, _Spelling]" = weakref.WeakKeyDictionary()
_spellings_lock = threading.Lock()


def spell(vocabulary: Vocabulary, data: bytes) -> Optional[list[int]]:
    """Token ids whose bytes are exactly ``data`` (no EOS, no special token), or None if there are none.

    Single-byte tokens where every byte has one; otherwise, at each position, the longest token
    after which the rest can still be spelled (found backwards, so it never dead-ends).

    Example:
        >>> from pse_processors import Vocabulary
        >>> vocab = Vocabulary([b"yes", b"no", b"y", b"es", None], eos_token_ids=[4])
        >>> spell(vocab, b"yes"), spell(vocab, b"yesno"), spell(vocab, b"maybe")
        ([0], [0, 1], None)
    """
    with _spellings_lock:
        tables = _spellings.get(vocabulary)
        if tables is None:
            single = [-1] * 256
            for index, token in enumerate(vocabulary.token_bytes):
                if token is not None and len(token) == 1 and single[token[0]] < 0:
                    single[token[0]] = index
            tables = _spellings[vocabulary] = _Spelling(single)
    ids = [tables.single[b] for b in data]
    if -1 not in ids:
        return ids
    tables.ensure_tokens(vocabulary)
    by_bytes, lengths = tables.by_bytes, tables.lengths
    size = len(data)
    chosen = [0] * (size + 1)  # the length of the token that starts at each position, 0: none spells the rest
    chosen[size] = -1  # the end: nothing left to spell
    for start in range(size - 1, -1, -1):
        for length in lengths[data[start]]:  # type: ignore[index]
            end = start + length
            if end <= size and chosen[end] and data[start:end] in by_bytes:  # type: ignore[operator]
                chosen[start] = length
                break
    if not chosen[0] and size:
        return None
    spelled, start = [], 0
    while start < size:
        spelled.append(by_bytes[data[start:start + chosen[start]]])  # type: ignore[index]
        start += chosen[start]
    return spelled
