"""KV-cache surgery for continuous batching, on transformers' `DynamicCache`, in place and row by row.

The running batch's cache is addressed by *columns*: every row occupies the same ``width`` columns (the attention
mask's), left-padded, and each decode step appends one column to all rows. A full-attention layer stores all
``width`` columns; a sliding-window layer stores only the last ``min(width, window - 1)`` and counts ``width`` in
its ``cumulative_length``. The three operations keep that invariant:

- `place_rows`: write the KV of freshly prefilled prompts (a separate cache of the same model, at most ``width``
  columns wide) into slots of the running cache, right-aligned, zeroing the slot's older columns. It writes only
  those rows: no copy of the rest of the cache.
- `grow_left`: prepend padding columns, for a new prompt longer than the batch is wide (rare: the batch is as
  wide as its longest row). This copies the cache once.
- `trim_left`: drop leading columns that every row masks out. The layers keep views; the next step's
  `DynamicCache.update` (which concatenates anyway) compacts them, so trimming costs no extra copy.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch
from transformers.cache_utils import DynamicLayer, DynamicSlidingWindowLayer

from softthink.decoding.host import host_tensor
from softthink.errors import SoftthinkInputError

_SUPPORTED = (DynamicLayer, DynamicSlidingWindowLayer)


def check_slot_cache(cache) -> None:
    """Raise `SoftthinkInputError` unless every layer of ``cache`` is one the slot operations understand."""
    layers = getattr(cache, "layers", None)
    unsupported = sorted({type(layer).__name__ for layer in layers or () if type(layer) not in _SUPPORTED})
    if layers is None or unsupported:
        found = ", ".join(unsupported) or type(cache).__name__
        raise SoftthinkInputError(
            f"max_batch_size (continuous batching) needs a KV cache of full-attention and sliding-window layers "
            f"(transformers' DynamicLayer / DynamicSlidingWindowLayer); this model's cache has {found}. "
            "Pass max_batch_size=None to decode the prompts in one batch."
        )


def place_rows(cache, slots: Sequence[int] | torch.Tensor, source, end: int | None = None) -> None:
    """Write row ``i`` of ``source`` into row ``slots[i]`` of ``cache``, right-aligned to column ``end`` (default:
    each layer's width); the slots' columns before it become zeros. ``source`` must not be wider than ``end``.
    A static cache passes ``end``: its layers are wider than what they hold."""
    index = _SlotIndex(slots)
    for dst, src in zip(filled_layers(cache), filled_layers(source)):
        width, new = end if end is not None else dst.keys.shape[-2], src.keys.shape[-2]
        if new > width:
            raise ValueError(f"cannot place {new} columns into a cache {width} columns wide; grow_left first")
        for name in ("keys", "values"):
            target = getattr(dst, name)
            at = index.on(target.device)
            target[at, :, : width - new] = 0
            target[at, :, width - new : width] = getattr(src, name).to(target.dtype)


def clear_rows(cache, slots: Sequence[int] | torch.Tensor) -> None:
    """Zero rows ``slots`` of every layer (a new prompt with nothing to prefill)."""
    index = _SlotIndex(slots)
    for layer in filled_layers(cache):
        layer.keys[index.on(layer.keys.device)] = 0
        layer.values[index.on(layer.values.device)] = 0


def grow_left(cache, columns: int) -> None:
    """Prepend ``columns`` zero columns to every row (the width grows by ``columns``)."""
    for layer in filled_layers(cache):
        keys, values = _kv(layer)
        add = columns
        if isinstance(layer, DynamicSlidingWindowLayer):
            layer.cumulative_length += columns
            add = min(columns, max(layer.sliding_window - 1 - keys.shape[-2], 0))
        if add:
            layer.keys, layer.values = _pad_left(keys, add), _pad_left(values, add)


def trim_left(cache, columns: int) -> None:
    """Drop the first ``columns`` columns of every row (the width shrinks by ``columns``)."""
    for layer in filled_layers(cache):
        keys, values = _kv(layer)
        width = keys.shape[-2]
        if isinstance(layer, DynamicSlidingWindowLayer):
            layer.cumulative_length -= columns
            keep = min(layer.cumulative_length, width)
        else:
            keep = width - columns
        layer.keys, layer.values = keys[:, :, width - keep :], values[:, :, width - keep :]


class PrefilledRows:
    """Rows ``at`` of a prefilled `DynamicCache`, their last ``width`` columns: what `softthink.decoding.slots`
    reads of a source cache (``layers``, each with ``keys`` and ``values``)."""

    def __init__(self, cache, at: torch.Tensor, width: int):
        self.layers = [
            _Columns(layer.keys[at, :, -width:], layer.values[at, :, -width:]) for layer in filled_layers(cache)
        ]


@dataclass
class _Columns:
    keys: torch.Tensor
    values: torch.Tensor


def filled_layers(cache) -> list:
    """The layers holding KV tensors (a layer that shares another's KV is never filled and is skipped)."""
    return [layer for layer in cache.layers if getattr(layer, "keys", None) is not None and layer.keys.numel() > 0]


class _SlotIndex:
    """``slots`` as a long index tensor on each device the layers live on (one per device, not one per layer: a
    model split over devices has layers on several). A host list goes through `host_tensor`, so on CUDA the copy
    does not wait for the device (a plain ``.to(device)`` would synchronise once per layer)."""

    def __init__(self, slots: Sequence[int] | torch.Tensor):
        self.slots = slots
        self.by_device: dict[torch.device, torch.Tensor] = {}

    def on(self, device: torch.device) -> torch.Tensor:
        if device not in self.by_device:
            if isinstance(self.slots, torch.Tensor):
                self.by_device[device] = self.slots.to(device=device, dtype=torch.long)
            else:
                self.by_device[device] = host_tensor(list(self.slots), device, torch.long)
        return self.by_device[device]


def _kv(layer) -> tuple[torch.Tensor, torch.Tensor]:
    keys, values = layer.keys, layer.values
    assert keys is not None and values is not None, "only filled layers (see _layers)"
    return keys, values


def _pad_left(x: torch.Tensor, columns: int) -> torch.Tensor:
    return torch.cat([x.new_zeros(*x.shape[:2], columns, x.shape[3]), x], dim=-2)
