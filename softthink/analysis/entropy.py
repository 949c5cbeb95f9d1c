"""Token entropy maths: pure functions on tensors, shared by the decode rules, the RL code and the plots.

All entropies are in nats.
"""
from __future__ import annotations

import torch


def entropy_from_log_probs(log_probs: torch.Tensor) -> torch.Tensor:
    """Entropy ``-sum p log p`` over the last dimension of a tensor of log-probabilities.

    Tokens with probability 0 (``-inf`` log-prob) contribute 0, not NaN.
    """
    probs = log_probs.exp()
    return -(probs * log_probs.masked_fill(probs == 0, 0.0)).sum(dim=-1)


def entropy_from_logits(logits: torch.Tensor, temperature: float = 1.0) -> torch.Tensor:
    """Entropy of ``softmax(logits / temperature)`` over the last dimension, computed in float32.

    Works on any leading shape: ``[vocab]``, ``[batch, vocab]`` or ``[batch, length, vocab]``.
    """
    if temperature <= 0:
        raise ValueError(f"temperature must be > 0, got {temperature}. Entropy of a greedy choice is undefined; "
                         "use temperature=1.0 to measure the model's own distribution.")
    return entropy_from_log_probs(torch.log_softmax(logits.float() / temperature, dim=-1))
