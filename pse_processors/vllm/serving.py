"""What the vLLM processor reads from vLLM: the served model's vocabulary, each request's
constraint and stop ids, and (in the front end) whether the server can run the processor at all.

vLLM imports only inside :func:`model_vocabulary`, so the rest is testable without it.
"""

from __future__ import annotations

import importlib
import logging
import sys
from typing import Any, Optional

from ..errors import VocabularyError
from ..vocabulary.vocabulary import Vocabulary
from .requests import ConstraintRequest, RequestConflictError, request_from_extra_args

logger = logging.getLogger(__name__)


def refuse_conflicts(cls: type, sampling_params: Any) -> None:
    """Raise :class:`~.requests.RequestConflictError` when a constrained request cannot be
    enforced: ``ignore_eos=True``, or a server on which vLLM does not run the processor as needed."""
    if getattr(sampling_params, "ignore_eos", False):
        raise RequestConflictError(
            "ignore_eos=True cannot be combined with extra_args['pse']: the constraint ends the output with EOS, "
            "which ignore_eos would pad with more EOS tokens up to max_tokens"
        )
    config = _front_end_config()
    if config is None:
        return
    if getattr(config, "speculative_config", None) is not None:
        raise RequestConflictError(
            "this server decodes speculatively, and vLLM runs no custom logits processor then: "
            "extra_args['pse'] cannot be enforced (serve without --speculative-config)"
        )
    if _sampled_ids_withheld(cls, config):
        raise RequestConflictError(
            "this server schedules asynchronously on vLLM's v1 model runner, which hands the sampled ids only to "
            "logits processors registered explicitly: extra_args['pse'] cannot be enforced (serve with "
            "--logits-processors pse_processors.vllm:VLLMPSELogitsProcessor, or with --no-async-scheduling)"
        )


def request_of(params: Any) -> tuple[Optional[ConstraintRequest], frozenset, Optional[str]]:
    """``(constraint request, stop ids, error)`` of a request's sampling parameters."""
    stop_ids = frozenset(getattr(params, "all_stop_token_ids", None) or ())
    eos = getattr(params, "eos_token_id", None)
    if eos is not None:
        stop_ids |= {eos}
    try:
        return request_from_extra_args(getattr(params, "extra_args", None)), stop_ids, None
    except Exception as exc:  # noqa: BLE001 - validate_params refuses these; never crash the engine
        logger.error("pse: a request's extra_args['pse'] is invalid (%s): it is stopped", exc)
        return None, stop_ids, str(exc)


def model_vocabulary(vllm_config: Any) -> Vocabulary:
    """The served model's :class:`~pse_processors.Vocabulary`: vLLM's tokenizer, with EOS the
    tokenizer's and the generation config's, as vLLM stops on both."""
    from vllm.tokenizers import cached_tokenizer_from_config

    model_config = vllm_config.model_config
    tokenizer = cached_tokenizer_from_config(model_config)
    if tokenizer is None:
        raise VocabularyError("the server runs with skip_tokenizer_init=True: pse constraints need the model's tokenizer")
    try:
        eos = model_config.try_get_generation_config().get("eos_token_id")
    except Exception as exc:  # noqa: BLE001 - a missing or odd generation config only means no extra EOS
        logger.debug("no generation config EOS (%s)", exc)
        eos = None
    eos_ids = [eos] if isinstance(eos, int) else list(eos or ())
    return Vocabulary.from_tokenizer(tokenizer, eos_token_ids=eos_ids)


def _sampled_ids_withheld(cls: type, config: Any) -> bool:
    """Whether vLLM's v1 model runner leaves async-scheduling placeholders in the output lists it
    hands this processor (see :mod:`.rows`): it replaces them only for explicitly registered processors."""
    scheduler = getattr(config, "scheduler_config", None)
    if not getattr(scheduler, "async_scheduling", False):
        return False
    try:
        if config.use_v2_model_runner:  # V2 reads the ids from the device: never withheld
            return False
    except Exception:  # noqa: BLE001 - a config that cannot say: assume the v1 runner
        pass
    for entry in getattr(getattr(config, "model_config", None), "logits_processors", None) or ():
        if isinstance(entry, str) and ":" in entry:
            module, _, name = entry.partition(":")
            try:
                entry = getattr(importlib.import_module(module), name)
            except (ImportError, AttributeError):
                continue
        if isinstance(entry, type) and issubclass(entry, cls):
            return False
    return True


def _front_end_config() -> Any:
    """The engine's ``VllmConfig`` as vLLM's input processor holds it, found on the call stack.

    ``validate_params`` is given the request only; whether the server decodes speculatively
    (vLLM then silently skips logits processors registered by entry point) is on the caller's
    ``self.vllm_config``. ``None`` when no caller has one (the check is then skipped)."""
    frame = sys._getframe(2)
    for _ in range(12):
        if frame is None:
            return None
        owner = frame.f_locals.get("self")
        config = getattr(owner, "vllm_config", None)
        if config is not None and hasattr(config, "speculative_config"):
            return config
        frame = frame.f_back
    return None
