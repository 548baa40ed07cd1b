"""vLLM: the batch-level logits processor. It only moves tensors; the rest is in this package's other modules.

One instance serves the whole engine. A request opts in through ``extra_args["pse"]``
(:mod:`.requests`); its constraint is checked in vLLM's front end (``validate_params``: a bad one
is an HTTP 400) and compiled once per distinct constraint off the decode loop (:mod:`.compiling`);
its state advances from its output ids (:mod:`.rows`); each step masks every constrained row
from cached device masks at once (:mod:`.masks`). Requests without it are not touched, and a
step without any returns at once.

The class implements both of vLLM's logits-processor interfaces: the v1 sampler's
(``vllm.v1.sample.logits_processor.LogitsProcessor``) and Model Runner V2's, which vLLM uses on
GPUs with Triton and which refuses plug-ins of the v1 interface.
"""

from __future__ import annotations

import logging
from typing import Any, Optional

import torch
from vllm.v1.sample.logits_processor import BatchUpdate
from vllm.v1.sample.logits_processor import LogitsProcessor as _V1LogitsProcessor

try:
    from vllm.v1.worker.gpu.sample.logits_processor.interface import LogitsProcessor as _V2LogitsProcessor
except ImportError:  # a vLLM without Model Runner V2

    class _V2LogitsProcessor:  # type: ignore[no-redef]
        """Stand-in base: no second interface to implement."""


from ..errors import VocabularyError
from .compiling import MatcherCache
from .masks import DeviceMasks
from .requests import check_request, request_from_extra_args
from .rows import RowStates
from .runner_v2 import draft_rows, sync_outputs
from .serving import model_vocabulary, refuse_conflicts, request_of

logger = logging.getLogger(__name__)


class VLLMPSELogitsProcessor(_V1LogitsProcessor, _V2LogitsProcessor):
    """Structured generation for vLLM, per request: ``SamplingParams(extra_args={"pse": {...}})``.

    Registered by ``pip install pse-processors`` (entry point ``vllm.logits_processors``), or
    explicitly with ``LLM(..., logits_processors=[VLLMPSELogitsProcessor])`` /
    ``vllm serve --logits-processors pse_processors.vllm:VLLMPSELogitsProcessor``.

    Example:

    ```python
    >>> from vllm import LLM, SamplingParams  # doctest: +SKIP
    >>> from pse_processors.vllm import extra_args, parse  # doctest: +SKIP
    >>> llm = LLM(model="HuggingFaceTB/SmolLM2-135M-Instruct")  # doctest: +SKIP
    >>> schema = {"type": "object", "properties": {"name": {"type": "string"}}, "required": ["name"]}
    >>> params = SamplingParams(max_tokens=64, extra_args=extra_args(schema))  # doctest: +SKIP
    >>> out = llm.generate(["Extract the name: John Smith is a developer. JSON:"], params)  # doctest: +SKIP
    >>> parse(out[0], schema)  # doctest: +SKIP
    {'name': 'John Smith'}

    ```
    """

    def __init__(self, vllm_config: Any, *args: Any) -> None:
        # v1: (vllm_config, device, is_pin_memory); Model Runner V2: (vllm_config, req_states).
        if len(args) == 2:
            device, self._req_states = args[0], None
        elif len(args) == 1:
            self._req_states = args[0]
            device = self._req_states.device
        else:
            raise TypeError(f"{type(self).__name__}(vllm_config, device, is_pin_memory) or (vllm_config, req_states)")
        self._speculative = getattr(vllm_config, "speculative_config", None) is not None
        self._matchers = MatcherCache(lambda: model_vocabulary(vllm_config))
        self._matchers.preload()  # the tokenizer read now, on the compile thread: not by the first constrained request
        self._rows = RowStates(self._matchers)
        self._masks = DeviceMasks(torch.device(device))
        self._outputs: dict[int, list] = {}  # Model Runner V2: slot -> output ids read from the device

    # -- vLLM's front end ------------------------------------------------------------------------
    @classmethod
    def validate_params(cls, sampling_params: Any) -> None:
        """Check a request's ``extra_args["pse"]`` before it reaches the engine.

        Raises (all ``ValueError`` s, which vLLM answers with HTTP 400):
            SchemaError, UnsupportedSchemaError, CompileLimitError...: the constraint, named.
            RequestConflictError: ``ignore_eos=True``, or a server where the processor cannot
                run (speculative decoding; async scheduling on the v1 runner with the entry point only).
        """
        request = request_from_extra_args(getattr(sampling_params, "extra_args", None))
        if request is None:
            return
        refuse_conflicts(cls, sampling_params)
        check_request(request)

    # -- the v1 interface ------------------------------------------------------------------------
    def is_argmax_invariant(self) -> bool:
        """False: the mask changes which token is most likely, so greedy requests need it too."""
        return False

    def update_state(self, batch_update: Optional[BatchUpdate]) -> None:
        if batch_update is not None:
            self._rows.update(batch_update.removed, batch_update.added, batch_update.moved, request_of)

    def apply(self, logits: torch.Tensor, ctx: Any = None) -> torch.Tensor:
        """Mask the constrained rows of ``logits`` in place (``ctx``: Model Runner V2's step layout)."""
        if not len(self._rows):
            return logits
        self._masks.begin_step()
        if ctx is None:
            batch = logits.shape[0]
            placed = [(index, index) for index in sorted(self._rows.indices()) if index < batch]
        elif logits.shape[0] != len(ctx.idx_mapping_np):
            return self._stop_all(logits, draft_rows(self._rows, ctx))
        else:
            placed = sync_outputs(self._rows, self._outputs, ctx, self._req_states)
        width = logits.shape[-1]
        rows, slots = [], []
        states = self._rows.current(key for _, key in placed)
        for (row, _), (_, matcher, state, request_state) in zip(placed, states):
            slot = None
            if matcher is not None:
                try:
                    slot = self._masks.slot(matcher, state, width)
                except VocabularyError as exc:  # the tokenizer does not fit the model: stop this request
                    request_state.matcher, request_state.error = None, str(exc)
                    logger.error("pse: %s", exc)
            if slot is None:
                slot = self._masks.stop_slot(request_state.stop_ids, width)
            rows.append(row)
            slots.append(slot)
        return self._masks.apply(logits, rows, slots)

    # -- Model Runner V2 -------------------------------------------------------------------------
    def add_request(self, req_idx: int, sampling_params: Any) -> bool:
        self._outputs.pop(req_idx, None)
        request, stop_ids, error = request_of(sampling_params)
        if request is None and error is None:
            self._rows.remove(req_idx)
            return False
        ids = self._outputs[req_idx] = []
        self._rows.add(req_idx, request, ids, stop_ids, error)
        if self._speculative:
            logger.error("pse: speculative decoding is on, so this request's constraint cannot be enforced: it is stopped")
        return True

    def apply_staged_writes(self) -> None:
        """Nothing is staged: states live on the host."""

    def _stop_all(self, logits: torch.Tensor, placed: list) -> torch.Tensor:
        width = logits.shape[-1]
        slots = [self._masks.stop_slot(self._rows.get(slot).stop_ids, width) for _, slot in placed]  # type: ignore[union-attr]
        return self._masks.apply(logits, [row for row, _ in placed], slots)
