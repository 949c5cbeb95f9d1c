"""The recipes' token-selection maths on hand-built tensors (no trainer, no model)."""

from __future__ import annotations

import math

import pytest
import torch

from softthink.analysis import forking
from softthink.rl import objectives as obj


def test_high_entropy_mask_selects_the_top_fifth_and_never_padding():
    entropies = torch.tensor([[0.1, 0.2, 0.3, 0.4, 0.5], [0.6, 0.7, 0.8, 0.9, 1.0]])
    mask = torch.ones_like(entropies)
    selected = forking.high_entropy_mask(entropies, mask, 0.2)
    assert selected.tolist() == [[False] * 5, [False, False, False, True, True]]
    # padding with a huge entropy must not be selected, nor shift the threshold
    entropies[0, 0] = 99.0
    mask[0, 0] = 0
    selected = forking.high_entropy_mask(entropies, mask, 0.2)
    assert not selected[0, 0]
    assert selected.sum() == 2 and selected[1, 4]


def test_high_entropy_mask_matches_trl_rule():
    from trl import GRPOTrainer

    torch.manual_seed(0)
    entropies, mask = torch.rand(4, 9), (torch.rand(4, 9) > 0.3).float()

    class FakeAccelerator:  # trl's rule without a trainer: single process
        pad_across_processes = staticmethod(lambda t, dim, pad_index: t)
        gather = staticmethod(lambda t: t)

    fake = type("Fake", (), {"accelerator": FakeAccelerator()})()
    theirs = GRPOTrainer.get_high_entropy_mask(fake, entropies, mask, 1 - 0.2)
    assert torch.equal(forking.high_entropy_mask(entropies, mask, 0.2), theirs)


def test_forking_normalisations_all_tokens_vs_selected_tokens():
    token_loss = torch.tensor([[1.0, 2.0, 3.0, 4.0], [5.0, 6.0, 7.0, 8.0]])
    mask = torch.tensor([[1.0, 1.0, 1.0, 1.0], [1.0, 1.0, 1.0, 0.0]])
    selected = torch.tensor([[False, False, True, False], [False, True, False, False]])
    # all_tokens (paper's Eq.): masked sum over all 7 valid tokens
    all_tokens = (token_loss * selected * mask).sum() / mask.sum()
    assert all_tokens.item() == pytest.approx((3.0 + 6.0) / 7)
    # selected_tokens: the weights turn the same normaliser into a mean over the 2 selected tokens
    weights = obj.selected_token_weights(selected, mask)
    assert weights[selected].tolist() == pytest.approx([3.5, 3.5]) and weights[~selected].sum() == 0
    selected_mean = (token_loss * weights * mask).sum() / mask.sum()
    assert selected_mean.item() == pytest.approx((3.0 + 6.0) / 2)


def test_centred_covariance_uses_valid_token_means():
    adv = torch.tensor([1.0, -1.0])
    logps = torch.tensor([[-1.0, -3.0], [-2.0, -100.0]])
    mask = torch.tensor([[1, 1], [1, 0]])
    cov = obj.centred_covariance(adv, logps, mask)
    a_mean, lp_mean = (1 + 1 - 1) / 3, (-1 - 3 - 2) / 3
    expected = [[(1 - a_mean) * (-1 - lp_mean), (1 - a_mean) * (-3 - lp_mean)], [(-1 - a_mean) * (-2 - lp_mean), 0.0]]
    assert torch.allclose(cov, torch.tensor(expected))


def _band_case():
    cov = torch.tensor([[0.5, 1.5, 2.0, 6.0, 3.0], [4.9, 1.0, 5.0, 2.5, 0.0]])
    mask = torch.ones_like(cov)
    mask[1, 4] = 0
    return cov, mask


def test_clip_cov_only_selects_tokens_strictly_inside_the_band():
    cov, mask = _band_case()
    in_band = (cov > 1.0) & (cov < 5.0) & mask.bool()  # 1.5, 2.0, 3.0, 4.9, 2.5
    chosen = torch.zeros_like(in_band)
    for seed in range(50):
        sel = obj.clip_cov_selection(cov, mask, 1.0, 1.0, 5.0, generator=torch.Generator().manual_seed(seed))
        assert not (sel & ~in_band).any()
        chosen |= sel
    assert torch.equal(chosen, in_band)  # the random sample covers the whole band over seeds


def test_clip_cov_selects_the_right_number():
    cov, mask = _band_case()  # 9 valid tokens, 5 in band
    g = torch.Generator().manual_seed(0)
    assert obj.clip_cov_selection(cov, mask, 0.25, 1.0, 5.0, generator=g).sum() == 2  # int(0.25 * 9)
    assert obj.clip_cov_selection(cov, mask, 1e-4, 1.0, 5.0, generator=g).sum() == 1  # at least one
    assert obj.clip_cov_selection(cov, mask, 1.0, 1.0, 5.0, generator=g).sum() == 5  # capped by the band
    assert obj.clip_cov_selection(cov, mask, 1.0, 10.0, 20.0, generator=g).sum() == 0  # empty band


def test_clip_cov_excludes_tokens_already_clipped_by_ppo():
    cov, mask = _band_case()
    exclude = torch.zeros_like(mask, dtype=torch.bool)
    exclude[0, 1] = exclude[0, 2] = True
    sel = obj.clip_cov_selection(cov, mask, 1.0, 1.0, 5.0, exclude=exclude)
    assert sel.sum() == 3 and not (sel & exclude).any()


def test_ppo_clipped_tokens():
    ratio = torch.tensor([[1.5, 0.5, 1.0, 1.5]])
    adv = torch.tensor([[1.0, 1.0, 1.0, -1.0]])
    # A>0 and r > 1+eps_high: clipped; A>0 and r < 1-eps: min() keeps r (not clipped); A<0, r>1+eps: not clipped
    assert obj.ppo_clipped_tokens(ratio, adv, 0.2, 0.28).tolist() == [[True, False, False, False]]


def test_clip_cov_detach_removes_exactly_the_selected_gradients():
    logps = torch.tensor([[-1.0, -2.0, -0.5], [-0.1, -3.0, -1.5]], requires_grad=True)
    selected = torch.tensor([[False, True, False], [True, False, False]])
    adv = torch.tensor([[1.0], [-2.0]])
    out = obj.detach_selected(logps, selected)
    assert torch.equal(out, logps)  # same values
    (-(torch.exp(out - logps.detach()) * adv)).sum().backward()  # GRPO surrogate at ratio 1
    grad = logps.grad
    assert (grad[selected] == 0).all()
    expected = -adv.expand_as(grad)
    assert torch.equal(grad[~selected], expected[~selected])


def test_kl_cov_selects_top_covariance_and_penalises_only_them():
    cov = torch.tensor([[0.1, 9.0, -3.0, 2.0], [7.0, 0.0, 100.0, 1.0]])
    mask = torch.tensor([[1, 1, 1, 1], [1, 1, 0, 1]])  # the 100 is padding
    sel = obj.kl_cov_selection(cov, mask, 0.3)  # int(0.3 * 7) = 2 tokens: 9.0 and 7.0
    assert sel.tolist() == [[False, True, False, False], [True, False, False, False]]
    assert obj.kl_cov_selection(cov, mask, 1e-5).sum() == 1

    logps = torch.tensor([[-1.0, -1.5, -2.0, -0.3], [-0.2, -0.7, -0.1, -0.9]], requires_grad=True)
    old = torch.tensor([[-1.2, -1.0, -2.0, -0.3], [-0.5, -0.7, -0.1, -0.9]])
    penalty = obj.kl_cov_penalty(logps, old, sel, coef=2.0)
    assert penalty[sel].tolist() == pytest.approx([2 * 0.5, 2 * 0.3])
    assert (penalty[~sel] == 0).all()
    penalty.sum().backward()
    assert logps.grad[~sel].abs().sum() == 0
    assert logps.grad[sel].tolist() == pytest.approx([-2.0, 2.0])  # d/dlogp 2|logp-old| = 2 sign(logp-old)


@pytest.mark.parametrize(
    "loss_type,expected",
    [
        ("grpo", ((1 + 2) / 2 + 4 / 1) / 2 / 2),
        ("bnpo", (1 + 2 + 4) / 3 / 2),
        ("dr_grpo", (1 + 2 + 4) / (2 * 5) / 2),
        ("dapo", (1 + 2 + 4) / 7.0),
    ],
)
def test_token_normalizer_matches_trl_aggregations(loss_type, expected):
    per_token = torch.tensor([[1.0, 2.0, 9.0], [4.0, 9.0, 9.0]])
    mask = torch.tensor([[1, 1, 0], [1, 0, 0]])
    norm = obj.TokenNormalizer(loss_type, accumulation_steps=2, max_completion_length=5, dapo_denominator=7.0)
    assert norm(per_token, mask).item() == pytest.approx(expected)


def test_entropy_stats_split_forking_and_execution():
    entropies = torch.tensor([[0.0, 0.1, 0.2, 0.3, 2.0], [0.4, 0.5, 0.6, 0.7, 3.0]])
    stats = forking.batch_entropy_stats(entropies, torch.ones_like(entropies), 0.2, 0.672)
    assert stats.mean_forking == pytest.approx(2.5)
    assert stats.mean_execution == pytest.approx(0.35)
    assert stats.mean_all == pytest.approx(entropies.mean().item())
    assert stats.frac_above == pytest.approx(0.3)
    assert forking.batch_entropy_stats(entropies, torch.zeros_like(entropies), 0.2, 0.672) is None
    assert math.isfinite(stats.forking_threshold)
