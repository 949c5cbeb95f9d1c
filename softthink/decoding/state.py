"""Per-row state of the decode loop.

Device tensors (what the model needs) live in `ActiveBatch`; its `select` is the only place that shrinks the
batch when rows finish, so finished rows stop costing compute. Per-row bookkeeping that the loop reads on the
host every step (phase, counters, the generated tokens) lives in `RowRecord`, one per original prompt.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol

import torch


class BatchSelectableCache(Protocol):
    """A KV cache that can keep a subset of its rows (transformers' `Cache` classes, e.g. `DynamicCache`)."""

    def batch_select_indices(self, indices: torch.Tensor) -> None: ...


@dataclass
class ActiveBatch:
    """The rows still generating: model inputs, KV cache and the rule's per-row state.

    Attributes:
        rows: ``[b]`` index of each active row in the original batch.
        attention_mask: ``[b, past + 1]`` mask over the cache plus the token about to be fed.
        next_position: ``[b]`` position id of the next fed token.
        cache: the model's KV cache (batch dimension = active rows).
        rule_state: per-row tensors of the decode rules.
    """

    rows: torch.Tensor
    attention_mask: torch.Tensor
    next_position: torch.Tensor
    cache: BatchSelectableCache
    rule_state: dict[str, torch.Tensor] = field(default_factory=dict)

    def select(self, keep: torch.Tensor) -> None:
        """Keep only the rows at positions ``keep`` (a 1-D index tensor), everywhere at once."""
        self.rows = self.rows[keep]
        self.attention_mask = self.attention_mask[keep]
        self.next_position = self.next_position[keep]
        self.cache.batch_select_indices(keep)
        self.rule_state = {name: value[keep] for name, value in self.rule_state.items()}


@dataclass
class RowRecord:
    """Host-side record of one prompt's generation, filled step by step."""

    thinking: bool
    token_ids: list[int] = field(default_factory=list)
    entropy: list[float] = field(default_factory=list)
    soft: list[bool] = field(default_factory=list)
    in_thinking: list[bool] = field(default_factory=list)
    think_content: int = 0
    """Thinking steps so far, not counting injected marker tokens (what the budget counts)."""
    low_entropy_run: int = 0
    """Consecutive low-entropy thinking steps (Cold Stop)."""
    forced: list[int] = field(default_factory=list)
    """Marker tokens still to inject, first one next."""
    pending_end_reason: str | None = None
    think_end_reason: str | None = None
    stop_reason: str | None = None
    answer_start: int = 0
    """Index of the first answer token in ``token_ids``."""

    @property
    def finished(self) -> bool:
        return self.stop_reason is not None
