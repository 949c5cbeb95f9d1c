"""The memory-bandwidth bound of decoding: bytes a decode step must read, over a bandwidth measured here.

A decode step of batch ``b`` reads every weight once (the output head whole; the input embedding only ``b`` rows,
so an untied embedding table is not counted) and every row's K/V cache once. At a bandwidth ``B`` (bytes/s) no
decoder can produce more than ``b * B / (weight bytes + KV bytes of the step)`` tokens per second. ``B`` is measured
with the operation decoding at small batch is made of: a large matrix times a vector.
"""

from __future__ import annotations

import time

import torch


def synchronize(device: torch.device) -> None:
    """Wait for ``device``'s queued work (a no-op on CPU)."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def matvec_bandwidth(device: torch.device, dtype: torch.dtype, mib: int, repeats: int = 20) -> float:
    """Bytes/s of ``W @ x`` for a ``mib``-MiB matrix ``W`` (the best of ``repeats`` timed products)."""
    element = torch.empty((), dtype=dtype).element_size()
    rows = 4096
    cols = max(1, mib * 2**20 // (rows * element))
    matrix = torch.randn(rows, cols, device=device).to(dtype)
    vector = torch.randn(cols, device=device).to(dtype)
    for _ in range(3):
        matrix @ vector
    best = float("inf")
    for _ in range(repeats):
        synchronize(device)
        start = time.perf_counter()
        matrix @ vector
        synchronize(device)
        best = min(best, time.perf_counter() - start)
    return matrix.numel() * element / best


def weight_bytes_per_step(model) -> int:
    """Bytes of the weights one decode step reads: all parameters, less an input embedding that is not also the
    output head (a step gathers only its rows)."""
    total = sum(p.numel() * p.element_size() for p in model.parameters())
    embed, head = model.get_input_embeddings(), model.get_output_embeddings()
    if head is None or embed.weight is not head.weight:
        total -= embed.weight.numel() * embed.weight.element_size()
    return total


def kv_bytes_per_token(config, element_size: int) -> int:
    """Bytes of K and V cache one token of context holds (a decode step reads it once per row)."""
    config = config.get_text_config() if hasattr(config, "get_text_config") else config
    heads = config.num_attention_heads
    kv_heads = getattr(config, "num_key_value_heads", None) or heads
    head_dim = getattr(config, "head_dim", None) or config.hidden_size // heads
    return 2 * config.num_hidden_layers * kv_heads * head_dim * element_size


def bound_tokens_per_second(
    model, bandwidth: float, prompt_lengths: list[int], max_new_tokens: int, element_size: int
) -> float:
    """The most tokens/s a decoder of ``model`` can reach at ``bandwidth`` for a batch of prompts of these lengths
    generating ``max_new_tokens`` each (the KV read of a step at its mean context length over the generation)."""
    batch = len(prompt_lengths)
    context_tokens = sum(prompt_lengths) + batch * (max_new_tokens - 1) / 2  # all rows, mean over the steps
    step_bytes = weight_bytes_per_step(model) + context_tokens * kv_bytes_per_token(model.config, element_size)
    return batch * bandwidth / step_bytes
