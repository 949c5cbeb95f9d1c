"""`soft`: Soft Thinking — feed a concept token, the probability-weighted mixture of the kept tokens' embeddings.

Kept tokens: softmax(logits / T) -> top-k -> top-p -> min-p -> at most ``max_topk`` -> renormalised. With
``noise="gumbel"`` the weights become Gumbel-softmax(log w, tau); with ``noise="dirichlet"`` they are drawn from
Dir(alpha * w). The visible token is the kept token of largest (final) weight, i.e. the top-1 without noise.
"""

from __future__ import annotations

import torch

from softthink.decoding.processors import dirichlet_weights, gumbel_softmax_weights
from softthink.decoding.rules.base import DecodeRule, RuleParam, Step, StepInput, positive, positive_int, register_rule

NOISE_KINDS = ("none", "gumbel", "dirichlet")


@register_rule("soft")
class SoftThinking(DecodeRule):
    params = (
        RuleParam(
            "max_topk",
            int,
            15,
            "soft: at most this many tokens in the concept-token mixture (1 = greedy)",
            positive_int,
            "must be an int >= 1",
            "Use 1 for greedy-equivalent soft thinking, 10-20 typically.",
        ),
        RuleParam(
            "noise",
            str,
            "none",
            "randomized soft thinking: 'none', 'gumbel' (Gumbel-softmax) or 'dirichlet'",
            lambda v: v in NOISE_KINDS,
            f"must be one of {NOISE_KINDS}",
            "Use 'none' for plain Soft Thinking.",
            normalise=lambda v: "none" if v is None else v.lower() if isinstance(v, str) else v,
        ),
        RuleParam(
            "gumbel_tau",
            float,
            1.0,
            "Gumbel-softmax temperature (> 0)",
            positive,
            "must be > 0",
            "Use 1.0 for the default.",
        ),
        RuleParam(
            "dirichlet_alpha",
            float,
            1.0,
            "Dirichlet concentration scale: weights ~ Dir(alpha * p), > 0",
            positive,
            "must be > 0",
            "Use 1.0 for the default.",
        ),
    )
    needs_thinking = True

    def step(self, inputs: StepInput) -> Step:
        s, c = self.sampling, self.config
        ids, weights = inputs.truncated(top_k=s.top_k, top_p=s.top_p, min_p=s.min_p, max_keep=c.max_topk)
        if c.noise == "gumbel":
            weights = gumbel_softmax_weights(weights, c.gumbel_tau, inputs.random)
        elif c.noise == "dirichlet":
            weights = dirichlet_weights(weights, c.dirichlet_alpha, inputs.random)
        if c.noise == "none":
            visible = ids[:, 0]  # the weights are sorted: the top-1 is the largest
        else:
            visible = ids.gather(1, weights.argmax(dim=-1, keepdim=True)).squeeze(1)
        return Step(visible, ids, weights, soft=torch.ones_like(visible, dtype=torch.bool))
