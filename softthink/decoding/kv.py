"""The running batch's KV cache and the forward pass through it: eager over a `DynamicCache`, or compiled over a
static one (``compile=True``).

The decode loop talks to both through the same methods: ``forward`` (the first prefill, then one token per row
per step), ``select`` (keep a subset of the rows), and the slot operations of continuous batching (``place_rows``,
``clear_rows``, ``grow_left``, ``trim_left``; see `softthink.decoding.slots`). The loop's attention mask is the
source of truth for which columns hold what: its columns are the cache's, right-aligned to the newest token.

`StaticKV` keeps ``slots`` physical rows and ``capacity`` columns for the whole call, so the compiled one-token
forward always sees the same shapes (one compilation; one CUDA graph). A row that finishes keeps its physical slot
until the live rows fit in half the slots, then the batch is compacted to the next power of two (a new shape, so
at most log2(slots) more compilations). All rows write the same column each step (``column``); the loop's mask,
right-aligned to that column, says which columns each row uses. When the columns run out (continuous batching:
new rows keep joining), the live columns are moved back to the start in one copy; the capacity is twice what one
row can use, so that happens at most once per ``capacity / 2`` steps.
"""

from __future__ import annotations

from typing import Any, Protocol

import torch
from transformers import DynamicCache, StaticCache

from softthink.decoding import compiled
from softthink.decoding import slots as slots_kv
from softthink.decoding.host import host_tensor
from softthink.errors import SoftthinkInputError
from softthink.hf_compat import cache_kwarg_name, forward_parameters


class ModelStep:
    """Calls the model through a KV cache with the keyword names its ``forward`` takes, looked up once (the cache's
    name differs across transformers versions, see `softthink.hf_compat`)."""

    def __init__(self, model):
        params = forward_parameters(model)
        self.model = model
        self.cache_name = cache_kwarg_name(params)
        self.takes_position_ids = "position_ids" in params
        self.takes_cache_position = "cache_position" in params
        self.takes_logits_to_keep = "logits_to_keep" in params

    def __call__(
        self,
        cache,
        attention_mask: torch.Tensor,
        *,
        position_ids: torch.Tensor,
        input_ids: torch.Tensor | None = None,
        inputs_embeds: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """One forward pass through ``cache``; returns the last position's logits ``[b, vocab]``."""
        out = self.model(
            input_ids=input_ids, inputs_embeds=inputs_embeds, **self.kwargs(cache, attention_mask, position_ids)
        )
        return out.logits[:, -1, :]

    def kwargs(self, cache, attention_mask: torch.Tensor, position_ids: torch.Tensor, cache_position=None) -> dict:
        """The keyword arguments of one forward, but for the input ids / embeddings."""
        kwargs = {"attention_mask": attention_mask, self.cache_name: cache, "use_cache": True}
        if self.takes_position_ids:
            kwargs["position_ids"] = position_ids
        if cache_position is not None:
            kwargs["cache_position"] = cache_position
        if self.takes_logits_to_keep:
            kwargs["logits_to_keep"] = 1  # the prefill needs only the last position's logits
        return kwargs


class RunningKV(Protocol):
    """What the decode loop needs of the running batch's KV cache (`DynamicKV` or `StaticKV`)."""

    def forward(
        self,
        attention_mask: torch.Tensor,
        *,
        position_ids: torch.Tensor,
        input_ids: torch.Tensor | None = None,
        inputs_embeds: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """The first prefill (``input_ids``), then one fed embedding per row: the last position's logits."""
        ...

    def check_slots(self) -> None:
        """Raise `SoftthinkInputError` unless continuous batching can run on this cache."""
        ...

    def select(self, keep: torch.Tensor) -> None:
        """Keep only the loop's rows ``keep`` (a 1-D index tensor)."""
        ...

    def place_rows(self, rows: list[int], source: slots_kv.PrefilledRows) -> None:
        """Write the prefilled ``source`` rows into the loop's rows ``rows``, right-aligned."""
        ...

    def clear_rows(self, rows: list[int]) -> None:
        """Empty the loop's rows ``rows`` (a new prompt with nothing to prefill)."""
        ...

    def grow_left(self, columns: int) -> None:
        """Prepend ``columns`` empty columns to every row."""
        ...

    def trim_left(self, columns: int) -> None:
        """Drop ``columns`` leading columns that every row masks out."""
        ...


class DynamicKV:
    """The eager path: transformers' `DynamicCache`, which grows by one column per step and drops finished rows."""

    def __init__(self, model, step: ModelStep):
        self.step = step
        self.cache = DynamicCache(config=model.config)

    def forward(
        self,
        attention_mask: torch.Tensor,
        *,
        position_ids: torch.Tensor,
        input_ids: torch.Tensor | None = None,
        inputs_embeds: torch.Tensor | None = None,
    ) -> torch.Tensor:
        return self.step(
            self.cache, attention_mask, position_ids=position_ids, input_ids=input_ids, inputs_embeds=inputs_embeds
        )

    def check_slots(self) -> None:
        slots_kv.check_slot_cache(self.cache)

    def select(self, keep: torch.Tensor) -> None:
        self.cache.batch_select_indices(keep)

    def place_rows(self, rows: list[int], source: slots_kv.PrefilledRows) -> None:
        slots_kv.place_rows(self.cache, rows, source)

    def clear_rows(self, rows: list[int]) -> None:
        slots_kv.clear_rows(self.cache, rows)

    def grow_left(self, columns: int) -> None:
        slots_kv.grow_left(self.cache, columns)

    def trim_left(self, columns: int) -> None:
        slots_kv.trim_left(self.cache, columns)


class StaticKV:
    """The compiled path: a `StaticCache` of fixed ``[slots, capacity]`` and a compiled one-token forward.

    Attributes:
        live: ``[b]`` physical slot of each active row (increasing; the loop's row ``i`` is slot ``live[i]``).
        column: the column the next fed token is written to (the same for every slot).
        width: the loop's columns of cache content (its mask's width, without the token about to be fed); the
            content is in columns ``[column - width, column)``.
        mask: ``[slots, capacity]`` the attention mask the model sees (the loop's, placed at those columns).
    """

    def __init__(self, model, step: ModelStep, slots: int, capacity: int):
        self.model, self.step, self.capacity = model, step, capacity
        device = model.get_input_embeddings().weight.device
        self.cache = compiled.reusable_cache(model, slots, capacity, lambda: _static_cache(model, capacity, step))
        self.live = torch.arange(slots, device=device)
        self.column = 0
        self.width = 0
        self.mask = torch.zeros(slots, capacity, dtype=torch.long, device=device)
        self.cache_position = torch.zeros(1, dtype=torch.long, device=device)
        self.decode = compiled.one_token_forward(device)

    @property
    def slots(self) -> int:
        return self.mask.shape[0]

    def forward(
        self,
        attention_mask: torch.Tensor,
        *,
        position_ids: torch.Tensor,
        input_ids: torch.Tensor | None = None,
        inputs_embeds: torch.Tensor | None = None,
    ) -> torch.Tensor:
        if input_ids is not None:
            return self._prefill(attention_mask, input_ids, position_ids)
        assert inputs_embeds is not None and inputs_embeds.shape[1] == 1, "decode steps feed one embedding per row"
        width = attention_mask.shape[1] - 1
        assert width == self.width, f"the loop's mask has {width} cached columns, the cache {self.width}"
        if self.column == self.capacity:
            self._move_content(-(self.column - self.width))
        start = self.column - self.width
        everyone = self.live.shape[0] == self.slots
        if everyone:
            self.mask[:, start : self.column + 1] = attention_mask
            self.mask[:, :start] = 0
            embeds, positions = inputs_embeds, position_ids
        else:
            self.mask[self.live, start : self.column + 1] = attention_mask
            self.mask[self.live, :start] = 0
            self.mask[:, self.column] = 1  # idle slots attend somewhere (their outputs are ignored)
            embeds = inputs_embeds.new_zeros(self.slots, *inputs_embeds.shape[1:])
            embeds[self.live] = inputs_embeds
            positions = position_ids.new_zeros(self.slots, 1)
            positions[self.live] = position_ids
        self.cache_position.fill_(self.column)
        kwargs = self.step.kwargs(self.cache, self.mask, positions, self._cache_position(self.cache_position))
        logits = self.decode(self.model, embeds, kwargs)
        self.column += 1
        self.width += 1
        return logits if everyone else logits[self.live]

    def _prefill(self, attention_mask: torch.Tensor, input_ids: torch.Tensor, position_ids: torch.Tensor):
        """The first forward: every slot's prompt, columns ``[0, width)`` (eager: its width varies per call)."""
        assert self.column == 0 and input_ids.shape[0] == self.slots, "the first prefill fills every slot"
        width = input_ids.shape[1]
        if width + 1 > self.capacity:
            raise ValueError(f"a static cache of {self.capacity} columns cannot hold a {width}-token prompt")
        self.mask.zero_()
        self.mask[:, :width] = attention_mask
        _sync_write_column(self.cache, 0)
        positions = torch.arange(width, device=self.mask.device)
        kwargs = self.step.kwargs(self.cache, self.mask[:, :width], position_ids, self._cache_position(positions))
        out = self.model(input_ids=input_ids, **kwargs)
        self.column = self.width = width
        _sync_write_column(self.cache, self.column)
        return out.logits[:, -1, :]

    def _cache_position(self, columns: torch.Tensor) -> torch.Tensor | None:
        """``columns`` for a forward that takes ``cache_position`` (transformers 4), else None (transformers 5's
        static layers count their own write position, see `_sync_write_column`)."""
        return columns if self.step.takes_cache_position else None

    def check_slots(self) -> None:
        """Continuous batching works on any static cache of full-attention layers (checked at construction)."""

    def select(self, keep: torch.Tensor) -> None:
        """Keep the loop's rows ``keep``: their slots stay where they are; the others go idle, and when the live rows
        fit in half the slots the cache is compacted to the next power of two."""
        self.live = self.live[keep]
        live = self.live.shape[0]
        target = 1 << max(live - 1, 0).bit_length()
        if target <= self.slots // 2:
            self._compact(target)

    def place_rows(self, rows: list[int], source: slots_kv.PrefilledRows) -> None:
        """Write row ``i`` of ``source`` (a freshly prefilled `DynamicCache`) into the loop's row ``rows[i]``,
        right-aligned to the newest column."""
        new = max((layer.keys.shape[-2] for layer in slots_kv.filled_layers(source)), default=0)
        if new > self.width:
            raise ValueError(f"cannot place {new} columns into a cache {self.width} columns wide; grow_left first")
        slots_kv.place_rows(self.cache, self._slots_of(rows), source, end=self.column)

    def clear_rows(self, rows: list[int]) -> None:
        slots_kv.clear_rows(self.cache, self._slots_of(rows))

    def _slots_of(self, rows: list[int]) -> torch.Tensor:
        """The physical slots of the loop's rows ``rows``."""
        return self.live[host_tensor(rows, device=self.live.device)]

    def grow_left(self, columns: int) -> None:
        """The loop's rows are ``columns`` wider on the left: move the content right if it would start before 0."""
        if self.width + columns > self.column:
            self._move_content(self.width + columns - self.column)
        self.width += columns

    def trim_left(self, columns: int) -> None:
        """The loop dropped ``columns`` leading columns (masked out by every row): nothing moves."""
        self.width -= columns

    def _move_content(self, shift: int) -> None:
        """Move columns ``[column - width, column)`` by ``shift`` (negative: to the left), all slots, in one copy."""
        start, end = self.column - self.width, self.column
        if shift == 0 or start + shift < 0 or end + shift >= self.capacity:
            raise RuntimeError(
                f"static cache of {self.capacity} columns cannot move columns [{start}, {end}) by {shift}"
            )
        for layer in slots_kv.filled_layers(self.cache):
            for name in ("keys", "values"):
                tensor = getattr(layer, name)
                tensor[:, :, start + shift : end + shift] = tensor[:, :, start:end].clone()
        self.mask[:, start + shift : end + shift] = self.mask[:, start:end].clone()
        self.column += shift
        _sync_write_column(self.cache, self.column)

    def _compact(self, slots: int) -> None:
        """Copy the live rows into a new static cache of ``slots`` rows (idle slots past the live ones)."""
        make = lambda: _static_cache(self.model, self.capacity, self.step)  # noqa: E731
        cache = compiled.reusable_cache(self.model, slots, self.capacity, make)
        live = len(self.live)
        old: Any
        new: Any
        for old, new in zip(self.cache.layers, cache.layers):
            if getattr(old, "keys", None) is None:
                continue  # a layer that shares another's KV
            if getattr(new, "keys", None) is None:
                _initialize_layer(new, old.keys[:slots], old.values[:slots])
            new.keys[:live] = old.keys[self.live]
            new.values[:live] = old.values[self.live]
        mask = self.mask.new_zeros(slots, self.capacity)
        mask[: len(self.live)] = self.mask[self.live]
        self.cache, self.mask = cache, mask
        self.live = torch.arange(len(self.live), device=self.live.device)
        _sync_write_column(self.cache, self.column)


def static_capacity(longest_prompt: int, max_new_tokens: int, continuous: bool) -> int:
    """Columns of a static cache: a prompt plus every fed token fits (twice that with continuous batching, so the
    content moves back at most once per that many steps), rounded up to a multiple of 64 so that similar calls
    share one compiled graph."""
    need = longest_prompt + max_new_tokens
    if continuous:
        need *= 2
    return -(-need // 64) * 64


def _static_cache(model, capacity: int, step: ModelStep) -> StaticCache:
    cache = StaticCache(config=model.config, max_cache_len=capacity)
    counts_itself = all(isinstance(getattr(layer, "cumulative_length", None), torch.Tensor) for layer in cache.layers)
    if not (step.takes_cache_position or counts_itself):
        raise SoftthinkInputError(
            f"compile=True needs a model whose forward takes cache_position, or a static cache whose layers count "
            f"their write position; {type(model).__name__} with transformers' {type(cache).__name__} has neither. "
            "Use compile=False."
        )
    sliding = sorted({type(layer).__name__ for layer in cache.layers if getattr(layer, "is_sliding", False)})
    if sliding or not cache.layers:
        raise SoftthinkInputError(
            f"compile=True needs a static KV cache of full-attention layers; this model's has {', '.join(sliding)} "
            "(sliding-window attention). Use compile=False."
        )
    return cache


def _initialize_layer(layer, keys: torch.Tensor, values: torch.Tensor) -> None:
    """Allocate a fresh static layer's backing tensors, shaped like ``keys`` / ``values`` (``[slots, heads,
    capacity, head_dim]``), the way its lazy initialisation would, across transformers versions."""
    try:
        layer.lazy_initialization(keys[:, :, :1], values[:, :, :1])
    except TypeError:  # transformers 4.x: lazy_initialization(key_states)
        layer.lazy_initialization(keys[:, :, :1])


def _sync_write_column(cache: StaticCache, column: int) -> None:
    """Layers that count their own write position (transformers 5's ``cumulative_length``) write at ``column``
    next; transformers 4's write where ``cache_position`` says."""
    for layer in cache.layers:
        length = getattr(layer, "cumulative_length", None)
        if isinstance(length, torch.Tensor):
            length.fill_(column)
