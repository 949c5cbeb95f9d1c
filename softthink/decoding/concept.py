"""The concept token: the weighted mixture of kept tokens' embeddings that a soft step feeds the model.

The decode loop, the soft-RL rollout and training forwards, and the concept-aware testbed's training all build it
with `mixture_embedding`, so a training forward feeds bit for bit what a rollout fed.
"""

from __future__ import annotations

import torch


def mixture_embedding(weights: torch.Tensor, embeddings: torch.Tensor) -> torch.Tensor:
    """``sum_k weights_k * embeddings_k``: ``[..., K] x [..., K, D] -> [..., D]``.

    One batched matrix product (``einsum`` computes the same product, bit for bit, with more dispatch work: this
    runs once per decode step)."""
    return (weights.unsqueeze(-2) @ embeddings).squeeze(-2)


def concept_embeddings(embed: torch.nn.Module, kept_ids: torch.Tensor, weights: torch.Tensor) -> torch.Tensor:
    """The fed input of each row: ``[..., K]`` kept token ids and their mixture weights -> ``[..., D]``, in the
    embedding's dtype (a discrete step is one kept token of weight 1: its own embedding)."""
    vectors = embed(kept_ids)
    return mixture_embedding(weights.to(vectors.dtype), vectors)
