"""What the eager processors (PyTorch, MLX) share besides the prefix states: building the matcher
from their constructor arguments, and explaining a row whose allowed tokens all scored NaN or -inf.

Framework-free: only the wording of the likely causes differs per framework, and is passed in.
"""

from __future__ import annotations

from typing import Any, Iterable, Optional

from ..compiler.options import CompileOptions, options_from
from ..errors import ConstraintConflictError, InvalidLogitsError, PSEError
from ..matchers import DONE, Matcher

#: The usual causes in transformers' ``generate`` (the PyTorch processor's wording).
HF_EOS_FORBIDDEN = (
    "min_new_tokens / min_length, or suppress_tokens / bad_words_ids containing EOS"
)
HF_TOKEN_FORCED = (
    "forced_eos_token_id cutting the structure short at max_length, forced_bos/forced_decoder_ids, or "
    "bad_words_ids / suppress_tokens banning every allowed token"
)
HF_REMEDY = "Remove the conflicting generation setting, or raise max_new_tokens."
#: The same causes in mlx-lm (the MLX processor's wording).
MLX_EOS_FORBIDDEN = "a logits processor or logit_bias before this one banned EOS"
MLX_TOKEN_FORCED = "a logits processor or logit_bias before this one banned every token the constraint allows here"
MLX_REMEDY = "Remove the conflicting processor or bias, or raise max_tokens."


def resolve_matcher(
    owner: str,
    constraint: Any,
    tokenizer: Any,
    *,
    eos_token_ids: Optional[Iterable[int]] = None,
    generation_config: Any = None,
    options: Optional[CompileOptions] = None,
    compile_options: Optional[dict] = None,
) -> Matcher:
    """``constraint`` itself when it is already a :class:`~pse_processors.Matcher`, else compiled
    (cached) with ``options`` and the loose ``compile_options`` over them.

    Raises:
        TypeError: ``constraint`` needs compiling and no tokenizer was given.
    """
    if isinstance(constraint, Matcher):
        return constraint
    if tokenizer is None:
        raise TypeError(f"{owner} needs the model's tokenizer (or a Vocabulary)")
    from ..compiler.compiler import compile as compile_constraint

    return compile_constraint(
        constraint, tokenizer, options=options_from(options, compile_options or {}), eos_token_ids=eos_token_ids,
        generation_config=generation_config,
    )


def describe(array: Any) -> str:
    """An argument's type and shape, for error messages."""
    shape = getattr(array, "shape", None)
    return f"{type(array).__name__} of shape {tuple(shape)}" if shape is not None else type(array).__name__


def bad_row_error(
    matcher: Matcher,
    row: int,
    value: float,
    state: int,
    *,
    eos_forbidden: str = HF_EOS_FORBIDDEN,
    token_forced: str = HF_TOKEN_FORCED,
    remedy: str = HF_REMEDY,
) -> PSEError:
    """The exception for a row whose best allowed score is ``value`` (NaN or -inf) in ``state``.

    NaN gives :class:`InvalidLogitsError`; -inf (every allowed token was banned before the
    processor ran) gives :class:`ConstraintConflictError`, naming the likely cause.

    Example:
        >>> import pse_processors as pse
        >>> matcher = pse.compile(pse.Choice(["a"]), pse.Vocabulary([b"a", None], eos_token_ids=[1]))
        >>> type(bad_row_error(matcher, 0, float("nan"), matcher.initial_state)).__name__
        'InvalidLogitsError'
        >>> type(bad_row_error(matcher, 0, float("-inf"), matcher.initial_state)).__name__
        'ConstraintConflictError'
    """
    if value != value:
        return InvalidLogitsError(
            f"the scores of row {row} are NaN where the constraint allows tokens; "
            "the model or an earlier logits processor produced NaN (try float32, or check the inputs)"
        )
    allowed = matcher.allowed_token_ids(state)
    only_eos = state == DONE or set(allowed.tolist()) <= set(matcher.vocabulary.eos_token_ids)
    cause = (
        f"the output is complete and only EOS is allowed, but EOS was forbidden ({eos_forbidden})"
        if only_eos
        else f"an earlier processor forced a token the constraint does not allow here ({token_forced})"
    )
    return ConstraintConflictError(
        f"row {row}: every token the constraint allows ({len(allowed)} ids) was set to -inf before this "
        f"processor ran: {cause}. {remedy}"
    )
