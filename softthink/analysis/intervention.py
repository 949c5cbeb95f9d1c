"""Token suppression during decoding: a logit mask on the model's output head, for any softthink decode mode.

`suppress_tokens` registers a forward hook on ``model.get_output_embeddings()`` that pushes the logits of the
given token ids to `SUPPRESSED_LOGIT` (probability exactly 0 after the softmax), so every decode rule, greedy or
sampled, discrete or soft, sees a distribution without them; softthink's decoder is not touched. The token sets of
the suppression experiment (``experiments/suppression.py``) are built here too: the most frequent forking token
types of a corpus (`top_forking_token_ids`) and an equally large, frequency-matched random control set
(`random_token_ids`). Reflection words come from `softthink.analysis.reflection`.

Typical use::

    from softthink.analysis.intervention import suppress_tokens
    with suppress_tokens(model, [tok.convert_tokens_to_ids("ĠWait")]):
        gens = softthink.generate(model, prompts, tokenizer=tok, mode="soft")
"""

from __future__ import annotations

import contextlib
from collections import Counter
from collections.abc import Iterable, Iterator, Sequence

import numpy as np
import torch

from softthink.analysis.forking import forking_masks
from softthink.analysis.records import TokenEntropies, as_records
from softthink.errors import SoftthinkConfigError, SoftthinkInputError

SUPPRESSED_LOGIT = -1e9
"""Logit given to suppressed tokens (clamped to the dtype's most negative value): finite, so the decoder's
non-finite checks stay meaningful, and far enough below any real logit that its probability is exactly 0."""


def output_vocab_size(model) -> int:
    """Number of logits the model's output head produces (its vocabulary as the decoder sees it)."""
    head = model.get_output_embeddings() if hasattr(model, "get_output_embeddings") else None
    if head is None:
        raise SoftthinkInputError(
            f"{type(model).__name__} has no output embeddings (get_output_embeddings() is "
            "None), so its logits cannot be masked. Use a causal LM with an LM head."
        )
    weight = getattr(head, "weight", None)
    if weight is None:
        raise SoftthinkInputError(f"the output head {type(head).__name__} has no weight; cannot tell its vocabulary.")
    return int(weight.shape[0])


def check_token_ids(token_ids: Iterable[int], vocab_size: int, *, param: str = "token_ids") -> list[int]:
    """Sorted unique ids, each in ``[0, vocab_size)``; a `SoftthinkConfigError` naming ``param`` otherwise."""
    ids = sorted({int(t) for t in token_ids})
    if not ids:
        raise SoftthinkConfigError(
            f"{param} is empty: give at least one token id to suppress (or do not enter "
            "suppress_tokens for the no-suppression baseline).",
            param=param,
            value=ids,
        )
    bad = [t for t in ids if not 0 <= t < vocab_size]
    if bad:
        raise SoftthinkConfigError(
            f"{param} holds ids outside the model's vocabulary [0, {vocab_size}): {bad[:10]}. "
            "Map words to ids with this model's tokenizer.",
            param=param,
            value=bad,
        )
    return ids


@contextlib.contextmanager
def suppress_tokens(model, token_ids: Iterable[int]) -> Iterator[list[int]]:
    """Within the ``with`` block, the model's logits of ``token_ids`` are `SUPPRESSED_LOGIT` (probability 0).

    Works for every decode mode because it acts on the output head's forward pass, the one place the decoder
    gets logits from. The hook is removed on exit, also on error. Yields the sorted, validated ids.
    """
    ids = check_token_ids(token_ids, output_vocab_size(model))
    head = model.get_output_embeddings()
    index = torch.tensor(ids, dtype=torch.long, device=head.weight.device)

    def mask(module, inputs, output: torch.Tensor) -> torch.Tensor:
        value = max(SUPPRESSED_LOGIT, torch.finfo(output.dtype).min)
        return output.index_fill(-1, index.to(output.device), value)

    handle = head.register_forward_hook(mask)
    try:
        yield ids
    finally:
        handle.remove()


def mask_logits(logits: torch.Tensor, token_ids: Sequence[int]) -> torch.Tensor:
    """``logits`` with ``token_ids`` set to ``-inf`` on the last dimension (a copy): the reference for the hook."""
    out = logits.clone()
    out[..., list(token_ids)] = float("-inf")
    return out


# ------------------------------------------------------------------------------------------------ token sets


def token_counts(items: Sequence[TokenEntropies]) -> Counter:
    """How often each token id occurs in the records."""
    return Counter(t for it in as_records(items) for t in it.token_ids)


def top_forking_token_ids(
    items: Sequence[TokenEntropies],
    k: int,
    *,
    quantile: float | None = None,
    threshold: float | None = None,
    exclude: Iterable[int] = (),
    by: str = "count",
    min_count: int = 20,
) -> list[int]:
    """The ``k`` token ids most characteristic of forking tokens in ``items`` (forking: `forking_masks`, the top
    ``quantile`` of the pooled entropies, 20% by default); ties broken by the larger count, then the lower id.

    ``by="count"``: most often forking (frequent tokens dominate). ``by="rate"``: largest share of their
    occurrences that are forking, among ids seen at least ``min_count`` times (the types that are forks whenever
    they occur). ``exclude``: ids never returned (special tokens, the think marker). Fewer than ``k`` come back
    when fewer distinct ids qualify.
    """
    if k < 1:
        raise SoftthinkConfigError(
            f"k must be >= 1, got {k}: the number of forking token types to return.", param="k", value=k
        )
    if by not in ("count", "rate"):
        raise SoftthinkConfigError(f"by must be 'count' or 'rate', got {by!r}.", param="by", value=by)
    items = as_records(items)
    masks = forking_masks(items, quantile=quantile, threshold=threshold)
    skip = {int(t) for t in exclude}
    forks = Counter(t for it, m in zip(items, masks) for t, f in zip(it.token_ids, m) if f and t not in skip)
    if by == "count":
        return [t for t, _ in sorted(forks.items(), key=lambda kv: (-kv[1], kv[0]))[:k]]
    totals = token_counts(items)
    rates = {t: n / totals[t] for t, n in forks.items() if totals[t] >= min_count}
    return [t for t, _ in sorted(rates.items(), key=lambda kv: (-kv[1], -forks[kv[0]], kv[0]))[:k]]


def random_token_ids(
    targets: Sequence[int],
    vocab_size: int,
    *,
    seed: int = 0,
    counts: Counter | None = None,
    exclude: Iterable[int] = (),
) -> list[int]:
    """A random control set as large as ``targets``, disjoint from it and from ``exclude``; seeded.

    With ``counts`` (token frequencies of a corpus, `token_counts`) it is frequency-matched: for each target, in
    order, the unused candidate whose corpus count is closest to the target's (ties broken at random) — so the
    control suppresses tokens the model uses about as often. Without ``counts``: uniform over the vocabulary.
    """
    targets = [int(t) for t in targets]
    if not targets:
        raise SoftthinkConfigError(
            "targets is empty: the random set matches a non-empty target set.", param="targets", value=targets
        )
    banned = set(targets) | {int(t) for t in exclude}
    candidates = np.array([t for t in range(vocab_size) if t not in banned])
    if candidates.size < len(targets):
        raise SoftthinkConfigError(
            f"only {candidates.size} token ids are left outside the {len(targets)} targets "
            "and the excluded ids; cannot draw an equally large random set.",
            param="targets",
            value=len(targets),
        )
    rng = np.random.default_rng(seed)
    if counts is None:
        return sorted(int(t) for t in rng.choice(candidates, size=len(targets), replace=False))
    freq = np.array([counts.get(int(t), 0) for t in candidates], dtype=float)
    available = np.ones(candidates.size, dtype=bool)
    chosen = []
    for target in targets:
        gap = np.abs(freq - counts.get(target, 0))
        gap[~available] = np.inf
        closest = np.flatnonzero(gap == gap.min())
        pick = int(rng.choice(closest))
        available[pick] = False
        chosen.append(int(candidates[pick]))
    return sorted(chosen)
