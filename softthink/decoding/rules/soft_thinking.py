"""`soft`: Soft Thinking — feed a concept token, the probability-weighted mixture of the kept tokens' embeddings.

Kept tokens: softmax(logits / T) -> top-k -> top-p -> min-p -> at most ``max_topk`` -> renormalised. With
``noise="gumbel"`` the weights become Gumbel-softmax(log w, tau); with ``noise="dirichlet"`` they are drawn from
Dir(alpha * w). The visible token is the kept token of largest (final) weight, i.e. the top-1 without noise.
"""
from __future__ import annotations

from softthink.decoding.processors import dirichlet_weights, gumbel_softmax_weights, truncate_sorted
from softthink.decoding.rules.base import DecodeRule, Step, StepInput, register_rule


@register_rule("soft")
class SoftThinking(DecodeRule):
    uses = ("max_topk", "noise", "gumbel_tau", "dirichlet_alpha")
    needs_thinking = True

    def step(self, inputs: StepInput) -> Step:
        s, c = self.sampling, self.config
        ids, weights = truncate_sorted(inputs.probs, top_k=s.top_k, top_p=s.top_p, min_p=s.min_p, max_keep=c.max_topk)
        if c.noise == "gumbel":
            weights = gumbel_softmax_weights(weights, c.gumbel_tau, inputs.random)
        elif c.noise == "dirichlet":
            weights = dirichlet_weights(weights, c.dirichlet_alpha, inputs.random)
        visible = ids.gather(1, weights.argmax(dim=-1, keepdim=True)).squeeze(1)
        return Step(visible, ids, weights, soft=weights.new_ones(weights.shape[0], dtype=bool))
