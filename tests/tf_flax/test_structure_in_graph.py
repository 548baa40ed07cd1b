"""Structure in free text inside TF-XLA and ``jax.jit`` (issue 23): Reasoning with a thinking budget
around Delimited spans and tool calls, on the real Qwen3 (special-token markers) and Llama-3.1
(text markers) tokenizers.

Tiny random-weight GPT-2 models sample at temperature 1.5 in one compiled ``generate`` per case.
Each batch mixes the three prompts a chat template writes: no reasoning block (the output opens
it), an opened block (the output starts inside it), a closed one (the output starts at the
answer), each also after a multi-turn history whose earlier answer closed a block. A "nudge"
processor ahead of ours raises the scores of a marker's next token and of EOS (a random model
would never write ```` ```json\\n ```` by itself); it changes what is likely, never what is
allowed. Every finished row must split (``parse``), its spans and calls must
validate with jsonschema, the budget must hold exactly, the constructs must occur; and along
every sampled path the in-graph masks must equal the eager matcher's.
"""

from __future__ import annotations

import functools

import jsonschema
import numpy as np
import pytest

from tests.helpers import require_legacy

# XLA compiles TF's generate over 128k-152k-token vocabularies once per case: minutes on a busy
# 2-core machine, past the default 900 s per test for the case that pays it.
pytestmark = pytest.mark.timeout(2400)

require_legacy("tensorflow", "tf_keras", "jax", "flax")

import jax  # noqa: E402
import jax.numpy as jnp  # noqa: E402
import tensorflow as tf  # noqa: E402
from transformers import FlaxGPT2LMHeadModel, FlaxLogitsProcessor, GPT2Config, TFGPT2LMHeadModel  # noqa: E402
from transformers import TFLogitsProcessor, TFLogitsProcessorList  # noqa: E402

import pse_processors as pse  # noqa: E402
from pse_processors import FlaxPSELogitsProcessor, SchemaError, TFPSELogitsProcessor  # noqa: E402
from pse_processors.assets import load_tokenizer  # noqa: E402
from pse_processors.constraints.markers import resolve_marker, spell, spelling_of_marker  # noqa: E402

tf.config.threading.set_intra_op_parallelism_threads(1)
tf.config.threading.set_inter_op_parallelism_threads(1)

NEW = 64
BUDGET = 6
SPAN = {
    "type": "object", "properties": {"ok": {"type": "boolean"}, "n": {"type": "integer", "minimum": 0, "maximum": 99}},
    "required": ["ok", "n"], "additionalProperties": False,
}
WEATHER = {
    "type": "object", "properties": {"city": {"enum": ["Paris", "Oslo"]}, "days": {"type": "integer", "minimum": 1, "maximum": 7}},
    "required": ["city", "days"], "additionalProperties": False,
}
ADD = {
    "type": "object", "properties": {"a": {"type": "integer", "minimum": 0, "maximum": 9}, "b": {"type": "integer", "minimum": 0, "maximum": 9}},
    "required": ["a", "b"], "additionalProperties": False,
}
TOOLS = [{"type": "function", "function": {"name": "get_weather", "parameters": WEATHER}},
         {"type": "function", "function": {"name": "add", "parameters": ADD}}]
PARAMETERS = {"get_weather": WEATHER, "add": ADD}

#: case -> (framework, tokenizer, constraint, marker to nudge towards). Each construct runs on
#: both tokenizers and both frameworks across the four cases (each case is one compile).
CASES = {
    "tf-qwen3-delimited": ("tf", "qwen3", pse.Reasoning(pse.Delimited(SPAN, min_count=1), max_tokens=BUDGET), "```json\n"),
    "tf-llama-tools-required": (
        "tf", "llama3_1", pse.Reasoning(pse.Tools(TOOLS, tool_choice="required", format="llama3_json"), max_tokens=BUDGET), None,
    ),
    "flax-qwen3-tools-named": ("flax", "qwen3", pse.Reasoning(pse.Tools(TOOLS, tool_choice="get_weather"), max_tokens=BUDGET), "<tool_call>\n"),
    "flax-llama-delimited": ("flax", "llama3_1", pse.Reasoning(pse.Delimited(SPAN, min_count=1), max_tokens=BUDGET), "```json\n"),
}
START, INSIDE, ANSWER = 0, 1, 2  # the prompt categories (matchers/prompts.py)
CATEGORIES = [START, INSIDE, ANSWER] * 4


@functools.cache
def tokenizer(name: str):
    tok = load_tokenizer(name, fetch=True)
    tok.padding_side = "left"
    return tok


def pad_id(name: str) -> int:
    """A byte-less token that is not EOS: what generate writes after EOS."""
    return 151643 if name == "qwen3" else 128004  # <|endoftext|>, <|finetune_right_pad_id|>


@functools.cache
def prompts(name: str) -> tuple[np.ndarray, np.ndarray]:
    """Left-padded prompts of each category (CATEGORIES), as a chat template would end them."""
    vocab = processor_of(next(k for k, c in CASES.items() if c[1] == name)).matcher.vocabulary
    text = spell(vocab, b"Question: is 2+2 four? Answer:")

    def marker(value: str) -> list[int]:
        return spelling_of_marker(vocab, resolve_marker(value, vocab, "marker").units)

    newline = spell(vocab, b"\n")
    closed = marker("<think>") + spell(vocab, b"\n\n") + marker("</think>") + spell(vocab, b"\n\n")
    # The second half of the rows follow a multi-turn history whose earlier answer holds a closed
    # block (as Qwen3's template writes a tool-calling turn): only the new turn's end counts.
    turn = tokenizer(name).convert_tokens_to_ids("<|im_start|>" if name == "qwen3" else "<|start_header_id|>")
    history = (text + marker("<think>") + spell(vocab, b"\nEasy.\n") + marker("</think>") + spell(vocab, b"\n\nYes.")
               + [turn] + spell(vocab, b"user\nAnd 3+3? Answer:") + [turn] + spell(vocab, b"assistant\n"))
    rows = []
    for i, category in enumerate(CATEGORIES):
        base = history if i >= len(CATEGORIES) // 2 else text
        # Prompts of several widths, so that some rows are left-padded.
        rows.append({START: base[i // 3:], INSIDE: base + marker("<think>") + newline, ANSWER: base + closed}[category])
    width = max(len(r) for r in rows)
    ids = np.array([[pad_id(name)] * (width - len(r)) + r for r in rows], dtype=np.int32)
    mask = np.array([[0] * (width - len(r)) + [1] * len(r) for r in rows], dtype=np.int32)
    return ids, mask


@functools.cache
def processor_of(case: str):
    framework, name, constraint, _ = CASES[case]
    cls = TFPSELogitsProcessor if framework == "tf" else FlaxPSELogitsProcessor
    return cls(constraint, tokenizer(name), max_new_tokens=NEW, whitespace="compact")


def nudge_table(case: str, width: int) -> tuple[np.ndarray, np.ndarray]:
    """float32 ``[k + 1, width]``: row 0 raises EOS and the marker's first token; row i (after the
    marker's token i - 1) its next token; and the marker's k tokens (``[-1]``: no marker)."""
    _, name, _, marker = CASES[case]
    vocab = processor_of(case).matcher.vocabulary
    tokens = spelling_of_marker(vocab, resolve_marker(marker, vocab, "marker").units) if marker else []
    table = np.zeros((len(tokens) + 1, width), dtype=np.float32)
    table[0, sorted(vocab.eos_token_ids)] = 18.0  # exp(18 / 1.5) is about one 151k vocabulary's worth
    if not tokens:
        return np.vstack([table, table[:1] * 0]), np.array([-1], dtype=np.int32)
    for i, token in enumerate(tokens):
        table[i, token] += 18.0 if i == 0 else 24.0  # once begun, the marker is almost surely finished
    return table, np.array(tokens, dtype=np.int32)


class TFNudge(TFLogitsProcessor):
    def __init__(self, table: np.ndarray, tokens: np.ndarray) -> None:
        self.table, self.tokens = tf.constant(table), tf.constant(tokens)

    def __call__(self, input_ids, scores, cur_len):
        last = tf.gather(input_ids, cur_len - 1, axis=1)
        row = tf.reduce_max(tf.where(last[:, None] == self.tokens[None, :], tf.range(1, tf.size(self.tokens) + 1)[None, :], 0), axis=1)
        return scores + tf.gather(self.table, row)


class FlaxNudge(FlaxLogitsProcessor):
    def __init__(self, table: np.ndarray, tokens: np.ndarray) -> None:
        self.table, self.tokens = jnp.asarray(table), jnp.asarray(tokens)

    def __call__(self, input_ids, scores, cur_len):
        last = jnp.take(input_ids, cur_len - 1, axis=1)
        row = jnp.max(jnp.where(last[:, None] == self.tokens[None, :], jnp.arange(1, self.tokens.size + 1)[None, :], 0), axis=1, initial=0)
        return scores + self.table[row]


@functools.cache
def generated(case: str) -> np.ndarray:
    """The case's batch from one compiled generate: ``[12, prompt + NEW]``."""
    framework, name, _, _ = CASES[case]
    tok, proc = tokenizer(name), processor_of(case)
    width = len(tok) + 64
    ids, mask = prompts(name)
    eos, pad = tok.eos_token_id, pad_id(name)
    config = GPT2Config(vocab_size=width, n_embd=16, n_layer=1, n_head=2, n_positions=256, bos_token_id=eos,
                        eos_token_id=eos, pad_token_id=pad)
    table, tokens = nudge_table(case, width)
    kwargs = dict(max_new_tokens=NEW, do_sample=True, temperature=1.5, top_k=0, eos_token_id=eos, pad_token_id=pad)
    if framework == "tf":
        tf.keras.utils.set_random_seed(7)
        model = TFGPT2LMHeadModel(config)
        model(tf.constant([[1, 2]]))  # build the weights outside the trace (else it traces twice)
        processors = TFLogitsProcessorList([TFNudge(table, tokens), proc])

        # No seed= : generate would sample every step with that one stateless seed, and a near-uniform
        # random model would then pick the same token again and again. The global seed above holds.
        @tf.function(jit_compile=True)
        def generate(ids, mask):
            return model.generate(input_ids=ids, attention_mask=mask, logits_processor=processors, **kwargs)

        out = generate(tf.constant(ids), tf.constant(mask)).numpy()
    else:
        model = FlaxGPT2LMHeadModel(config, seed=7)
        processors = [FlaxNudge(table, tokens), proc]
        generate = jax.jit(lambda i, m, k: model.generate(i, attention_mask=m, prng_key=k, logits_processor=processors, **kwargs).sequences)
        out = np.asarray(generate(ids, mask, jax.random.PRNGKey(0)))
    assert out.shape == (len(CATEGORIES), ids.shape[1] + NEW)
    return out


def finished_rows(case: str):
    """(row, category, generated ids up to EOS) of every finished row; unfinished rows are live prefixes."""
    _, name, _, _ = CASES[case]
    matcher = processor_of(case).matcher
    eos = matcher.vocabulary.eos_token_ids
    prompt = prompts(name)[0].shape[1]
    rows = []
    for index, row in enumerate(generated(case)):
        ids = [int(t) for t in row[prompt:]]
        end = next((i for i, t in enumerate(ids) if t in eos), None)
        if end is None:
            state = matcher.walk(ids, matcher.initial_state_for(row[:prompt]))
            assert state >= 0, f"row {index} left the constraint"
            continue
        assert all(t in eos or t == pad_id(name) for t in ids[end:]), "only EOS and padding after EOS"
        rows.append((row, CATEGORIES[index], ids[:end]))
    return rows


@pytest.mark.parametrize("case", CASES)
def test_outputs_split_and_validate(case):
    framework, name, constraint, _ = CASES[case]
    proc = processor_of(case)
    prompt = prompts(name)[0].shape[1]
    rows = finished_rows(case)
    assert len(rows) >= 4, f"only {len(rows)} of {len(generated(case))} rows finished"
    answer = constraint.answer
    constructs = 0
    for row, category, _ in rows:
        result = proc.parse(row, prompt_length=prompt)
        assert (result.reasoning is None) == (category == ANSWER), (category, result)
        if isinstance(answer, pse.Delimited):
            assert len(result.spans) >= 1  # min_count=1
            for span in result.spans:
                jsonschema.validate(span, SPAN)
            constructs += len(result.spans)
        else:
            assert len(result.tool_calls) >= 1  # required, or a named tool
            for call in result.tool_calls:
                if answer.tool_choice not in ("auto", "required"):
                    assert call.name == answer.tool_choice
                jsonschema.validate(call.arguments, PARAMETERS[call.name])
            constructs += len(result.tool_calls)
    assert constructs >= len(rows)
    categories = {category for _, category, _ in rows}
    assert categories == {START, INSIDE, ANSWER}, f"finished rows only of prompt categories {categories}"


def reasoning_tokens(vocab, ids: list[int], category: int) -> int:
    """Tokens wholly inside the reasoning text (after start, before end's first byte), counted from
    the bytes alone; tokens of continuation bytes only that finish a character past the budget
    are not counted (the budget lets them complete the character on the way to end)."""
    specials = {index: name for name, index in vocab.special_tokens.items()}
    pieces = [vocab.token_bytes[t] if vocab.token_bytes[t] is not None else specials.get(t, "").encode() for t in ids]
    text = b"".join(pieces)
    begin = 0 if category == INSIDE else text.index(b"<think>") + len(b"<think>")
    end = text.index(b"</think>", begin)
    count, at = 0, 0
    for piece in pieces:
        if at >= begin and at + len(piece) <= end:
            continuation = piece and all(0x80 <= b < 0xC0 for b in piece)
            count += 0 if continuation and count >= BUDGET else 1
        at += len(piece)
    return count


@pytest.mark.parametrize("case", CASES)
def test_thinking_budget_holds_exactly(case):
    vocab = processor_of(case).matcher.vocabulary
    counts = [reasoning_tokens(vocab, ids, category) for _, category, ids in finished_rows(case) if category != ANSWER]
    assert counts and max(counts) <= BUDGET, counts
    assert counts.count(BUDGET) >= len(counts) // 2, f"the budget rarely bound: {counts}"


@pytest.mark.parametrize("case", CASES)
def test_masks_agree_with_eager_matcher_along_sampled_paths(case):
    framework, name, _, _ = CASES[case]
    proc = processor_of(case)
    matcher = proc.matcher
    buffer = generated(case)
    prompt = prompts(name)[0].shape[1]
    width = len(tokenizer(name)) + 64
    zeros = np.zeros((len(buffer), width), dtype=np.float32)
    if framework == "tf":
        compiled = tf.function(proc.__call__, jit_compile=True)
        masks = lambda cur: np.isfinite(compiled(tf.constant(buffer), tf.constant(zeros), tf.constant(cur)).numpy())  # noqa: E731
    else:
        compiled = jax.jit(proc)
        masks = lambda cur: np.isfinite(np.asarray(compiled(jnp.asarray(buffer), jnp.asarray(zeros), jnp.int32(cur))))  # noqa: E731
    states = [matcher.initial_state_for(row[:prompt]) for row in buffer]
    eos = matcher.vocabulary.eos_token_ids
    for step in range(NEW):
        got = masks(prompt + step)
        for r, row in enumerate(buffer):
            want = np.zeros(width, dtype=bool)
            if states[r] is None:  # finished: EOS only
                want[sorted(eos)] = True
            else:
                want[: matcher.vocab_size] = matcher.allowed_mask(states[r])
            if not np.array_equal(got[r], want):
                diff = np.flatnonzero(got[r] != want)[:8].tolist()
                pytest.fail(f"step {step}, row {r}: the in-graph mask differs from the eager matcher at ids {diff}")
            token = int(row[prompt + step])
            states[r] = None if states[r] is None or token in eos else matcher.advance(states[r], token)


def test_refusals_name_the_cause():
    tok = tokenizer("qwen3")
    with pytest.raises(SchemaError, match="Grammar inside Delimited needs llguidance"):
        TFPSELogitsProcessor(pse.Reasoning(pse.Delimited(pse.Grammar('start: "a"'))), tok, max_new_tokens=4)
    with pytest.raises(ValueError, match="backend='dfa' only"):
        FlaxPSELogitsProcessor(pse.Delimited(SPAN), tok, max_new_tokens=4, backend="llguidance")
    auto = FlaxPSELogitsProcessor(pse.Delimited(SPAN), tok, max_new_tokens=4, backend="auto")
    assert auto.matcher.backend == "dfa"
