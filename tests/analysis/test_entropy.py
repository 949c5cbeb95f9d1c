"""Entropy maths on hand-built logits (vocab 12): the formula, temperatures, chunking."""

from __future__ import annotations

import math

import pytest
import torch

from softthink.analysis.entropy import chunked_entropy, entropy_from_log_probs, entropy_from_logits


def direct_entropy(logits: torch.Tensor) -> torch.Tensor:
    """-sum p log p written out with plain exp/sum, in float64."""
    z = logits.double()
    p = z.exp() / z.exp().sum(-1, keepdim=True)
    return -(p * p.log()).sum(-1)


def test_entropy_matches_direct_formula():
    logits = torch.randn(3, 5, 12, generator=torch.Generator().manual_seed(0)) * 3
    assert torch.allclose(entropy_from_logits(logits).double(), direct_entropy(logits), atol=1e-5)


def test_uniform_and_one_hot_extremes():
    assert entropy_from_logits(torch.zeros(12)).item() == pytest.approx(math.log(12), abs=1e-6)
    one_hot = torch.full((12,), -float("inf"))
    one_hot[3] = 0.0
    assert entropy_from_log_probs(torch.log_softmax(one_hot, -1)).item() == 0.0  # no NaN from 0 * -inf


def test_temperature_scales_logits():
    logits = torch.randn(12, generator=torch.Generator().manual_seed(1))
    assert entropy_from_logits(logits, temperature=0.5).item() == pytest.approx(
        direct_entropy(logits / 0.5).item(), abs=1e-5
    )
    with pytest.raises(ValueError, match="temperature"):
        entropy_from_logits(logits, temperature=0.0)


@pytest.mark.parametrize("chunk_size", [1, 3, 7, 100])
def test_chunked_entropy_equals_unchunked(chunk_size):
    gen = torch.Generator().manual_seed(2)
    hidden, head = torch.randn(17, 8, generator=gen), torch.randn(12, 8, generator=gen)
    project = lambda h: h @ head.T  # noqa: E731
    assert torch.allclose(chunked_entropy(hidden, project, chunk_size), entropy_from_logits(project(hidden)))


def test_chunked_entropy_holds_only_a_chunk_of_logits():
    seen = []
    chunked_entropy(torch.randn(10, 4), lambda h: seen.append(h.shape[0]) or torch.randn(h.shape[0], 12), 4)
    assert seen == [4, 4, 2]
    with pytest.raises(ValueError, match="chunk_size"):
        chunked_entropy(torch.randn(2, 4), lambda h: h, 0)
