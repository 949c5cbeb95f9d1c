"""The per-step log-probabilities of soft-thinking policies, as pure tensor functions.

A soft step feeds the model a concept token built from the ``K`` kept tokens of the step's distribution (ids
``kept``, most likely first, ``kept_mask`` marking the real ones). The training forward recomputes the step's
logits; these functions turn them into the log-probability of what the rollout did at that step, so that the
PPO ratio ``exp(log pi_theta - log pi_old)`` and the policy gradient can be taken as for discrete tokens.

Notation: ``p~_theta,i = softmax(logits / T)_i / sum_{j kept} softmax(logits / T)_j`` is the policy's distribution
renormalised over the kept tokens (the weights the rollout mixed before noise, at ``theta = theta_old``).

SofT-GRPO (Zheng & Lee, arXiv 2511.06411; the authors' verl code, ``verl/utils/torch_functional.py``
``logprobs_from_logits_topk_gumbel``, read at github.com/zz1358m/SofT-GRPO-master): the rollout perturbs the kept
log-probabilities with Gumbel noise, ``z_i = log p~_old,i + g_i`` with ``g_i ~ Gumbel(0, 1)``, and feeds
``y = softmax(z / tau)`` (Gumbel-softmax at temperature ``tau``). The action is ``z``; under ``theta`` its noise is
``eps_i = z_i - log p~_theta,i`` and its log-density ``sum_i -eps_i - exp(-eps_i)`` (the Gumbel(0, 1) density: the
reparameterisation gives credit to the perturbed probabilities through ``p~_theta``). As in the authors' code the
step's log-probability is

    log pi_theta(step) = mean_{i in M} [ -e_i - exp(-e_i) ],   e_i = clamp(z_i - log p~_theta,i, -1.5, 3),
    M = {kept i : log p~_theta,i > -3}   (all kept tokens when that set is empty),

a *mean* over the kept tokens with non-negligible probability, with the noise clamped to [-1.5, 3] (the code's
constants, `GUMBEL_CLAMP`, `GUMBEL_LOGP_FLOOR`). Two differences from that code, both stated: softthink's rollout
does not add the code's ``1e-6`` inside the log nor clamp the noise it draws (so at ``theta = theta_old``
``e = clamp(g)``); the mask ``M`` uses the current ``p~_theta`` (as the code does), detached.

"Soft Tokens, Hard Truths" (Butt et al., arXiv 2509.19170): the rollout feeds ``h = mu_old + sigma * n`` with
``n ~ N(0, I)`` and ``mu_theta = sum_i p~_theta,i e_i`` (``e_i`` the input embeddings). The step's log-probability
is the Gaussian log-density ``log N(h; mu_theta, sigma^2 I) = -||h - mu_theta||^2 / (2 sigma^2) + c``; the constant
``c = -(D/2) log(2 pi sigma^2)`` cancels in every ratio and gradient and is left out. Its "hard" variant feeds
``h = e_x + sigma n`` for a sampled token ``x``: the joint log-density of ``(x, h)`` is
``log p~_theta,x + log N(h; e_x, sigma^2 I)``.

Mixture width (logged): for fed weights ``y`` over the kept tokens, ``exp(H(y))`` with ``H(y) = -sum y log y`` (the
effective number of mixed tokens: 1 for a one-hot input, K for a uniform one), and the count of weights > 1e-3.
"""

from __future__ import annotations

import torch

GUMBEL_CLAMP = (-1.5, 3.0)
"""The range SofT-GRPO's code clamps the reconstructed Gumbel noise to before taking its log-density."""

GUMBEL_LOGP_FLOOR = -3.0
"""SofT-GRPO's code averages the Gumbel log-density over kept tokens with ``log p~_theta > -3`` only."""

WIDTH_THRESHOLD = 1e-3
"""A kept token counts towards ``mixture_kept`` when its fed weight exceeds this."""


def kept_log_probs(logits: torch.Tensor, kept_ids: torch.Tensor, kept_mask: torch.Tensor, temperature) -> torch.Tensor:
    """``log p~_theta``: ``log_softmax(logits / T)`` at ``kept_ids``, renormalised over the kept tokens.

    Args:
        logits: ``[..., V]`` raw logits.
        kept_ids: ``[..., K]`` token ids (padding columns may hold any id).
        kept_mask: ``[..., K]`` bool, the real kept tokens (at least one per row that is used).
        temperature: a float or a tensor broadcastable to ``[..., 1]``.

    Returns:
        ``[..., K]``; ``-inf`` at padding columns.
    """
    logp = torch.log_softmax(logits / temperature, dim=-1).gather(-1, kept_ids)
    logp = logp.masked_fill(~kept_mask, float("-inf"))
    return logp - torch.logsumexp(logp, dim=-1, keepdim=True)


def gumbel_perturbed_logits(weights: torch.Tensor, uniforms: torch.Tensor) -> torch.Tensor:
    """``z = log w + g``, ``g = -log(-log u)``: the perturbed log-weights of softthink's Gumbel-softmax noise
    (`softthink.decoding.processors.gumbel_softmax_weights`, whose fed weights are ``softmax(z / tau)``), from the
    pre-noise weights ``w`` and the (already clamped) uniform draws ``u`` it used. ``-inf`` where ``w = 0``."""
    return weights.log() - torch.log(-torch.log(uniforms))


def gumbel_step_logp(kept_logp: torch.Tensor, perturbed: torch.Tensor, kept_mask: torch.Tensor) -> torch.Tensor:
    """SofT-GRPO's log-probability of a soft step (module docstring): the mean Gumbel log-density of the clamped
    noise ``z - log p~_theta`` over the kept tokens with ``log p~_theta > GUMBEL_LOGP_FLOOR``.

    Args:
        kept_logp: ``[..., K]`` ``log p~_theta`` (`kept_log_probs`), carries the gradient.
        perturbed: ``[..., K]`` the rollout's ``z`` (any finite value at padding columns).
        kept_mask: ``[..., K]`` bool.

    Returns:
        ``[...]``. Rows with no kept token give 0 (they are never soft steps).
    """
    low, high = GUMBEL_CLAMP
    finite = torch.where(kept_mask, kept_logp, torch.zeros_like(kept_logp))
    noise = (torch.where(kept_mask, perturbed, torch.zeros_like(perturbed)) - finite).clamp(low, high)
    density = -noise - torch.exp(-noise)
    counted = kept_mask & (finite.detach() > GUMBEL_LOGP_FLOOR)
    counted = torch.where(counted.any(-1, keepdim=True), counted, kept_mask)
    weight = counted.to(density.dtype)
    return (density * weight).sum(-1) / weight.sum(-1).clamp(min=1.0)


def gaussian_step_logp(fed: torch.Tensor, mean: torch.Tensor, sigma: float) -> torch.Tensor:
    """``log N(fed; mean, sigma^2 I)`` up to its constant: ``-||fed - mean||^2 / (2 sigma^2)`` over the last dim."""
    return -((fed - mean) ** 2).sum(-1) / (2.0 * sigma * sigma)


def mixture_width(weights: torch.Tensor, kept_mask: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Per row of fed weights ``[..., K]``: ``(exp(H(y)), number of weights > WIDTH_THRESHOLD)``."""
    y = torch.where(kept_mask, weights, torch.zeros_like(weights))
    entropy = -(y * torch.log(y.clamp_min(torch.finfo(y.dtype).tiny))).sum(-1)
    return torch.exp(entropy), (y > WIDTH_THRESHOLD).sum(-1).to(y.dtype)
