"""MLX: the engine over mlx-lm's generation with :class:`~pse_processors.MLXPSELogitsProcessor`."""

from __future__ import annotations

import logging
from typing import Any, Callable, Optional

import numpy as np

from .. import defaults
from ..matchers import Matcher
from .base import EngineLike, FrameworkAdapter, Generation, remember_tokenizer, require
from .checks import check_model_fits, flag

logger = logging.getLogger(__name__)


class MLXAdapter(FrameworkAdapter):
    """Runs :class:`~pse_processors.StructuringEngine` on mlx-lm models.

    ``engine.generate(model, mx.array([ids]))`` runs mlx-lm's ``generate_step`` (or
    ``speculative_generate_step`` with ``draft_model=``; ``batch_generate`` for several rows with
    mlx-lm's ``TokenizerWrapper``), with the engine's
    :class:`~pse_processors.MLXPSELogitsProcessor` in ``logits_processors``, and returns an
    ``mx.array`` ``[batch, prompt + new]`` (rows that ended early padded with ``pad_token_id``),
    so ``tokenizer.decode(outputs[0].tolist())`` works. Greedy by default; ``do_sample=True`` with
    ``temperature=`` samples; ``max_new_tokens`` (or ``max_tokens``) defaults to 256. The
    tokenizer is found for models loaded with :meth:`load` or
    :func:`pse_processors.embedded.load_smollm2_mlx`; pass ``tokenizer=`` otherwise.

    Args:
        dtype: cast the model's floating-point parameters to it (``mx.float16``, ``mx.bfloat16``;
            quantized weights stay quantized), so the processor sees logits of that dtype.
        use_metal: run on the Metal GPU. Where Metal is absent (Linux, Intel Macs) a warning is
            logged ("Metal device not found") and the CPU is used. ``False``: the CPU; ``None``:
            MLX's default device.
        optimize_graph: compile the sampling step with ``mx.compile``. mlx-lm keeps its KV cache
            in Python objects that ``mx.compile`` cannot capture, so the forward pass stays as
            mlx-lm runs it (lazily evaluated, one step ahead).

    Raises:
        ImportError: MLX or mlx-lm is not installed (``pip install 'pse-processors[mlx]'``).
        TypeError: an option of the wrong type (the message names it).

    Example:
        >>> import mlx.core as mx  # doctest: +SKIP
        >>> from pse_processors.adapters import MLXAdapter
        >>> adapter = MLXAdapter(dtype=mx.bfloat16, use_metal=True, optimize_graph=True)  # doctest: +SKIP
    """

    framework = "mlx"

    def __init__(self, dtype: Any = None, use_metal: Optional[bool] = None, optimize_graph: bool = False) -> None:
        require("MLXAdapter", "mlx.core", "mlx_lm")
        import mlx.core as mx

        super().__init__()
        if dtype is not None and not isinstance(dtype, mx.Dtype):
            raise TypeError(f"MLXAdapter(dtype=...) must be an MLX dtype such as mx.bfloat16, not {dtype!r}")
        self.dtype = dtype
        self.use_metal = flag("MLXAdapter", "use_metal", use_metal, optional=True)
        self.optimize_graph = flag("MLXAdapter", "optimize_graph", optimize_graph)
        self.device = _select_device(use_metal)
        self._cast: dict = {}  # model id -> model, for models already cast to dtype
        self.sampler_traces = 0  # how often a compiled sampler's Python body ran (tracing only)

    def __getstate__(self) -> dict:
        state = super().__getstate__()
        state.pop("device", None)  # device objects do not pickle: selected again on the other side
        if state.get("dtype") is not None:  # nor do MLX dtypes: they travel by name
            state["dtype"] = str(state["dtype"]).rsplit(".", 1)[-1]
        return state

    def __setstate__(self, state: dict) -> None:
        import mlx.core as mx

        self.__dict__.update(state)
        if isinstance(self.dtype, str):
            self.dtype = getattr(mx, self.dtype)
        self.device = _select_device(self.use_metal)

    @staticmethod
    def load(path_or_repo: str, **kwargs: Any) -> tuple[Any, Any]:
        """``mlx_lm.load``, recording the tokenizer so that ``engine.generate(model, ids)`` finds it."""
        from mlx_lm import load

        model, tokenizer = load(path_or_repo, **kwargs)[:2]
        remember_tokenizer(model, tokenizer)
        return model, tokenizer

    def prepare_model(self, model: Any) -> Any:
        """Cast the model's floating-point parameters to ``dtype`` (once per model)."""
        if self.dtype is not None and self._cast.get(id(model)) is not model:
            model.set_dtype(self.dtype)
            self._cast[id(model)] = model
        return model

    def new_processor(self, matcher: Matcher, *, prompt_length: Optional[int], max_new_tokens: Optional[int]) -> Any:
        """An :class:`~pse_processors.MLXPSELogitsProcessor` (prefix-keyed: it needs no shape)."""
        from ..mlx import MLXPSELogitsProcessor

        return MLXPSELogitsProcessor(matcher)

    def sampler(self, temperature: float) -> Callable[[Any], Any]:
        """Greedy (``temperature <= 0``) or categorical sampling, ``mx.compile``d if ``optimize_graph``."""
        import mlx.core as mx

        def sample(logits: Any) -> Any:
            self.sampler_traces += 1
            if temperature <= 0:
                return mx.argmax(logits, axis=-1)
            return mx.random.categorical(logits * (1.0 / temperature))

        if not self.optimize_graph:
            return sample
        # The random state is an input and an output, so every step draws new numbers.
        return mx.compile(sample, inputs=mx.random.state, outputs=mx.random.state)

    def generate(self, engine: EngineLike, model: Any, input_ids: Any, tokenizer: Any, **generate_kwargs: Any) -> Generation:
        """mlx-lm generation under the constraint; passes back ``mx.array`` ``[batch, prompt + new]``."""
        import mlx.core as mx
        from mlx_lm.generate import generate_step, speculative_generate_step

        from ..mlx import unwrap_tokenizer

        model = self.prepare_model(model)
        hf_tokenizer, wrapper_eos = unwrap_tokenizer(tokenizer)  # mlx-lm's wrapper adds EOS ids
        matcher = engine.matcher(hf_tokenizer, eos_token_ids=sorted(wrapper_eos) or None)
        check_model_fits(model, hf_tokenizer, matcher)
        processor = self.logits_processor(matcher)
        processor.reset()
        ids = np.array(input_ids.tolist() if isinstance(input_ids, mx.array) else input_ids, dtype=np.int64)
        if ids.ndim == 1:
            ids = ids[None, :]
        if ids.ndim != 2:
            raise ValueError(f"input_ids must be [batch, length] or [length], got shape {ids.shape}")
        max_new = int(generate_kwargs.pop("max_new_tokens", generate_kwargs.pop("max_tokens", defaults.MAX_NEW_TOKENS)))
        do_sample = generate_kwargs.pop("do_sample", False)
        temperature = float(generate_kwargs.pop("temperature", 1.0)) if do_sample else 0.0
        sampler = generate_kwargs.pop("sampler", None) or self.sampler(temperature)
        processors = list(generate_kwargs.pop("logits_processors", None) or []) + [processor]
        pad = generate_kwargs.pop("pad_token_id", None)
        draft = generate_kwargs.pop("draft_model", None)
        if draft is not None:
            draft = self.prepare_model(draft)
        eos = matcher.vocabulary.eos_token_ids
        if pad is None:
            pad = getattr(tokenizer, "pad_token_id", None)
            pad = min(eos) if pad is None else pad
        rows: list[list[int]] = []
        with mx.stream(self.device):
            if ids.shape[0] > 1 and draft is None and hasattr(tokenizer, "eos_token_ids"):
                rows = self._batched(model, tokenizer, ids, max_new, sampler, processors, eos, generate_kwargs)
            for prompt in ids if not rows else ():
                kwargs = dict(max_tokens=max_new, sampler=sampler, logits_processors=processors, **generate_kwargs)
                if draft is not None:
                    steps = speculative_generate_step(mx.array(prompt), model, draft, **kwargs)
                else:
                    steps = generate_step(mx.array(prompt), model, **kwargs)
                new: list[int] = []
                for step in steps:
                    token = int(step[0])
                    new.append(token)
                    if token in eos:
                        break
                rows.append(prompt.tolist() + new)
        width = max(len(r) for r in rows)
        outputs = mx.array([r + [int(pad)] * (width - len(r)) for r in rows], dtype=mx.int32)
        return Generation(outputs, matcher, int(ids.shape[1]), processor)

    @staticmethod
    def _batched(model: Any, tokenizer: Any, ids: np.ndarray, max_new: int, sampler: Any, processors: list,
                 eos: Any, kwargs: dict) -> list[list[int]]:
        """All rows at once with mlx-lm's ``batch_generate`` (needs mlx-lm's ``TokenizerWrapper``)."""
        from mlx_lm import batch_generate

        response = batch_generate(model, tokenizer, [row.tolist() for row in ids], max_tokens=max_new,
                                  return_token_ids=True, sampler=sampler, logits_processors=processors, **kwargs)
        rows = []
        for prompt, new in zip(ids, response.token_ids):
            new = [int(t) for t in new]
            if len(new) < max_new and not (new and new[-1] in eos):
                new.append(min(eos))  # the row stopped at EOS, which batch_generate leaves out
            rows.append(prompt.tolist() + new)
        return rows

    # The custom-loop primitives, so that this adapter also drives plain callables returning logits.
    def mask_logits(self, logits: Any, mask_indices: tuple[np.ndarray, np.ndarray]) -> Any:
        import mlx.core as mx

        keep = np.zeros(tuple(logits.shape), dtype=bool)
        keep[mask_indices] = True
        return mx.where(mx.array(keep), logits, mx.array(-np.inf, dtype=logits.dtype))

    def sample_token(self, logits: Any, temperature: float = 1.0) -> Any:
        return self.sampler(temperature)(logits)

    def to_numpy(self, array: Any) -> np.ndarray:
        return np.array(array.tolist()) if hasattr(array, "tolist") and not isinstance(array, np.ndarray) else np.asarray(array)

    def to_framework(self, input_ids: np.ndarray) -> Any:
        import mlx.core as mx

        return mx.array(input_ids)


def _select_device(use_metal: Optional[bool]) -> Any:
    """The Metal GPU when asked and present; the CPU, with a warning, when asked and absent."""
    import mlx.core as mx

    if use_metal is None:
        return mx.default_device()
    if not use_metal:
        return mx.cpu
    if mx.metal.is_available():
        return mx.gpu
    logger.warning("MLXAdapter: Metal device not found (use_metal=True needs Apple silicon); falling back to the CPU")
    return mx.cpu
