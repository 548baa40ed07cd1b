"""The PyTorch runner: transformers ``generate`` with :class:`~pse_processors.PSELogitsProcessor`,
left-padded batches, greedy or sampled.

Example:
    >>> from pse_processors.runners.torch_runner import Runner
    >>> runner = Runner(None)  # the embedded SmolLM2  # doctest: +SKIP
    >>> prepared = runner.prepare({"type": "integer"}, CompileOptions())  # doctest: +SKIP
    >>> runner.generate(prepared, ["How old is Bob (42)?"], Settings(max_new_tokens=8))  # doctest: +SKIP
    [42]
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any, Optional, Sequence, Union

from ..compiler.options import CompileOptions
from ..constraints.spec import Constraint
from ..errors import InvalidOutputError
from .base import RowError, Settings, context_error
from .progress import SILENT, TaskProgress

logger = logging.getLogger(__name__)


class Runner:
    """Loads a transformers causal LM (the embedded SmolLM2 when ``model_dir`` is None).

    ``threads``: torch's CPU threads (None: its default)."""

    framework = "torch"

    def __init__(self, model_dir: Optional[Path], progress: TaskProgress = SILENT, threads: Optional[int] = None) -> None:
        import torch
        from transformers import AutoModelForCausalLM, AutoTokenizer
        from transformers.utils import logging as hf_logging

        if threads is not None:
            torch.set_num_threads(threads)
        hf_logging.disable_progress_bar()
        hf_logging.set_verbosity_error()  # generation-config notes would drown the progress bars
        if model_dir is None:
            from ..embedded import smollm2_dir

            with progress.task("preparing the embedded SmolLM2 model (converted once, about 20 s)"):
                model_dir = smollm2_dir()
        self._torch = torch
        with progress.task(f"loading {model_dir.name}"):
            self.tokenizer = AutoTokenizer.from_pretrained(model_dir)
            self.model = AutoModelForCausalLM.from_pretrained(model_dir).eval()
        self.tokenizer.padding_side = "left"  # a decoder-only batch is padded on the left
        if self.tokenizer.pad_token_id is None:
            self.tokenizer.pad_token = self.tokenizer.eos_token
        self.context_length: Optional[int] = getattr(self.model.config, "max_position_embeddings", None)

    def prepare(self, constraint: Constraint, options: CompileOptions) -> Any:
        from ..torch import PSELogitsProcessor

        return PSELogitsProcessor(
            constraint, self.tokenizer, generation_config=self.model.generation_config, inplace=True, options=options
        )

    def _prompt_text(self, prompt: str) -> str:
        if self.tokenizer.chat_template:
            return self.tokenizer.apply_chat_template(
                [{"role": "user", "content": prompt}], add_generation_prompt=True, tokenize=False
            )
        return prompt

    def generate(self, prepared: Any, prompts: Sequence[str], settings: Settings) -> list[Union[Any, RowError]]:
        torch = self._torch
        results: list[Union[Any, RowError]] = [None] * len(prompts)
        texts = [self._prompt_text(p) for p in prompts]
        chat = bool(self.tokenizer.chat_template)  # the template already holds the special tokens
        encoded = [self.tokenizer(t, add_special_tokens=not chat)["input_ids"] for t in texts]
        rows = []
        for index, ids in enumerate(encoded):
            error = context_error(len(ids), settings, self.context_length)
            if error is not None:
                results[index] = error
            else:
                rows.append(index)
        if not rows:
            return results
        batch = self.tokenizer.pad({"input_ids": [encoded[i] for i in rows]}, return_tensors="pt")
        kwargs: dict = {"do_sample": False, "temperature": None, "top_p": None, "top_k": None}
        if settings.temperature > 0:
            # No top-k/top-p: a warper that runs before the constraint could leave no allowed token.
            kwargs = {"do_sample": True, "temperature": settings.temperature, "top_p": None, "top_k": None}
        if settings.seed is not None:
            torch.manual_seed(settings.seed)
        prepared.reset()
        with torch.inference_mode():
            out = self.model.generate(
                **batch, logits_processor=[prepared], max_new_tokens=settings.max_new_tokens,
                pad_token_id=self.tokenizer.pad_token_id, **kwargs,
            )
        width = batch["input_ids"].shape[1]
        for row, index in enumerate(rows):
            try:
                results[index] = prepared.parse(out[row], prompt_length=width)
            except InvalidOutputError as exc:
                results[index] = RowError(f"{exc} (max_new_tokens={settings.max_new_tokens})")
        return results
