"""JAX: the engine over transformers 4.x Flax ``generate`` with :class:`~pse_processors.FlaxPSELogitsProcessor`."""

from __future__ import annotations

import logging
from typing import Any, Optional

import numpy as np

from .. import defaults
from ..matchers import Matcher
from .base import EngineLike, FrameworkAdapter, Generation, cached_for, require
from .checks import check_model_fits, flag

logger = logging.getLogger(__name__)
PLATFORMS = ("cpu", "gpu", "tpu", "cuda", "rocm")
_KEY_HINT = "make one with jax.random.PRNGKey(seed), and split it with jax.random.split(key) for more draws"


class JAXAdapter(FrameworkAdapter):
    """Runs :class:`~pse_processors.StructuringEngine` on transformers' Flax models (transformers 4.x).

    ``engine.generate`` returns the ``sequences`` array of Flax's output (prompt + new tokens,
    padded to ``max_new_tokens`` with ``pad_token_id``). Sampling (``do_sample=True``) takes
    ``prng_key=``, a JAX PRNG key.

    Args:
        dtype: the compute dtype (``jnp.bfloat16``, ``jnp.float16``): the model is re-created
            once with that ``dtype`` and its floating-point parameters are cast to it, so the
            processor sees scores of that dtype. Default: the model's own.
        jit_compile: run the whole ``generate`` under ``jax.jit`` (one compiled function per
            model, processor and generate settings; traced again for new input shapes).
        platform: ``"gpu"``, ``"tpu"`` or ``"cpu"``: the backend that runs the model. When it is
            absent, a warning is logged and the CPU is used.

    Raises:
        ImportError: JAX or Flax is not installed (``pip install 'pse-processors[flax]'``).
        ValueError: ``platform`` is not one of ``cpu``, ``gpu``, ``tpu`` (or ``cuda``, ``rocm``), or
            ``dtype`` is not a floating-point dtype.
        TypeError: an option of the wrong type (the message names it).

    Example:
        >>> import jax.numpy as jnp  # doctest: +SKIP
        >>> from pse_processors.adapters import JAXAdapter
        >>> adapter = JAXAdapter(dtype=jnp.bfloat16, jit_compile=True, platform="cpu")  # doctest: +SKIP
    """

    framework = "jax"
    backend = "dfa"  # the in-graph processor runs the byte automaton

    def __init__(self, dtype: Any = None, jit_compile: bool = False, platform: Optional[str] = None) -> None:
        require("JAXAdapter", "jax", "flax")
        import jax.numpy as jnp

        super().__init__()
        if platform is not None and platform not in PLATFORMS:
            raise ValueError(f"JAXAdapter(platform=...) must be one of {', '.join(PLATFORMS)}, not {platform!r}")
        self.dtype = _float_dtype(dtype)
        self.jit_compile = flag("JAXAdapter", "jit_compile", jit_compile)
        self.platform = platform
        self.device = _select_device(platform)
        self._models: dict = {}  # model id -> (model, (model to run, its params))
        self.compiled: dict = {}  # (model id, processor id, settings) -> (model, jax.jit of generate)

    def __getstate__(self) -> dict:
        state = super().__getstate__()
        state.pop("device", None)  # device objects do not pickle: selected again on the other side
        return state

    def __setstate__(self, state: dict) -> None:
        self.__dict__.update(state)
        self.device = _select_device(self.platform)

    def prepare_model(self, model: Any) -> tuple[Any, Any]:
        """The module to run and its parameters: re-created in ``dtype`` and placed on the device."""
        import jax

        def make() -> tuple[Any, Any]:
            run, params = model, model.params
            if self.dtype is not None and self.dtype != model.dtype:
                run = type(model)(model.config, dtype=self.dtype, _do_init=False)
                run.generation_config = model.generation_config
                params = jax.tree_util.tree_map(
                    lambda x: x.astype(self.dtype) if jax.numpy.issubdtype(x.dtype, jax.numpy.floating) else x, params
                )
            return run, jax.device_put(params, self.device)

        return cached_for(self._models, id(model), model, make)

    def new_processor(self, matcher: Matcher, *, prompt_length: Optional[int], max_new_tokens: Optional[int]) -> Any:
        """A :class:`~pse_processors.FlaxPSELogitsProcessor` for generations of ``max_new_tokens``
        (or prompts of ``prompt_length``); kept per matcher and shape, since jitted traces capture it."""
        from ..flax import FlaxPSELogitsProcessor

        return FlaxPSELogitsProcessor(matcher, prompt_length=prompt_length, max_new_tokens=max_new_tokens)

    def generate(self, engine: EngineLike, model: Any, input_ids: Any, tokenizer: Any, **generate_kwargs: Any) -> Generation:
        """``model.generate`` (under ``jax.jit`` if asked) with the engine's processor; passes back ``sequences``."""
        import jax
        import jax.numpy as jnp

        if not hasattr(model, "generate") or not hasattr(model, "params"):
            raise TypeError(f"JAXAdapter needs a transformers Flax model with generate(), got {type(model).__name__}")
        prng_key = check_prng_key(generate_kwargs.pop("prng_key", None))
        run, params = self.prepare_model(model)
        matcher = engine.matcher(tokenizer, getattr(model, "generation_config", None))
        check_model_fits(model, tokenizer, matcher)
        ids = jnp.asarray(np.asarray(input_ids), dtype=jnp.int32)
        if ids.ndim == 1:
            ids = ids[None, :]
        if ids.ndim != 2:
            raise ValueError(f"input_ids must be [batch, length] or [length], got shape {tuple(ids.shape)}")
        prompt = int(ids.shape[1])
        if "max_length" in generate_kwargs:
            generate_kwargs["max_new_tokens"] = int(generate_kwargs.pop("max_length")) - prompt
        generate_kwargs.setdefault("max_new_tokens", defaults.MAX_NEW_TOKENS)
        processors = list(generate_kwargs.pop("logits_processor", None) or [])
        processors.append(self.logits_processor(matcher, max_new_tokens=int(generate_kwargs["max_new_tokens"])))
        if generate_kwargs.get("pad_token_id") is None and getattr(model.generation_config, "pad_token_id", None) is None:
            generate_kwargs["pad_token_id"] = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id
        mask = generate_kwargs.pop("attention_mask", None)
        mask = jnp.ones_like(ids) if mask is None else jnp.asarray(np.asarray(mask), dtype=jnp.int32)
        ids, mask = jax.device_put((ids, mask), self.device)

        def run_generate(ids: Any, mask: Any, params: Any, key: Any) -> Any:
            out = run.generate(ids, attention_mask=mask, params=params, prng_key=key, logits_processor=processors, **generate_kwargs)
            return out.sequences

        with jax.default_device(self.device):
            if self.jit_compile:
                outputs = self._jitted(model, processors, generate_kwargs, run_generate)(ids, mask, params, prng_key)
            else:
                outputs = run_generate(ids, mask, params, prng_key)
        return Generation(outputs, matcher, prompt)

    def _jitted(self, model: Any, processors: list, settings: dict, function: Any) -> Any:
        import jax

        key = (id(model), tuple(id(p) for p in processors), repr(sorted(settings.items())))
        return cached_for(self.compiled, key, model, lambda: jax.jit(function))

    # The custom-loop primitives, so that this adapter also drives plain callables returning logits.
    def mask_logits(self, logits: Any, mask_indices: tuple[np.ndarray, np.ndarray]) -> Any:
        import jax.numpy as jnp

        # Built on the host: the number of indices changes every step, the mask's shape does not,
        # so the device ops compile once.
        keep = np.zeros(tuple(logits.shape), dtype=bool)
        keep[mask_indices] = True
        return jnp.where(jnp.asarray(keep), logits, jnp.asarray(-jnp.inf, dtype=logits.dtype))

    def sample_token(self, logits: Any, temperature: float = 1.0, prng_key: Any = None) -> Any:
        import jax

        if temperature <= 0:
            return logits.argmax(axis=-1)
        self._sample_key, key = jax.random.split(check_prng_key(prng_key) if prng_key is not None else self._next_key())
        return jax.random.categorical(key, logits / temperature, axis=-1)

    def _next_key(self) -> Any:
        import jax

        key = getattr(self, "_sample_key", None)
        return jax.random.PRNGKey(0) if key is None else key

    def to_framework(self, input_ids: np.ndarray) -> Any:
        import jax.numpy as jnp

        return jnp.asarray(input_ids, dtype=jnp.int32)


def check_prng_key(key: Any) -> Any:
    """``key`` if it is one JAX PRNG key (``PRNGKey(seed)`` or ``jax.random.key(seed)``), ``PRNGKey(0)`` if None.

    Raises:
        TypeError: anything else (an int seed, a batch of keys, a float array); the message says how to make one.
    """
    import jax
    import jax.numpy as jnp

    if key is None:
        return jax.random.PRNGKey(0)
    dtype = getattr(key, "dtype", None)
    shape = tuple(getattr(key, "shape", ()))
    if dtype is not None:
        if jax.dtypes.issubdtype(dtype, jax.dtypes.prng_key) and shape == ():
            return key
        if dtype == jnp.uint32 and len(shape) == 1 and shape[0] in (2, 4):
            return jnp.asarray(key)
    what = f"{type(key).__name__} {dtype} {list(shape)}" if dtype is not None else repr(key)
    raise TypeError(f"PRNG key error: prng_key must be one JAX PRNG key, got {what}; {_KEY_HINT}")


def _float_dtype(dtype: Any) -> Any:
    """``dtype`` as a floating-point ``jnp.dtype`` (None stays None); errors name the option."""
    import jax.numpy as jnp

    if dtype is None:
        return None
    try:
        found = jnp.dtype(dtype)
    except TypeError as exc:
        raise TypeError(f"JAXAdapter(dtype=...) must be a dtype such as jnp.bfloat16, not {dtype!r}") from exc
    if not jnp.issubdtype(found, jnp.floating):
        raise ValueError(f"JAXAdapter(dtype=...) must be a floating-point dtype such as jnp.bfloat16, not {found}")
    return found


def _select_device(platform: Optional[str]) -> Any:
    """The first device of ``platform``; the CPU, with a warning, when that backend is absent."""
    import jax

    if platform is None:
        return jax.devices()[0]
    try:
        return jax.devices(platform)[0]
    except RuntimeError as exc:
        logger.warning("JAXAdapter: platform %r is not available (%s); falling back to the CPU", platform, exc)
        return jax.devices("cpu")[0]
