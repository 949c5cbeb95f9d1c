"""`TokenEntropies`: the one record every analysis function takes — tokens of one text and their entropies."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

from softthink.errors import SoftthinkInputError


@dataclass
class TokenEntropies:
    """Scored tokens of one text and the entropy (nats) of the distribution each was drawn from.

    ``entropies[i]`` is the entropy of the next-token distribution at the position that predicts
    ``token_ids[i]`` (teacher-forced), or of the distribution the decoder sampled ``token_ids[i]`` from
    (generation traces). The three lists are aligned and have the same length.

    Attributes:
        token_ids: the scored tokens.
        tokens: their strings, each decoded on its own (``" world"``, ``"\\n"``), for display.
        entropies: entropy in nats of each token's distribution.
        text: the scored text (the completion when a prompt was given), if known.
        prompt: the context that was given but not scored, if any.
        source: ``"teacher_forced"`` or ``"generation"``.
        truncated: whether the text was cut to ``max_length`` tokens before scoring.
        soft: per token, whether the decoder took a soft (concept) step there (generations only).
        thinking: per token, whether it lies in the thinking phase (generations only).
    """

    token_ids: list[int]
    tokens: list[str]
    entropies: list[float]
    text: str | None = None
    prompt: str | None = None
    source: str = "teacher_forced"
    truncated: bool = False
    soft: list[bool] | None = None
    thinking: list[bool] | None = None
    meta: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        n = len(self.token_ids)
        lengths = {"tokens": len(self.tokens), "entropies": len(self.entropies)}
        if self.soft is not None:
            lengths["soft"] = len(self.soft)
        if self.thinking is not None:
            lengths["thinking"] = len(self.thinking)
        bad = {k: v for k, v in lengths.items() if v != n}
        if bad:
            raise SoftthinkInputError(
                f"TokenEntropies lists must be aligned: token_ids has {n} entries but {bad}. "
                "Build each list from the same sequence of scored tokens."
            )

    def __len__(self) -> int:
        return len(self.token_ids)

    def array(self) -> np.ndarray:
        """The entropies as a float64 numpy array."""
        return np.asarray(self.entropies, dtype=np.float64)

    def to_dict(self) -> dict[str, Any]:
        """A JSON-able dict (the inverse of ``TokenEntropies(**d)``)."""
        return asdict(self)


def pooled_entropies(items: Sequence[TokenEntropies] | TokenEntropies | Sequence[float] | np.ndarray) -> np.ndarray:
    """All entropies of one record, of many records (concatenated in order), or of a plain array, as float64."""
    if isinstance(items, TokenEntropies):
        return items.array()
    if isinstance(items, np.ndarray):
        return items.astype(np.float64).ravel()
    seq = list(items)
    if seq and isinstance(seq[0], TokenEntropies):
        return np.concatenate([it.array() for it in as_records(seq)])
    return np.asarray(seq, dtype=np.float64).ravel()


def as_records(items: Sequence[object] | TokenEntropies) -> list[TokenEntropies]:
    """One record or a sequence of records, as a list of records; anything else in ``items`` raises."""
    if isinstance(items, TokenEntropies):
        return [items]
    records = []
    for i, it in enumerate(items):
        if not isinstance(it, TokenEntropies):
            raise SoftthinkInputError(
                f"expected TokenEntropies records, got {type(it).__name__} at index {i}. Get records from "
                "softthink.analysis.token_entropies(...) or softthink.analysis.from_generation(...)."
            )
        records.append(it)
    return records
