"""What the engine's reasoning tests share across frameworks (not a test module): chat prompts
that leave, open or close a reasoning block after a multi-turn history with a closed block, and
the check that ``engine.parse`` starts each row where its prompt left the block."""

from __future__ import annotations

import numpy as np

import pse_processors as pse
from pse_processors.matchers.prompts import ANSWER, INSIDE, START

#: Text markers (SmolLM2 has no <think> token); a small budget so that rows finish.
CONSTRAINT = pse.Reasoning(pse.Choice(["yes", "no"]), start="<think>", end="</think>", max_tokens=3)
HISTORY = ("<|im_start|>user\nIs 2+2 four?<|im_end|>\n<|im_start|>assistant\n<think>\nEasy.\n</think>\n\nyes<|im_end|>\n"
           "<|im_start|>user\nIs 3+3 seven?<|im_end|>\n<|im_start|>assistant\n")
#: Category -> prompt text: the template leaves the block to the model, opens it, closes it.
PROMPTS = {START: HISTORY, INSIDE: HISTORY + "<think>\n", ANSWER: HISTORY + "<think>\n\n</think>\n\n"}


def check_rows(engine, outputs, categories: list) -> set:
    """Every finished row of ``outputs`` (any framework's array; row i's prompt of ``categories[i]``)
    parses from where its prompt left the block: reasoning present unless the prompt closed it,
    the answer one of the choices, and the generated text opens the block only when the prompt
    did not. Unfinished rows are live prefixes. Returns the categories of the finished rows."""
    generation = engine.last_generation
    matcher, width = generation.matcher, generation.prompt_length
    finished = set()
    for row, category in enumerate(categories):
        ids = np.asarray(outputs[row]).reshape(-1).tolist()
        prompt, generated = ids[:width], ids[width:]
        assert matcher.prompt_scanner.category(prompt) == category
        try:
            result = engine.parse(outputs, row=row)
        except pse.InvalidOutputError:
            assert matcher.walk(generated, matcher.initial_state_for(prompt)) >= 0, "the row left the constraint"
            continue
        assert isinstance(result, pse.StructuredOutput)
        assert (result.reasoning is None) == (category == ANSWER), (category, result)
        assert result.answer in ("yes", "no")
        eos = matcher.vocabulary.eos_token_ids
        text = matcher.vocabulary.decode(generated[: next(i for i, t in enumerate(generated) if t in eos)])
        assert text.lstrip().startswith(b"<think>") == (category == START), text
        finished.add(category)
    return finished
