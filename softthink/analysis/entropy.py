"""Token entropy maths: pure functions on tensors, shared by the decode rules, the RL code and the plots.

All entropies are in nats.
"""

from __future__ import annotations

import torch


def entropy_from_log_probs(log_probs: torch.Tensor) -> torch.Tensor:
    """Entropy ``-sum p log p`` over the last dimension of a tensor of log-probabilities.

    Tokens with probability 0 (``-inf`` log-prob) contribute 0, not NaN.
    """
    return probs_and_entropy(log_probs)[1]


def probs_and_entropy(log_probs: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """``(exp(log_probs), entropy)`` with one exponentiation, for callers that need both."""
    probs = log_probs.exp()
    return probs, -(probs * log_probs.masked_fill(probs == 0, 0.0)).sum(dim=-1)


def at_least_float32(x: torch.Tensor) -> torch.Tensor:
    """``x`` in float32, or kept as is when it is already float32/float64 (half precision is too coarse for
    entropies and probability mixtures)."""
    return x.to(torch.promote_types(x.dtype, torch.float32))


def log_probs_at_temperature(logits: torch.Tensor, temperature: float | torch.Tensor = 1.0) -> torch.Tensor:
    """``log_softmax(logits / temperature)`` over the last dimension, in float32 (or float64), overflow-safe.

    The logits are shifted by their row maximum before the division, so finite logits near the dtype's maximum
    divided by a temperature < 1 cannot overflow to inf (which would make the whole row NaN); ``-inf`` logits
    stay ``-inf`` (probability 0). ``temperature`` is a float or a tensor broadcasting against ``logits``
    (``[batch, 1]`` per-row temperatures). A row without any finite logit gives NaN, as in ``log_softmax``.
    """
    x = at_least_float32(logits)
    peak = x.amax(dim=-1, keepdim=True)
    shifted = torch.where(torch.isfinite(peak), x - peak, x)
    return torch.log_softmax(shifted / temperature, dim=-1)


def entropy_from_logits(logits: torch.Tensor, temperature: float = 1.0) -> torch.Tensor:
    """Entropy of ``softmax(logits / temperature)`` over the last dimension, computed in float32 (or float64).

    Works on any leading shape: ``[vocab]``, ``[batch, vocab]`` or ``[batch, length, vocab]``.
    """
    if temperature <= 0:
        raise ValueError(
            f"temperature must be > 0, got {temperature}. Entropy of a greedy choice is undefined; "
            "use temperature=1.0 to measure the model's own distribution."
        )
    return entropy_from_log_probs(log_probs_at_temperature(logits, temperature))


def chunked_entropy(hidden: torch.Tensor, project, chunk_size: int = 512) -> torch.Tensor:
    """Entropy of ``softmax(project(hidden[i]))`` for each row of ``hidden`` ``[N, H]``, ``chunk_size`` rows at a time.

    ``project`` maps ``[n, H]`` hidden states to ``[n, V]`` logits (an LM head plus any logit post-processing).
    Only ``chunk_size x V`` logits exist at any time, so the memory is bounded however long the input is.
    Returns a float32 tensor ``[N]`` on ``hidden``'s device.
    """
    if chunk_size < 1:
        raise ValueError(
            f"chunk_size must be >= 1, got {chunk_size}. It is the number of positions whose "
            "logits are held at once; 256-1024 suits most vocabularies."
        )
    out = torch.empty(hidden.shape[0], dtype=torch.float32, device=hidden.device)
    for start in range(0, hidden.shape[0], chunk_size):
        stop = start + chunk_size
        out[start:stop] = entropy_from_logits(project(hidden[start:stop]))
    return out
