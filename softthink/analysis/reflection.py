"""Reflection ("thinking") tokens: words such as Wait, Hmm, Therefore, So, But that open a reflective step.

`reflection_token_ids` maps a configurable word list to this tokenizer's single-token ids, with and without a
leading space (``"Wait"`` after a newline, ``" Wait"`` inside a line, as BPE vocabularies spell them); a word the
tokenizer splits into several pieces cannot be marked token by token and is listed in ``skipped``.
`reflection_masks` marks those tokens in `TokenEntropies` records, teacher-forced or read from generation traces
(`softthink.analysis.from_generation`; generations themselves are accepted too). `compare_reflection` sets their
entropy against the other forking tokens and the execution tokens.

Information peaks (arXiv 2506.02867): the paper estimates the mutual information between each step's hidden
representation and the gold answer's (HSIC over many samples) and finds peaks at thinking tokens. The tractable
proxy here, `answer_information_gain`, is the pointwise conditional mutual information between each response
token and the gold answer under the model itself: ``g_t = log p(answer | x_<=t) - log p(answer | x_<t)`` (nats),
the gold answer's token ids teacher-forced after each prefix. It costs one batched pass of ``prefix + answer``
per scored position (O(T^2) tokens for a T-token response; ``stride`` scores every k-th position).
`information_peaks` marks tokens whose gain is ``z`` standard deviations above the trace's mean gain.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

from softthink.analysis.forking import forking_masks
from softthink.analysis.records import TokenEntropies, as_records
from softthink.errors import SoftthinkConfigError, SoftthinkInputError

DEFAULT_REFLECTION_WORDS = (
    "Wait",
    "Hmm",
    "Therefore",
    "So",
    "But",
    "However",
    "Alternatively",
    "Actually",
    "Thus",
    "Hence",
    "Maybe",
    "Perhaps",
    "Let",
    "Check",
    "Verify",
    "Again",
)
"""Words that open a reflective or connective step in chains of thought (the thinking tokens of arXiv 2506.02867
and the pivotal/reflective tokens of arXiv 2506.14758), capitalised as they start a sentence."""


@dataclass(frozen=True)
class ReflectionTokens:
    """The single-token ids of a reflection word list under one tokenizer.

    Attributes:
        ids: ``{token_id: word}`` for every spelling that is one token.
        words: the word list asked for.
        skipped: words none of whose spellings is a single token (not marked).
    """

    ids: dict[int, str]
    words: tuple[str, ...]
    skipped: tuple[str, ...] = ()

    def __contains__(self, token_id: int) -> bool:
        return int(token_id) in self.ids

    def __len__(self) -> int:
        return len(self.ids)


def check_words(words: Sequence[str]) -> tuple[str, ...]:
    """Validated word list: non-empty, every entry a non-blank string."""
    if isinstance(words, str):
        raise SoftthinkConfigError(
            f"words must be a list of words, got the string {words!r}. Write [{words!r}].", param="words", value=words
        )
    words = tuple(words)
    if not words:
        raise SoftthinkConfigError(
            "words is empty: give at least one reflection word, e.g. ['Wait', 'Hmm'], or use DEFAULT_REFLECTION_WORDS.",
            param="words",
            value=words,
        )
    bad = [w for w in words if not isinstance(w, str) or not w.strip()]
    if bad:
        raise SoftthinkConfigError(f"words must be non-blank strings, got {bad!r}.", param="words", value=bad)
    return tuple(w.strip() for w in words)


def reflection_token_ids(
    tokenizer, words: Sequence[str] = DEFAULT_REFLECTION_WORDS, *, leading_space: bool = True
) -> ReflectionTokens:
    """The ids of ``words`` that ``tokenizer`` writes as one token: ``word`` and, with ``leading_space``, ``" word"``.

    Raises `SoftthinkConfigError` for an empty list, or when no word is a single token in this vocabulary (then
    nothing could be marked or suppressed).
    """
    words = check_words(words)
    ids: dict[int, str] = {}
    skipped = []
    for word in words:
        spellings = (word, " " + word) if leading_space else (word,)
        found = False
        for spelling in spellings:
            pieces = tokenizer.encode(spelling, add_special_tokens=False)
            if len(pieces) == 1 and pieces[0] != getattr(tokenizer, "unk_token_id", None):
                ids.setdefault(int(pieces[0]), word)
                found = True
        if not found:
            skipped.append(word)
    if not ids:
        raise SoftthinkConfigError(
            f"none of the words {list(words)} is a single token of this tokenizer "
            f"({type(tokenizer).__name__}, vocabulary {len(tokenizer)}), so there is nothing to mark. Give words "
            "from its vocabulary (tokenizer.convert_ids_to_tokens shows them).",
            param="words",
            value=list(words),
        )
    return ReflectionTokens(ids=ids, words=words, skipped=tuple(skipped))


def _records(items: Any) -> list[TokenEntropies]:
    if isinstance(items, TokenEntropies):
        return [items]
    items = list(items)
    if items and not isinstance(items[0], TokenEntropies):
        from softthink.analysis.from_generation import from_generations

        return from_generations(items)
    return as_records(items)


def reflection_masks(items: Any, tokens: ReflectionTokens) -> list[np.ndarray]:
    """Per record, a boolean mask of its reflection tokens. ``items``: `TokenEntropies` records (teacher-forced
    or from traces) or generations made with ``trace=True``."""
    ids = set(tokens.ids)
    return [np.array([t in ids for t in it.token_ids], dtype=bool) for it in _records(items)]


@dataclass
class ReflectionComparison:
    """Entropy (nats) of reflection tokens vs the other forking tokens vs execution tokens.

    ``groups[name]`` holds ``n``, ``mean``, ``median``, ``ci_low``/``ci_high`` (bootstrap 95% CI of the mean,
    ``n_boot`` resamples, seeded) for "reflection", "other_forking" (forking, not reflection) and "execution"
    (neither). ``reflection_forking_share``: share of reflection tokens that are forking tokens;
    ``forking_threshold``: how forking was chosen (``quantile`` or ``threshold``).
    """

    groups: dict[str, dict[str, float]]
    reflection_forking_share: float
    quantile: float | None
    threshold: float | None
    words: dict[str, int] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {
            "groups": self.groups,
            "reflection_forking_share": self.reflection_forking_share,
            "quantile": self.quantile,
            "threshold": self.threshold,
            "words": self.words,
        }


def _summary(values: np.ndarray, rng: np.random.Generator, n_boot: int) -> dict[str, float]:
    nan = float("nan")
    if values.size == 0:
        return {"n": 0, "mean": nan, "median": nan, "ci_low": nan, "ci_high": nan}
    boot = values[rng.integers(0, values.size, size=(n_boot, values.size))].mean(axis=1)
    return {
        "n": int(values.size),
        "mean": float(values.mean()),
        "median": float(np.median(values)),
        "ci_low": float(np.quantile(boot, 0.025)),
        "ci_high": float(np.quantile(boot, 0.975)),
    }


def compare_reflection(
    items: Any,
    tokens: ReflectionTokens,
    *,
    quantile: float | None = None,
    threshold: float | None = None,
    n_boot: int = 2000,
    seed: int = 0,
) -> ReflectionComparison:
    """Entropy of reflection vs other forking vs execution tokens; forking as in `forking_masks` (top 20% of
    the pooled entropies by default, or above ``threshold``)."""
    records = _records(items)
    if not any(len(r) for r in records):
        raise SoftthinkInputError("no tokens to compare: every record is empty.")
    entropies = np.concatenate([r.array() for r in records])
    fork = np.concatenate(forking_masks(records, quantile=quantile, threshold=threshold))
    refl = np.concatenate(reflection_masks(records, tokens))
    rng = np.random.default_rng(seed)
    groups = {
        "reflection": _summary(entropies[refl], rng, n_boot),
        "other_forking": _summary(entropies[fork & ~refl], rng, n_boot),
        "execution": _summary(entropies[~fork & ~refl], rng, n_boot),
    }
    words: dict[str, int] = {}
    for t in (t for r in records for t in r.token_ids if t in tokens.ids):
        words[tokens.ids[t]] = words.get(tokens.ids[t], 0) + 1
    share = float(fork[refl].mean()) if refl.any() else float("nan")
    return ReflectionComparison(
        groups=groups,
        reflection_forking_share=share,
        quantile=quantile,
        threshold=threshold,
        words=dict(sorted(words.items(), key=lambda kv: -kv[1])),
    )


# ------------------------------------------------------------------------------------------ information peaks


def _answer_log_likelihoods(model, prefixes: list[list[int]], answer: list[int], batch_size: int) -> list[float]:
    """log p(answer | prefix) for each prefix, the answer teacher-forced (right padding, batched)."""
    device = model.get_input_embeddings().weight.device
    out: list[float] = []
    for lo in range(0, len(prefixes), batch_size):
        rows = [p + answer for p in prefixes[lo : lo + batch_size]]
        width = max(len(r) for r in rows)
        ids = torch.zeros(len(rows), width, dtype=torch.long)
        attn = torch.zeros(len(rows), width, dtype=torch.long)
        for i, r in enumerate(rows):
            ids[i, : len(r)], attn[i, : len(r)] = torch.tensor(r), 1
        with torch.no_grad():
            logp = torch.log_softmax(
                model(input_ids=ids.to(device), attention_mask=attn.to(device)).logits.double(), -1
            )
        for i, p in enumerate(prefixes[lo : lo + batch_size]):
            pos = torch.arange(len(p) - 1, len(p) - 1 + len(answer), device=logp.device)
            out.append(float(logp[i, pos, torch.tensor(answer, device=logp.device)].sum()))
    return out


def answer_information_gain(
    model, token_ids: Sequence[int], answer_ids: Sequence[int], *, start: int, stride: int = 1, batch_size: int = 16
) -> np.ndarray:
    """``g_t = log p(answer | x_<=t) - log p(answer | x_<t)`` for each response position ``t >= start`` of
    ``token_ids`` (prompt + response; NaN at positions skipped by ``stride``; the first scored position is
    compared with the prompt alone). With ``stride = k`` the gain at a scored ``t`` is that of the k tokens ending
    at ``t``. ``answer_ids``: the gold answer's tokens (e.g. ``tok.encode(" 42", add_special_tokens=False)``)."""
    ids, answer = [int(t) for t in token_ids], [int(t) for t in answer_ids]
    if not answer:
        raise SoftthinkConfigError(
            "answer_ids is empty: give the gold answer's token ids.", param="answer_ids", value=answer
        )
    if not 1 <= start < len(ids):
        raise SoftthinkInputError(
            f"start={start} must be in [1, {len(ids)}): the response starts after a non-empty "
            "prompt and inside the trace."
        )
    if stride < 1 or batch_size < 1:
        raise SoftthinkConfigError(
            f"stride and batch_size must be >= 1, got {stride} and {batch_size}.",
            param="stride" if stride < 1 else "batch_size",
            value=min(stride, batch_size),
        )
    scored = list(range(start, len(ids), stride))
    cuts = sorted(set(scored) | {t - stride if t - stride >= start else start - 1 for t in scored})
    ll = dict(zip(cuts, _answer_log_likelihoods(model, [ids[: c + 1] for c in cuts], answer, batch_size)))
    gains = np.full(len(ids) - start, np.nan)
    for t in scored:
        before = t - stride if t - stride >= start else start - 1
        gains[t - start] = ll[t] - ll[before]
    return gains


def information_peaks(gains: np.ndarray, z: float = 2.0) -> np.ndarray:
    """Tokens whose information gain is more than ``z`` standard deviations above the mean (NaNs ignored)."""
    gains = np.asarray(gains, dtype=float)
    finite = gains[np.isfinite(gains)]
    if finite.size < 2:
        return np.zeros(gains.shape, dtype=bool)
    with np.errstate(invalid="ignore"):
        return gains > finite.mean() + z * finite.std()
