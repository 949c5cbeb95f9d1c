"""Token-selection maths of the RL recipes, as pure functions on ``(batch, completion_length)`` tensors.

``mask`` is always the 0/1 mask of real completion tokens; padding is never selected. ``advantages`` may be
``(B,)``, ``(B, 1)`` or ``(B, T)``. The trainer (`softthink.rl.trainer`) only wires these into trl's seams.
Which tokens are forking (the mask and the batch entropy statistics) is defined once, in
`softthink.analysis.forking`.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch


def selected_token_weights(selected: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Float weights ``n_valid / n_selected`` on selected tokens, 0 elsewhere.

    Multiplying token losses by these weights turns any "sum over tokens / number of valid tokens" normaliser into
    "sum over selected tokens / number of selected tokens": the forking recipe's selected-token normalisation.
    """
    selected = selected.bool() & mask.bool()
    n_selected = selected.sum()
    if n_selected == 0:
        return torch.zeros(selected.shape, dtype=torch.float32, device=selected.device)
    scale = mask.bool().sum().float() / n_selected.float()
    return selected.float() * scale


def _expand(advantages: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
    if advantages.dim() == 1:
        advantages = advantages.unsqueeze(1)
    return advantages.expand_as(like)


def centred_covariance(advantages: torch.Tensor, logps: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Per-token centred covariance term ``(A_t - mean A) * (log p_t - mean log p)``, means over valid tokens.

    This is the quantity whose batch mean drives the entropy change (Cui et al., 2025, Eq. for Cov(log pi, A)).
    Detached; padded positions are 0.
    """
    valid = mask.bool()
    adv = _expand(advantages.detach().float(), logps)
    lp = logps.detach().float()
    count = valid.sum().clamp(min=1)
    adv_mean = adv[valid].sum() / count
    lp_mean = lp[valid].sum() / count
    cov = (adv - adv_mean) * (lp - lp_mean)
    return cov.masked_fill(~valid, 0.0)


def ppo_clipped_tokens(
    ratio: torch.Tensor, advantages: torch.Tensor, epsilon_low: float, epsilon_high: float
) -> torch.Tensor:
    """Tokens whose PPO surrogate is already clipped: ``-A * clip(r) > -A * r`` (no gradient flows there)."""
    adv = _expand(advantages.detach(), ratio)
    r = ratio.detach()
    return (-adv * torch.clamp(r, 1 - epsilon_low, 1 + epsilon_high)) > (-adv * r)


def clip_cov_selection(
    cov: torch.Tensor,
    mask: torch.Tensor,
    fraction: float,
    low: float,
    high: float,
    *,
    exclude: torch.Tensor | None = None,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """Clip-Cov's token set: a uniformly random sample of ``max(1, int(fraction * n_valid))`` tokens among the valid
    ones with ``low < cov < high`` (and not in ``exclude``, e.g. tokens the PPO clip already silences).

    Fewer are returned when the band holds fewer candidates.
    """
    valid = mask.bool()
    candidates = valid & (cov > low) & (cov < high)
    if exclude is not None:
        candidates &= ~exclude.bool()
    selected = torch.zeros_like(valid)
    idx = candidates.flatten().nonzero(as_tuple=True)[0]
    if idx.numel() == 0:
        return selected
    budget = max(int(fraction * int(valid.sum())), 1)
    perm = torch.randperm(idx.numel(), generator=generator, device="cpu").to(idx.device)
    selected.view(-1)[idx[perm[:budget]]] = True
    return selected


def kl_cov_selection(cov: torch.Tensor, mask: torch.Tensor, fraction: float) -> torch.Tensor:
    """KL-Cov's token set: the ``max(1, int(fraction * n_valid))`` valid tokens with the largest covariance."""
    valid = mask.bool()
    n_valid = int(valid.sum())
    selected = torch.zeros_like(valid)
    if n_valid == 0:
        return selected
    k = max(int(fraction * n_valid), 1)
    scores = cov.masked_fill(~valid, float("-inf")).flatten()
    selected.view(-1)[torch.topk(scores, k).indices] = True
    return selected


def detach_selected(logps: torch.Tensor, selected: torch.Tensor) -> torch.Tensor:
    """``logps`` whose selected entries are detached: same values, no gradient through them (Clip-Cov)."""
    return torch.where(selected.bool(), logps.detach(), logps)


def kl_cov_penalty(logps: torch.Tensor, old_logps: torch.Tensor, selected: torch.Tensor, coef: float) -> torch.Tensor:
    """Per-token KL-Cov penalty ``coef * |log p - log p_old|`` on selected tokens, 0 elsewhere (to be minimised)."""
    return coef * (logps - old_logps.detach()).abs() * selected.float()


@dataclass(frozen=True)
class TokenNormalizer:
    """How trl aggregates a ``(B, T)`` token loss into the scalar it back-propagates, for one micro-batch.

    ``loss_type`` is one of "grpo" (mean per sequence, then over sequences), "bnpo" (mean over the micro-batch's
    tokens), "dr_grpo" (sum / (B * max_completion_length)), "dapo" (sum / ``dapo_denominator``, trl's token count of
    the accumulation window). ``accumulation_steps`` divides the first three, as in trl.
    """

    loss_type: str
    accumulation_steps: float = 1.0
    max_completion_length: int | None = None
    dapo_denominator: float | None = None

    def __call__(self, per_token: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        m = mask.to(per_token.dtype)
        if self.loss_type == "grpo":
            value = ((per_token * m).sum(-1) / m.sum(-1).clamp(min=1.0)).mean()
        elif self.loss_type == "bnpo":
            value = (per_token * m).sum() / m.sum().clamp(min=1.0)
        elif self.loss_type == "dr_grpo":
            value = (per_token * m).sum() / (per_token.size(0) * self.max_completion_length)
        elif self.loss_type == "dapo":
            return (per_token * m).sum() / self.dapo_denominator
        else:
            raise ValueError(f"TokenNormalizer does not know loss_type {self.loss_type!r}")
        return value / self.accumulation_steps
