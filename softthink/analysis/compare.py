"""Compare two models' token entropies on the same texts (e.g. a base model and its RL policy).

The claim to test ("Beyond the 80/20 Rule"): RL mostly changes the entropy of the high-entropy forking tokens and
leaves the low-entropy execution tokens nearly as they were. Forking positions are defined under the *base*
model; the comparison reports how the entropy moved at forking vs execution positions and which share of all
the change happened at forking positions (compare it with the share of tokens that are forking, 20% by default).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from softthink.analysis.forking import forking_masks, forking_threshold, resolve_selection
from softthink.analysis.records import TokenEntropies, as_records
from softthink.analysis.teacher_forced import token_entropies
from softthink.errors import SoftthinkInputError


@dataclass
class EntropyComparison:
    """Per-token entropy changes ``other - base`` on the same tokens, split by forking vs execution positions.

    Attributes:
        base, other: the two models' records, aligned text by text and token by token.
        deltas: per text, ``other - base`` entropy per token (nats).
        forking: per text, the forking mask under the base model.
        names: display names of (base, other).
        quantile / threshold: how forking tokens were chosen under the base model.
        forking_threshold: the base model's entropy cut (the percentile in quantile mode).
        n_tokens, n_forking: token counts.
        mean_delta_forking, mean_delta_execution: mean signed change at forking / execution positions.
        mean_abs_delta_forking, mean_abs_delta_execution: mean absolute change at each kind of position.
        forking_share_of_change: sum of |delta| at forking positions / sum of |delta| over all positions.
        forking_token_share: n_forking / n_tokens: the share of the change expected if it were spread evenly.
        forking_overlap: share of the base model's forking positions that are also forking under the other model
            (same quantile, or same threshold).
    """

    base: list[TokenEntropies]
    other: list[TokenEntropies]
    deltas: list[np.ndarray]
    forking: list[np.ndarray]
    names: tuple[str, str]
    quantile: float | None
    threshold: float | None
    forking_threshold: float
    n_tokens: int
    n_forking: int
    mean_delta_forking: float
    mean_delta_execution: float
    mean_abs_delta_forking: float
    mean_abs_delta_execution: float
    forking_share_of_change: float
    forking_token_share: float
    forking_overlap: float

    SUMMARY_FIELDS = (
        "names",
        "quantile",
        "threshold",
        "forking_threshold",
        "n_tokens",
        "n_forking",
        "mean_delta_forking",
        "mean_delta_execution",
        "mean_abs_delta_forking",
        "mean_abs_delta_execution",
        "forking_share_of_change",
        "forking_token_share",
        "forking_overlap",
    )

    def summary(self) -> dict[str, Any]:
        """The summary numbers as a JSON-able dict (no per-token data)."""
        return {
            k: (list(v) if isinstance(v, tuple) else v) for k, v in ((k, getattr(self, k)) for k in self.SUMMARY_FIELDS)
        }

    def format_table(self) -> str:
        """Plain-text summary: how much the entropy moved at forking vs execution positions."""
        base, other = self.names
        return "\n".join(
            [
                f"{other} vs {base}: {self.n_tokens} tokens, {self.n_forking} forking under {base} "
                f"(entropy > {self.forking_threshold:.4f} nats)",
                f"{'':24}{'forking':>12}{'execution':>12}",
                f"{'mean delta (nats)':<24}{self.mean_delta_forking:>12.4f}{self.mean_delta_execution:>12.4f}",
                f"{'mean |delta| (nats)':<24}{self.mean_abs_delta_forking:>12.4f}"
                f"{self.mean_abs_delta_execution:>12.4f}",
                f"share of total |delta| at forking positions: {self.forking_share_of_change:.1%} "
                f"(forking tokens are {self.forking_token_share:.1%} of all tokens)",
                f"forking positions shared by both models: {self.forking_overlap:.1%}",
            ]
        )


def compare_entropies(
    base: Sequence[TokenEntropies],
    other: Sequence[TokenEntropies],
    *,
    quantile: float | None = None,
    threshold: float | None = None,
    names: tuple[str, str] = ("base", "other"),
) -> EntropyComparison:
    """Compare two models' records of the same texts; forking positions are chosen under ``base``."""
    base, other = as_records(base), as_records(other)
    _check_aligned(base, other)
    quantile, threshold = resolve_selection(quantile, threshold)
    fork = forking_masks(base, quantile=quantile, threshold=threshold)
    fork_other = forking_masks(other, quantile=quantile, threshold=threshold)
    deltas = [o.array() - b.array() for b, o in zip(base, other)]
    d = np.concatenate(deltas) if deltas else np.zeros(0)
    f = np.concatenate(fork) if fork else np.zeros(0, dtype=bool)
    if d.size == 0:
        raise SoftthinkInputError("nothing to compare: the records hold no tokens.")
    fo = np.concatenate(fork_other)
    total_change = float(np.abs(d).sum())

    def mean(x: np.ndarray) -> float:
        return float(x.mean()) if x.size else float("nan")

    return EntropyComparison(
        base=base,
        other=other,
        deltas=deltas,
        forking=fork,
        names=tuple(names),
        quantile=quantile,
        threshold=threshold,
        forking_threshold=float(threshold if threshold is not None else forking_threshold(base, quantile)),
        n_tokens=int(d.size),
        n_forking=int(f.sum()),
        mean_delta_forking=mean(d[f]),
        mean_delta_execution=mean(d[~f]),
        mean_abs_delta_forking=mean(np.abs(d[f])),
        mean_abs_delta_execution=mean(np.abs(d[~f])),
        forking_share_of_change=float(np.abs(d[f]).sum() / total_change) if total_change > 0 else float("nan"),
        forking_token_share=float(f.mean()),
        forking_overlap=float((f & fo).sum() / f.sum()) if f.any() else float("nan"),
    )


def compare_models(
    base_model,
    other_model,
    tokenizer,
    texts: str | Sequence[str],
    *,
    prompts: Sequence[str] | None = None,
    quantile: float | None = None,
    threshold: float | None = None,
    names: tuple[str, str] = ("base", "other"),
    **scoring: Any,
) -> EntropyComparison:
    """Score ``texts`` under both models (same tokenizer) with `token_entropies` and compare them.

    ``scoring`` goes to `token_entropies` (batch_size, max_length, chunk_size, method, progress, ...).
    """
    base = token_entropies(base_model, tokenizer, texts, prompts=prompts, **scoring)
    other = token_entropies(other_model, tokenizer, texts, prompts=prompts, **scoring)
    return compare_entropies(base, other, quantile=quantile, threshold=threshold, names=names)


def _check_aligned(base: list[TokenEntropies], other: list[TokenEntropies]) -> None:
    if len(base) != len(other):
        raise SoftthinkInputError(
            f"the two models' records must cover the same texts: got {len(base)} and {len(other)} records."
        )
    for i, (b, o) in enumerate(zip(base, other)):
        if b.token_ids != o.token_ids:
            raise SoftthinkInputError(
                f"text {i} was tokenised differently for the two models ({len(b)} vs {len(o)} tokens). Score both "
                "models with the same tokenizer (models of one family share it)."
            )
