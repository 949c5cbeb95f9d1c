"""Token-selection maths of the RL recipes, as pure functions on ``(batch, completion_length)`` tensors.

``mask`` is always the 0/1 mask of real completion tokens; padding is never selected. ``advantages`` may be
``(B,)``, ``(B, 1)`` or ``(B, T)``. The trainer (`softthink.rl.trainer`) only wires these into trl's seams.
Which tokens are forking (the mask and the batch entropy statistics) is defined once, in
`softthink.analysis.forking`.

Sections: the selections and penalties of the forking / Clip-Cov / KL-Cov recipes (per micro-batch), their
batch-level versions (``scope="batch"``: statistics over the whole optimiser batch, so the selected tokens do not
depend on how gradient accumulation splits it), the GPPO / CE-GPPO surrogate, the entropy-shaped advantage, and
the per-step diagnostics (Cov(log pi, A), token counts, entropy percentiles).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import torch

from softthink.analysis.forking import high_entropy_mask, high_entropy_masks
from softthink.errors import SoftthinkConfigError, unknown_name_message


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


# ------------------------------------------------------------------------------------ batch-level selection

SELECTION_SCOPES = ("micro_batch", "batch")
"""Where the forking quantile and the Clip-Cov / KL-Cov statistics are taken: each micro-batch on its own (trl's,
verl's and the reference code's behaviour), or the whole optimiser batch (the papers' batch-level threshold)."""

Batch = Sequence[torch.Tensor] | torch.Tensor


def check_selection_scope(scope: str) -> str:
    """``scope`` if it is one of `SELECTION_SCOPES`, else a `SoftthinkConfigError` naming ``selection``."""
    if scope not in SELECTION_SCOPES:
        raise SoftthinkConfigError(
            "selection: "
            + unknown_name_message("selection scope", str(scope), SELECTION_SCOPES)
            + " 'batch' takes the statistics over the whole optimiser batch.",
            param="selection",
            value=scope,
        )
    return scope


def split_micro_batches(batch: Batch, split_sizes: Sequence[int] | None = None) -> list[torch.Tensor]:
    """A list of ``(B_i, T_i)`` micro-batch tensors: ``batch`` itself when it is a list, else the rows of a flat
    ``(B, T)`` tensor split by ``split_sizes`` (rows per micro-batch; one micro-batch when None)."""
    if not isinstance(batch, torch.Tensor):
        return list(batch)
    if split_sizes is None:
        return [batch]
    if sum(split_sizes) != batch.shape[0] or any(n < 1 for n in split_sizes):
        raise SoftthinkConfigError(
            f"split_sizes {list(split_sizes)} must be positive and add up to the batch's {batch.shape[0]} rows.",
            param="split_sizes",
            value=list(split_sizes),
        )
    return list(torch.split(batch, list(split_sizes), dim=0))


def _valid_flat(tensors: list[torch.Tensor], masks: list[torch.Tensor]) -> torch.Tensor:
    """The valid entries of every micro-batch in canonical order (sequence by sequence, position by position):
    the same vector however the batch is split into micro-batches or padded."""
    return torch.cat([t.detach()[m.bool()].float() for t, m in zip(tensors, masks)])


def _unflatten(flat: torch.Tensor, masks: list[torch.Tensor]) -> list[torch.Tensor]:
    out, start = [], 0
    for m in masks:
        valid = m.bool()
        sel = torch.zeros_like(valid)
        n = int(valid.sum())
        sel[valid] = flat[start : start + n]
        out.append(sel)
        start += n
    return out


def _expand_all(advantages: list[torch.Tensor], like: list[torch.Tensor]) -> list[torch.Tensor]:
    return [_expand(a, x) for a, x in zip(advantages, like)]


def forking_masks_scoped(
    entropies: Batch,
    masks: Batch,
    top_fraction: float,
    *,
    scope: str = "batch",
    split_sizes: Sequence[int] | None = None,
) -> list[torch.Tensor]:
    """Forking masks per micro-batch (`high_entropy_mask`'s rule), with the ``1 - top_fraction`` quantile taken
    per micro-batch (``scope="micro_batch"``) or over all valid tokens of the batch (``scope="batch"``)."""
    check_selection_scope(scope)
    ents, ms = split_micro_batches(entropies, split_sizes), split_micro_batches(masks, split_sizes)
    if scope == "micro_batch":
        return [high_entropy_mask(e, m, top_fraction) for e, m in zip(ents, ms)]
    return high_entropy_masks(ents, ms, top_fraction)


def batch_centred_covariance(
    advantages: Batch, logps: Batch, masks: Batch, *, split_sizes: Sequence[int] | None = None
) -> list[torch.Tensor]:
    """`centred_covariance` per micro-batch, with the means of A and log p taken over the whole batch."""
    lps, ms = split_micro_batches(logps, split_sizes), split_micro_batches(masks, split_sizes)
    advs = _expand_all(split_micro_batches(advantages, split_sizes), lps)
    adv_mean, lp_mean = _valid_flat(advs, ms).mean(), _valid_flat(lps, ms).mean()
    return [
        ((a.detach().float() - adv_mean) * (lp.detach().float() - lp_mean)).masked_fill(~m.bool(), 0.0)
        for a, lp, m in zip(advs, lps, ms)
    ]


def clip_cov_masks(
    advantages: Batch,
    logps: Batch,
    masks: Batch,
    fraction: float,
    low: float,
    high: float,
    *,
    scope: str = "batch",
    exclude: Batch | None = None,
    seed: int = 0,
    split_sizes: Sequence[int] | None = None,
) -> list[torch.Tensor]:
    """Clip-Cov's token sets per micro-batch. ``scope="micro_batch"``: `clip_cov_selection` on each micro-batch
    (its own covariance means and budget). ``scope="batch"``: covariance centred on the batch means, the band
    ``low < cov < high`` and the budget ``max(1, int(fraction * n_valid))`` over the whole batch, and a uniform
    sample drawn (with ``seed``) over the candidates in canonical order, so it does not depend on the split."""
    check_selection_scope(scope)
    lps, ms = split_micro_batches(logps, split_sizes), split_micro_batches(masks, split_sizes)
    advs = split_micro_batches(advantages, split_sizes)
    excl = split_micro_batches(exclude, split_sizes) if exclude is not None else None
    generator = torch.Generator().manual_seed(seed)
    if scope == "micro_batch":
        return [
            clip_cov_selection(
                centred_covariance(a, lp, m),
                m,
                fraction,
                low,
                high,
                exclude=excl[i] if excl is not None else None,
                generator=generator,
            )
            for i, (a, lp, m) in enumerate(zip(advs, lps, ms))
        ]
    cov = _valid_flat(batch_centred_covariance(advs, lps, ms), ms)
    candidates = (cov > low) & (cov < high)
    if excl is not None:
        candidates &= ~_valid_flat(excl, ms).bool()
    chosen = torch.zeros_like(candidates)
    idx = candidates.nonzero(as_tuple=True)[0]
    if idx.numel():
        budget = max(int(fraction * cov.numel()), 1)
        chosen[idx[torch.randperm(idx.numel(), generator=generator).to(idx.device)[:budget]]] = True
    return _unflatten(chosen, ms)


def kl_cov_masks(
    advantages: Batch,
    logps: Batch,
    masks: Batch,
    fraction: float,
    *,
    scope: str = "batch",
    split_sizes: Sequence[int] | None = None,
) -> list[torch.Tensor]:
    """KL-Cov's token sets per micro-batch: the ``max(1, int(fraction * n_valid))`` largest covariances of each
    micro-batch (``scope="micro_batch"``, `kl_cov_selection`), or of the whole batch with batch means
    (``scope="batch"``; ties go to the earlier token in canonical order)."""
    check_selection_scope(scope)
    lps, ms = split_micro_batches(logps, split_sizes), split_micro_batches(masks, split_sizes)
    advs = split_micro_batches(advantages, split_sizes)
    if scope == "micro_batch":
        return [kl_cov_selection(centred_covariance(a, lp, m), m, fraction) for a, lp, m in zip(advs, lps, ms)]
    cov = _valid_flat(batch_centred_covariance(advs, lps, ms), ms)
    chosen = torch.zeros(cov.shape, dtype=torch.bool, device=cov.device)
    if cov.numel():
        k = max(int(fraction * cov.numel()), 1)
        chosen[torch.sort(cov, descending=True, stable=True).indices[:k]] = True
    return _unflatten(chosen, ms)


# ----------------------------------------------------------------------------------------------- GPPO / CE-GPPO


@dataclass(frozen=True)
class GPPOParams:
    """Clip range and clipped-token gradient weights of GPPO (Klear-Reasoner, arXiv 2508.07629) and CE-GPPO
    (arXiv 2509.20712).

    ``epsilon_low`` / ``epsilon_high``: the clip-higher range [1 - eps_low, 1 + eps_high], 0.2 / 0.28 as in
    Klear-Reasoner (DAPO's clip-higher values). ``beta1``: weight of the gradient of low-clipped tokens (negative
    advantage, r < 1 - eps_low); ``beta2``: of high-clipped tokens (positive advantage, r > 1 + eps_high).
    ``beta1 = beta2 = 1`` is GPPO; CE-GPPO tunes them (beta1 < 1 slows the push away from tokens already made
    rare, i.e. weaker exploitation). 0 and 0 give back clip-higher PPO's zero gradient.
    """

    epsilon_low: float = 0.2
    epsilon_high: float = 0.28
    beta1: float = 1.0
    beta2: float = 1.0

    def __post_init__(self) -> None:
        if not (math.isfinite(self.epsilon_low) and 0.0 <= self.epsilon_low < 1.0):
            raise SoftthinkConfigError(
                f"gppo epsilon_low must be in [0, 1), got {self.epsilon_low}: the ratio is "
                "clipped below at 1 - epsilon_low. Klear-Reasoner uses 0.2.",
                param="epsilon_low",
                value=self.epsilon_low,
            )
        if not (math.isfinite(self.epsilon_high) and self.epsilon_high >= 0.0):
            raise SoftthinkConfigError(
                f"gppo epsilon_high must be a finite number >= 0, got {self.epsilon_high}. Klear-Reasoner uses 0.28.",
                param="epsilon_high",
                value=self.epsilon_high,
            )
        for name in ("beta1", "beta2"):
            value = getattr(self, name)
            if not (math.isfinite(value) and value >= 0.0):
                raise SoftthinkConfigError(
                    f"gppo {name} must be a finite number >= 0, got {value}: it scales the "
                    "gradient of clipped tokens (1 = GPPO, 0 = plain clipping).",
                    param=name,
                    value=value,
                )


def ppo_clip_regions(
    ratio: torch.Tensor, advantages: torch.Tensor, epsilon_low: float, epsilon_high: float
) -> tuple[torch.Tensor, torch.Tensor]:
    """``(low_clipped, high_clipped)``: tokens where PPO's ``min`` takes the clipped branch and the gradient is
    zero: ``A < 0`` and ``r < 1 - eps_low``, ``A > 0`` and ``r > 1 + eps_high`` (together `ppo_clipped_tokens`)."""
    adv = _expand(advantages.detach(), ratio)
    r = ratio.detach()
    return (adv < 0) & (r < 1 - epsilon_low), (adv > 0) & (r > 1 + epsilon_high)


def gppo_token_loss(
    logps: torch.Tensor, old_logps: torch.Tensor, advantages: torch.Tensor, params: GPPOParams = GPPOParams()
) -> torch.Tensor:
    """Per-token GPPO / CE-GPPO loss (to be minimised; aggregate it with `TokenNormalizer`).

    Forward value: clip-higher PPO's ``-min(r A, clip(r, 1 - eps_low, 1 + eps_high) A)``, so logged losses compare
    with PPO's. Gradient: PPO's on unclipped tokens; on clipped tokens, instead of 0, the unclipped surrogate's
    gradient ``A grad r`` times ``beta1 (1 - eps_low) / sg(r)`` (low-clipped) or ``beta2 (1 + eps_high) / sg(r)``
    (high-clipped), i.e. ``beta (1 -/+ eps) A grad log p``. It is built as
    ``c A (1 + beta (r / sg(r) - 1))`` with ``c = 1 -/+ eps``: the bracket is 1 in value and ``beta grad r / r`` in
    gradient. (CE-GPPO writes the clipped term as ``beta c A r / sg(r)``, whose value is ``beta c A``; the
    gradient is the same.)
    """
    ratio = torch.exp(logps - old_logps.detach())
    adv = _expand(advantages.detach().to(ratio.dtype), ratio)
    low, high = ppo_clip_regions(ratio, adv, params.epsilon_low, params.epsilon_high)
    unit = ratio / ratio.detach()  # 1 in value, grad r / r in gradient
    ppo = torch.minimum(ratio * adv, torch.clamp(ratio, 1 - params.epsilon_low, 1 + params.epsilon_high) * adv)
    low_term = (1 - params.epsilon_low) * adv * (1 + params.beta1 * (unit - 1))
    high_term = (1 + params.epsilon_high) * adv * (1 + params.beta2 * (unit - 1))
    return -torch.where(low, low_term, torch.where(high, high_term, ppo))


# -------------------------------------------------------------------------------------- entropy-shaped advantage

ENTROPY_ADVANTAGE_ALPHA = 0.4
"""alpha of arXiv 2506.14758 (weight of the detached entropy in the advantage)."""
ENTROPY_ADVANTAGE_KAPPA = 2.0
"""kappa of arXiv 2506.14758: the entropy term is capped at |A| / kappa, so it never flips the advantage's sign."""


def check_entropy_advantage(alpha: float, kappa: float) -> None:
    """`SoftthinkConfigError` unless ``alpha >= 0`` and ``kappa > 0`` (both finite)."""
    if not (math.isfinite(alpha) and alpha >= 0):
        raise SoftthinkConfigError(
            f"entropy_advantage alpha must be a finite number >= 0, got {alpha}. The paper "
            f"uses {ENTROPY_ADVANTAGE_ALPHA}; 0 turns the entropy term off.",
            param="alpha",
            value=alpha,
        )
    if not (math.isfinite(kappa) and kappa > 0):
        raise SoftthinkConfigError(
            f"entropy_advantage kappa must be a finite number > 0, got {kappa}: the entropy "
            f"term is capped at |A| / kappa. The paper uses {ENTROPY_ADVANTAGE_KAPPA}.",
            param="kappa",
            value=kappa,
        )


def entropy_shaped_advantages(
    advantages: torch.Tensor,
    entropies: torch.Tensor,
    *,
    alpha: float = ENTROPY_ADVANTAGE_ALPHA,
    kappa: float = ENTROPY_ADVANTAGE_KAPPA,
) -> torch.Tensor:
    """``A'_t = A_t + min(alpha * H_t.detach(), |A_t| / kappa)`` ("Reasoning with Exploration: An Entropy
    Perspective", arXiv 2506.14758), shape ``(B, T)``. The term is >= 0 and at most ``|A| / kappa``, so with
    ``kappa > 1`` a negative advantage stays negative, and it is 0 where ``A = 0`` (no reward signal).
    No gradient flows through the entropy."""
    check_entropy_advantage(alpha, kappa)
    adv = _expand(advantages.detach().float(), entropies)
    return adv + torch.minimum(alpha * entropies.detach().float(), adv.abs() / kappa)


# ----------------------------------------------------------------------------------------- per-step diagnostics


def cov_logp_advantage(
    logps: Batch, advantages: Batch, masks: Batch, *, split_sizes: Sequence[int] | None = None
) -> float:
    """Cov(log pi, A) over the valid tokens of the batch: the mean of `centred_covariance` (population
    covariance, batch means). NaN without valid tokens."""
    ms = split_micro_batches(masks, split_sizes)
    cov = _valid_flat(batch_centred_covariance(advantages, logps, masks, split_sizes=split_sizes), ms)
    return cov.mean().item() if cov.numel() else float("nan")


def token_counts(selected: Batch, masks: Batch, *, split_sizes: Sequence[int] | None = None) -> dict[str, float]:
    """``{"n_valid", "n_selected", "fraction"}`` of a selection (forking, detached, penalised or clipped tokens)
    over the batch; padding never counts."""
    ms = split_micro_batches(masks, split_sizes)
    n_sel = int(sum((s.bool() & m.bool()).sum() for s, m in zip(split_micro_batches(selected, split_sizes), ms)))
    n_valid = int(sum(m.bool().sum() for m in ms))
    return {"n_valid": n_valid, "n_selected": n_sel, "fraction": n_sel / n_valid if n_valid else float("nan")}


def entropy_percentiles(
    entropies: Batch,
    masks: Batch,
    percentiles: Sequence[float] = (10, 25, 50, 75, 90, 99),
    *,
    split_sizes: Sequence[int] | None = None,
) -> dict[float, float]:
    """``{p: value}`` percentiles (linear interpolation, as numpy's default) of the valid entropies (nats)."""
    bad = [p for p in percentiles if not 0 <= p <= 100]
    if bad:
        raise SoftthinkConfigError(f"percentiles must be in [0, 100], got {bad}.", param="percentiles", value=bad)
    values = _valid_flat(split_micro_batches(entropies, split_sizes), split_micro_batches(masks, split_sizes))
    if values.numel() == 0:
        return {p: float("nan") for p in percentiles}
    q = torch.quantile(values.double(), torch.tensor([p / 100 for p in percentiles], dtype=torch.float64))
    return dict(zip(percentiles, q.tolist()))


def penalty_is_inactive(logps: torch.Tensor, old_logps: torch.Tensor, selected: torch.Tensor) -> bool:
    """True when KL-Cov's ``|log p - log p_old|`` is 0 on every selected token, so the penalty and its gradient
    vanish: what happens with one optimisation pass per rollout (log p_old is log p detached). The trainer should
    warn once and point to ``num_iterations > 1`` or ``steps_per_generation > gradient_accumulation_steps``."""
    sel = selected.bool()
    return not bool(sel.any()) or bool(((logps.detach() - old_logps.detach())[sel] == 0).all())
