"""The trainer's seams on one hand-built batch: forking normalisation, Clip-Cov detaching, KL-Cov penalty, GPPO's
clipped-token gradient, the entropy-shaped advantage, and batch-scope selection inside the trainer."""

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
        **{"per_device_train_batch_size": 4, "num_generations": 2, "max_completion_length": 6, **kw},
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


def make_batch(seed: int = 0, rows: int = 4) -> dict:
    g = torch.Generator().manual_seed(seed)
    completion_mask = torch.ones(rows, 6, dtype=torch.long)
    completion_mask[1, 4:] = 0
    completion_mask[3, 2:] = 0
    advantages = torch.tensor([1.0, -0.3, 0.7, -0.2])
    if rows > 4:
        completion_mask[rows - 1, 3:] = 0
        advantages = torch.cat([advantages, torch.linspace(-0.9, 0.8, rows - 4)])
    return {
        "prompt_ids": torch.randint(4, 96, (rows, 3), generator=g),
        "prompt_mask": torch.ones(rows, 3, dtype=torch.long),
        "completion_ids": torch.randint(4, 96, (rows, 6), generator=g),
        "completion_mask": completion_mask,
        "advantages": advantages,
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


def _grads(model) -> dict[str, torch.Tensor]:
    return {n: p.grad.clone() for n, p in model.named_parameters() if p.grad is not None}


def test_gppo_keeps_the_loss_value_and_gives_clipped_tokens_the_gppo_gradient(tmp_path):
    batch = make_batch()
    full = make_trainer(tmp_path, "full")
    gppo = make_trainer(tmp_path, "gppo", num_iterations=2)
    logps, _ = policy_logps(full, batch)
    shift = torch.linspace(-0.6, 0.6, 24).reshape(4, 6)  # ratios e^-0.6 .. e^0.6: both clip regions are hit
    batch["old_per_token_logps"] = logps + shift
    ratio = torch.exp(-shift)
    low, high = obj.ppo_clip_regions(ratio, batch["advantages"], 0.2, 0.2)
    mask = batch["completion_mask"].bool()
    assert (low & mask).any() and (high & mask).any()

    loss_full = full._compute_loss(full.model, dict(batch))
    loss_gppo = gppo._compute_loss(gppo.model, dict(batch))
    assert loss_gppo.item() == pytest.approx(loss_full.item(), rel=1e-5)  # GPPO's value is clip-higher PPO's
    loss_full.backward()
    loss_gppo.backward()
    got = _grads(gppo.model)
    assert any(not torch.allclose(got[n], g) for n, g in _grads(full.model).items())  # clipped tokens now count

    gppo.model.zero_grad()
    with_grad, _, _ = obj_forward(gppo, batch)
    expected_loss = obj.TokenNormalizer("dapo", dapo_denominator=mask.sum().float())(
        obj.gppo_token_loss(with_grad, batch["old_per_token_logps"], batch["advantages"], obj.GPPOParams(0.2, 0.2)),
        batch["completion_mask"],
    )
    expected_loss.backward()
    for name, grad in _grads(gppo.model).items():
        torch.testing.assert_close(got[name], grad, rtol=1e-4, atol=1e-6)
    assert gppo._metrics["train"]["tokens/clipped"][-1] == float((low | high)[mask].sum())


def obj_forward(trainer, batch):
    return trainer._get_per_token_logps_and_entropies(
        trainer.model,
        torch.cat([batch["prompt_ids"], batch["completion_ids"]], 1),
        torch.cat([batch["prompt_mask"], batch["completion_mask"]], 1),
        6,
        compute_entropy=True,
    )


def test_entropy_advantage_replaces_the_advantages_of_the_ppo_term_only(tmp_path):
    batch = make_batch()
    trainer = make_trainer(tmp_path, "entropy_advantage", entropy_adv_alpha=0.4, entropy_adv_kappa=2.0)
    _, entropies = policy_logps(trainer, batch)
    inputs = dict(batch)
    loss = trainer._compute_loss(trainer.model, inputs)
    assert inputs["advantages"] is batch["advantages"] and inputs["advantages"].dim() == 1  # caller's batch intact
    # on-policy ratio 1: the DAPO loss is -sum(A' over valid tokens) / n_valid, A' = A + min(0.4 H, |A| / 2)
    shaped = obj.entropy_shaped_advantages(batch["advantages"], entropies, alpha=0.4, kappa=2.0)
    mask = batch["completion_mask"].float()
    assert loss.item() == pytest.approx((-(shaped * mask).sum() / mask.sum()).item(), rel=1e-5)
    plain = -(batch["advantages"][:, None] * mask).sum() / mask.sum()
    assert loss.item() < plain.item()  # the entropy term is >= 0 and > 0 where A != 0
    assert trainer._metrics["train"]["entropy_adv/bonus"][-1] > 0


@pytest.mark.parametrize(
    "recipe,kw",
    [
        ("forking", {"forking_quantile": 0.3}),
        ("kl_cov", {"kl_cov_fraction": 0.15}),
        ("clip_cov", {"clip_cov_fraction": 0.2, "clip_cov_low": -1e9, "clip_cov_high": 1e9}),
    ],
)
def test_batch_selection_inside_the_trainer_does_not_depend_on_the_accumulation_split(tmp_path, recipe, kw):
    batch = make_batch(rows=8)

    def selected_tokens(rows_per_micro: int, scope: str) -> torch.Tensor:
        steps = 8 // rows_per_micro
        trainer = make_trainer(
            tmp_path,
            recipe,
            selection=scope,
            per_device_train_batch_size=rows_per_micro,
            gradient_accumulation_steps=steps,
            steps_per_generation=steps,
            num_iterations=2,  # off-policy passes: no on-policy warning
            **kw,
        )
        trainer.current_gradient_accumulation_steps = steps
        micro = [
            {
                k: v[i * rows_per_micro : (i + 1) * rows_per_micro] if k != "num_items_in_batch" else v
                for k, v in batch.items()
            }
            for i in range(steps)
        ]
        trainer._buffered_inputs = micro
        masks = []
        for step in range(steps):
            trainer._step = step
            if scope == "batch":
                masks.append(trainer._window_selection(trainer.model))
            else:  # what the seams select per micro-batch
                logps, entropies = policy_logps(trainer, micro[step])
                m = micro[step]["completion_mask"]
                if recipe == "forking":
                    masks.append(trainer.get_high_entropy_mask(entropies, m, 1 - kw["forking_quantile"]).bool())
                elif recipe == "kl_cov":
                    cov = obj.centred_covariance(micro[step]["advantages"], logps, m)
                    masks.append(obj.kl_cov_selection(cov, m, kw["kl_cov_fraction"]))
                else:
                    return None
        return torch.cat(masks)

    whole, split = selected_tokens(8, "batch"), selected_tokens(4, "batch")
    assert whole.shape == (8, 6) and whole.sum() > 0
    assert torch.equal(whole, split)
    assert not (whole & ~batch["completion_mask"].bool()).any()
    if recipe != "clip_cov":  # per micro-batch the statistics, hence the tokens, move with the split
        assert torch.equal(selected_tokens(8, "micro_batch"), whole)
        assert not torch.equal(selected_tokens(4, "micro_batch"), whole)


@pytest.mark.parametrize("recipe", ["kl_cov", "gppo"])
def test_a_term_that_stays_zero_for_a_whole_generation_cycle_warns_once(tmp_path, recipe):
    with pytest.warns(UserWarning, match="on-policy"):  # the config already sees one pass per rollout
        trainer = make_trainer(tmp_path, recipe)
    batch = make_batch()  # no old_per_token_logps: log p_old = log p, as trl does with one pass per rollout
    with pytest.warns(UserWarning, match="log p == log p_old on every token"):
        trainer._compute_loss(trainer.model, dict(batch))
    assert trainer._warned_inactive
    batch["old_per_token_logps"] = policy_logps(trainer, batch)[0] + 0.1  # off-policy: the streak resets
    trainer._compute_loss(trainer.model, dict(batch))
    assert trainer._inactive_streak == 0


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
