"""Framework adapters of the Proxy Structuring Engine API: they move tensors, nothing else."""

from __future__ import annotations

from typing import Any

from .grammar import CompiledGrammar


class PyTorchAdapter:
    """Runs :class:`~pse_processors.StructuringEngine` on PyTorch models with transformers' ``generate``.

    Args:
        device: where the inputs (and, if given, the model) go, e.g. ``"cuda:0"``; default: the
            model's own device.
        dtype: if given, the model is cast to it (e.g. ``torch.bfloat16``) before generating.
        use_cache: passed to ``generate`` (KV cache on or off).

    Example:
        >>> from pse_processors import PyTorchAdapter
        >>> adapter = PyTorchAdapter(device="cpu")
        >>> adapter.framework
        'torch'
    """

    framework = "torch"

    def __init__(self, device: Any = None, dtype: Any = None, use_cache: bool = True) -> None:
        import torch

        self.device = torch.device(device) if device is not None else None
        self.dtype = dtype
        self.use_cache = use_cache

    def prepare_model(self, model: Any) -> Any:
        """Move/cast the model as configured (no-op when neither device nor dtype is set)."""
        if self.device is not None and model.device != self.device:
            model = model.to(self.device)
        if self.dtype is not None and model.dtype != self.dtype:
            model = model.to(self.dtype)
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

    def logits_processor(self, grammar: CompiledGrammar) -> Any:
        from .torch import PSELogitsProcessor

        return PSELogitsProcessor(grammar)
