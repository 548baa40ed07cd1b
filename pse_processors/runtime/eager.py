"""What the eager processors (PyTorch, MLX) share: everything but their tensors.

:class:`EagerProcessor` is the framework-free half of :class:`~pse_processors.PSELogitsProcessor`
and :class:`~pse_processors.mlx.MLXPSELogitsProcessor`. It compiles the constraint (or takes a
compiled matcher), keeps each row's state keyed by its token prefix (:mod:`.prefix_states`),
picks the mask each row needs, checks a new logits width once, and parses outputs. The
framework module subclasses it and only converts ids to numpy and adds the masks to the scores:
either one device table per context whose rows it gathers for the whole batch at once
(:meth:`EagerProcessor._table`, :mod:`.mask_table`; PyTorch), or one cached device mask per
mask id (:meth:`EagerProcessor._device_mask`; MLX, whose batches are one row).

Example (a processor over plain numpy arrays):
    >>> import numpy as np, pse_processors as pse
    >>> class NumpyProcessor(EagerProcessor):
    ...     namespace = "doctest-numpy"
    ...     def _device_mask(self, additive, context):
    ...         return additive
    ...     def __call__(self, input_ids, scores):
    ...         states, context = self._prefix.states(input_ids), (scores.shape[-1],)
    ...         masks = self._masks(context, lambda a: a.nbytes)
    ...         return scores + np.stack([self._mask(masks, m, s, context) for m, s in zip(self._rows(states), states)])
    >>> vocab = pse.Vocabulary([b"a", b"b", None], eos_token_ids=[2])
    >>> processor = NumpyProcessor("NumpyProcessor", pse.Choice(["ab"]), vocab)
    >>> processor(np.array([[2], [2]]), np.zeros((2, 3))).tolist()
    [[0.0, -inf, -inf], [0.0, -inf, -inf]]
    >>> processor.parse([0, 1, 2])
    'ab'
"""

from __future__ import annotations

import warnings
from typing import Any, Callable, Iterable, Optional

import numpy as np

from ..caching.lru import SizedLRU
from ..compiler.options import CompileOptions
from .. import defaults
from ..matchers import Matcher
from ..matchers.handoff import precompute_in_background
from .device_cache import device_cache
from .mask_table import MaskTable, TableOps
from .prefix_states import PrefixStates
from .results import parse_output
from .row_checks import resolve_matcher


class EagerProcessor:
    """The state, masks and parsing of an eager processor; see the module docstring.

    Args:
        owner: the processor's class name, for error messages.
        constraint: a constraint, or a compiled :class:`~pse_processors.Matcher` (used as is).
        tokenizer: the model's tokenizer (or a :class:`~pse_processors.Vocabulary`).
        options: a :class:`~pse_processors.CompileOptions`; ``option_kwargs`` override its fields.
        eos_token_ids, generation_config: more ids that end the output (see ``compile``).
    """

    #: The framework's namespace in :func:`~.device_cache.device_cache`.
    namespace = ""

    def __init__(
        self,
        owner: str,
        constraint: Any,
        tokenizer: Any = None,
        *,
        options: Optional[CompileOptions] = None,
        option_kwargs: Optional[dict] = None,
        eos_token_ids: Optional[Iterable[int]] = None,
        generation_config: Any = None,
    ) -> None:
        self.matcher: Matcher = resolve_matcher(
            owner, constraint, tokenizer, eos_token_ids=eos_token_ids, generation_config=generation_config,
            options=options, compile_options=option_kwargs,
        )
        self._prefix = PrefixStates(self.matcher)
        # A byte automaton from the disk cache (or backend="dfa") would walk the token trie on each
        # state's first visit, on the decode thread: its masks are computed in the background now.
        precompute_in_background(self.matcher)
        # context (device, dtype, width...) -> SizedLRU of device masks by mask id, shared by
        # every processor of this matcher.
        self._contexts: dict = device_cache(self.matcher, self.namespace)
        self._checked_widths: set[int] = set()

    @property
    def grammar(self) -> Matcher:
        """Deprecated (0.1): :attr:`matcher`."""
        warnings.warn(f"{type(self).__name__}.grammar is deprecated: use .matcher", DeprecationWarning, stacklevel=2)
        return self.matcher

    def __reduce__(self) -> tuple:
        # The recipe only (see compiler/recipes.py): an unpickled processor knows no prefixes
        # and builds its device masks on first use.
        from ..compiler.recipes import rebuild

        return rebuild, (type(self), (self.matcher,), self._pickled_options())

    def _pickled_options(self) -> dict:
        """The processor's own constructor options that a pickle keeps."""
        return {}

    def reset(self) -> None:
        """Forget all tracked prefixes: the next call starts a new generation.

        Needed only when a new prompt equals a row this processor saw plus exactly one token
        that the constraint allows there, which would otherwise look like a continuation."""
        self._prefix.reset()

    def _rows(self, states: list[int]) -> list[int]:
        """The mask id of each row; one id when every row shares it (the mask is broadcast)."""
        mask_ids = self.matcher.mask_ids(states)
        first = mask_ids[0]
        return [first] if all(m == first for m in mask_ids) else mask_ids

    def _check_width(self, width: int) -> None:
        if width not in self._checked_widths:
            self.matcher.check_logits_width(width)
            self._checked_widths.add(width)

    def _masks(self, context: tuple, size_of: Callable[[Any], int]) -> SizedLRU:
        """The device masks of ``context`` (its last item is the logits' width, checked once)."""
        masks = self._contexts.get(context)
        if masks is None:
            self._check_width(context[-1])
            masks = self._contexts.setdefault(context, SizedLRU(defaults.DEVICE_MASK_CACHE_BYTES, size_of))
        return masks

    def _table(self, context: tuple) -> MaskTable:
        """The device mask table of ``context`` (its last item is the logits' width, checked once)."""
        table = self._contexts.get(context)
        if table is None:
            self._check_width(context[-1])
            ops, row_bytes = self._table_ops(context)
            table = MaskTable(self.matcher, context[-1], ops, defaults.DEVICE_MASK_CACHE_BYTES, row_bytes)
            table = self._contexts.setdefault(context, table)
        return table

    def _table_ops(self, context: tuple) -> tuple[TableOps, int]:
        """The framework's :class:`~.mask_table.TableOps` for ``context``, and the bytes of one row."""
        raise NotImplementedError

    def _mask(self, masks: SizedLRU, mask_id: int, state: int, context: tuple) -> Any:
        """The device mask (0 where ``state`` allows the token, -inf elsewhere), cached by mask id."""
        mask = masks.get(mask_id)
        if mask is None:
            allowed = self.matcher.allowed_mask(state, context[-1])
            mask = self._device_mask(np.where(allowed, np.float32(0), np.float32(-np.inf)), context)
            masks.put(mask_id, mask)
        return mask

    def _device_mask(self, additive: np.ndarray, context: tuple) -> Any:
        """float32 ``[width]`` 0/-inf mask -> the framework's mask for ``context`` (its last item is the width)."""
        raise NotImplementedError

    def _host_ids(self, output: Any) -> Any:
        """A framework tensor -> numpy (other outputs unchanged)."""
        return output

    def parse(self, output: Any, prompt_length: int = 0) -> Any:
        """Parse one generated row into a Python value (a dict, a Pydantic instance, or a string; a
        :class:`~pse_processors.StructuredOutput` for ``Reasoning``, ``Delimited`` and ``Tools``).

        Args:
            output: the generated text, or a 1-D tensor/array/list of token ids as returned by
                ``generate`` (prompt included, then pass ``prompt_length``: the prompt then says
                where a reasoning block starts, as it did during generation).
            prompt_length: how many leading ids are the (padded) prompt.

        Raises:
            InvalidOutputError: the output is incomplete or invalid.
        """
        output = self._host_ids(output)
        prompt = None
        if not isinstance(output, (str, bytes)):
            ids = np.asarray(output).reshape(-1)
            output, prompt = ids[prompt_length:], (ids[:prompt_length] if prompt_length else None)
        return parse_output(self.matcher, output, prompt)
