"""What every framework runner provides: :class:`Runner`, with :class:`Settings` in and a value or
a :class:`RowError` per prompt out.

Example:
    >>> from pse_processors.runners.base import RowError, Settings
    >>> Settings(temperature=0.7)
    Settings(max_new_tokens=256, temperature=0.7, seed=None)
    >>> isinstance(RowError("the prompt is too long"), Exception)
    True
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Optional, Protocol, Sequence, Union

from .. import defaults
from ..compiler.options import CompileOptions
from ..constraints.spec import Constraint


@dataclass(frozen=True)
class Settings:
    """Generation settings shared by every row of a run."""

    max_new_tokens: int = defaults.MAX_NEW_TOKENS
    temperature: float = 0.0  # 0: greedy
    seed: Optional[int] = None


class RowError(Exception):
    """One row could not be generated (prompt too long, output cut off); the run goes on."""


class Runner(Protocol):
    """What a framework runner provides to the command line and to Ray."""

    framework: str

    def prepare(self, constraint: Constraint, options: CompileOptions) -> Any:
        """Compile ``constraint`` for this runner's tokenizer; the result is passed to :meth:`generate`."""

    def generate(self, prepared: Any, prompts: Sequence[str], settings: Settings) -> list[Union[Any, RowError]]:
        """One parsed value (or a :class:`RowError`) per prompt, in order."""


def context_error(prompt_tokens: int, settings: Settings, context_length: Optional[int]) -> Optional[RowError]:
    """The error of a prompt that leaves no room for ``max_new_tokens`` in the model's context, else None.

    Example:
        >>> print(context_error(500, Settings(max_new_tokens=40), 512))
        the prompt has 500 tokens; with max_new_tokens=40 that is 540, over the model's context of 512 tokens
        >>> context_error(10, Settings(), None) is None
        True
    """
    needed = prompt_tokens + settings.max_new_tokens
    if context_length is None or needed <= context_length:
        return None
    return RowError(
        f"the prompt has {prompt_tokens} tokens; with max_new_tokens={settings.max_new_tokens} that is "
        f"{needed}, over the model's context of {context_length} tokens"
    )
