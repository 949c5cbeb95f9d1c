"""The compiled one-token forward of ``compile=True``, and the static KV caches it runs on, kept across calls.

`torch.compile` with inductor; on CUDA with ``mode="reduce-overhead"`` (CUDA graphs: one launch per step). The
compiled function is created once per process and option set: dynamo keeps its graphs per code object, guarded on
the model and on the shapes, so a second model, or a new (slots, capacity) shape, adds a graph (the second new
shape compiles a graph with dynamic sizes that then serves every later shape). torch's recompile limit
(``torch._dynamo.config.recompile_limit``, 8 by default) caps the graphs per function; past it torch warns and runs
eagerly.

A static cache lives as long as its model and is reused by the next call of the same shape, as transformers'
``generate`` does: its tensors keep their addresses, so CUDA graphs recorded on them replay as they are. Only the
caches of the latest capacity are kept (one per slot count, including the halved batches of compaction).
"""

from __future__ import annotations

import weakref
from collections.abc import Callable

import torch
from transformers import StaticCache

_COMPILED: dict[tuple, Callable] = {}
_CACHES: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def compile_options(device: torch.device) -> dict:
    """`torch.compile` keyword arguments of the decode step on ``device``: CUDA graphs on CUDA, inductor's default
    elsewhere."""
    return {"mode": "reduce-overhead"} if device.type == "cuda" else {}


def _last_logits(model, inputs_embeds: torch.Tensor, kwargs: dict) -> torch.Tensor:
    return model(inputs_embeds=inputs_embeds, **kwargs).logits[:, -1, :]


def one_token_forward(device: torch.device) -> Callable[[object, torch.Tensor, dict], torch.Tensor]:
    """``(model, inputs_embeds [b, 1, h], forward kwargs) -> last logits [b, vocab]``, compiled for ``device``.
    Under CUDA graphs the output lives in the graph's memory, so it is cloned before the next replay overwrites it."""
    options = compile_options(device)
    key = tuple(sorted(options.items()))
    if key not in _COMPILED:
        _COMPILED[key] = torch.compile(_last_logits, **options)
    step = _COMPILED[key]
    if options.get("mode") != "reduce-overhead":
        return step
    return lambda model, embeds, kwargs: step(model, embeds, kwargs).clone()


def reusable_cache(model, slots: int, capacity: int, make: Callable[[], StaticCache]) -> StaticCache:
    """The static cache of ``model`` for ``slots`` rows and ``capacity`` columns: the one a previous call left, or
    ``make()``. Its contents are stale; the caller overwrites or masks them."""
    kept = _CACHES.get(model)
    if kept is None or kept[0] != capacity:
        kept = (capacity, dict[int, StaticCache]())
        _CACHES[model] = kept
    caches = kept[1]
    if slots not in caches:
        caches[slots] = make()
    return caches[slots]
