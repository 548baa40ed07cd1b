"""TensorFlow: the engine over transformers 4.x TF ``generate`` with :class:`~pse_processors.TFPSELogitsProcessor`."""

from __future__ import annotations

import contextlib
import logging
from typing import Any, Iterator, Optional, Union

import numpy as np

from .. import defaults
from ..matchers import Matcher
from .base import EngineLike, FrameworkAdapter, Generation, cached_for, require
from .checks import check_model_fits, flag

logger = logging.getLogger(__name__)


class TensorFlowAdapter(FrameworkAdapter):
    """Runs :class:`~pse_processors.StructuringEngine` on transformers' TensorFlow models (transformers 4.x).

    Args:
        device: a TensorFlow device such as ``"/GPU:0"`` or ``"/CPU:0"``: generation runs under
            ``tf.device(device)``; default: TensorFlow's placement.
        mixed_precision: run the model with the ``mixed_float16`` Keras policy (float16 compute,
            float32 weights): the model is rebuilt once under that policy with the same weights,
            and the processor sees float16 scores; they are cast to float32 after it, for the
            sampler (XLA on a CPU has no float16 multinomial). A policy name such as
            ``"mixed_bfloat16"`` selects that policy instead.
        xla_compilation: run ``generate`` under ``tf.function(jit_compile=True)`` (one compiled
            function per model, traced again for each new input shape or generate setting).

    Raises:
        ImportError: TensorFlow is not installed (``pip install 'pse-processors[tf]'``).
        TypeError, ValueError: an option of the wrong type or value (the message names it).

    Example:
        >>> from pse_processors.adapters import TensorFlowAdapter
        >>> adapter = TensorFlowAdapter(device="/CPU:0", xla_compilation=True)  # doctest: +SKIP
    """

    framework = "tf"
    backend = "dfa"  # the in-graph processor runs the byte automaton

    def __init__(self, device: Any = None, mixed_precision: Union[bool, str] = False, xla_compilation: bool = False) -> None:
        require("TensorFlowAdapter", "tensorflow", "tf_keras")
        super().__init__()
        self.device = _device(device)
        if isinstance(mixed_precision, str):
            if mixed_precision not in ("mixed_float16", "mixed_bfloat16"):
                raise ValueError(
                    f"TensorFlowAdapter(mixed_precision=...) must be True, False, 'mixed_float16' or 'mixed_bfloat16', "
                    f"not {mixed_precision!r}"
                )
        else:
            mixed_precision = flag("TensorFlowAdapter", "mixed_precision", mixed_precision)
        self.mixed_precision = "mixed_float16" if mixed_precision is True else mixed_precision
        self.xla_compilation = flag("TensorFlowAdapter", "xla_compilation", xla_compilation)
        self._half: dict = {}  # model id -> (model, its mixed-precision rebuild)
        self.compiled: dict = {}  # model id -> (model, tf.function of its generate)

    @contextlib.contextmanager
    def _placement(self) -> Iterator[None]:
        import tensorflow as tf

        if self.device is None:
            yield
        else:
            with tf.device(self.device):
                yield

    def prepare_model(self, model: Any) -> Any:
        """The model to generate with: a float16-compute rebuild when ``mixed_precision`` is on."""
        if not self.mixed_precision:
            return model
        return cached_for(self._half, id(model), model, lambda: _mixed_precision_copy(model, self.mixed_precision))

    def new_processor(self, matcher: Matcher, *, prompt_length: Optional[int], max_new_tokens: Optional[int]) -> Any:
        """A :class:`~pse_processors.TFPSELogitsProcessor` for prompts of ``prompt_length`` (or
        generations of ``max_new_tokens``); kept per matcher and shape, since XLA traces capture it."""
        from ..tf import TFPSELogitsProcessor

        return TFPSELogitsProcessor(matcher, prompt_length=prompt_length, max_new_tokens=max_new_tokens)

    def compiled_generate(self, model: Any) -> Any:
        """``tf.function(model.generate, jit_compile=True)``, made once per model."""
        import tensorflow as tf

        return cached_for(self.compiled, id(model), model, lambda: tf.function(model.generate, jit_compile=True))

    def generate(self, engine: EngineLike, model: Any, input_ids: Any, tokenizer: Any, **generate_kwargs: Any) -> Generation:
        """``model.generate`` (XLA-compiled if asked) with the engine's processor; its output is passed back."""
        import tensorflow as tf
        from transformers import TFLogitsProcessorList

        if not hasattr(model, "generate"):
            raise TypeError(f"TensorFlowAdapter needs a transformers TF model with generate(), got {type(model).__name__}")
        model = self.prepare_model(model)
        matcher = engine.matcher(tokenizer, getattr(model, "generation_config", None))
        check_model_fits(model, tokenizer, matcher)
        with self._placement():
            ids = tf.cast(tf.convert_to_tensor(input_ids), tf.int32)
            if ids.shape.rank == 1:
                ids = ids[None, :]
            if ids.shape.rank != 2:
                raise ValueError(f"input_ids must be [batch, length] or [length], got shape {tuple(ids.shape)}")
            prompt = int(ids.shape[1])
            if "max_new_tokens" not in generate_kwargs and "max_length" not in generate_kwargs:
                generate_kwargs["max_new_tokens"] = defaults.MAX_NEW_TOKENS
            extra = list(generate_kwargs.pop("logits_processor", None) or [])
            processors = extra + [self.logits_processor(matcher, prompt_length=prompt)]
            if self.mixed_precision:
                processors.append(_to_float32)
            generate_kwargs["logits_processor"] = TFLogitsProcessorList(processors)
            if generate_kwargs.get("pad_token_id") is None and getattr(model.generation_config, "pad_token_id", None) is None:
                generate_kwargs["pad_token_id"] = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id
            mask = generate_kwargs.get("attention_mask")
            generate_kwargs["attention_mask"] = tf.ones_like(ids) if mask is None else tf.cast(tf.convert_to_tensor(mask), tf.int32)
            generate = self.compiled_generate(model) if self.xla_compilation else model.generate
            outputs = generate(input_ids=ids, **generate_kwargs)
        return Generation(outputs, matcher, prompt)

    # The custom-loop primitives, so that this adapter also drives plain callables returning logits.
    def mask_logits(self, logits: Any, mask_indices: tuple[np.ndarray, np.ndarray]) -> Any:
        import tensorflow as tf

        indices = tf.constant(np.stack(mask_indices, axis=1), dtype=tf.int64)
        keep = tf.scatter_nd(indices, tf.ones(indices.shape[0], tf.bool), tf.shape(logits, out_type=tf.int64))
        return tf.where(keep, logits, tf.constant(-np.inf, dtype=logits.dtype))

    def sample_token(self, logits: Any, temperature: float = 1.0) -> Any:
        import tensorflow as tf

        if temperature <= 0:
            return tf.argmax(logits, axis=-1)
        return tf.random.categorical(tf.cast(logits, tf.float32) / temperature, 1)[:, 0]

    def to_numpy(self, array: Any) -> np.ndarray:
        return array.numpy() if hasattr(array, "numpy") else np.asarray(array)

    def to_framework(self, input_ids: np.ndarray) -> Any:
        import tensorflow as tf

        return tf.constant(input_ids, dtype=tf.int32)


def _device(device: Any) -> Any:
    """``device`` checked: None, or a TensorFlow device name such as ``"/GPU:0"`` (or a ``tf.DeviceSpec``)."""
    import tensorflow as tf

    if device is None or isinstance(device, tf.DeviceSpec):
        return device
    if not isinstance(device, str):
        raise TypeError(f"TensorFlowAdapter(device=...) must be a device name such as '/GPU:0', not {device!r}")
    try:
        tf.DeviceSpec.from_string(device)
    except ValueError as exc:
        raise ValueError(f"TensorFlowAdapter(device={device!r}) is not a TensorFlow device name: {exc}") from exc
    return device


def _to_float32(input_ids: Any, scores: Any, cur_len: Any) -> Any:
    """A last logits processor under mixed precision: the sampler gets float32 scores."""
    import tensorflow as tf

    return tf.cast(scores, tf.float32)


def _mixed_precision_copy(model: Any, policy: str) -> Any:
    """The same TF model rebuilt under a mixed-precision policy, with the same weights."""
    from transformers.modeling_tf_utils import keras

    previous = keras.mixed_precision.global_policy()
    keras.mixed_precision.set_global_policy(policy)
    try:
        copy = type(model)(model.config)
        copy(copy.dummy_inputs, training=False)  # build the weights under the policy
    finally:
        keras.mixed_precision.set_global_policy(previous)
    copy.set_weights(model.get_weights())
    copy.generation_config = model.generation_config
    copy.name_or_path = getattr(model, "name_or_path", "")
    logger.info("TensorFlowAdapter: %s rebuilt under the %s policy", type(model).__name__, policy)
    return copy
