"""`discrete`: ordinary decoding — greedy, or sampling with temperature / top-k / top-p / min-p."""

from __future__ import annotations

import torch

from softthink.decoding.processors import sample_columns
from softthink.decoding.rules.base import DecodeRule, Step, StepInput, register_rule


@register_rule("discrete")
class Discrete(DecodeRule):
    """One token per step. Greedy takes the argmax of the raw logits (as ``model.generate`` does); sampling draws
    from the filtered, renormalised ``softmax(logits / temperature)``."""

    def step(self, inputs: StepInput) -> Step:
        return Step.discrete(self.pick(inputs))

    def pick(self, inputs: StepInput) -> torch.Tensor:
        """The discrete token of each row under this phase's sampling parameters."""
        s = self.sampling
        if not s.do_sample:
            return inputs.logits.argmax(dim=-1)
        ids, weights = inputs.truncated(top_k=s.top_k, top_p=s.top_p, min_p=s.min_p)
        return ids.gather(1, sample_columns(weights, inputs.random)[:, None]).squeeze(1)
