"""multiplex (training-free Multiplex Thinking): hand-computed weights, K=1 == discrete sampling, bad input."""

import pytest
import torch

import softthink
from softthink.decoding.randomness import Randomness
from softthink.decoding.rules import StepInput
from softthink.decoding.rules.multiplex import MultiplexThinking, multiplex_weights
from tests.conftest import tiny

PROMPTS = ["What is 12+7? Think step by step.", "hi"]


class ScriptedRandomness(Randomness):
    """`multinomial` returns the scripted columns, one row-vector per call, in order."""

    def __init__(self, columns: list[list[int]]):
        self.columns = [torch.tensor(c) for c in columns]

    def multinomial(self, weights: torch.Tensor) -> torch.Tensor:
        return self.columns.pop(0)


def test_multiplex_weights_hand_computed():
    # row 0: draws a, b, a -> a 2/3 (at its first draw), b 1/3, the repeat 0; row 1: all equal -> 1 at the first;
    # row 2: all distinct -> 1/3 each
    columns = torch.tensor([[2, 5, 2], [7, 7, 7], [0, 1, 3]])
    expected = torch.tensor([[2 / 3, 1 / 3, 0.0], [1.0, 0.0, 0.0], [1 / 3, 1 / 3, 1 / 3]])
    torch.testing.assert_close(multiplex_weights(columns), expected)


def test_multiplex_step_hand_computed():
    # vocabulary of 5; sorted by probability: token 3 (0.4), 0 (0.3), 4 (0.2), 1 (0.1), 2 (0.0).
    probs = torch.tensor([[0.3, 0.1, 0.0, 0.4, 0.2]])
    config = softthink.DecodeConfig(mode="multiplex", do_sample=True, multiplex_k=3)
    rule = MultiplexThinking(config, config.think_sampling())
    # draws of sorted columns 1, 0, 1 -> tokens 0, 3, 0: visible = first draw (token 0), fed 2/3 e_0 + 1/3 e_3
    random = ScriptedRandomness([[1], [0], [1]])
    step = rule.step(StepInput(probs.log(), probs, torch.tensor([1.28]), {}, random))
    assert step.token_ids.tolist() == [0]
    assert step.kept_ids.tolist() == [[0, 3, 0]]
    torch.testing.assert_close(step.weights, torch.tensor([[2 / 3, 1 / 3, 0.0]]))
    assert step.soft.tolist() == [True]
    same = rule.step(StepInput(probs.log(), probs, torch.tensor([1.28]), {}, ScriptedRandomness([[2], [2], [2]])))
    assert same.token_ids.tolist() == [4] and same.weights[0].tolist() == [1.0, 0.0, 0.0]
    assert same.soft.tolist() == [False], "K equal draws feed one token: not a soft step"


def test_multiplex_samples_from_the_discrete_filter_chain():
    # top_k=2 keeps tokens 3 and 0 only: whatever the draws, nothing else is fed
    probs = torch.tensor([[0.3, 0.1, 0.0, 0.4, 0.2]]).repeat(64, 1)
    config = softthink.DecodeConfig(mode="multiplex", do_sample=True, top_k=2, multiplex_k=4)
    rule = MultiplexThinking(config, config.think_sampling())
    torch.manual_seed(0)
    step = rule.step(StepInput(probs.log(), probs, torch.ones(64), {}))
    fed = {i for row_ids, row_w in zip(step.kept_ids.tolist(), step.weights.tolist()) for i, w in zip(row_ids, row_w)}
    assert fed == {0, 3}
    torch.testing.assert_close(step.weights.sum(-1), torch.ones(64))
    assert set((step.weights * 4).round().flatten().tolist()) <= {0.0, 1.0, 2.0, 3.0, 4.0}


@pytest.mark.parametrize("seeds", [None, [3, 11]])
def test_multiplex_k1_equals_discrete_sampling(seeds, tiny_tokenizer):
    common = dict(do_sample=True, temperature=0.9, top_k=20, max_new_tokens=24, max_think_tokens=10, seed=5)
    model = tiny("llama")
    a = softthink.generate(
        model, PROMPTS, tokenizer=tiny_tokenizer, mode="multiplex", multiplex_k=1, seeds=seeds, **common
    )
    b = softthink.generate(model, PROMPTS, tokenizer=tiny_tokenizer, mode="discrete", seeds=seeds, **common)
    assert [g.token_ids for g in a] == [g.token_ids for g in b]
    assert all(g.think_tokens > 1 and g.answer_tokens > 0 for g in a), "both phases must be exercised"
    assert all(g.soft_steps == 0 for g in a)


def test_multiplex_in_the_loop_feeds_the_mean_of_k_draws(tiny_tokenizer):
    g = softthink.generate(
        tiny("llama"), PROMPTS[0], tokenizer=tiny_tokenizer, mode="multiplex", do_sample=True, max_new_tokens=30
    )
    thinking = [i for i, th in enumerate(g.trace.thinking) if th and g.token_ids[i] != 4]
    assert 0 < g.soft_steps <= len(thinking)
    for i in thinking:
        weights = g.trace.kept_weights[i]
        assert g.token_ids[i] in g.trace.kept_ids[i] and len(weights) <= 3
        assert sorted(round(3 * w) for w in weights) in ([3], [1, 2], [1, 1, 1]) and sum(weights) == pytest.approx(1)
        assert g.trace.soft[i] == (len(weights) > 1)


def test_multiplex_batch_equals_single_with_prompt_seeds(tiny_tokenizer):
    model = tiny("llama", dtype=torch.float64)
    settings = dict(mode="multiplex", do_sample=True, max_new_tokens=16)
    batch = softthink.generate(model, PROMPTS, tokenizer=tiny_tokenizer, seeds=[1, 2], **settings)
    assert any(g.soft_steps for g in batch)
    for prompt, seed, b in zip(PROMPTS, [1, 2], batch):
        s = softthink.generate(model, prompt, tokenizer=tiny_tokenizer, seeds=[seed], **settings)
        assert s.token_ids == b.token_ids and s.trace.kept_weights == b.trace.kept_weights


def test_multiplex_bad_input():
    with pytest.raises(softthink.SoftthinkConfigError, match=r"decode.multiplex_k must be an int >= 1, got 0"):
        softthink.DecodeConfig(mode="multiplex", do_sample=True, multiplex_k=0)
    with pytest.raises(softthink.SoftthinkConfigError, match="do_sample must be True in mode 'multiplex'"):
        softthink.DecodeConfig(mode="multiplex")
    assert softthink.DecodeConfig(mode="multiplex", do_sample=True).multiplex_k == 3
