"""Truncation filters and sampling shared by every decode rule.

softmax(logits / T) -> top-k -> top-p -> min-p -> keep at most ``max_keep`` -> renormalise.
Each filter keeps a prefix of the tokens sorted by probability, so one ``topk`` call of the final width suffices;
no full-vocabulary sort happens unless a filter needs the whole tail (sampling with top-p and no top-k).
Each filter acts on the distribution renormalised over what the previous filters kept: top-p is measured on the
top-k renormalised distribution; min-p is a ratio to the top-1 probability, so it is unaffected by renormalising.
"""

from __future__ import annotations

import torch

from softthink.decoding.randomness import GLOBAL_RANDOMNESS, Randomness


def truncate_sorted(
    probs: torch.Tensor, *, top_k: int = 0, top_p: float = 1.0, min_p: float = 0.0, max_keep: int | None = None
) -> tuple[torch.Tensor, torch.Tensor]:
    """Filter a batch of distributions and return the kept tokens, most likely first.

    Args:
        probs: ``[batch, vocab]`` probabilities (float32, rows summing to 1).
        top_k: keep the ``top_k`` most likely tokens; 0 disables.
        top_p: keep the smallest prefix whose renormalised mass reaches ``top_p``; 1.0 disables.
        min_p: keep tokens with probability >= ``min_p`` x the top-1 probability; 0 disables.
        max_keep: finally keep at most this many tokens (Soft Thinking's ``max_topk``); None = no cap.

    Returns:
        ``(ids, weights)``, both ``[batch, K]``: token ids sorted by probability and their renormalised weights,
        0 for tokens that a filter dropped. The top-1 token is always kept. The input is not modified.
    """
    vocab = probs.shape[-1]
    top_k = min(top_k, vocab) if top_k else 0
    width = min(vocab, max_keep or vocab, top_k or vocab)
    # One sorted topk serves both the kept prefix and the top-k mass (top-p is measured on the top-k
    # renormalised distribution).
    values, ids = probs.topk(max(width, top_k), dim=-1, sorted=True)
    topk_mass = (values if top_k else probs).sum(-1, keepdim=True)
    values, ids = values[:, :width], ids[:, :width]
    # Both filters keep a prefix that always includes the top-1 token (its mass before is 0 < top_p, and it is
    # >= min_p x itself for min_p < 1), so no explicit "keep the top-1" step is needed. Each compares unnormalised
    # values against a threshold scaled by the top-k mass: the same test as on the renormalised distribution.
    keep = None
    if top_p < 1.0:
        keep = values.cumsum(-1) - values < top_p * topk_mass
    if min_p > 0.0:
        above = values >= min_p * values[:, :1]
        keep = above if keep is None else keep & above
    weights = values if keep is None else values * keep
    return ids, weights / weights.sum(-1, keepdim=True)


def sample_columns(weights: torch.Tensor, random: Randomness = GLOBAL_RANDOMNESS) -> torch.Tensor:
    """Draw one column index per row from ``[batch, K]`` weights."""
    return random.multinomial(weights)


def gumbel_softmax_weights(weights: torch.Tensor, tau: float, random: Randomness = GLOBAL_RANDOMNESS) -> torch.Tensor:
    """Gumbel-softmax over the kept tokens: ``softmax((log w + g) / tau)``, g ~ Gumbel(0, 1); dropped stay 0."""
    uniform = random.uniform_like(weights).clamp_(min=1e-20, max=1.0 - 1e-7)
    gumbel = -torch.log(-torch.log(uniform))
    logits = (weights.log() + gumbel) / tau  # log 0 = -inf keeps dropped tokens at weight 0
    return torch.softmax(logits, dim=-1)


def dirichlet_weights(weights: torch.Tensor, alpha: float, random: Randomness = GLOBAL_RANDOMNESS) -> torch.Tensor:
    """Dirichlet resampling of the kept tokens' weights: ``w' ~ Dir(alpha * w)``; dropped tokens stay 0.

    Larger ``alpha`` concentrates ``w'`` around ``w`` (its mean); small ``alpha`` gives sparse, noisy mixtures.
    """
    kept = weights > 0
    concentration = torch.where(kept, alpha * weights, torch.ones_like(weights))
    draws = random.standard_gamma(concentration) * kept
    total = draws.sum(-1, keepdim=True)
    # A row whose draws all underflow to 0 keeps its top-1 token: Dir(alpha * w) puts its mass there in that limit.
    fallback = torch.zeros_like(weights)
    fallback[:, 0] = 1.0
    return torch.where(total > 0, draws / total.clamp_min(torch.finfo(draws.dtype).tiny), fallback)
