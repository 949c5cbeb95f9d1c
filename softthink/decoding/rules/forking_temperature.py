"""`forking_temperature` (discrete): sample forking tokens hotter than the rest ("Beyond the 80/20 Rule").

A step whose entropy (at the base ``temperature``) is at least ``fork_threshold`` nats is a fork and is sampled
from softmax(logits / ``fork_temperature``); every other step from softmax(logits / ``temperature``). The shared
top-k / top-p / min-p filters apply to both. Only discrete tokens are fed.
"""

from __future__ import annotations

import torch

from softthink.analysis.entropy import log_probs_at_temperature
from softthink.analysis.forking import FORKING_ENTROPY_NATS
from softthink.decoding.processors import sample_columns, truncate_sorted
from softthink.decoding.rules.base import (
    DecodeRule,
    RuleParam,
    Step,
    StepInput,
    non_negative,
    positive,
    register_rule,
    require_sampling,
)


def forking_probs(
    logits: torch.Tensor, base_probs: torch.Tensor, entropy: torch.Tensor, threshold: float, fork_temperature: float
) -> torch.Tensor:
    """Row-wise: softmax(logits / fork_temperature) at forks (entropy >= threshold), ``base_probs`` elsewhere."""
    fork = entropy >= threshold
    hot = log_probs_at_temperature(logits, fork_temperature).exp().to(base_probs.dtype)  # no overflow at low T
    return torch.where(fork[:, None], hot, base_probs)


@register_rule("forking_temperature")
class ForkingTemperature(DecodeRule):
    params = (
        RuleParam(
            "fork_temperature",
            float,
            1.0,
            "forking_temperature: temperature at forking steps (> 0)",
            positive,
            "must be > 0",
            "Use 1.0 for the default.",
        ),
        RuleParam(
            "fork_threshold",
            float,
            FORKING_ENTROPY_NATS,
            "forking_temperature: entropy (nats) at or above which a step is a fork",
            non_negative,
            "must be >= 0 nats",
            f"The paper's 80th percentile is {FORKING_ENTROPY_NATS}.",
        ),
    )

    @classmethod
    def validate_config(cls, config) -> None:
        require_sampling(config, cls.name, "it samples forks at fork_temperature")

    def step(self, inputs: StepInput) -> Step:
        s, c = self.sampling, self.config
        probs = forking_probs(inputs.logits, inputs.probs, inputs.entropy, c.fork_threshold, c.fork_temperature)
        ids, weights = truncate_sorted(probs, top_k=s.top_k, top_p=s.top_p, min_p=s.min_p)
        return Step.discrete(ids.gather(1, sample_columns(weights, inputs.random)[:, None]).squeeze(1))
