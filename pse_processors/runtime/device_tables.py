"""Dense tables for processors that run inside a compiled graph (TensorFlow XLA, ``jax.jit``).

Traced code cannot keep Python state between calls, so the in-graph processors recompute each
row's state from the generated tokens on every call and need the whole automaton as arrays.
:func:`device_tables` builds them from a byte-automaton :class:`~pse_processors.Matcher`'s
``dense_automaton`` with numpy only; :mod:`.in_graph` walks them, and :mod:`pse_processors.tf`
and :mod:`pse_processors.flax` put them on their device.

States are the matcher's dense states ``0..S-1`` plus two of ours:

- ``dead = S``: after a token the constraint rejects (a bad prompt boundary, a discarded beam).
  It allows only EOS, so the scores stay finite and the row ends.
- ``done = S + 1``: after EOS in an accepting state. Every later token (generate pads finished
  rows) keeps ``done``; it allows only EOS, as the PyTorch processor's ``DONE`` does.

Token classes are the matcher's ``C`` classes plus two of ours: ``eos_class = C`` (every EOS
id) and ``never_class = C + 1`` (logit ids past the tokenizer, and out-of-range ids, which are
never allowed). ``token_class`` covers the logits' full width, plus one last entry (index
``width``) that out-of-range ids are clipped to.

Sizes: the tables take ``(S + 2) * (C + 2) * 5`` bytes (int32 transitions plus a bool mask)
plus ``(width + 1) * 4`` bytes (int32 token classes). Many states allow the same classes (every
position inside a string, say): when the ``U`` distinct allowed rows fit in
``max_dense_mask_bytes`` (default ``defaults.MAX_DENSE_MASK_BYTES``) as ``U x width`` float32 masks, they are also kept as
dense token masks (the processors make them additive, in the scores' dtype), so that masking
is one row copy per sequence instead of a gather over the vocabulary (``row_masks``; else
``None`` and the processors gather through ``token_class``).

A 2-property object over a 128k vocabulary (39 states, 97 classes) needs about 0.5 MB, nearly
all of it the token-class map; a ``maxLength: 200`` string (about 2,000 states) a few MB. Tables over ``max_bytes``
(``defaults.MAX_TABLE_BYTES``) are refused with
:class:`~pse_processors.CompileLimitError`.
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass
from typing import Iterable, Optional

import numpy as np

from .. import defaults
from ..compiler.options import CompileOptions, options_from
from ..constraints.schema import Schema
from ..constraints.spec import Grammar
from ..constraints.structure import StructuredConstraint
from ..errors import CompileLimitError, InvalidLogitsError, SchemaError
from ..matchers import Matcher
from .device_cache import device_cache
from .structure_tables import StructureTables, automaton_matcher, structure_tables

logger = logging.getLogger(__name__)

#: The defaults' names of 0.1 (see :mod:`pse_processors.defaults`).
DEFAULT_MAX_TABLE_BYTES = defaults.MAX_TABLE_BYTES
DEFAULT_MAX_DENSE_MASK_BYTES = defaults.MAX_DENSE_MASK_BYTES
_CACHE_KEY = "device_tables"
_lock = threading.Lock()


@dataclass(frozen=True)
class DeviceTables:
    """The automaton as dense arrays for in-graph processors; see the module docstring.

    Attributes:
        transitions: int32 ``[S + 2, C + 2]``, the next state of every (state, class); total
            (rejections lead to ``dead``).
        allowed: bool ``[S + 2, C + 2]``, whether a state allows a class.
        token_class: int32 ``[width + 1]``, the class of every logit id; the last entry is
            ``never_class``, for ids clipped into range.
        initial, dead, done: state ids.
        eos_class, never_class: class ids.
        width: the logits' width these tables were built for.
        mask_row: int32 ``[S + 2]``, the index of each state's allowed row among the distinct ones.
        row_masks: bool ``[U, width]``, the token mask of each distinct allowed row, or ``None``
            when ``U x width`` float32 masks would exceed ``max_dense_mask_bytes``.
    """

    transitions: np.ndarray
    allowed: np.ndarray
    token_class: np.ndarray
    initial: int
    dead: int
    done: int
    eos_class: int
    never_class: int
    width: int
    mask_row: np.ndarray
    row_masks: Optional[np.ndarray]

    @property
    def num_states(self) -> int:
        """States including ``dead`` and ``done``."""
        return int(self.transitions.shape[0])

    @property
    def num_classes(self) -> int:
        """Token classes including ``eos_class`` and ``never_class``."""
        return int(self.transitions.shape[1])

    @property
    def nbytes(self) -> int:
        """Bytes of the required tables (the optional ``row_masks`` are bounded separately)."""
        return int(self.transitions.nbytes + self.allowed.nbytes + self.token_class.nbytes)

    def walk(self, token_ids: Iterable[int], state: Optional[int] = None) -> int:
        """Reference walk in numpy-free Python: the state after ``token_ids`` (for tests and debugging)."""
        current = self.initial if state is None else state
        for token in token_ids:
            token = int(token)
            cls = self.token_class[token] if 0 <= token < self.width else self.never_class
            current = int(self.transitions[current, cls])
        return current

    def allowed_mask(self, state: int) -> np.ndarray:
        """Bool ``[width]``: the logit ids ``state`` allows."""
        return self.allowed[state][self.token_class[: self.width]]


def table_bytes(num_states: int, num_classes: int, width: int) -> int:
    """Bytes of :class:`DeviceTables` for a matcher of ``num_states`` x ``num_classes`` over ``width`` logits."""
    return (num_states + 2) * (num_classes + 2) * 5 + (width + 1) * 4


def device_tables(
    matcher: Matcher,
    width: Optional[int] = None,
    *,
    max_bytes: Optional[int] = None,
    max_dense_mask_bytes: Optional[int] = None,
) -> DeviceTables:
    """The :class:`DeviceTables` of ``matcher`` for logits ``width`` wide (default: the vocabulary size).

    Built once per matcher and width, and cached in the runtime's device cache of the matcher.

    Raises:
        CompileLimitError: the tables would take more than ``max_bytes``.
        VocabularyError: the logits are narrower than the tokenizer's usable ids.

    Example:
        >>> import pse_processors as pse
        >>> from pse_processors.runtime.device_tables import device_tables
        >>> vocab = pse.Vocabulary([b"a", b"b", None], eos_token_ids=[2])
        >>> matcher = pse.compile(pse.Regex("ab"), vocab)
        >>> tables = device_tables(matcher, width=5)   # 2 logits past the tokenizer
        >>> state = tables.walk([0])
        >>> tables.allowed_mask(state).tolist()
        [False, True, False, False, False]
        >>> state = tables.walk([1], state)
        >>> tables.allowed_mask(state).tolist()        # complete: EOS only
        [False, False, True, False, False]
        >>> tables.walk([2, 0, 0], state) == tables.done   # EOS, then padding
        True
    """
    width = matcher.vocab_size if width is None else int(width)
    max_bytes = defaults.MAX_TABLE_BYTES if max_bytes is None else max_bytes
    cache = device_cache(matcher, _CACHE_KEY)
    tables = cache.get(width)
    if tables is not None:
        if tables.nbytes > max_bytes:
            raise _too_large(tables.nbytes, max_bytes, matcher)
        return tables
    matcher.check_logits_width(width)
    # A lower bound first (at least one class), so that a hopeless matcher is refused before
    # its tables are materialized; then the exact size.
    lower = table_bytes(matcher.num_states, 0, width)
    if lower > max_bytes:
        raise _too_large(lower, max_bytes, matcher)
    base = matcher.dense_automaton
    need = table_bytes(base.num_states, base.num_classes, width)
    if need > max_bytes:
        raise _too_large(need, max_bytes, matcher)
    with _lock:
        tables = cache.get(width)
        if tables is None:
            dense_cap = defaults.MAX_DENSE_MASK_BYTES if max_dense_mask_bytes is None else max_dense_mask_bytes
            tables = cache[width] = _build(matcher, width, dense_cap)
            logger.info(
                "device tables: %d states x %d classes, width %d, %.1f KiB",
                tables.num_states, tables.num_classes, width, tables.nbytes / 1024,
            )
    return tables


def _too_large(need: int, cap: int, matcher: Matcher) -> CompileLimitError:
    return CompileLimitError(
        f"the in-graph tables of {matcher!r} need {need:,} bytes, over the limit of {cap:,} "
        "(max_table_bytes): they grow as (states + 2) x (classes + 2) x 5 + 4 x logits width. "
        "Simplify the constraint (fewer or shorter bounded repetitions such as maxLength/maxItems), "
        "or raise max_table_bytes."
    )


def _build(matcher: Matcher, width: int, max_dense_mask_bytes: int) -> DeviceTables:
    base = matcher.dense_automaton
    num_states, num_classes = base.num_states, base.num_classes
    dead, done = num_states, num_states + 1
    eos_class, never_class = num_classes, num_classes + 1

    transitions = np.full((num_states + 2, num_classes + 2), dead, dtype=np.int32)
    live = base.transitions
    transitions[:num_states, :num_classes] = np.where(live >= 0, live, dead)
    transitions[:num_states, eos_class] = np.where(base.accepting, done, dead)
    transitions[done, :] = done  # finished rows are padded with anything

    allowed = np.zeros((num_states + 2, num_classes + 2), dtype=bool)
    allowed[:num_states, :num_classes] = live >= 0
    allowed[:num_states, eos_class] = base.accepting
    allowed[dead, eos_class] = True  # EOS only: the scores stay finite and the row ends
    allowed[done, eos_class] = True

    token_class = np.full(width + 1, never_class, dtype=np.int32)
    n = min(width, matcher.vocab_size)
    token_class[:n] = base.token_class[:n]
    # Ids the tokenizer cannot spell (specials, None entries) belong to a class that no state
    # allows; give them the never class so they also never advance the state.
    spelled = np.array([token is not None for token in matcher.vocabulary.token_bytes[:n]], dtype=bool)
    symbols = getattr(getattr(matcher, "trie", None), "symbol_tokens", np.zeros(0, np.int64))
    spelled[symbols[symbols < n]] = True  # marker tokens (structure in free text) are columns of the automaton
    token_class[:n][~spelled] = never_class
    eos = np.array(sorted(i for i in matcher.vocabulary.eos_token_ids if i < width), dtype=np.int64)
    token_class[eos] = eos_class
    rows, mask_row = np.unique(allowed, axis=0, return_inverse=True)
    mask_row = mask_row.reshape(-1).astype(np.int32)
    row_masks = rows[:, token_class[:width]] if rows.shape[0] * width * 4 <= max_dense_mask_bytes else None
    for array in (transitions, allowed, token_class, mask_row, row_masks):
        if array is not None:
            array.setflags(write=False)
    return DeviceTables(
        transitions=transitions, allowed=allowed, token_class=token_class, initial=int(matcher.initial_state),
        dead=dead, done=done, eos_class=eos_class, never_class=never_class, width=width,
        mask_row=mask_row, row_masks=row_masks,
    )


class InGraphConstraint:
    """What the TensorFlow and Flax processors share: the matcher, the prompt boundary, the tables.

    Args:
        matcher: the compiled byte-automaton :class:`~pse_processors.Matcher`.
        prompt_length: the width of the (left-padded) prompt in the buffers ``generate`` hands
            to the processor; or
        max_new_tokens: the ``max_new_tokens`` given to ``generate``: the buffers are padded to
            prompt + ``max_new_tokens``, so the prompt is ``buffer width - max_new_tokens``.
        max_table_bytes: refuse matchers whose tables need more (:class:`CompileLimitError`;
            default ``defaults.MAX_TABLE_BYTES``).
    """

    def __init__(
        self,
        matcher: Matcher,
        *,
        prompt_length: Optional[int] = None,
        max_new_tokens: Optional[int] = None,
        max_table_bytes: Optional[int] = None,
    ) -> None:
        for name, value in (("prompt_length", prompt_length), ("max_new_tokens", max_new_tokens)):
            if value is not None and (not isinstance(value, (int, np.integer)) or isinstance(value, bool) or value < 0):
                raise ValueError(f"{name} must be a non-negative int, got {value!r}")
        if prompt_length is None and max_new_tokens is None:
            raise ValueError(
                "in-graph processors need to know where the prompt ends in the padded buffer: pass "
                "max_new_tokens= (the value given to generate) or prompt_length= (the prompt's width)"
            )
        self.matcher = matcher
        self.prompt_length = None if prompt_length is None else int(prompt_length)
        self.max_new_tokens = None if max_new_tokens is None else int(max_new_tokens)
        self.max_table_bytes = int(defaults.MAX_TABLE_BYTES if max_table_bytes is None else max_table_bytes)

    def prompt_length_for(self, buffer_length: int) -> int:
        """The prompt's width in a buffer ``buffer_length`` wide; raises ``InvalidLogitsError`` if impossible."""
        if self.prompt_length is not None:
            prompt = self.prompt_length
        else:
            prompt = buffer_length - self.max_new_tokens  # type: ignore[operator]
        if not 0 <= prompt <= buffer_length:
            raise InvalidLogitsError(
                f"the buffer of input_ids is {buffer_length} wide, which does not fit prompt_length={self.prompt_length} "
                f"/ max_new_tokens={self.max_new_tokens}: pass generate the same max_new_tokens as the processor"
            )
        return prompt

    def tables(self, width: int) -> DeviceTables:
        return device_tables(automaton_matcher(self.matcher), width, max_bytes=self.max_table_bytes)

    def structure_tables(self, width: int) -> Optional[StructureTables]:
        """A reasoning block's prompt scan and budget tables (``None`` for any other constraint)."""
        found = structure_tables(self.matcher, width)
        if found is not None and found.nbytes > self.max_table_bytes:
            raise _too_large(found.nbytes, self.max_table_bytes, self.matcher)
        return found


def in_graph_constraint(
    owner: str,
    constraint: object,
    tokenizer: object,
    *,
    max_new_tokens: Optional[int] = None,
    prompt_length: Optional[int] = None,
    generation_config: object = None,
    eos_token_ids: Optional[Iterable[int]] = None,
    max_table_bytes: Optional[int] = None,
    options: Optional[CompileOptions] = None,
    compile_options: Optional[dict] = None,
) -> InGraphConstraint:
    """The constructor work both in-graph processors share: compile on the byte automaton (unless
    given a matcher, then settle it), take ``max_new_tokens`` from ``generation_config`` when
    neither boundary is given.

    Raises:
        ValueError: another back end was asked for, or the matcher runs on llguidance.
    """
    loose = dict(compile_options or {})
    asked = loose.get("backend", loose.get("engine"))
    if asked is None and options is not None and options.backend != defaults.BACKEND:
        asked = options.backend
    plain = constraint.constraint if isinstance(constraint, Schema) else constraint
    structured = isinstance(plain, StructuredConstraint)
    if structured:
        _refuse_grammar_inside(owner, plain)
    if asked is not None and asked != "dfa" and not (structured and asked == "auto"):
        raise ValueError(
            f"{owner} runs the byte automaton inside the compiled graph: it accepts backend='dfa' only "
            f"(engine='dfa' only, in 0.1's words), not {asked!r} (recursion is unrolled to max_recursion_depth; "
            "use the torch or MLX processor for llguidance)"
        )
    if isinstance(constraint, Matcher):
        matcher = constraint.settled()  # backend="auto"'s warm start: wait for its automaton
        if matcher.backend != "dfa":
            raise ValueError(
                f"{owner} runs the byte automaton inside the compiled graph, and this matcher runs on "
                f"{matcher.backend!r}: compile it with engine='dfa' (backend='dfa')"
            )
    else:
        if tokenizer is None:
            raise TypeError(f"{owner} needs the model's tokenizer (or a Vocabulary)")
        from ..compiler.compiler import compile as compile_constraint

        loose.pop("engine", None)  # the back end is settled: the automaton
        loose.pop("backend", None)
        matcher = compile_constraint(
            constraint, tokenizer, options=options_from(options, loose).merge(backend="dfa"),
            eos_token_ids=eos_token_ids, generation_config=generation_config,
        )
    if max_new_tokens is None and prompt_length is None:
        max_new_tokens = max_new_tokens_from(generation_config)
    return InGraphConstraint(matcher, prompt_length=prompt_length, max_new_tokens=max_new_tokens, max_table_bytes=max_table_bytes)


def _refuse_grammar_inside(owner: str, constraint: object) -> None:
    """A Grammar inside Reasoning/Delimited has no byte automaton: refused by name (SchemaError)."""
    inner = getattr(constraint, "answer", getattr(constraint, "constraint", None))
    if isinstance(inner, StructuredConstraint):
        _refuse_grammar_inside(owner, inner)
    elif isinstance(inner, Grammar):
        raise SchemaError(
            f"{owner} runs the byte automaton inside the compiled graph, and a Grammar inside "
            f"{type(constraint).__name__} needs llguidance (a context-free grammar has no automaton): use the "
            "torch or MLX processor, or a JSON Schema, Regex or Choice there", None,  # type: ignore[arg-type]
        )


def max_new_tokens_from(generation_config: object) -> Optional[int]:
    """``generation_config.max_new_tokens`` if it is set, else ``None``."""
    value = getattr(generation_config, "max_new_tokens", None)
    return int(value) if isinstance(value, (int, np.integer)) and not isinstance(value, bool) else None
