"""Replay: the training forward rebuilds exactly what a soft rollout fed, so its per-step logits equal the
rollout's (float64 tiny model, 1e-9), for soft, gated and noisy (Gumbel, Dirichlet, Gaussian) rollouts; and the
rollout is a function of its seeds."""

from __future__ import annotations

import pytest
import torch

from softthink.decoding.config import DecodeConfig
from softthink.rl.soft_rollout import SoftRolloutBatch, rollout_seeds, soft_rollout
from softthink.rl.soft_trainer import replay_logits

PROMPTS = ["2+3=?", "a longer prompt: 7*6=?", "1?"]

CASES = {
    "soft": dict(mode="soft", max_topk=5),
    "gated": dict(mode="gated", entropy_threshold=1.2, max_topk=5),
    "gumbel": dict(mode="soft", noise="gumbel", gumbel_tau=0.5, max_topk=5),
    "dirichlet": dict(mode="soft", noise="dirichlet", dirichlet_alpha=1.0, max_topk=5),
    "gaussian": dict(mode="soft", max_topk=5),
}


@pytest.fixture(scope="module")
def model64():
    from softthink.testbed.tiny import build_tiny_model

    return build_tiny_model("llama").double().eval()


def encode(tokenizer):
    return [
        tokenizer.encode(
            tokenizer.apply_chat_template([{"role": "user", "content": p}], add_generation_prompt=True, tokenize=False),
            add_special_tokens=False,
        )
        for p in PROMPTS
    ]


def trl_layout(prompt_ids, completion_ids, pad_id):
    """trl's training batch: left-padded prompts, right-padded completions, their attention mask."""
    width, length = max(map(len, prompt_ids)), max(map(len, completion_ids))
    rows, masks = [], []
    for p, c in zip(prompt_ids, completion_ids):
        rows.append([pad_id] * (width - len(p)) + p + c + [pad_id] * (length - len(c)))
        masks.append([0] * (width - len(p)) + [1] * (len(p) + len(c)) + [0] * (length - len(c)))
    return torch.tensor(rows), torch.tensor(masks), length


@pytest.mark.parametrize("slots", [None, 2], ids=["all-at-once", "continuous-2-slots"])
@pytest.mark.parametrize("case", list(CASES))
def test_training_forward_replays_the_rollout_logits(model64, tiny_tokenizer, case, slots):
    """With 2 slots for 3 completions the third joins when the first ends: its steps are recorded at its own
    positions, not at the loop's step index."""
    config = DecodeConfig(max_new_tokens=12, do_sample=True, trace=False, seed=None, **CASES[case])
    sigma = 0.05 if case == "gaussian" else 0.0
    prompt_ids = encode(tiny_tokenizer)
    batch = soft_rollout(
        model64,
        tiny_tokenizer,
        prompt_ids,
        config,
        rollout_seeds(0, 0, 3),
        embedding_sigma=sigma,
        record_logits=True,
        max_batch_size=slots,
    )
    soft_steps = batch.soft.sum().item()
    assert soft_steps > 0
    if case == "gated":
        assert 0 < soft_steps < sum(map(len, batch.completion_ids))  # both soft and discrete thinking steps
    if case == "gaussian":
        assert batch.noise is not None and batch.noise[batch.soft].abs().sum() > 0
    if case == "gumbel":
        y = torch.softmax(batch.perturbed.masked_fill(~batch.kept_mask, float("-inf")) / 0.5, -1)
        assert torch.allclose(y[batch.soft], batch.weights[batch.soft], atol=1e-12)  # the recorded z feed y
    input_ids, mask, length = trl_layout(prompt_ids, batch.completion_ids, tiny_tokenizer.pad_token_id)
    soft = SoftRolloutBatch.slice_tensors(batch.tensors(), 0, 3, length)
    with torch.no_grad():
        logits, _ = replay_logits(model64, model64.get_input_embeddings(), input_ids, mask, length, soft)
    for r, completion in enumerate(batch.completion_ids):
        n = len(completion)
        diff = (logits[r, :n] - batch.logits[r, :n]).abs().max().item()
        assert diff < 1e-9, f"row {r}: replay differs by {diff}"
    # and a replay that ignored the soft inputs would not match: the test can fail
    hard = dict(soft, soft_soft=torch.zeros_like(soft["soft_soft"]))
    with torch.no_grad():
        wrong, _ = replay_logits(model64, model64.get_input_embeddings(), input_ids, mask, length, hard)
    assert (wrong - logits).abs().max() > 1e-6


def test_rollouts_are_functions_of_their_seeds(model64, tiny_tokenizer):
    config = DecodeConfig(mode="soft", noise="gumbel", gumbel_tau=0.5, max_new_tokens=8, trace=False, seed=None)
    prompt_ids = encode(tiny_tokenizer)
    a = soft_rollout(model64, tiny_tokenizer, prompt_ids, config, rollout_seeds(0, 4, 3), embedding_sigma=0.05)
    b = soft_rollout(model64, tiny_tokenizer, prompt_ids, config, rollout_seeds(0, 4, 3), embedding_sigma=0.05)
    c = soft_rollout(model64, tiny_tokenizer, prompt_ids, config, rollout_seeds(0, 5, 3), embedding_sigma=0.05)
    assert a.completion_ids == b.completion_ids and torch.equal(a.weights, b.weights) and torch.equal(a.noise, b.noise)
    assert not torch.equal(a.perturbed, c.perturbed)
    # one row alone draws what it drew in the batch
    alone = soft_rollout(
        model64, tiny_tokenizer, prompt_ids[1:2], config, rollout_seeds(0, 4, 3)[1:2], embedding_sigma=0.05
    )
    n = len(alone.completion_ids[0])
    assert alone.completion_ids[0] == a.completion_ids[1]
    assert torch.allclose(alone.weights[0, :n], a.weights[1, :n, : alone.weights.shape[2]], atol=1e-12)


@pytest.mark.parametrize("case", ["gumbel", "gaussian"])
def test_continuous_batching_rollout_equals_all_at_once(model64, tiny_tokenizer, case):
    config = DecodeConfig(max_new_tokens=10, do_sample=True, trace=False, seed=None, **CASES[case])
    sigma = 0.05 if case == "gaussian" else 0.0
    prompt_ids = encode(tiny_tokenizer)
    seeds = rollout_seeds(0, 2, 3)
    whole = soft_rollout(model64, tiny_tokenizer, prompt_ids, config, seeds, embedding_sigma=sigma)
    slots = soft_rollout(model64, tiny_tokenizer, prompt_ids, config, seeds, embedding_sigma=sigma, max_batch_size=1)
    assert slots.completion_ids == whole.completion_ids
    for name in SoftRolloutBatch.TENSOR_FIELDS:
        a, b = getattr(whole, name), getattr(slots, name)
        if a is None:
            assert b is None
            continue
        width = min(a.shape[-1], b.shape[-1]) if a.dim() == 3 and name != "noise" else None
        if width is not None:
            a, b = a[..., :width], b[..., :width]
        assert torch.allclose(a.double(), b.double(), atol=1e-10), name
