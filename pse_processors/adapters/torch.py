"""PyTorch: the engine over transformers' ``generate`` with :class:`~pse_processors.PSELogitsProcessor`."""

from __future__ import annotations

import inspect
import logging
import time
from typing import Any, Optional

import numpy as np

from .. import defaults
from ..matchers import Matcher
from .base import EngineLike, FrameworkAdapter, Generation, require
from .checks import check_model_fits, flag

logger = logging.getLogger(__name__)


class PyTorchAdapter(FrameworkAdapter):
    """Runs :class:`~pse_processors.StructuringEngine` on PyTorch models with transformers' ``generate``.

    Args:
        device: where the model and the inputs go, e.g. ``"cuda:0"``; default: the model's own
            device. The masks follow the logits' device, whatever it is.
        dtype: if given, the model is cast to it (``torch.float16``, ``torch.bfloat16``...) before
            generating; the processor then sees scores of that dtype.
        use_cache: passed to ``generate`` (KV cache on or off).
        compile_model: run the model's forward pass under ``torch.compile`` (the model's
            ``forward`` is replaced by its compiled version, once; the first ``generate`` pays the
            compilation: about 4 minutes with the default inductor backend for a tiny Llama on a
            busy 2-core CPU, then 0.2 s per call; 2.5 to 17 minutes for SmolLM2-135M, whose later
            calls were then no faster than eager ones, so on a CPU it rarely pays). A warning is
            logged (``pse_processors.adapters.torch``) before that first call and its measured time after it.
        compile_options: keyword arguments of ``torch.compile`` (``backend``, ``mode``...);
            default ``{"dynamic": True}``: one graph for the prompt and the one-token steps.

    Raises:
        ImportError: PyTorch is not installed (``pip install 'pse-processors[torch]'``).
        TypeError, ValueError: an option of the wrong type or value (the message names it).

    Example:
        >>> from pse_processors import PyTorchAdapter
        >>> adapter = PyTorchAdapter(device="cpu")
        >>> adapter.framework, adapter.device.type
        ('torch', 'cpu')
    """

    framework = "torch"

    def __init__(
        self,
        device: Any = None,
        dtype: Any = None,
        use_cache: bool = True,
        compile_model: bool = False,
        compile_options: Optional[dict] = None,
    ) -> None:
        require("PyTorchAdapter", "torch")
        import torch

        super().__init__()
        self.device = _device(device)
        if dtype is not None and not isinstance(dtype, torch.dtype):
            raise TypeError(f"PyTorchAdapter(dtype=...) must be a torch.dtype such as torch.bfloat16, not {dtype!r}")
        self.dtype = dtype
        self.use_cache = flag("PyTorchAdapter", "use_cache", use_cache)
        self.compile_model = flag("PyTorchAdapter", "compile_model", compile_model)
        self.compile_options = {"dynamic": True, **_compile_options(compile_options)}

    def prepare_model(self, model: Any) -> Any:
        """Move, cast and compile the model as configured (a no-op by default)."""
        if self.device is not None and model.device != self.device:
            model = model.to(self.device)
        if self.dtype is not None and model.dtype != self.dtype:
            model = model.to(self.dtype)
        if self.compile_model and not getattr(model, "_pse_compiled", False):
            import torch

            # generate calls model(...) -> forward: compiling the bound forward compiles every step.
            model.forward = torch.compile(model.forward, **self.compile_options)
            model._pse_compiled = True
            model._pse_first_call = True  # timed and reported by generate
        return model

    def to_input(self, values: Any, model: Any) -> Any:
        """A ``[batch, length]`` long tensor on the model's device."""
        import torch

        tensor = torch.as_tensor(values, dtype=torch.long)
        if tensor.dim() == 1:
            tensor = tensor.unsqueeze(0)
        if tensor.dim() != 2:
            raise ValueError(f"input_ids must be [batch, length] or [length], got shape {tuple(tensor.shape)}")
        return tensor.to(self.device or model.device)

    def new_processor(self, matcher: Matcher, *, prompt_length: Optional[int], max_new_tokens: Optional[int]) -> Any:
        """A :class:`~pse_processors.PSELogitsProcessor` (prefix-keyed: it needs no shape)."""
        from ..torch import PSELogitsProcessor

        return PSELogitsProcessor(matcher)

    def generate(self, engine: EngineLike, model: Any, input_ids: Any, tokenizer: Any, **generate_kwargs: Any) -> Generation:
        """``model.generate`` with the engine's processor added; its output is passed back unchanged."""
        import torch
        from transformers import LogitsProcessorList

        model = self.prepare_model(model)
        input_ids = self.to_input(input_ids, model)
        processor = self.logits_processor(engine.matcher(tokenizer, getattr(model, "generation_config", None)))
        processor.reset()  # a new generation, whatever the prompts look like
        # In place is about twice as fast; it is only visible in the raw logits that
        # output_logits=True returns, so the engine uses it unless those are asked for.
        processor.inplace = not (
            generate_kwargs.get("output_logits") or getattr(model.generation_config, "output_logits", False)
        )
        extra = list(generate_kwargs.pop("logits_processor", None) or [])
        if "max_new_tokens" not in generate_kwargs and "max_length" not in generate_kwargs:
            generate_kwargs["max_new_tokens"] = defaults.MAX_NEW_TOKENS
        if generate_kwargs.get("pad_token_id") is None and getattr(model.generation_config, "pad_token_id", None) is None:
            pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id
            generate_kwargs["pad_token_id"] = pad
        generate_kwargs.setdefault("use_cache", self.use_cache)
        if generate_kwargs.get("attention_mask") is None:
            generate_kwargs["attention_mask"] = torch.ones_like(input_ids)
        else:
            generate_kwargs["attention_mask"] = torch.as_tensor(generate_kwargs["attention_mask"]).to(input_ids.device)
        assistant = generate_kwargs.get("assistant_model")
        if assistant is not None:
            generate_kwargs["assistant_model"] = self.prepare_model(assistant)
        check_model_fits(model, tokenizer, processor.matcher)
        first = getattr(model, "_pse_first_call", False)
        if first:
            # torch.compile works during the first call, silently: say so, and what it cost.
            logger.warning(
                "PyTorchAdapter(compile_model=True): the first generate compiles %s's forward pass with "
                "torch.compile (%s); expect minutes before the first token on a CPU (SmolLM2-135M: 2.5 with a "
                "warm inductor cache, 17 cold, on a busy 2-core machine); later calls reuse it while shapes repeat",
                type(model).__name__, self.compile_options,
            )
            start = time.perf_counter()
        outputs = model.generate(input_ids=input_ids, logits_processor=LogitsProcessorList(extra + [processor]), **generate_kwargs)
        if first:
            model._pse_first_call = False
            logger.warning("PyTorchAdapter: the first compiled generate took %.1f s, compilation included", time.perf_counter() - start)
        return Generation(outputs, processor.matcher, int(input_ids.shape[1]), processor)

    # The custom-loop primitives, so that this adapter also drives plain callables returning logits.
    def mask_logits(self, logits: Any, mask_indices: tuple[np.ndarray, np.ndarray]) -> Any:
        import torch

        rows, cols = (torch.as_tensor(i, device=logits.device) for i in mask_indices)
        masked = torch.full_like(logits, float("-inf"))
        masked[rows, cols] = logits[rows, cols]
        return masked

    def sample_token(self, logits: Any, temperature: float = 1.0) -> Any:
        import torch

        if temperature <= 0:
            return logits.argmax(dim=-1)
        probs = torch.softmax(logits.float() / temperature, dim=-1)
        return torch.multinomial(probs, 1).squeeze(-1)

    def to_numpy(self, array: Any) -> np.ndarray:
        import torch

        if isinstance(array, torch.Tensor):
            return array.detach().cpu().numpy()
        return np.asarray(array)

    def to_framework(self, input_ids: np.ndarray) -> Any:
        import torch

        return torch.as_tensor(input_ids, device=self.device)


def _device(device: Any) -> Any:
    """``device`` as a ``torch.device`` (None stays None); a TypeError or ValueError naming the option."""
    import torch

    if device is None or isinstance(device, torch.device):
        return device
    if not isinstance(device, (str, int)) or isinstance(device, bool):
        raise TypeError(f"PyTorchAdapter(device=...) must be a torch.device, a string such as 'cuda:0' or an int, not {device!r}")
    try:
        return torch.device(device)
    except (RuntimeError, ValueError) as exc:
        raise ValueError(f"PyTorchAdapter(device={device!r}) is not a torch device: {exc}") from exc


def _compile_options(options: Any) -> dict:
    """``compile_options`` checked against ``torch.compile``'s keyword arguments."""
    import torch

    if options is None:
        return {}
    if not isinstance(options, dict):
        raise TypeError(f"PyTorchAdapter(compile_options=...) must be a dict of torch.compile arguments, not {options!r}")
    known = [name for name in inspect.signature(torch.compile).parameters if name != "model"]
    unknown = sorted(str(name) for name in options if name not in known)
    if unknown:
        raise TypeError(f"PyTorchAdapter(compile_options=...) has unknown torch.compile arguments {unknown}; it takes {known}")
    return dict(options)
