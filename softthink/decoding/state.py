"""Per-row state of the decode loop.

Device tensors (what the model needs) live in `ActiveBatch`; its `select` is the only place that shrinks the
batch when rows finish, so finished rows stop costing compute, and its `refill` the only place that puts a new
prompt into a finished row's slot (continuous batching, see `softthink.decoding.slots`). Per-row bookkeeping that
the loop reads on the host every step (phase, counters, the generated tokens) lives in `RowRecord`, one per
original prompt.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import torch

from softthink.decoding.host import host_tensor

if TYPE_CHECKING:
    from softthink.decoding.kv import RunningKV
    from softthink.decoding.slots import PrefilledRows


@dataclass
class ActiveBatch:
    """The rows still generating: model inputs, KV cache and the rule's per-row state.

    Attributes:
        rows: host-side, the index of each active row in the original batch (a list, so that reading it costs no
            device-to-host copy).
        attention_mask: ``[b, past + 1]`` mask over the cache plus the token about to be fed.
        next_position: ``[b]`` position id of the next fed token.
        cache: the running batch's KV cache (`softthink.decoding.kv`; its rows are the active rows).
        rule_state: per-row tensors of the decode rules.
        lengths: host-side, the unmasked columns of each row (its prompt and the tokens fed so far): every row's
            columns are the last ``lengths[i]`` of the mask, so the leading ``width - max(lengths)`` are padding
            for all rows.
    """

    rows: list[int]
    attention_mask: torch.Tensor
    next_position: torch.Tensor
    cache: RunningKV
    rule_state: dict[str, torch.Tensor] = field(default_factory=dict)
    lengths: list[int] = field(default_factory=list)

    def select(self, keep: list[int]) -> torch.Tensor:
        """Keep only the rows at positions ``keep``, everywhere at once; returns ``keep`` as a device index
        tensor (for the caller's own per-row tensors)."""
        at = host_tensor(keep, device=self.next_position.device)
        self.rows = [self.rows[i] for i in keep]
        self.attention_mask = self.attention_mask[at]
        self.next_position = self.next_position[at]
        self.cache.select(at)
        self.rule_state = {name: value[at] for name, value in self.rule_state.items()}
        self.lengths = [self.lengths[i] for i in keep]
        return at

    def refill(self, slots: list[int], rows: list[int], prefill: SlotPrefill, fresh_state: dict[str, torch.Tensor]):
        """Put new prompts ``rows`` into the positions ``slots``: their prefilled KV (``prefill``) replaces the
        finished rows' there, in place, and the rules' state of those slots starts afresh (``fresh_state``)."""
        width = self.attention_mask.shape[1]
        if prefill.width > width:
            self.cache.grow_left(prefill.width - width)
            self.attention_mask = torch.nn.functional.pad(self.attention_mask, (prefill.width - width, 0))
            width = prefill.width
        at = host_tensor(slots, device=self.next_position.device)
        for slot, row in zip(slots, rows):
            self.rows[slot] = row
        self.next_position[at] = prefill.next_position
        self.attention_mask[at] = 0
        filled = [s for s, p in zip(slots, prefill.prefilled) if p]
        if filled:
            assert prefill.cache is not None and prefill.attention_mask is not None, "prefilled rows have a cache"
            self.cache.place_rows(filled, prefill.cache)
            rows_filled = host_tensor(filled, device=at.device)
            self.attention_mask[rows_filled, width - prefill.width :] = prefill.attention_mask
        empty = [s for s, p in zip(slots, prefill.prefilled) if not p]
        if empty:
            self.cache.clear_rows(empty)
        for name, value in fresh_state.items():
            self.rule_state[name][at] = value
        for s, length in zip(slots, prefill.lengths):
            self.lengths[s] = length

    def trim_padding(self) -> None:
        """Drop the leading columns that every row masks out (free: the cache keeps views until its next update)."""
        unused = self.attention_mask.shape[1] - max(self.lengths)
        if unused > 0:
            self.cache.trim_left(unused)
            self.attention_mask = self.attention_mask[:, unused:]


@dataclass
class SlotPrefill:
    """New prompts prefilled for `ActiveBatch.refill`: all but each prompt's last token (which the next decode
    step feeds with the running rows, so the step's logits are the prompt's first).

    Attributes:
        cache: the prefilled KV of the rows with ``prefilled`` set (a one-token prompt has nothing to prefill).
        attention_mask: ``[prefilled rows, width]`` left-padded mask of ``cache``.
        width: ``cache``'s columns (0 when nothing was prefilled).
        prefilled: per new prompt, whether it has a row in ``cache``.
        next_position: ``[new prompts]`` position id of each prompt's last token.
        lengths: per new prompt, its prefilled token count.
    """

    cache: PrefilledRows | None
    attention_mask: torch.Tensor | None
    width: int
    prefilled: list[bool]
    next_position: torch.Tensor
    lengths: list[int]


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
