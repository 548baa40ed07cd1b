"""A random-weight tiny model samples under the 100+ schemas of our corpus; jsonschema checks every output.

The corpus (``tests/schema_corpus.py``) is written for the tests: function-calling tools,
Pydantic-generated schemas, nested records, recursive structures, conditionals, scalars and
``FUZZ_SCHEMAS`` (``tests/helpers.py``). MaskBench itself stays a benchmark (``python -m benchmarks.maskbench DIR``).

Random weights at a high temperature are the best fuzzer we have: they wander into every
branch the automaton allows. A small bias toward closing tokens (applied *before* our
processor, so it never unmasks anything) lets more rows finish within the token budget.
Finished rows must validate; rows cut off by max_new_tokens must be live prefixes.
"""

from __future__ import annotations

import json

import jsonschema
import torch
from transformers import LogitsProcessor, LogitsProcessorList

from pse_processors import PSELogitsProcessor
from tests.schema_corpus import corpus

WANTED = 100


class CloserBias(LogitsProcessor):
    """Add a bonus to tokens that close a structure, and to EOS."""

    def __init__(self, tokenizer, eos: int, bonus: float = 4.0) -> None:
        ids = [i for t, i in tokenizer.get_vocab().items() if t in ('"', "}", "]", '"}', "}}", '"]', "]}", '",')]
        self.ids = torch.tensor(sorted(set(ids + [eos])))
        self.bonus = bonus

    def __call__(self, input_ids, scores):
        scores[:, self.ids] += self.bonus
        return scores


def test_random_model_outputs_validate_on_the_corpus(smol_tokenizer, tiny_llama):
    schemas = corpus()
    assert len(schemas) >= WANTED
    eos = smol_tokenizer.eos_token_id
    prompt = torch.tensor([smol_tokenizer.encode("JSON:")] * 2)
    bias = CloserBias(smol_tokenizer, eos)
    finished_schemas, finished_rows, failures = 0, 0, []
    for index, (name, schema) in enumerate(schemas):
        # Every corpus schema compiles: a refusal here is a regression, not a skip.
        processor = PSELogitsProcessor(schema, smol_tokenizer, generation_config=tiny_llama.generation_config)
        torch.manual_seed(index)
        out = tiny_llama.generate(
            input_ids=prompt, attention_mask=torch.ones_like(prompt), do_sample=True, temperature=1.3, top_k=0,
            max_new_tokens=96, pad_token_id=0, logits_processor=LogitsProcessorList([bias, processor]),
        )
        cls = jsonschema.validators.validator_for(schema, default=jsonschema.Draft202012Validator)
        validator = cls(schema, format_checker=cls.FORMAT_CHECKER)  # formats are enforced, so check them
        finished_here = 0
        for row in out:
            generated = row[prompt.shape[1]:].tolist()
            if eos in generated:
                end = generated.index(eos)
                text = processor.matcher.vocabulary.decode(generated[:end]).decode("utf-8")
                errors = list(validator.iter_errors(json.loads(text)))
                if errors:
                    failures.append(f"{name}: {text[:200]} -> {errors[0].message[:200]}")
                finished_here += 1
            else:
                assert processor.matcher.walk(generated) >= 0, f"{name}: the row left the constraint"
        finished_rows += finished_here
        finished_schemas += finished_here > 0
    assert not failures, "\n".join(failures)
    assert finished_schemas >= 40, (finished_schemas, finished_rows)
