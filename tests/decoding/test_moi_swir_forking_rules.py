"""mixture_of_inputs, swir and forking_temperature pinned to their definitions on hand-computed cases."""

import math

import pytest
import torch

import softthink
from softthink.decoding.rules.forking_temperature import forking_probs
from softthink.decoding.rules.mixture_of_inputs import moi_weights
from softthink.decoding.rules.swir import SwitchingReasoning, swir_update
from tests.conftest import tiny


def test_moi_weights_hand_computed():
    p = torch.tensor([[0.5, 0.3, 0.2]], dtype=torch.float64)
    w = moi_weights(p, torch.tensor([1]), beta=1.0)
    h = -(0.5 * math.log(0.5) + 0.3 * math.log(0.3) + 0.2 * math.log(0.2)) / math.log(3)  # 0.93721
    q = [0.25, 0.65, 0.10]  # (p + 1 * onehot(1)) / 2
    expected = [h * q[0], h * q[1] + (1 - h), h * q[2]]
    torch.testing.assert_close(w[0], torch.tensor(expected, dtype=torch.float64))
    assert w.sum().item() == pytest.approx(1.0)


def test_moi_confident_step_feeds_the_sampled_token_alone():
    one = torch.tensor([[1.0, 0.0, 0.0]])
    assert moi_weights(one, torch.tensor([0]), beta=2.0).tolist() == [[1.0, 0.0, 0.0]]
    uniform = torch.full((1, 4), 0.25, dtype=torch.float64)  # H normalised = 1: pure posterior
    torch.testing.assert_close(
        moi_weights(uniform, torch.tensor([2]), beta=3.0)[0],
        torch.tensor([0.0625, 0.0625, 0.8125, 0.0625], dtype=torch.float64),
    )


def run_swir(entropies, window, max_switches):
    state = SwitchingReasoning.init_state(None, 1, torch.device("cpu"))
    return ["S" if swir_update(state, torch.tensor([h]), window, max_switches).item() else "D" for h in entropies]


@pytest.mark.parametrize("window, cap, expected", [(1, None, "SDSSD"), (2, None, "SDDSS"), (1, 1, "SDDDD")])
def test_swir_switching_hand_computed(window, cap, expected):
    # ref 1.0; 0.8 < 1.0 -> D (ref 0.8); 0.9 > 0.8 -> S (ref 0.9); 1.2 not < 0.9 -> S; 0.5 < 0.9 -> D
    assert "".join(run_swir([1.0, 0.8, 0.9, 1.2, 0.5], window, cap)) == expected


def test_swir_in_the_loop_follows_its_rule(tiny_tokenizer):
    g = softthink.generate(
        tiny("qwen2"), "What is 3*4?", tokenizer=tiny_tokenizer, mode="swir", swir_window=2, max_new_tokens=30
    )
    thinking = [h for h, th in zip(g.trace.entropy, g.trace.thinking) if th]
    expected = [m == "S" for m in run_swir(thinking, 2, None)]
    assert g.trace.soft[: len(expected)] == expected
    assert 0 < g.soft_steps < g.think_tokens


def test_forking_probs_hand_computed():
    logits = torch.tensor([[2.0, 1.0, 0.0], [2.0, 1.0, 0.0]])
    base = torch.softmax(logits / 0.5, -1)
    entropy = torch.tensor([1.0, 0.1])
    out = forking_probs(logits, base, entropy, threshold=0.5, fork_temperature=2.0)
    torch.testing.assert_close(out[0], torch.softmax(torch.tensor([1.0, 0.5, 0.0]), -1))  # fork: hot
    torch.testing.assert_close(out[1], base[1])  # execution step: base temperature


def test_forking_temperature_requires_sampling():
    with pytest.raises(softthink.SoftthinkConfigError, match="do_sample must be True"):
        softthink.DecodeConfig(mode="forking_temperature")


def test_forking_temperature_with_equal_temperatures_equals_discrete_sampling(tiny_tokenizer):
    common = dict(do_sample=True, temperature=0.9, max_new_tokens=20, seed=4, think_end=None)
    a = softthink.generate(
        tiny("qwen2"),
        "hi",
        tokenizer=tiny_tokenizer,
        mode="forking_temperature",
        fork_temperature=0.9,
        fork_threshold=0.0,
        **common,
    )
    b = softthink.generate(tiny("qwen2"), "hi", tokenizer=tiny_tokenizer, mode="discrete", **common)
    assert a.token_ids == b.token_ids and a.soft_steps == 0


@pytest.mark.parametrize("mode", ["mixture_of_inputs", "swir"])
def test_new_modes_batch_equals_single(mode, tiny_tokenizer):
    settings = dict(mode=mode, max_new_tokens=12)  # deterministic settings: the MoI observation is the top-1
    model = tiny("llama", dtype=torch.float64)
    prompts = ["a longer prompt for padding", "hi"]
    batch = softthink.generate(model, prompts, tokenizer=tiny_tokenizer, **settings)
    assert any(len(k) > 1 for b in batch for k in b.trace.kept_ids)
    for p, b in zip(prompts, batch):
        s = softthink.generate(model, p, tokenizer=tiny_tokenizer, **settings)
        assert s.token_ids == b.token_ids and s.trace.soft == b.trace.soft
