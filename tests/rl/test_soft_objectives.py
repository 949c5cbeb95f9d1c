"""The soft-step log-probabilities: hand-computed cases, agreement with independently written densities
(torch.distributions) in value and gradient, finite-difference gradient checks, and the decode loop's noise."""

from __future__ import annotations

import math

import pytest
import torch

from softthink.decoding.concept import mixture_embedding
from softthink.decoding.processors import gumbel_softmax_weights
from softthink.decoding.randomness import Randomness
from softthink.rl import soft_objectives as so

D64 = torch.float64


def t(*values):
    return torch.tensor(values, dtype=D64)


def test_kept_log_probs_renormalise_over_the_kept_tokens_at_the_temperature():
    logits = torch.log(t(0.5, 0.3, 0.2))
    ids, mask = torch.tensor([0, 1, 2]), torch.tensor([True, True, False])
    got = so.kept_log_probs(logits, ids, mask, 1.0)
    assert torch.allclose(got[:2].exp(), t(0.625, 0.375), atol=1e-12) and got[2] == -math.inf
    # T = 2: softmax(log p / 2) is proportional to sqrt(p); renormalised over tokens 0 and 1.
    half = so.kept_log_probs(logits, ids, mask, 2.0)[:2].exp()
    expected = t(math.sqrt(0.5), math.sqrt(0.3)) / (math.sqrt(0.5) + math.sqrt(0.3))
    assert torch.allclose(half, expected, atol=1e-12)


def test_gumbel_step_logp_hand_computed():
    kept_logp = torch.log(t(0.625, 0.375))
    mask = torch.tensor([True, True])
    # noise g = (0.5, -0.2): mean of (-g - exp(-g))
    z = kept_logp + t(0.5, -0.2)
    expected = ((-0.5 - math.exp(-0.5)) + (0.2 - math.exp(0.2))) / 2
    assert so.gumbel_step_logp(kept_logp, z, mask).item() == pytest.approx(expected, abs=1e-12)
    assert expected == pytest.approx(-1.063966, abs=1e-6)
    # noise outside [-1.5, 3] is clamped first: g = (4, -2) -> (3, -1.5)
    z = kept_logp + t(4.0, -2.0)
    clamped = ((-3 - math.exp(-3)) + (1.5 - math.exp(1.5))) / 2
    assert so.gumbel_step_logp(kept_logp, z, mask).item() == pytest.approx(clamped, abs=1e-12)
    # a kept token with log p~ <= -3 is left out of the mean; a padding column never counts
    kept_logp = torch.log(t(0.97, 0.03, 1.0))
    mask = torch.tensor([True, True, False])
    z = kept_logp + t(0.1, 0.7, 0.0)
    assert so.gumbel_step_logp(kept_logp, z, mask).item() == pytest.approx(-0.1 - math.exp(-0.1), abs=1e-12)


def test_gaussian_step_logp_and_mixture_width_hand_computed():
    assert so.gaussian_step_logp(t(1.0, 2.0), t(0.0, 0.0), 0.5).item() == pytest.approx(-10.0)
    weights = torch.stack([t(0.5, 0.5, 0.0), t(1.0, 0.0, 0.0), t(0.9995, 0.0005, 0.0)])
    mask = weights > 0
    width, kept = so.mixture_width(weights, mask)
    assert width[0].item() == pytest.approx(2.0) and width[1].item() == pytest.approx(1.0)
    assert kept.tolist() == [2.0, 1.0, 1.0]
    assert mixture_embedding(t(0.25, 0.75), t(2.0, 4.0).reshape(2, 1)).item() == pytest.approx(3.5)


class FixedUniforms(Randomness):
    def __init__(self, uniforms):
        self.uniforms = uniforms

    def uniform_like(self, x):
        return self.uniforms.clone()


def test_perturbed_logits_are_the_decode_loops_gumbel_noise():
    """g = -log(-log u): u = e^-1 gives g = 0, u = exp(-e^-1) gives g = 1; and the decode loop's Gumbel-softmax
    weights are softmax(z / tau) of these perturbed log-weights."""
    w = t(0.5, 0.5)
    u = torch.stack([t(math.exp(-1), math.exp(-math.exp(-1)))])
    z = so.gumbel_perturbed_logits(w[None], u)
    assert torch.allclose(z, torch.log(w)[None] + t(0.0, 1.0)[None], atol=1e-12)
    weights = torch.softmax(t(2.0, 1.0, 0.5, -1.0)[None], -1)
    weights[0, 3] = 0  # a token the filters dropped
    weights = weights / weights.sum()
    uniforms = torch.rand(1, 4, dtype=D64, generator=torch.Generator().manual_seed(0))
    fed = gumbel_softmax_weights(weights, 0.3, FixedUniforms(uniforms))
    clamped = uniforms.clamp(min=1e-20, max=1.0 - 1e-7)
    assert torch.allclose(fed, torch.softmax(so.gumbel_perturbed_logits(weights, clamped) / 0.3, -1), atol=1e-15)


def _independent_gumbel_logp(logits, kept, temperature, z):
    """SofT-GRPO's step log-prob written independently: the mean Gumbel(log p~, 1) log-density of z."""
    p = torch.softmax(logits / temperature, -1)[..., kept]
    p = p / p.sum(-1, keepdim=True)
    return torch.distributions.Gumbel(torch.log(p), torch.ones_like(p)).log_prob(z).mean(-1)


def test_gumbel_step_logp_matches_an_independent_density_in_value_and_gradient():
    gen = torch.Generator().manual_seed(1)
    logits = torch.randn(3, 7, dtype=D64, generator=gen) * 0.3
    kept = torch.tensor([0, 2, 3])
    ids = kept.expand(3, 3)
    mask = torch.ones(3, 3, dtype=torch.bool)
    with torch.no_grad():
        base = so.kept_log_probs(logits, ids, mask, 0.8)
    z = base + torch.tensor([[0.3, -0.4, 1.1], [0.0, 0.8, -1.0], [2.0, 0.1, -0.3]], dtype=D64)  # inside the clamp
    a = logits.clone().requires_grad_(True)
    b = logits.clone().requires_grad_(True)
    ours = so.gumbel_step_logp(so.kept_log_probs(a, ids, mask, 0.8), z, mask)
    theirs = _independent_gumbel_logp(b, kept, 0.8, z)
    assert torch.allclose(ours, theirs, atol=1e-12)
    ours.sum().backward()
    theirs.sum().backward()
    assert torch.allclose(a.grad, b.grad, atol=1e-12) and a.grad.abs().sum() > 0


def test_gaussian_step_logp_matches_an_independent_density_in_value_and_gradient():
    gen = torch.Generator().manual_seed(2)
    logits = torch.randn(2, 6, dtype=D64, generator=gen)
    table = torch.randn(6, 4, dtype=D64, generator=gen)
    ids = torch.tensor([[0, 1, 4], [5, 2, 3]])
    mask = torch.tensor([[True, True, True], [True, True, False]])
    fed = torch.randn(2, 4, dtype=D64, generator=gen)
    sigma = 0.7

    def ours(lg, emb):
        probs = so.kept_log_probs(lg, ids, mask, 1.0).exp()
        return so.gaussian_step_logp(fed, mixture_embedding(probs, emb[ids]), sigma)

    def theirs(lg, emb):
        out = []
        for r in range(2):
            k = ids[r][mask[r]]
            p = torch.softmax(lg[r], -1)[k]
            mean = (p / p.sum()) @ emb[k]
            normal = torch.distributions.Normal(mean, sigma)
            out.append(normal.log_prob(fed[r]).sum() + 0.5 * 4 * math.log(2 * math.pi * sigma**2))
        return torch.stack(out)

    la, ea = logits.clone().requires_grad_(True), table.clone().requires_grad_(True)
    lb, eb = logits.clone().requires_grad_(True), table.clone().requires_grad_(True)
    va, vb = ours(la, ea), theirs(lb, eb)
    assert torch.allclose(va, vb, atol=1e-12)
    va.sum().backward()
    vb.sum().backward()
    assert torch.allclose(la.grad, lb.grad, atol=1e-12) and torch.allclose(ea.grad, eb.grad, atol=1e-12)


def test_finite_difference_gradients():
    gen = torch.Generator().manual_seed(3)
    logits = (torch.randn(2, 5, dtype=D64, generator=gen) * 0.3).requires_grad_(True)
    ids = torch.tensor([[0, 1, 2], [3, 1, 0]])
    mask = torch.tensor([[True, True, True], [True, True, False]])
    with torch.no_grad():
        z = so.kept_log_probs(logits, ids, mask, 1.0) + 0.2
    z = torch.where(mask, z, torch.zeros_like(z))
    fn = lambda lg: so.gumbel_step_logp(so.kept_log_probs(lg, ids, mask, 1.0), z, mask)
    assert torch.autograd.gradcheck(fn, (logits,))
    mean = torch.randn(2, 3, dtype=D64, generator=gen, requires_grad=True)
    fed = torch.randn(2, 3, dtype=D64, generator=gen)
    assert torch.autograd.gradcheck(lambda m: so.gaussian_step_logp(fed, m, 0.3), (mean,))
