"""The MLX runner: ``mlx_lm.generate`` with ``MLXPSELogitsProcessor``, one prompt at a time.

Used for ``framework="mlx"`` when :mod:`pse_processors.mlx` is installed (see ``registry.py``).
The embedded SmolLM2 is read from its GGUF without PyTorch; ``model_dir`` takes an mlx-lm folder.

Example:
    >>> from pse_processors.runners.mlx_runner import Runner
    >>> runner = Runner(None)  # the embedded SmolLM2  # doctest: +SKIP
    >>> prepared = runner.prepare({"type": "integer"}, CompileOptions())  # doctest: +SKIP
    >>> runner.generate(prepared, ["How old is Bob (42)?"], Settings(max_new_tokens=8))  # doctest: +SKIP
    [42]
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Optional, Sequence, Union

from ..compiler.options import CompileOptions
from ..constraints.spec import Constraint
from ..errors import InvalidOutputError
from .base import RowError, Settings, context_error
from .progress import SILENT, TaskProgress


class Runner:
    """Loads an mlx-lm model (the embedded SmolLM2 when ``model_dir`` is None)."""

    framework = "mlx"

    def __init__(self, model_dir: Optional[Path], progress: TaskProgress = SILENT, threads: Optional[int] = None) -> None:
        # ``threads`` is accepted for the common interface; MLX schedules its own CPU threads.
        import mlx.core as mx
        import mlx_lm

        self._mx = mx
        self._mlx_lm = mlx_lm
        if model_dir is None:
            from ..embedded import load_smollm2_mlx

            with progress.task("loading the embedded SmolLM2 for MLX (tokenizer converted once)"):
                self.model, self.tokenizer = load_smollm2_mlx()
        else:
            with progress.task(f"loading {model_dir.name}"):
                self.model, self.tokenizer = mlx_lm.load(str(model_dir))
        args = getattr(self.model, "args", None)
        self.context_length: Optional[int] = getattr(args, "max_position_embeddings", None)

    def prepare(self, constraint: Constraint, options: CompileOptions) -> Any:
        from ..mlx import MLXPSELogitsProcessor

        return MLXPSELogitsProcessor(constraint, self.tokenizer, options=options)

    def _prompt_ids(self, prompt: str) -> list[int]:
        if getattr(self.tokenizer, "chat_template", None):
            return list(self.tokenizer.apply_chat_template([{"role": "user", "content": prompt}], add_generation_prompt=True))
        return list(self.tokenizer.encode(prompt))

    def generate(self, prepared: Any, prompts: Sequence[str], settings: Settings) -> list[Union[Any, RowError]]:
        from mlx_lm.sample_utils import make_sampler

        if settings.seed is not None:
            self._mx.random.seed(settings.seed)
        sampler = make_sampler(temp=settings.temperature)
        results: list[Union[Any, RowError]] = []
        for prompt in prompts:
            ids = self._prompt_ids(prompt)
            error = context_error(len(ids), settings, self.context_length)
            if error is not None:
                results.append(error)
                continue
            prepared.reset()
            text = self._mlx_lm.generate(
                self.model, self.tokenizer, ids, max_tokens=settings.max_new_tokens, sampler=sampler,
                logits_processors=[prepared], verbose=False,
            )
            try:
                results.append(prepared.parse(text))
            except InvalidOutputError as exc:
                results.append(RowError(f"{exc} (max_new_tokens={settings.max_new_tokens})"))
        return results
