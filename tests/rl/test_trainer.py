"""The trainer's seams on one hand-built batch: forking normalisation, Clip-Cov detaching, KL-Cov penalty."""

from __future__ import annotations

import pytest
import torch

from softthink.analysis.forking import high_entropy_mask
from softthink.rl import objectives as obj


def make_trainer(tmp_path, recipe: str, **kw):
    from datasets import Dataset

    from softthink.rl import SoftthinkGRPOConfig, SoftthinkGRPOTrainer
    from softthink.testbed.tiny import build_tiny_model, build_tiny_tokenizer

    args = SoftthinkGRPOConfig(
        output_dir=str(tmp_path / recipe),
        recipe=recipe,
        use_cpu=True,
        bf16=False,
        report_to="none",
        activation_checkpointing=False,
        per_device_train_batch_size=4,
        num_generations=2,
        max_completion_length=6,
        **kw,
    )
    data = Dataset.from_list([{"prompt": [{"role": "user", "content": "1+1"}], "answer": "2"}] * 4)
    trainer = SoftthinkGRPOTrainer(
        model=build_tiny_model("llama"),
        reward_funcs=[lambda completions, **_: [0.0] * len(completions)],
        args=args,
        train_dataset=data,
        processing_class=build_tiny_tokenizer(),
    )
    trainer.model.train()
    trainer.current_gradient_accumulation_steps = 1
    return trainer


def make_batch(seed: int = 0) -> dict:
    g = torch.Generator().manual_seed(seed)
    completion_mask = torch.ones(4, 6, dtype=torch.long)
    completion_mask[1, 4:] = 0
    completion_mask[3, 2:] = 0
    return {
        "prompt_ids": torch.randint(4, 96, (4, 3), generator=g),
        "prompt_mask": torch.ones(4, 3, dtype=torch.long),
        "completion_ids": torch.randint(4, 96, (4, 6), generator=g),
        "completion_mask": completion_mask,
        "advantages": torch.tensor([1.0, -0.3, 0.7, -0.2]),
        "num_items_in_batch": completion_mask.sum().float(),
    }


def policy_logps(trainer, batch):
    with torch.no_grad():
        logps, entropies, _ = trainer._get_per_token_logps_and_entropies(
            trainer.model,
            torch.cat([batch["prompt_ids"], batch["completion_ids"]], 1),
            torch.cat([batch["prompt_mask"], batch["completion_mask"]], 1),
            6,
            compute_entropy=True,
        )
    return logps, entropies


def test_forking_selected_token_normalisation_rescales_the_loss(tmp_path):
    batch = make_batch()
    all_tokens = make_trainer(tmp_path, "forking")
    selected = make_trainer(tmp_path, "forking", forking_normalization="selected_tokens")
    loss_all = all_tokens._compute_loss(all_tokens.model, dict(batch))
    loss_sel = selected._compute_loss(selected.model, dict(batch))
    _, entropies = policy_logps(all_tokens, batch)
    mask = batch["completion_mask"]
    n_sel = high_entropy_mask(entropies, mask, 0.2).sum().item()
    assert 0 < n_sel < mask.sum().item()
    assert loss_all.item() != 0
    assert loss_sel.item() == pytest.approx(loss_all.item() * mask.sum().item() / n_sel, rel=1e-5)
    metrics = all_tokens._metrics["train"]
    assert metrics["entropy/forking"][-1] > metrics["entropy/execution"][-1]


def test_full_recipe_is_plain_trl_loss(tmp_path):
    batch = make_batch()
    full = make_trainer(tmp_path, "full")
    loss = full._compute_loss(full.model, dict(batch))
    # on-policy ratio 1: the DAPO loss is -sum(A over valid tokens) / n_valid
    mask = batch["completion_mask"].float()
    expected = -(batch["advantages"][:, None] * mask).sum() / mask.sum()
    assert loss.item() == pytest.approx(expected.item(), rel=1e-5)


def test_clip_cov_detaches_the_gradient_of_the_sampled_tokens(tmp_path):
    batch = make_batch()
    # a band that holds every token and r = 25 %: exactly int(0.25 * 18) = 4 valid tokens lose their gradient
    trainer = make_trainer(tmp_path, "clip_cov", clip_cov_fraction=0.25, clip_cov_low=-1e9, clip_cov_high=1e9)
    inputs = dict(batch)
    trainer._loss_inputs, trainer._policy_forward = inputs, None
    logps, _, _ = trainer._get_per_token_logps_and_entropies(
        trainer.model,
        torch.cat([batch["prompt_ids"], batch["completion_ids"]], 1),
        torch.cat([batch["prompt_mask"], batch["completion_mask"]], 1),
        6,
        compute_entropy=True,
    )
    trainer._loss_inputs = None
    weight = trainer.model.get_output_embeddings().weight
    mask = batch["completion_mask"].bool()
    zero_grad = torch.zeros_like(mask)
    for i, t in mask.nonzero().tolist():
        (grad,) = torch.autograd.grad(logps[i, t], weight, retain_graph=True)
        zero_grad[i, t] = grad.abs().sum() == 0
    assert mask.sum() == 18 and zero_grad.sum().item() == 4
    assert trainer._metrics["train"]["clip_cov/detached_fraction"][-1] == pytest.approx(4 / 18)
    # and the full loss still back-propagates through the other tokens
    loss = trainer._compute_loss(trainer.model, dict(batch))
    loss.backward()
    assert weight.grad is not None and weight.grad.abs().sum() > 0


def test_kl_cov_adds_the_penalty_on_the_top_covariance_tokens_only(tmp_path):
    batch = make_batch()
    full = make_trainer(tmp_path, "full")
    kl = make_trainer(tmp_path, "kl_cov", kl_cov_fraction=0.2, kl_cov_coef=0.5)
    logps, _ = policy_logps(full, batch)
    shift = torch.linspace(-0.3, 0.35, 24).reshape(4, 6)
    batch["old_per_token_logps"] = logps + shift  # off-policy: the penalty |log p - log p_old| = |shift| is live
    loss_full = full._compute_loss(full.model, dict(batch))
    loss_kl = kl._compute_loss(kl.model, dict(batch))
    mask = batch["completion_mask"]
    selected = obj.kl_cov_selection(obj.centred_covariance(batch["advantages"], logps, mask), mask, 0.2)
    assert selected.sum() == 3  # int(0.2 * 18)
    expected_penalty = (0.5 * shift.abs() * selected).sum() / mask.sum()  # DAPO normaliser, one window
    assert (loss_kl - loss_full).item() == pytest.approx(expected_penalty.item(), rel=1e-4)
    assert kl._metrics["train"]["kl_cov/penalised_fraction"][-1] == pytest.approx(3 / 18)


def test_trainer_refuses_a_plain_grpo_config(tmp_path):
    from datasets import Dataset
    from trl import GRPOConfig

    from softthink.errors import SoftthinkConfigError
    from softthink.rl import SoftthinkGRPOTrainer
    from softthink.testbed.tiny import build_tiny_model, build_tiny_tokenizer

    args = GRPOConfig(
        output_dir=str(tmp_path),
        use_cpu=True,
        bf16=False,
        report_to="none",
        activation_checkpointing=False,
        per_device_train_batch_size=2,
        num_generations=2,
    )
    data = Dataset.from_list([{"prompt": [{"role": "user", "content": "1"}], "answer": "1"}] * 2)
    with pytest.raises(SoftthinkConfigError, match="SoftthinkGRPOConfig"):
        SoftthinkGRPOTrainer(
            model=build_tiny_model("llama"),
            reward_funcs=[lambda completions, **_: [0.0]],
            args=args,
            train_dataset=data,
            processing_class=build_tiny_tokenizer(),
        )
