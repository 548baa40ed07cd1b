"""VLLMPSELogitsProcessor against vLLM's own classes (BatchUpdate, SamplingParams, both interfaces'
loaders), without a model: the serve environment only."""

from __future__ import annotations

import importlib.metadata
from types import SimpleNamespace

import numpy as np
import pytest

from tests.helpers import require_vllm

require_vllm()

import torch  # noqa: E402
from vllm import SamplingParams  # noqa: E402
from vllm.v1.sample.logits_processor import BatchUpdate, MoveDirectionality  # noqa: E402

import pse_processors as pse  # noqa: E402
from pse_processors.errors import UnsupportedSchemaError  # noqa: E402
from pse_processors.vllm import RequestConflictError, VLLMPSELogitsProcessor, extra_args  # noqa: E402

TOKENS = [b"a", b"b", b"0", b"1", b"x", None]
EOS = 5
VOCAB = pse.Vocabulary(TOKENS, eos_token_ids=[EOS])
WIDTH = 8


def processor(*args) -> VLLMPSELogitsProcessor:
    config = SimpleNamespace(speculative_config=None)
    made = VLLMPSELogitsProcessor(config, *(args or (torch.device("cpu"), False)))
    made._matchers._vocabulary_source = lambda: VOCAB  # no model: the test vocabulary
    return made


def params(constraint=None, **kwargs) -> SamplingParams:
    made = SamplingParams(extra_args=extra_args(constraint) if constraint is not None else None, **kwargs)
    made._all_stop_token_ids.add(EOS)
    return made


def finite(row: torch.Tensor) -> list[int]:
    return torch.isfinite(row).nonzero().flatten().tolist()


def test_installing_the_package_registers_the_processor_with_both_of_vllms_loaders() -> None:
    found = {e.name: e for e in importlib.metadata.entry_points(group="vllm.logits_processors")}
    assert found["pse"].load() is VLLMPSELogitsProcessor
    from vllm.v1.sample.logits_processor import _load_logitsprocs_by_fqcns, _load_logitsprocs_plugins
    from vllm.v1.worker.gpu.sample.logits_processor.loader import _load_v2_logitsprocs

    assert VLLMPSELogitsProcessor in _load_logitsprocs_plugins()
    assert _load_logitsprocs_by_fqcns(["pse_processors.vllm:VLLMPSELogitsProcessor"]) == [VLLMPSELogitsProcessor]
    # Model Runner V2 (vLLM's GPU default) refuses plug-ins of the v1 interface alone.
    assert VLLMPSELogitsProcessor in _load_v2_logitsprocs(None)


def test_validate_params_names_the_cause_as_a_value_error() -> None:
    VLLMPSELogitsProcessor.validate_params(SamplingParams())  # no constraint: nothing to check
    VLLMPSELogitsProcessor.validate_params(params({"type": "integer"}))
    with pytest.raises(UnsupportedSchemaError, match=r"\$dynamicRef"):
        VLLMPSELogitsProcessor.validate_params(params({"$dynamicRef": "#meta"}))
    with pytest.raises(RequestConflictError, match="ignore_eos"):
        VLLMPSELogitsProcessor.validate_params(params({"type": "integer"}, ignore_eos=True))


class InputProcessor:
    """What vLLM's front end looks like from validate_params: a caller holding the engine's config."""

    def __init__(self, speculative=None, async_scheduling=False, v2=False, explicit=()):
        self.vllm_config = SimpleNamespace(
            speculative_config=speculative, scheduler_config=SimpleNamespace(async_scheduling=async_scheduling),
            use_v2_model_runner=v2, model_config=SimpleNamespace(logits_processors=list(explicit)),
        )

    def _validate_params(self, sampling_params):
        validate = VLLMPSELogitsProcessor.validate_params
        (lambda p: validate(p))(sampling_params)


def test_validate_params_refuses_constraints_when_the_server_decodes_speculatively() -> None:
    InputProcessor()._validate_params(params(pse.Regex("a")))
    with pytest.raises(RequestConflictError, match="speculatively"):
        InputProcessor(speculative=object())._validate_params(params(pse.Regex("a")))
    InputProcessor(speculative=object())._validate_params(SamplingParams())  # unconstrained requests still pass


def test_validate_params_refuses_constraints_the_v1_runner_would_withhold_sampled_ids_from() -> None:
    # Async scheduling on the v1 model runner replaces its -1 placeholders with the sampled ids
    # only for explicitly registered logits processors.
    with pytest.raises(RequestConflictError, match="--logits-processors pse_processors.vllm:VLLMPSELogitsProcessor"):
        InputProcessor(async_scheduling=True)._validate_params(params(pse.Regex("a")))
    for explicit in ([VLLMPSELogitsProcessor], ["pse_processors.vllm:VLLMPSELogitsProcessor"]):
        InputProcessor(async_scheduling=True, explicit=explicit)._validate_params(params(pse.Regex("a")))
    InputProcessor(async_scheduling=True, v2=True)._validate_params(params(pse.Regex("a")))  # V2 reads the device


def test_v1_batch_updates_and_apply() -> None:
    lp = processor()
    assert lp.is_argmax_invariant() is False
    logits = torch.randn(3, WIDTH)
    before = logits.clone()
    lp.update_state(BatchUpdate(3, [], [(0, params(), None, []), (1, params(), None, []), (2, params(), None, [])], []))
    assert lp.apply(logits) is logits and torch.equal(logits, before)  # nothing constrained: untouched
    digits_ids: list = []
    lp.update_state(BatchUpdate(3, [1], [(1, params(pse.Regex("[01]+")), None, digits_ids)], []))
    lp.update_state(None)
    lp.apply(logits)
    assert torch.equal(logits[[0, 2]], before[[0, 2]]) and finite(logits[1]) == [2, 3]
    digits_ids.append(2)
    lp.update_state(BatchUpdate(3, [0], [(0, params(pse.Choice(["x"])), None, [])], [(1, 2, MoveDirectionality.SWAP)]))
    logits = torch.zeros(3, WIDTH)
    lp.apply(logits)
    assert [finite(row) for row in logits] == [[4], list(range(WIDTH)), [2, 3, EOS]]


def test_v1_a_request_the_engine_cannot_read_only_stops() -> None:
    lp = processor()
    bad = params()
    bad.extra_args = {"pse": {"regex": 5}}  # validate_params refuses it; if it got here anyway, it stops
    bad._all_stop_token_ids.add(7)
    lp.update_state(BatchUpdate(1, [], [(0, bad, None, [])], []))
    logits = torch.zeros(1, WIDTH)
    lp.apply(logits)
    assert finite(logits[0]) == [EOS, 7]


def test_model_runner_v2_add_request_and_apply() -> None:
    prompt_len = np.array([2, 2, 2, 2], dtype=np.int32)
    history = torch.zeros(4, 16, dtype=torch.int32)
    req_states = SimpleNamespace(device=torch.device("cpu"), prompt_len=SimpleNamespace(np=prompt_len),
                                 all_token_ids=SimpleNamespace(gpu=history))
    lp = processor(req_states)
    assert lp.add_request(0, params()) is False
    assert lp.add_request(3, params(pse.Regex("[01]b"))) is True
    ctx = SimpleNamespace(idx_mapping_np=np.array([3, 0]), seq_lens_upper_bound_np=np.array([2, 2]),
                          input_ids=torch.tensor([9, 9]), expanded_idx_mapping=torch.tensor([3, 0]))
    logits = torch.zeros(2, WIDTH)
    lp.apply(logits, ctx)
    assert finite(logits[0]) == [2, 3] and finite(logits[1]) == list(range(WIDTH))
    ctx.seq_lens_upper_bound_np, ctx.input_ids = np.array([3, 3]), torch.tensor([3, 4])  # slot 3 sampled "1"
    logits = torch.zeros(2, WIDTH)
    lp.apply(logits, ctx)
    assert finite(logits[0]) == [1]
    # Speculative decoding: more logits rows than requests. Such rows may only stop.
    ctx.expanded_idx_mapping = torch.tensor([3, 3, 0])
    logits = torch.zeros(3, WIDTH)
    lp.apply(logits, ctx)
    assert [finite(row) for row in logits] == [[EOS], [EOS], list(range(WIDTH))]
