"""`multiplex`: Multiplex Thinking, training-free (the inference-only variant of arXiv 2601.08808).

At a thinking step, draw ``multiplex_k`` tokens independently (with replacement) from the step's discrete
sampling distribution — softmax(logits / T) -> top-k -> top-p -> min-p -> renormalise, exactly what `discrete`
samples from — and feed the mean of their embeddings: weight ``count / K`` per distinct sampled token (duplicate
draws add their weights). The visible token is the **first** draw. With ``multiplex_k=1`` a step is the discrete
sampling step itself, draw for draw. A step is soft only when the draws differ (else it feeds one token).
"""

from __future__ import annotations

import torch

from softthink.decoding.processors import sample_columns
from softthink.decoding.rules.base import (
    DecodeRule,
    RuleParam,
    Step,
    StepInput,
    positive_int,
    register_rule,
    require_sampling,
)


def multiplex_weights(columns: torch.Tensor) -> torch.Tensor:
    """Mean-of-samples weights for ``[b, K]`` draws (any ids): ``count / K`` at the first occurrence of each
    distinct value in a row, 0 at its repeats, so rows sum to 1 and duplicates add."""
    same = columns[:, :, None] == columns[:, None, :]  # [b, K, K]
    k = columns.shape[1]
    earlier = torch.ones(k, k, dtype=torch.bool, device=columns.device).tril(-1)  # [j, i]: i < j
    repeat = (same & earlier).any(-1)
    return torch.where(repeat, 0.0, same.sum(-1).to(torch.float32) / k)


@register_rule("multiplex")
class MultiplexThinking(DecodeRule):
    params = (
        RuleParam(
            "multiplex_k",
            int,
            3,
            "multiplex: independent samples per thinking step whose embeddings are averaged (1 = discrete sampling)",
            positive_int,
            "must be an int >= 1",
            "Use 3 (the default) or another small K; 1 is discrete sampling.",
            omitted_at_default=True,  # added after stored results: keeps existing cell hashes
        ),
    )
    needs_thinking = True

    @classmethod
    def validate_config(cls, config) -> None:
        require_sampling(config, cls.name, "it samples multiplex_k tokens per thinking step")

    def step(self, inputs: StepInput) -> Step:
        s = self.sampling
        ids, weights = inputs.truncated(top_k=s.top_k, top_p=s.top_p, min_p=s.min_p)
        columns = torch.stack([sample_columns(weights, inputs.random) for _ in range(self.config.multiplex_k)], 1)
        sampled = ids.gather(1, columns)
        mixture = multiplex_weights(columns)
        soft = (mixture > 0).sum(-1) > 1
        return Step(sampled[:, 0], sampled, mixture, soft)
