"""The decode loop reads the device once per step: one ``tolist`` of the step's visible tokens, entropies and soft
flags, and no other device-to-host read (``tolist``, ``item``, ``bool``, ``nonzero``, ``cpu``, ``numpy``) in
softthink's code, in every mode, greedy and sampled, with phases ending at different steps (Cold Stop's forced
markers) and slots refilled (continuous batching). On CPU these reads are free; on a GPU each one waits for the
queued kernels, so a second one per step would stall the pipeline. (transformers' own mask code may read the
device inside the forward; that is counted apart and not ours. The host-to-device side, copies that would wait for
the device, is `softthink.decoding.host`'s job; the CUDA check is in tests/equivalence/test_cuda.py.)"""

from __future__ import annotations

import collections
import sys
from pathlib import Path

import pytest
import torch

import softthink
import softthink.decoding.decision as decision
from tests.conftest import tiny
from tests.equivalence.test_continuous_batching import GREEDY, GREEDY_MODES, PROMPTS, SEEDS
from tests.equivalence.test_prompt_seeds import COMMON, SAMPLED_MODES

READS = ("tolist", "item", "__bool__", "nonzero", "cpu", "numpy")
PACKAGE = str(Path(softthink.__file__).parent)


def count_device_reads(monkeypatch, run) -> tuple[collections.Counter, int]:
    """Run ``run()`` counting the tensor reads made directly by softthink's code (by function name) and the
    decode steps (calls of the loop's rule dispatch)."""
    reads: collections.Counter = collections.Counter()
    steps = 0

    def counted(name):
        original = getattr(torch.Tensor, name)

        def read(self, *args, **kwargs):
            caller = sys._getframe(1)
            if caller.f_code.co_filename.startswith(PACKAGE):
                reads[f"{Path(caller.f_code.co_filename).name}:{caller.f_code.co_name}:{name}"] += 1
            return original(self, *args, **kwargs)

        return read

    decide = decision.StepDecider.__call__

    def step(*args, **kwargs):
        nonlocal steps
        steps += 1
        return decide(*args, **kwargs)

    for name in READS:
        monkeypatch.setattr(torch.Tensor, name, counted(name))
    monkeypatch.setattr(decision.StepDecider, "__call__", step)
    run()
    monkeypatch.undo()
    return reads, steps


CASES = {f"greedy_{k}": {**GREEDY, **v} for k, v in GREEDY_MODES.items()}
CASES.update({f"sampled_{k}": {**COMMON, **v} for k, v in SAMPLED_MODES.items()})


@pytest.mark.parametrize("continuous", [False, True], ids=["one_batch", "continuous"])
@pytest.mark.parametrize("name", list(CASES))
def test_one_device_read_per_step(name, continuous, monkeypatch, tiny_tokenizer):
    model = tiny()
    seeds = SEEDS if name.startswith("sampled") else None

    def run():
        softthink.generate(
            model,
            PROMPTS,
            tokenizer=tiny_tokenizer,
            seeds=seeds,
            trace=False,
            max_batch_size=3 if continuous else None,
            **CASES[name],
        )

    reads, steps = count_device_reads(monkeypatch, run)
    assert steps > 20
    assert reads == {"loop.py:decode:tolist": steps}, reads


def test_host_tensor_is_torch_tensor_on_cpu():
    from softthink.decoding.host import host_tensor

    for values, dtype in [([1, 2, 3], None), ([True, False], None), ([0.5, 2.0], torch.float64), ([], torch.long)]:
        ours, expected = host_tensor(values, "cpu", dtype), torch.tensor(values, dtype=dtype)
        assert ours.dtype == expected.dtype and ours.device.type == "cpu" and torch.equal(ours, expected)
