"""GPPO / CE-GPPO, the entropy-shaped advantage, batch-level selections and per-step diagnostics, on hand-built
tensors: hand-computed values, autograd checks against independently written formulas, split invariance."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from softthink.errors import SoftthinkConfigError
from softthink.rl import objectives as obj

EPS_LOW, EPS_HIGH = 0.2, 0.28


def _gppo_case():
    # ratios: in range, high-clipped (A>0), low-clipped (A<0), low but A>0 (unclipped), high but A<0 (unclipped)
    ratio = torch.tensor([[1.1, 1.5, 0.5, 0.5, 1.5]], dtype=torch.float64)
    adv = torch.tensor([[2.0, 2.0, -3.0, 1.0, -1.0]], dtype=torch.float64)
    old = torch.full_like(ratio, -1.0)
    logps = (old + ratio.log()).requires_grad_(True)
    return logps, old, adv, ratio


def test_gppo_forward_value_is_clip_higher_ppo():
    logps, old, adv, ratio = _gppo_case()
    loss = obj.gppo_token_loss(logps, old, adv, obj.GPPOParams(beta1=0.5, beta2=0.75))
    expected = [-1.1 * 2, -1.28 * 2, -0.8 * -3, -0.5 * 1, -1.5 * -1]  # -min(rA, clip(r)A), by hand
    assert loss.detach()[0].tolist() == pytest.approx(expected)
    low, high = obj.ppo_clip_regions(ratio, adv, EPS_LOW, EPS_HIGH)
    assert low.tolist() == [[False, False, True, False, False]]
    assert high.tolist() == [[False, True, False, False, False]]
    assert torch.equal(low | high, obj.ppo_clipped_tokens(ratio, adv, EPS_LOW, EPS_HIGH))


def test_gppo_gradient_by_hand():
    logps, old, adv, _ratio = _gppo_case()
    beta1, beta2 = 0.5, 0.75
    obj.gppo_token_loss(logps, old, adv, obj.GPPOParams(beta1=beta1, beta2=beta2)).sum().backward()
    # d/dlogp of -rA is -A r; clipped tokens: -beta (1 -/+ eps) A
    expected = [-2.0 * 1.1, -beta2 * 1.28 * 2.0, -beta1 * 0.8 * -3.0, -1.0 * 0.5, 1.0 * 1.5]
    assert logps.grad[0].tolist() == pytest.approx(expected)


def test_gppo_clipped_gradient_is_the_stated_scale_times_the_unclipped_gradient():
    torch.manual_seed(0)
    old = -torch.rand(4, 7, dtype=torch.float64) * 3
    logps = (old + torch.randn(4, 7, dtype=torch.float64) * 0.5).requires_grad_(True)
    adv = torch.randn(4, 1, dtype=torch.float64)
    params = obj.GPPOParams(beta1=0.3, beta2=1.7)
    obj.gppo_token_loss(logps, old, adv, params).sum().backward()
    ours = logps.grad.clone()

    # unclipped surrogate -r A, its gradient by autograd
    leaf = logps.detach().clone().requires_grad_(True)
    r = torch.exp(leaf - old)
    (-(r * adv)).sum().backward()
    unclipped = leaf.grad
    ratio = torch.exp(logps.detach() - old)
    low, high = obj.ppo_clip_regions(ratio, adv, EPS_LOW, EPS_HIGH)
    assert low.any() and high.any() and (~(low | high)).any()  # the case covers all three regions
    scale = torch.where(low, params.beta1 * (1 - EPS_LOW) / ratio, params.beta2 * (1 + EPS_HIGH) / ratio)
    assert torch.allclose(ours[low | high], (scale * unclipped)[low | high], rtol=1e-12)
    assert torch.allclose(ours[~(low | high)], unclipped[~(low | high)], rtol=1e-12)

    # CE-GPPO as the paper writes it: beta c A r / sg(r) on clipped tokens (other forward value, same gradient)
    leaf2 = logps.detach().clone().requires_grad_(True)
    r2 = torch.exp(leaf2 - old)
    a = adv.expand_as(r2)
    ppo = torch.minimum(r2 * a, torch.clamp(r2, 1 - EPS_LOW, 1 + EPS_HIGH) * a)
    paper = torch.where(
        low,
        params.beta1 * (1 - EPS_LOW) * a * r2 / r2.detach(),
        torch.where(high, params.beta2 * (1 + EPS_HIGH) * a * r2 / r2.detach(), ppo),
    )
    (-paper).sum().backward()
    assert torch.allclose(ours, leaf2.grad, rtol=1e-12)


def test_gppo_with_zero_betas_is_clip_higher_ppo_in_value_and_gradient():
    logps, old, adv, _ = _gppo_case()
    obj.gppo_token_loss(logps, old, adv, obj.GPPOParams(beta1=0.0, beta2=0.0)).sum().backward()
    ours = logps.grad.clone()
    leaf = logps.detach().clone().requires_grad_(True)
    r = torch.exp(leaf - old)
    ppo = -torch.minimum(r * adv, torch.clamp(r, 1 - EPS_LOW, 1 + EPS_HIGH) * adv)
    ppo.sum().backward()
    assert torch.allclose(ours, leaf.grad) and ours[0, 1] == 0 and ours[0, 2] == 0


@pytest.mark.parametrize(
    "field, value",
    [("epsilon_low", 1.0), ("epsilon_low", -0.1), ("epsilon_high", -1.0), ("beta1", -0.5), ("beta2", float("nan"))],
)
def test_gppo_params_out_of_range_name_the_field(field, value):
    with pytest.raises(SoftthinkConfigError, match=field) as err:
        obj.GPPOParams(**{field: value})
    assert err.value.param == field and err.value.value is value


def test_entropy_shaped_advantage_by_hand():
    adv = torch.tensor([1.0, -1.0, 0.0])
    logits = torch.zeros(3, 2, 4, requires_grad=True)
    entropies = torch.tensor([[0.5, 5.0], [0.5, 5.0], [3.0, 3.0]]) + 0 * logits.sum(-1)  # carries a graph
    shaped = obj.entropy_shaped_advantages(adv, entropies)  # alpha 0.4, kappa 2
    assert torch.allclose(shaped, torch.tensor([[1.2, 1.5], [-0.8, -0.5], [0.0, 0.0]]))
    assert not shaped.requires_grad  # H is detached: no gradient flows into the entropy
    assert obj.entropy_shaped_advantages(adv, entropies, alpha=0.0).tolist() == [[1, 1], [-1, -1], [0, 0]]
    capped = obj.entropy_shaped_advantages(adv[:, None], entropies, alpha=1.0, kappa=4.0)
    assert torch.allclose(capped, torch.tensor([[1.25, 1.25], [-0.75, -0.75], [0.0, 0.0]]))


def test_entropy_shaped_advantage_gradient_matches_an_independent_formula():
    torch.manual_seed(1)
    logits = torch.randn(3, 5, 6, requires_grad=True)
    logp_all = torch.log_softmax(logits, -1)
    tokens = torch.randint(0, 6, (3, 5))
    logps = logp_all.gather(-1, tokens[..., None])[..., 0]
    entropies = -(logp_all.exp() * logp_all).sum(-1)
    adv = torch.tensor([0.7, -1.3, 0.2])
    loss = -(torch.exp(logps - logps.detach()) * obj.entropy_shaped_advantages(adv, entropies)).sum()
    (grad,) = torch.autograd.grad(loss, logits, retain_graph=True)
    bonus = [[min(0.4 * h, abs(a) / 2.0) for h in row] for a, row in zip(adv.tolist(), entropies.tolist())]
    shaped = torch.tensor([[a + b for b in row] for a, row in zip(adv.tolist(), bonus)])
    (ref,) = torch.autograd.grad(-(torch.exp(logps - logps.detach()) * shaped).sum(), logits)
    assert torch.allclose(grad, ref, atol=1e-6)


def test_entropy_advantage_parameters_are_checked():
    h = torch.ones(1, 2)
    with pytest.raises(SoftthinkConfigError, match="alpha") as err:
        obj.entropy_shaped_advantages(torch.ones(1), h, alpha=-0.1)
    assert err.value.param == "alpha"
    for kappa in (0.0, -1.0, float("inf")):
        with pytest.raises(SoftthinkConfigError, match="kappa") as err:
            obj.entropy_shaped_advantages(torch.ones(1), h, kappa=kappa)
        assert err.value.param == "kappa"


# --------------------------------------------------------------------------------- batch-level selection


def _batch(seed=0, rows=8, max_len=9):
    g = torch.Generator().manual_seed(seed)
    lengths = torch.randint(2, max_len + 1, (rows,), generator=g)
    mask = (torch.arange(max_len)[None, :] < lengths[:, None]).long()
    ent = torch.rand(rows, max_len, generator=g) * 3
    logps = -torch.rand(rows, max_len, generator=g) * 4
    adv = torch.randn(rows, generator=g)
    return ent, logps, adv, mask


def _split(t, sizes, mask):
    """Micro-batches as trl pads them: each cut to its own longest completion."""
    out, start = [], 0
    for n in sizes:
        rows = slice(start, start + n)
        width = int(mask[rows].sum(-1).max())
        out.append(t[rows, :width] if t.dim() == 2 else t[rows])
        start += n
    return out


def _canonical(masks_out, masks_in):
    return torch.cat([s[m.bool()] for s, m in zip(masks_out, masks_in)]).tolist()


SPLITS = [[8], [4, 4], [2, 2, 2, 2], [3, 5], [1] * 8]


@pytest.mark.parametrize("kind", ["forking", "clip_cov", "kl_cov"])
def test_batch_scope_selections_do_not_depend_on_the_micro_batch_split(kind):
    ent, logps, adv, mask = _batch()
    seen, per_micro = [], []
    for sizes in SPLITS:
        e, lp, a, m = (_split(t, sizes, mask) for t in (ent, logps, adv, mask))
        for scope, sink in (("batch", seen), ("micro_batch", per_micro)):
            if kind == "forking":
                out = obj.forking_masks_scoped(e, m, 0.2, scope=scope)
            elif kind == "clip_cov":
                out = obj.clip_cov_masks(a, lp, m, 0.2, -0.5, 2.0, scope=scope, seed=3)
            else:
                out = obj.kl_cov_masks(a, lp, m, 0.2, scope=scope)
            assert all(o.shape == mm.shape and not (o & ~mm.bool()).any() for o, mm in zip(out, m))
            sink.append(_canonical(out, m))
    assert all(s == seen[0] for s in seen) and sum(seen[0]) > 0
    assert any(p != per_micro[0] for p in per_micro)  # per micro-batch, the split changes the selection


def test_flat_batch_with_split_sizes_equals_the_list_form():
    _ent, logps, adv, mask = _batch(seed=2)
    flat = obj.kl_cov_masks(adv, logps, mask, 0.25, scope="micro_batch", split_sizes=[3, 5])
    listed = obj.kl_cov_masks(
        list(adv.split([3, 5])), list(logps.split([3, 5])), list(mask.split([3, 5])), 0.25, scope="micro_batch"
    )
    assert all(torch.equal(f, x) for f, x in zip(flat, listed))
    whole = obj.kl_cov_masks(adv, logps, mask, 0.25, scope="batch")
    assert torch.equal(torch.cat(obj.kl_cov_masks(adv, logps, mask, 0.25, split_sizes=[3, 5])), whole[0])
    with pytest.raises(SoftthinkConfigError, match="add up") as err:
        obj.split_micro_batches(mask, [3, 4])
    assert err.value.param == "split_sizes"


def test_batch_forking_threshold_by_hand():
    e1, e2 = torch.tensor([[0.1, 0.2, 0.3, 0.4, 0.5]]), torch.tensor([[1.0, 2.0, 3.0, 4.0, 5.0]])
    ones = torch.ones(1, 5)
    # the batch's 80th percentile (linear) of the 10 values is 3.2: only 4.0 and 5.0 are forking
    batch = obj.forking_masks_scoped([e1, e2], [ones, ones], 0.2)
    assert batch[0].sum() == 0 and batch[1].tolist() == [[False, False, False, True, True]]
    micro = obj.forking_masks_scoped([e1, e2], [ones, ones], 0.2, scope="micro_batch")
    assert micro[0].tolist() == [[False, False, False, False, True]]  # its own 80th percentile, 0.42


def test_batch_kl_cov_uses_batch_means_by_hand():
    # micro-batch 1: A = 1 on two tokens, micro-batch 2: A = -1 on two tokens; batch means A 0, log p -1.5
    lp1, lp2 = torch.tensor([[-1.0, -2.0]]), torch.tensor([[-1.0, -2.0]])
    ones = torch.ones(1, 2)
    cov = obj.batch_centred_covariance([torch.tensor([1.0]), torch.tensor([-1.0])], [lp1, lp2], [ones, ones])
    assert cov[0].tolist() == [[0.5, -0.5]] and cov[1].tolist() == [[-0.5, 0.5]]
    sel = obj.kl_cov_masks([torch.tensor([1.0]), torch.tensor([-1.0])], [lp1, lp2], [ones, ones], 0.5)
    assert sel[0].tolist() == [[True, False]] and sel[1].tolist() == [[False, True]]
    # per micro-batch, A is constant: every covariance is 0 and the tie goes to the first token
    micro = obj.kl_cov_masks(
        [torch.tensor([1.0]), torch.tensor([-1.0])], [lp1, lp2], [ones, ones], 0.5, scope="micro_batch"
    )
    assert [m.sum().item() for m in micro] == [1, 1]
    assert obj.cov_logp_advantage(
        [lp1, lp2], [torch.tensor([1.0]), torch.tensor([-1.0])], [ones, ones]
    ) == pytest.approx(0.0)


def test_unknown_selection_scope_names_the_field():
    ent, logps, adv, mask = _batch()
    for call in (
        lambda: obj.forking_masks_scoped(ent, mask, 0.2, scope="global"),
        lambda: obj.clip_cov_masks(adv, logps, mask, 0.2, 0, 1, scope="batches"),
        lambda: obj.kl_cov_masks(adv, logps, mask, 0.2, scope=""),
    ):
        with pytest.raises(SoftthinkConfigError, match="selection scope") as err:
            call()
        assert err.value.param == "selection"


# ------------------------------------------------------------------------------------------- diagnostics


def test_cov_logp_advantage_by_hand():
    logps = torch.tensor([[-1.0, -3.0], [-2.0, -100.0]])
    adv = torch.tensor([1.0, -1.0])
    mask = torch.tensor([[1, 1], [1, 0]])
    a = np.array([1.0, 1.0, -1.0])
    lp = np.array([-1.0, -3.0, -2.0])
    expected = float(((a - a.mean()) * (lp - lp.mean())).mean())
    assert obj.cov_logp_advantage(logps, adv, mask) == pytest.approx(expected)
    assert obj.cov_logp_advantage(logps, adv, mask, split_sizes=[1, 1]) == pytest.approx(expected)
    assert math.isnan(obj.cov_logp_advantage(logps, adv, torch.zeros_like(mask)))


def test_token_counts_and_entropy_percentiles():
    mask = torch.tensor([[1, 1, 1, 0], [1, 1, 0, 0]])
    sel = torch.tensor([[True, False, True, True], [False, True, False, True]])  # 2 selections on padding
    assert obj.token_counts(sel, mask) == {"n_valid": 5, "n_selected": 3, "fraction": pytest.approx(0.6)}
    ent = torch.tensor([[0.1, 0.5, 2.0, 99.0], [1.0, 0.3, 99.0, 99.0]])
    pct = obj.entropy_percentiles(ent, mask, (0, 50, 90, 100))
    ref = np.percentile([0.1, 0.5, 2.0, 1.0, 0.3], [0, 50, 90, 100])
    assert list(pct) == [0, 50, 90, 100] and list(pct.values()) == pytest.approx(ref.tolist())
    with pytest.raises(SoftthinkConfigError, match="percentiles"):
        obj.entropy_percentiles(ent, mask, (50, 101))


def test_penalty_is_inactive_with_one_optimisation_pass():
    logps = torch.tensor([[-1.0, -2.0]], requires_grad=True)
    sel = torch.tensor([[True, False]])
    assert obj.penalty_is_inactive(logps, logps.detach(), sel)  # one pass: old log p is log p
    assert obj.kl_cov_penalty(logps, logps.detach(), sel, 1.0).sum() == 0
    assert not obj.penalty_is_inactive(logps, logps.detach() - 0.1, sel)
    assert obj.penalty_is_inactive(logps, logps.detach() - 0.1, torch.zeros_like(sel))
