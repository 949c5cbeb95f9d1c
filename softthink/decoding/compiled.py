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

import types
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


def fused_decision(function: Callable, device: torch.device, variant: str) -> Callable:
    """``function`` (the loop's per-step decision, `softthink.decoding.decision.decide_tensors`) compiled for
    ``device``: with `compile_options`'s backend but never CUDA graphs (its outputs are kept across steps in traces),
    and with inductor's ``fallback_random`` (draws run torch's own kernels, so they consume the RNG as eager does).

    Each ``variant`` (a mode, phase and setting) compiles its own copy of ``function``'s code: dynamo keeps its
    graphs, and counts them against its recompile limit, per code object, so variants do not crowd each other
    out."""
    options = {k: v for k, v in compile_options(device).items() if k != "mode"}
    if options.get("backend", "inductor") == "inductor":
        options["options"] = {"fallback_random": True}
    key = (function, variant, tuple(sorted((k, str(v)) for k, v in options.items())))
    if key not in _COMPILED:
        _COMPILED[key] = torch.compile(_own_code(function, variant), **options)
    return _COMPILED[key]


def _own_code(function: Callable, variant: str) -> Callable:
    """A copy of ``function`` with a code object of its own, named after ``variant``."""
    name = f"{function.__name__}__{''.join(c if c.isalnum() else '_' for c in variant)}"
    code = function.__code__.replace(co_name=name)  # (co_qualname, Python 3.11+, stays: it only labels tracebacks)
    return types.FunctionType(code, function.__globals__, name, function.__defaults__, function.__closure__)


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
