"""What the in-graph processors (TensorFlow, Flax) share: everything but their tensor ops.

Traced code keeps no Python state between calls, so each call recomputes every row's state
from the generated part of the padded buffer, walking the device tables of
:mod:`.device_tables` in blocks of :data:`BLOCK` unrolled steps, then masks the scores. The
walk and the masking are written once here against a tiny per-framework :class:`GraphOps`
(``tf.gather`` or ``jnp`` indexing, ``tf.while_loop`` or ``lax.fori_loop``...), so the same
code runs eagerly, in a graph and under XLA. :class:`InGraphProcessor` is the framework-free
half of the processors: the constructor (compiling, the prompt boundary), the tables on the
device (:class:`GraphTables`, cached per matcher and width), the shape checks and parsing.

Structure in free text (:class:`~pse_processors.Reasoning`, ``Delimited``, ``Tools``) is one
byte automaton like any constraint, its marker tokens columns of it. A reasoning block adds two
small token automata (:mod:`.structure_tables`), walked in the same graph: over the prompt (its
width is static), whose category picks each row's start state; and, with a thinking budget,
the budget's phase beside the state with the count as a counter in the loop, so that past the
budget a token off the way to the end marker leads to ``dead`` and the mask is ANDed with the
way's row.

Example (numpy as the "framework", walking the buffer of one row):
    >>> import contextlib, functools, numpy as np, pse_processors as pse
    >>> class NumpyOps:
    ...     constants = staticmethod(contextlib.nullcontext)
    ...     constant = staticmethod(np.asarray)
    ...     int32 = staticmethod(lambda x: np.asarray(x, np.int32))
    ...     where, minimum = staticmethod(np.where), staticmethod(np.minimum)
    ...     gather = staticmethod(lambda table, index: table[index])
    ...     take = staticmethod(lambda x, index, axis: np.take(x, index, axis=axis))
    ...     pad = staticmethod(lambda x, n: np.pad(x, ((0, 0), (0, n))))
    ...     initial_states = staticmethod(lambda ids, state: np.full(len(ids), state, np.int32))
    ...     block = staticmethod(lambda x, b, size: x[:, b * size:(b + 1) * size])
    ...     loop = staticmethod(lambda blocks, most, body, state: functools.reduce(lambda s, b: body(b, s), range(blocks), state))
    ...     mask_key = staticmethod(lambda dtype: None)
    ...     masks = staticmethod(lambda allowed, dtype: allowed)
    ...     apply = staticmethod(lambda scores, mask: np.where(mask, scores, -np.inf))
    >>> vocab = pse.Vocabulary([b"a", b"b", None], eos_token_ids=[2])
    >>> matcher = pse.compile(pse.Regex("ab"), vocab, backend="dfa")
    >>> tables = GraphTables(device_tables(matcher), NumpyOps)
    >>> ids = np.array([[9, 0, 1, 0]])  # a 1-token prompt, then "a", "b" and a pad
    >>> masked(NumpyOps, tables, ids, np.zeros((1, 3)), cur_len=3, prompt_length=1).tolist()  # complete: EOS only
    [[-inf, -inf, 0.0]]
"""

from __future__ import annotations

import threading
import warnings
from typing import Any, Callable, ContextManager, Iterable, Optional, Protocol

import numpy as np

from ..compiler.options import CompileOptions
from ..errors import InvalidLogitsError
from ..matchers import Matcher
from .device_cache import device_cache
from .device_tables import DeviceTables, device_tables, in_graph_constraint
from .results import parse_output
from ..matchers.prompts import ANSWER, INSIDE, START
from .structure_tables import BudgetTables, ScanTables, StructureTables

#: Positions walked per loop iteration (unrolled): XLA's per-iteration overhead dominates otherwise.
BLOCK = 8


class GraphOps(Protocol):
    """The tensor operations the walk and the masking need, one small object per framework."""

    def constants(self) -> ContextManager[Any]: ...  # concrete constants, even while tracing
    def constant(self, array: np.ndarray) -> Any: ...
    def int32(self, x: Any) -> Any: ...
    def where(self, cond: Any, a: Any, b: Any) -> Any: ...
    def minimum(self, a: Any, b: Any) -> Any: ...
    def gather(self, table: Any, index: Any) -> Any: ...  # a 1-D table at every index
    def last(self, found: Any) -> Any: ...  # int32 [batch]: the last column where bool [batch, n] is True, or -1
    def take(self, x: Any, index: Any, axis: int) -> Any: ...  # the masks' rows or columns
    def pad(self, x: Any, n: int) -> Any: ...  # n zero columns on the right of a 2-D tensor
    def initial_states(self, ids: Any, state: int) -> Any: ...  # int32 [batch] of state
    def block(self, x: Any, b: Any, size: int) -> Any: ...  # x[:, b * size:(b + 1) * size]
    def loop(self, blocks: Any, most: int, body: Callable[[Any, Any], Any], state: Any) -> Any: ...
    def mask_key(self, dtype: Any) -> Any: ...  # the masks made for scores of dtype are shared by key
    def masks(self, allowed: np.ndarray, dtype: Any) -> Any: ...  # bool [rows, n] -> the device masks
    def apply(self, scores: Any, mask: Any) -> Any: ...  # the scores where mask allows, -inf elsewhere
    def jit(self, fn: Callable) -> Callable: ...  # fn(input_ids, scores, cur_len, prompt) compiled, prompt static


class GraphTables:
    """One matcher's device tables, as the framework's constants (so any trace can capture them),
    with a reasoning block's prompt scan and budget (:mod:`.structure_tables`) when it has them."""

    def __init__(self, tables: DeviceTables, ops: GraphOps, structure: Optional[StructureTables] = None) -> None:
        self.ops = ops
        with ops.constants():
            self.transitions = ops.constant(tables.transitions.reshape(-1))
            self.token_class = ops.constant(tables.token_class)
            self.mask_row = ops.constant(tables.mask_row)
            # Dense [rows, width] masks when they fit, else [rows, classes] gathered through the classes.
            self.mask_class = None if tables.row_masks is not None else ops.constant(tables.token_class[: tables.width])
            self.scan = None if structure is None or structure.scan is None else _Scan(structure.scan, ops)
            self.budget = None if structure is None or structure.budget is None else _Budget(structure.budget, ops)
        self.allowed = tables.row_masks if tables.row_masks is not None else np.unique(tables.allowed, axis=0)
        self._masks: dict = {}
        self._lock = threading.Lock()
        self.num_classes = tables.num_classes
        self.initial = tables.initial
        self.dead = tables.dead
        self.width = tables.width
        self.eager: Any = None  # the compiled function that calls outside a trace go through, built on first use

    def masks(self, dtype: Any, which: str = "automaton") -> Any:
        """The device masks for scores of ``dtype`` (``which``: the automaton's rows, or the budget's
        ``"way"`` rows), made on first use."""
        key = (which, self.ops.mask_key(dtype))
        masks = self._masks.get(key)
        if masks is None:
            with self._lock, self.ops.constants():
                masks = self._masks.get(key)
                if masks is None:
                    allowed = self.allowed if which == "automaton" else self.budget.way_masks  # type: ignore[union-attr]
                    masks = self._masks[key] = self.ops.masks(allowed, dtype)
        return masks


class _Scan:
    """:class:`~.structure_tables.ScanTables` as constants."""

    def __init__(self, scan: ScanTables, ops: GraphOps) -> None:
        self.transitions = ops.constant(scan.automaton.transitions.reshape(-1))
        self.num_classes = int(scan.automaton.transitions.shape[1])
        self.token_class = ops.constant(scan.automaton.token_class)
        self.category = ops.constant(scan.category)
        self.start_states = ops.constant(scan.start_states)
        self.start_phases = ops.constant(scan.start_phases)
        self.marker_tokens = scan.marker_tokens
        self.blank = None if scan.blank is None else ops.constant(scan.blank.astype(np.int32))


class _Budget:
    """:class:`~.structure_tables.BudgetTables` as constants (``way_masks`` made per dtype)."""

    def __init__(self, budget: BudgetTables, ops: GraphOps) -> None:
        self.transitions = ops.constant(budget.automaton.transitions.reshape(-1))
        self.num_classes = int(budget.automaton.transitions.shape[1])
        self.token_class = ops.constant(budget.automaton.token_class)
        self.inside = ops.constant(budget.inside)
        self.on_way = ops.constant(budget.on_way.reshape(-1))
        self.way_row = ops.constant(budget.way_row)
        self.way_masks = budget.way_masks
        self.max_tokens = budget.max_tokens


def _run(ops: GraphOps, columns: list, walked: Any, step: Callable[[tuple, list], tuple], carry: tuple) -> tuple:
    """``carry`` after ``step`` over the first ``walked`` positions of the class ``columns``
    (``[batch, span]`` each), in blocks of :data:`BLOCK` unrolled steps."""
    span = int(columns[0].shape[1])
    padded = max(-(-span // BLOCK), 1) * BLOCK
    columns = [ops.pad(column, padded - span) for column in columns]

    def block(b: Any, carry: tuple) -> tuple:
        chunks = [ops.block(column, b, BLOCK) for column in columns]
        for k in range(BLOCK):
            following = step(carry, [chunk[:, k] for chunk in chunks])
            active = b * BLOCK + k < walked
            carry = tuple(ops.where(active, new, old) for new, old in zip(following, carry))
        return carry

    blocks = ops.minimum((walked + BLOCK - 1) // BLOCK, padded // BLOCK)
    return ops.loop(blocks, padded // BLOCK, block, carry)


def walk(ops: GraphOps, tables: GraphTables, input_ids: Any, cur_len: Any, prompt_length: int) -> tuple:
    """int32 ``[batch]`` each: every row's (state, budget phase, count) after
    ``input_ids[:, prompt_length:cur_len]``, from the start state its prompt gives (phase and
    count are ``None`` without a budget)."""
    ids = ops.int32(input_ids)
    width, num_classes = tables.width, tables.num_classes
    ids = ops.where((ids < 0) | (ids >= width), width, ids)  # the never class
    state = ops.initial_states(ids, tables.initial)
    phase = ops.initial_states(ids, 0)
    scan, budget = tables.scan, tables.budget
    if scan is not None and prompt_length:
        category = _prompt_category(ops, scan, ids[:, :prompt_length], prompt_length, phase)
        state, phase = ops.gather(scan.start_states, category), ops.gather(scan.start_phases, category)
    generated = ids[:, prompt_length:]
    walked = ops.int32(cur_len) - prompt_length
    classes = ops.gather(tables.token_class, generated)  # [batch, new], one gather for the whole buffer
    if budget is None:

        def step(carry: tuple, columns: list) -> tuple:
            return (ops.gather(tables.transitions, carry[0] * num_classes + columns[0]),)

        return _run(ops, [classes], walked, step, (state,))[0], None, None
    most = budget.max_tokens

    def budget_step(carry: tuple, columns: list) -> tuple:
        state, phase, count = carry
        following = ops.gather(tables.transitions, state * num_classes + columns[0])
        at = phase * budget.num_classes + columns[1]
        inside = ops.gather(budget.inside, phase) > 0
        off_way = (ops.gather(budget.on_way, at) == 0) & inside & (count >= most)
        following = ops.where(off_way & (state < tables.dead), tables.dead, following)  # the budget is spent
        phase_after = ops.gather(budget.transitions, at)
        inside_after = ops.gather(budget.inside, phase_after) > 0
        count = ops.where(inside & inside_after, ops.minimum(count + 1, most), ops.where(inside_after, count, 0 * count))
        return following, phase_after, count

    bclasses = ops.gather(budget.token_class, generated)
    return _run(ops, [classes, bclasses], walked, budget_step, (state, phase, ops.initial_states(ids, 0)))


def _prompt_category(ops: GraphOps, scan: _Scan, prompt: Any, prompt_length: int, zeros: Any) -> Any:
    """int32 ``[batch]``: each prompt's category (start, inside or after the reasoning block)."""
    if scan.marker_tokens is not None:  # one token each: where the last of each is, no walk
        last_start, last_end = (ops.last(prompt == token) for token in scan.marker_tokens)
        # A closed block is the answer's only when nothing but whitespace follows it (no later turn).
        last_text = ops.last(ops.gather(scan.blank, prompt) == 0)
        closed = ops.where(last_text > last_end, 0 * zeros + START, 0 * zeros + ANSWER)
        return ops.where(last_start < 0, 0 * zeros + START, ops.where(last_end > last_start, closed, 0 * zeros + INSIDE))

    def scan_step(carry: tuple, columns: list) -> tuple:
        return (ops.gather(scan.transitions, carry[0] * scan.num_classes + columns[0]),)

    classes = ops.gather(scan.token_class, prompt)
    return ops.gather(scan.category, _run(ops, [classes], prompt_length, scan_step, (zeros,))[0])


def states(ops: GraphOps, tables: GraphTables, input_ids: Any, cur_len: Any, prompt_length: int) -> Any:
    """int32 ``[batch]``: each row's state after ``input_ids[:, prompt_length:cur_len]``."""
    return walk(ops, tables, input_ids, cur_len, prompt_length)[0]


def masked(ops: GraphOps, tables: GraphTables, input_ids: Any, scores: Any, cur_len: Any, prompt_length: int) -> Any:
    """``scores`` masked by each row's state after ``input_ids[:, prompt_length:cur_len]``."""
    state, phase, count = walk(ops, tables, input_ids, cur_len, prompt_length)
    rows = ops.gather(tables.mask_row, state)
    mask = ops.take(tables.masks(scores.dtype), rows, 0)  # [batch, width] or [batch, classes]
    if tables.mask_class is not None:
        mask = ops.take(mask, tables.mask_class, 1)  # [batch, classes] -> [batch, width]
    scores = ops.apply(scores, mask)
    budget = tables.budget
    if budget is None:
        return scores
    # Past the budget, only the way to the end marker: the way's row for the phase (row 0: all).
    spent = (ops.gather(budget.inside, phase) > 0) & (count >= budget.max_tokens) & (state < tables.dead)
    way = ops.where(spent, ops.gather(budget.way_row, phase), 0 * phase)
    return ops.apply(scores, ops.take(tables.masks(scores.dtype, "way"), way, 0))


class InGraphProcessor:
    """The constructor, device tables, checks and parsing of an in-graph processor.

    Subclasses set :attr:`namespace` and :attr:`ops` and define ``__call__``, which checks the
    framework's tensors and calls :meth:`_prompt` and :meth:`_apply`. The arguments are those
    of :class:`~pse_processors.TFPSELogitsProcessor`.
    """

    #: The framework's namespace in :func:`~.device_cache.device_cache`, and its ops.
    namespace = ""
    ops: GraphOps

    def __init__(
        self,
        constraint: Any,
        tokenizer: Any = None,
        *,
        max_new_tokens: Optional[int] = None,
        prompt_length: Optional[int] = None,
        generation_config: Any = None,
        eos_token_ids: Optional[Iterable[int]] = None,
        max_table_bytes: Optional[int] = None,
        options: Optional[CompileOptions] = None,
        **compile_options: Any,
    ) -> None:
        self._core = in_graph_constraint(
            type(self).__name__, constraint, tokenizer, max_new_tokens=max_new_tokens, prompt_length=prompt_length,
            generation_config=generation_config, eos_token_ids=eos_token_ids, max_table_bytes=max_table_bytes,
            options=options, compile_options=compile_options,
        )
        self.matcher = self._core.matcher
        self._tables_by_width: dict = device_cache(self.matcher, self.namespace)

    @property
    def grammar(self) -> Matcher:
        """Deprecated (0.1): :attr:`matcher`."""
        warnings.warn(f"{type(self).__name__}.grammar is deprecated: use .matcher", DeprecationWarning, stacklevel=2)
        return self.matcher

    def __reduce__(self) -> tuple:
        # The recipe only (see compiler/recipes.py): the device tables are rebuilt on first use.
        from ..compiler.recipes import reduce_in_graph_processor

        return reduce_in_graph_processor(self)

    def _tables(self, width: int) -> GraphTables:
        tables = self._tables_by_width.get(width)
        if tables is None:
            built = GraphTables(self._core.tables(width), self.ops, self._core.structure_tables(width))
            tables = self._tables_by_width.setdefault(width, built)
        return tables

    def _prompt(self, rows: Optional[int], length: Optional[int], score_rows: Optional[int], width: Optional[int],
                cur_len: Optional[int] = None) -> int:
        """Check the static shapes (and ``cur_len`` when known); the prompt's width in the buffer."""
        if width is None or length is None:
            raise InvalidLogitsError("the buffer width and the vocabulary width must be static")
        if rows is not None and score_rows is not None and rows != score_rows:
            raise InvalidLogitsError(f"input_ids has {rows} rows but scores has {score_rows}")
        prompt = self._core.prompt_length_for(length)
        if cur_len is not None and not prompt <= cur_len <= length:
            raise InvalidLogitsError(
                f"cur_len={cur_len} lies before the prompt's end ({prompt}) or past the buffer ({length}): "
                "pass the processor the same max_new_tokens as generate"
            )
        return prompt

    def _apply(self, input_ids: Any, scores: Any, cur_len: Any, prompt: int, traced: bool) -> Any:
        """Mask ``scores``: in the caller's trace, or else through one compiled function (``ops.jit``)."""
        ops, tables = self.ops, self._tables(int(scores.shape[1]))
        if traced:
            return masked(ops, tables, input_ids, scores, cur_len, prompt)
        if tables.eager is None:
            tables.eager = ops.jit(lambda ids, sc, cur, p: masked(ops, tables, ids, sc, cur, p))
        return tables.eager(input_ids, scores, cur_len, prompt)

    def parse(self, output: Any, prompt_length: int = 0) -> Any:
        """Parse one generated row into a Python value (a dict, a Pydantic instance, or a string;
        a :class:`~pse_processors.runtime.structured.StructuredOutput` for structure in free text,
        whose reasoning block starts where the row's prompt left it).

        Args:
            output: a 1-D tensor/array/list of token ids as returned by ``generate`` (prompt
                included, then pass ``prompt_length``), or the generated text.
            prompt_length: how many leading ids are the (padded) prompt.

        Raises:
            InvalidOutputError: the output is incomplete or invalid.
        """
        prompt = None
        if not isinstance(output, (str, bytes)):
            row = np.asarray(output).reshape(-1)
            output, prompt = row[prompt_length:], row[:prompt_length]
        if self.matcher.spec.structure is not None:  # a reasoning block starts where the prompt left it
            return parse_output(self.matcher, output, prompt=prompt)
        return parse_output(self.matcher, output)
