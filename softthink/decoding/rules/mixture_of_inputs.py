"""`mixture_of_inputs` (MoI, "Text Generation Beyond Discrete Token Sampling", Zhuang et al. 2025).

Sample a token y as usual, then feed a blend of its embedding and the distribution's mixture. The distribution
p over the kept tokens (the shared top-k / top-p / min-p / ``max_topk`` filters) is the prior, y the observation:
posterior q = (p + beta * onehot(y)) / (1 + beta). With H the entropy of p normalised by log(number of kept
tokens), the fed embedding is  H * sum_i q_i e_i + (1 - H) * e_y,  i.e. weights  H * q + (1 - H) * onehot(y).
A confident step (H -> 0) feeds the sampled token alone; an uncertain one leans on the distribution.
"""

from __future__ import annotations

import math

import torch

from softthink.decoding.processors import sample_columns
from softthink.decoding.rules.base import DecodeRule, RuleParam, Step, StepInput, positive, register_rule


def moi_weights(kept: torch.Tensor, sampled_col: torch.Tensor, beta: float) -> torch.Tensor:
    """MoI input weights over the kept tokens. ``kept``: ``[b, K]`` renormalised probabilities (0 = dropped);
    ``sampled_col``: ``[b]`` column of the sampled token."""
    onehot = torch.nn.functional.one_hot(sampled_col, kept.shape[1]).to(kept.dtype)
    n_kept = (kept > 0).sum(-1, keepdim=True)
    plogp = torch.where(kept > 0, kept * kept.clamp_min(1e-30).log(), torch.zeros_like(kept))
    entropy = -plogp.sum(-1, keepdim=True)
    max_entropy = n_kept.to(kept.dtype).log()
    normalised = torch.where(n_kept > 1, entropy / max_entropy.clamp_min(math.log(2)), torch.zeros_like(entropy))
    posterior = (kept + beta * onehot) / (1.0 + beta)
    return normalised * posterior + (1.0 - normalised) * onehot


@register_rule("mixture_of_inputs")
class MixtureOfInputs(DecodeRule):
    params = (
        RuleParam(
            "moi_beta",
            float,
            1.0,
            "mixture_of_inputs: concentration of the Bayesian blend (> 0)",
            positive,
            "must be > 0",
            "Use 1.0 for the default.",
        ),
    )
    uses = ("max_topk", "moi_beta")  # max_topk is declared by `soft`
    needs_thinking = True

    def step(self, inputs: StepInput) -> Step:
        s = self.sampling
        ids, kept = inputs.truncated(top_k=s.top_k, top_p=s.top_p, min_p=s.min_p, max_keep=self.config.max_topk)
        col = (
            sample_columns(kept, inputs.random)
            if s.do_sample
            else torch.zeros(kept.shape[0], dtype=torch.long, device=kept.device)
        )
        weights = moi_weights(kept, col, self.config.moi_beta)
        visible = ids.gather(1, col[:, None]).squeeze(1)
        return Step(visible, ids, weights, soft=torch.ones_like(visible, dtype=torch.bool))
