"""The decoder's categorical draws (the exponential race) are torch.multinomial's draws, index for index, from the
same RNG state: with the global RNG and with per-row generators, float32 and float64, any width (the CUDA version
is in tests/equivalence/test_cuda.py)."""

from __future__ import annotations

import torch

from softthink.decoding.randomness import GLOBAL_RANDOMNESS, PerRowRandomness

SHAPES = [(1, 1), (1, 5), (3, 10), (32, 30), (4, 4096)]


def _weights(rows: int, width: int, seed: int, dtype: torch.dtype, device: str = "cpu") -> torch.Tensor:
    """Unnormalised weights with a zero tail on odd seeds (filtered-out tokens), never an all-zero row."""
    weights = torch.rand(rows, width, generator=torch.Generator().manual_seed(seed), dtype=dtype) ** 3
    if seed % 2:
        weights[:, max(1, width // 2) :] = 0
    weights[:, 0] += 1e-3
    return weights.to(device)


def _generators(rows: int, seed: int, device: str) -> list[torch.Generator]:
    return [torch.Generator(device=device).manual_seed(seed + i) for i in range(rows)]


def assert_draws_equal_multinomial(device: str) -> None:
    for dtype in (torch.float32, torch.float64):
        for rows, width in SHAPES:
            for seed in range(6):
                weights = _weights(rows, width, seed, dtype, device)
                torch.manual_seed(seed)
                expected = torch.multinomial(weights, 1).squeeze(-1)
                torch.manual_seed(seed)
                assert torch.equal(GLOBAL_RANDOMNESS.multinomial(weights), expected)

                expected = torch.stack(
                    [torch.multinomial(w, 1, generator=g) for w, g in zip(weights, _generators(rows, seed, device))]
                )
                drawn = PerRowRandomness(_generators(rows, seed, device)).multinomial(weights)
                assert torch.equal(drawn, expected.squeeze(-1))


def test_draws_equal_torch_multinomial():
    assert_draws_equal_multinomial("cpu")


def test_draws_follow_the_weights():
    """Zero weights are never drawn, and the frequencies follow the weights (20k draws, 4 standard errors)."""
    weights = torch.tensor([[0.5, 0.3, 0.2, 0.0]]).expand(20000, 4).contiguous()
    torch.manual_seed(0)
    counts = torch.bincount(GLOBAL_RANDOMNESS.multinomial(weights), minlength=4).double() / 20000
    assert counts[3] == 0
    stderr = (weights[0] * (1 - weights[0]) / 20000).sqrt().double()
    assert ((counts - weights[0].double()).abs() <= 4 * stderr + 1e-12).all(), counts
