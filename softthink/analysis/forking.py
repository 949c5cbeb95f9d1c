"""Forking tokens (the high-entropy minority) and their statistics: the one definition of "forking" in softthink.

"Forking" tokens are the few high-entropy tokens where a reasoning path can branch; the rest are "execution"
tokens. By default they are the top 20% of tokens by entropy (`DEFAULT_QUANTILE`). "Beyond the 80/20 Rule"
reports an 80th percentile of 0.672 nats for Qwen3-8B on its own chains of thought (`FORKING_ENTROPY_NATS`): the
fixed threshold the decode modes (``gated``, ``forking_temperature``) and the RL logs use where no data is at hand.
Analysis computes the threshold from the data unless one is given.

Two selections, for two jobs, both here:

- corpus analysis (`forking_mask`, `forking_masks`, `entropy_stats`, numpy): exactly ``round(quantile * n)``
  tokens of a pooled corpus, ties broken by position, so counts are exact whatever the ties;
- RL batches (`high_entropy_mask`, `batch_entropy_stats`, torch): trl's ``GRPOTrainer.get_high_entropy_mask`` rule
  (tokens ``>=`` the linearly interpolated ``1 - quantile`` quantile of the valid entropies), so that what the
  RL logs call forking is exactly what the forking recipe trained.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
import torch

from softthink.analysis.records import TokenEntropies, as_records, pooled_entropies
from softthink.errors import SoftthinkConfigError, SoftthinkInputError

DEFAULT_QUANTILE = 0.2
"""Share of tokens called forking when no threshold is given (the top 20%)."""
FORKING_ENTROPY_NATS = 0.672
"""Entropy (nats) above which the 80/20 paper counts a token as forking: the 80th percentile of Qwen3-8B's CoT
tokens. The default threshold of the decode modes that gate on forks and of the RL entropy logs."""
LOW_ENTROPY = 0.01
"""Nats below which a token counts as (nearly) deterministic in `EntropyStats.share_below_low`."""
DEFAULT_PERCENTILES = (10, 25, 50, 75, 80, 90, 95, 99)


# ------------------------------------------------------------------------------------------------------- masks


def resolve_selection(
    quantile: float | None = None, threshold: float | None = None
) -> tuple[float | None, float | None]:
    """Validated ``(quantile, threshold)``: exactly one is set; neither given means the top 20%."""
    if threshold is not None and quantile is not None:
        raise SoftthinkConfigError(
            f"give either quantile ({quantile}) or threshold ({threshold}), not both: the quantile picks the top "
            "share of tokens, the threshold picks tokens above a fixed entropy.",
            param="threshold",
            value=threshold,
        )
    if threshold is None:
        quantile = DEFAULT_QUANTILE if quantile is None else quantile
        if not 0.0 < quantile < 1.0:
            raise SoftthinkConfigError(
                f"quantile must be in (0, 1), got {quantile}. Use 0.2 for the top 20% of tokens.",
                param="quantile",
                value=quantile,
            )
    elif not (math.isfinite(threshold) and threshold >= 0):
        raise SoftthinkConfigError(
            f"threshold must be a finite entropy >= 0 nats, got {threshold}.", param="threshold", value=threshold
        )
    return quantile, threshold


def forking_threshold(entropies, quantile: float = DEFAULT_QUANTILE) -> float:
    """The entropy above which the top ``quantile`` of tokens lie: the ``100 * (1 - quantile)``-th percentile.

    ``entropies``: records, one record, or an array (pooled). With the default 0.2 this is the 80th percentile.
    """
    resolved, _ = resolve_selection(quantile)
    assert resolved is not None, "without a threshold, resolve_selection returns a quantile"
    values = pooled_entropies(entropies)
    if values.size == 0:
        raise SoftthinkInputError("cannot compute a forking threshold from zero tokens.")
    return float(np.percentile(values, 100.0 * (1.0 - resolved)))


def forking_mask(entropies, *, quantile: float | None = None, threshold: float | None = None) -> np.ndarray:
    """Boolean mask of forking tokens over a flat array of entropies.

    With ``threshold``: tokens whose entropy is strictly above it.
    With ``quantile`` (default 0.2 when neither is given): exactly ``round(quantile * n)`` tokens (half rounded
    up), those of highest entropy; ties at the boundary go to the earlier position, so the count is exact whatever
    the ties.
    """
    quantile, threshold = resolve_selection(quantile, threshold)
    values = pooled_entropies(entropies)
    if threshold is not None:
        return values > threshold
    assert quantile is not None, "resolve_selection returns a quantile when there is no threshold"
    k = int(math.floor(quantile * values.size + 0.5))
    mask = np.zeros(values.size, dtype=bool)
    if k:
        mask[np.argsort(-values, kind="stable")[:k]] = True
    return mask


def forking_masks(
    items: Sequence[TokenEntropies], *, quantile: float | None = None, threshold: float | None = None
) -> list[np.ndarray]:
    """Per-record forking masks, with the quantile taken over all records pooled (one corpus-wide threshold)."""
    items = as_records(items)
    flat = forking_mask(pooled_entropies(items), quantile=quantile, threshold=threshold)
    return np.split(flat, np.cumsum([len(it) for it in items])[:-1]) if items else []


# ------------------------------------------------------------------------------------------------------- stats


@dataclass
class EntropyStats:
    """Summary of the token entropies of a corpus (all entropies in nats).

    Attributes:
        n_tokens: tokens counted.
        n_texts: records they came from.
        mean, std: of the entropies.
        share_below_low: share of tokens with entropy below ``low`` (0.01 nats by default).
        low: that cut-off.
        percentiles: ``{p: value}`` for p in ``DEFAULT_PERCENTILES`` (keys are ints; 80 is always there).
        p80: the 80th percentile (the default forking threshold).
        quantile / threshold: how forking tokens were chosen (one of the two is None when not used).
        forking_threshold: the threshold, or in quantile mode the ``100 * (1 - quantile)``-th percentile.
        n_forking: forking tokens.
        forking_mass_share: share of the total entropy held by the forking tokens.
        top_mass_share: share of the total entropy held by the top 20% of tokens (whatever the selection).
        forking_words / execution_words: most frequent token strings among forking / execution tokens,
            as ``(word, count)``, most frequent first.
    """

    n_tokens: int
    n_texts: int
    mean: float
    std: float
    share_below_low: float
    low: float
    percentiles: dict[int, float]
    p80: float
    quantile: float | None
    threshold: float | None
    forking_threshold: float
    n_forking: int
    forking_mass_share: float
    top_mass_share: float
    forking_words: list[tuple[str, int]] = field(default_factory=list)
    execution_words: list[tuple[str, int]] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        """JSON-able dict (percentile keys become strings)."""
        d = asdict(self)
        d["percentiles"] = {str(k): v for k, v in self.percentiles.items()}
        d["forking_words"] = [list(w) for w in self.forking_words]
        d["execution_words"] = [list(w) for w in self.execution_words]
        return d

    def format_table(self, words: int = 15) -> str:
        """A plain-text report: numbers first, then the forking and execution words side by side."""
        how = (
            f"top {self.quantile:.0%} of tokens" if self.quantile is not None else f"entropy > {self.threshold:g} nats"
        )
        rows = [
            ("tokens", f"{self.n_tokens} in {self.n_texts} text(s)"),
            ("mean entropy", f"{self.mean:.4f} nats (std {self.std:.4f})"),
            (f"share below {self.low:g} nats", f"{self.share_below_low:.1%}"),
            ("percentiles (nats)", "  ".join(f"p{k}={v:.3f}" for k, v in self.percentiles.items())),
            ("80th percentile", f"{self.p80:.4f} nats"),
            ("forking tokens", f"{self.n_forking} ({how}; threshold {self.forking_threshold:.4f} nats)"),
            ("entropy mass at forking", f"{self.forking_mass_share:.1%}"),
            ("entropy mass in top 20%", f"{self.top_mass_share:.1%}"),
        ]
        lines = [f"{label:<26}{value}" for label, value in rows] + [
            "",
            f"{'forking words':<28}{'count':>6}    {'execution words':<28}{'count':>6}",
        ]
        for i in range(min(words, max(len(self.forking_words), len(self.execution_words)))):
            left = self.forking_words[i] if i < len(self.forking_words) else ("", "")
            right = self.execution_words[i] if i < len(self.execution_words) else ("", "")
            lines.append(f"{left[0][:27]:<28}{left[1]!s:>6}    {right[0][:27]:<28}{right[1]!s:>6}")
        return "\n".join(lines)


def display_word(token: str) -> str:
    """A token string as a word to count: surrounding spaces stripped; blank tokens shown by a visible sign."""
    word = token.strip()
    if word:
        return word
    if "\n" in token:
        return "\u23ce" * token.count("\n")  # ⏎
    return "\u2423" if token else "\u2205"  # ␣ for spaces, ∅ for an empty string


def entropy_stats(
    items: Sequence[TokenEntropies] | TokenEntropies,
    *,
    quantile: float | None = None,
    threshold: float | None = None,
    low: float = LOW_ENTROPY,
    percentiles: Sequence[int] = DEFAULT_PERCENTILES,
    top_words: int = 20,
) -> EntropyStats:
    """Corpus statistics of token entropy, with forking tokens chosen by ``quantile`` or ``threshold``."""
    items = as_records(items)
    values = pooled_entropies(items)
    if values.size == 0:
        raise SoftthinkInputError("no tokens to summarise: every record is empty.")
    quantile, threshold = resolve_selection(quantile, threshold)
    mask = forking_mask(values, quantile=quantile, threshold=threshold)
    if threshold is None:
        assert quantile is not None, "resolve_selection returns a quantile when there is no threshold"
        threshold_used = float(np.percentile(values, 100 * (1 - quantile)))
    else:
        threshold_used = float(threshold)
    total = float(values.sum())
    top = forking_mask(values, quantile=0.2)
    pcts = sorted(set(int(p) for p in percentiles) | {80})
    words = [display_word(tok) for it in items for tok in it.tokens]
    fork_words = Counter(w for w, m in zip(words, mask) if m)
    exec_words = Counter(w for w, m in zip(words, mask) if not m)
    return EntropyStats(
        n_tokens=int(values.size),
        n_texts=len(items),
        mean=float(values.mean()),
        std=float(values.std()),
        share_below_low=float((values < low).mean()),
        low=low,
        percentiles={p: float(np.percentile(values, p)) for p in pcts},
        p80=float(np.percentile(values, 80)),
        quantile=quantile,
        threshold=threshold,
        forking_threshold=threshold_used,
        n_forking=int(mask.sum()),
        forking_mass_share=float(values[mask].sum() / total) if total > 0 else 0.0,
        top_mass_share=float(values[top].sum() / total) if total > 0 else 0.0,
        forking_words=fork_words.most_common(top_words),
        execution_words=exec_words.most_common(top_words),
    )


# ------------------------------------------------------------------------------------------- RL batches (torch)


def high_entropy_mask(entropies: torch.Tensor, mask: torch.Tensor, top_fraction: float) -> torch.Tensor:
    """Boolean mask of the top ``top_fraction`` of valid tokens by entropy (the forking tokens of an RL batch).

    Same rule as trl's ``GRPOTrainer.get_high_entropy_mask``: the threshold is the ``1 - top_fraction`` quantile
    of the valid entropies (linear interpolation), and a token is selected when its entropy is ``>=`` it.
    ``mask`` is the 0/1 mask of real tokens; padding is never selected and does not move the threshold.
    """
    return high_entropy_masks([entropies], [mask], top_fraction)[0]


def high_entropy_masks(
    entropies: Sequence[torch.Tensor], masks: Sequence[torch.Tensor], top_fraction: float
) -> list[torch.Tensor]:
    """`high_entropy_mask`'s rule with one threshold pooled over the valid tokens of several tensors (e.g. the
    micro-batches of one optimiser batch, which may differ in length); one mask per tensor."""
    valid = [m.bool() for m in masks]
    values = torch.cat([e.detach()[v].float() for e, v in zip(entropies, valid)])
    if values.numel() == 0:
        return [torch.zeros_like(v) for v in valid]
    threshold = torch.quantile(values, 1.0 - top_fraction)
    return [(e.detach() >= threshold) & v for e, v in zip(entropies, valid)]


@dataclass(frozen=True)
class BatchEntropyStats:
    """Entropy summary of one batch of completion tokens (nats), as the RL dynamics log it."""

    mean_all: float
    mean_forking: float
    mean_execution: float
    frac_above: float
    forking_threshold: float


def batch_entropy_stats(
    entropies: torch.Tensor,
    mask: torch.Tensor,
    top_fraction: float = DEFAULT_QUANTILE,
    threshold_nats: float = FORKING_ENTROPY_NATS,
) -> BatchEntropyStats | None:
    """Mean entropy of all / forking (top ``top_fraction``, `high_entropy_mask`) / execution (the rest) tokens,
    and the fraction of tokens above ``threshold_nats``. ``None`` when there is no valid token."""
    valid = mask.bool()
    values = entropies.detach()[valid].float()
    if values.numel() == 0:
        return None
    forking = high_entropy_mask(entropies, mask, top_fraction)[valid]
    execution = ~forking
    nan = float("nan")
    return BatchEntropyStats(
        mean_all=values.mean().item(),
        mean_forking=values[forking].mean().item() if forking.any() else nan,
        mean_execution=values[execution].mean().item() if execution.any() else nan,
        frac_above=(values > threshold_nats).float().mean().item(),
        forking_threshold=torch.quantile(values, 1.0 - top_fraction).item(),
    )
