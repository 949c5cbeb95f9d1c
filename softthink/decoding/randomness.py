"""Where the decoder's random draws come from.

By default every draw of a step is one batched call on torch's global RNG, which `generate` seeds per call
(``config.seed``): cheap, but a row's sample then depends on which other rows share its batch. With per-prompt
seeds (``generate(..., seeds=[...])``) each prompt owns a `torch.Generator`, and every draw for that row comes from
it alone, so a sample is a function of (prompt, seed) whatever the batch: batched decoding equals one-by-one
decoding, sampling included. That costs one small call per row per draw.

Rules never touch an RNG directly; they call the `Randomness` in their `StepInput`.

Categorical draws use the exponential race ``argmax(w / q)``, ``q ~ Exp(1)``: the algorithm, and the very draws,
of ``torch.multinomial(w, 1)`` (which takes that path for one sample), without its input checks: those cost two
device-to-host syncs and ~10 small ops per call, and the loop checks each step's distribution itself (a non-finite
one raises `SoftthinkInputError` after the step).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch


class Randomness:
    """The random draws a decode rule may make for the rows of one step (batched on torch's global RNG)."""

    def multinomial(self, weights: torch.Tensor) -> torch.Tensor:
        """One column index per row, drawn from ``[b, K]`` non-negative ``weights`` (not necessarily normalised);
        the same index ``torch.multinomial(weights, 1).squeeze(-1)`` draws from the same RNG state."""
        return exponential_race(weights, None)

    def uniform_like(self, x: torch.Tensor) -> torch.Tensor:
        """Uniform [0, 1) noise of ``x``'s shape, dtype and device."""
        return torch.rand_like(x)

    def standard_gamma(self, concentration: torch.Tensor) -> torch.Tensor:
        """Gamma(concentration, 1) draws of the same shape."""
        return torch._standard_gamma(concentration)


def exponential_race(weights: torch.Tensor, generator: torch.Generator | None) -> torch.Tensor:
    """The index of the largest ``weights / q`` along the last dimension, ``q ~ Exp(1)`` from ``generator`` (torch's
    global RNG when None): a draw from the categorical distribution proportional to ``weights``."""
    race = torch.empty_like(weights).exponential_(1.0, generator=generator)
    return torch.div(weights, race, out=race).argmax(dim=-1)


GLOBAL_RANDOMNESS = Randomness()
"""The default: batched draws from torch's global RNG."""


class PerRowRandomness(Randomness):
    """Draws for the rows of one step, row ``i`` from ``generators[i]`` only."""

    def __init__(self, generators: Sequence[torch.Generator]):
        self.generators = list(generators)

    def _rows(self, x: torch.Tensor, draw) -> torch.Tensor:
        if x.shape[0] != len(self.generators):
            raise ValueError(f"{x.shape[0]} rows but {len(self.generators)} generators")
        return torch.stack([draw(row, generator) for row, generator in zip(x, self.generators)])

    def multinomial(self, weights: torch.Tensor) -> torch.Tensor:
        return self._rows(weights, exponential_race)

    def uniform_like(self, x: torch.Tensor) -> torch.Tensor:
        return self._rows(x, lambda row, g: torch.rand(row.shape, generator=g, dtype=row.dtype, device=row.device))

    def standard_gamma(self, concentration: torch.Tensor) -> torch.Tensor:
        return self._rows(concentration, lambda c, g: torch._standard_gamma(c, generator=g))


class PromptGenerators:
    """One generator per prompt of a `generate` call, seeded by that prompt's seed."""

    def __init__(self, seeds: Sequence[int], device: torch.device):
        self.generators = [torch.Generator(device=device).manual_seed(int(seed)) for seed in seeds]

    def for_rows(self, rows: Sequence[int]) -> PerRowRandomness:
        """The randomness of the active rows ``rows`` (indices into the call's prompts), in that order."""
        return PerRowRandomness([self.generators[r] for r in rows])
