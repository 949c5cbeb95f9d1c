"""`swir` (SwiReasoning-style): switch between soft and discrete thinking by the entropy trend.

Each row starts in soft mode with the first step's entropy as its reference. A soft row switches to discrete
when the step's entropy falls below the reference (the model grew confident); a discrete row switches to soft
when the entropy rises above it. Every switch resets the reference to the entropy at the switch. A row must stay
``swir_window`` steps in a mode before it may switch again, and makes at most ``swir_max_switches`` switches
(then it keeps its current mode). The step is then decided in the (possibly new) mode: a concept token like
`soft`, or a discrete token with the thinking phase's sampling parameters.
"""

from __future__ import annotations

import torch

from softthink.decoding.rules.base import (
    DecodeRule,
    RuleParam,
    Step,
    StepInput,
    merge_steps,
    positive_int,
    register_rule,
)
from softthink.decoding.rules.discrete import Discrete
from softthink.decoding.rules.soft_thinking import SoftThinking


def swir_update(
    state: dict[str, torch.Tensor], entropy: torch.Tensor, window: int, max_switches: int | None
) -> torch.Tensor:
    """Advance the per-row switching state by one step (in place) and return the soft-mode mask."""
    soft, reference, dwell, switches = state["soft"], state["reference"], state["dwell"], state["switches"]
    fresh = torch.isnan(reference)
    reference.copy_(torch.where(fresh, entropy.to(reference.dtype), reference))
    dwell.add_(1)
    trend_says_switch = torch.where(soft, entropy < reference, entropy > reference)
    allowed = (dwell >= window) & ~fresh
    if max_switches is not None:
        allowed &= switches < max_switches
    switch = trend_says_switch & allowed
    soft.copy_(soft ^ switch)
    reference.copy_(torch.where(switch, entropy.to(reference.dtype), reference))
    dwell.masked_fill_(switch, 0)
    switches.add_(switch.long())
    return soft.clone()


@register_rule("swir")
class SwitchingReasoning(DecodeRule):
    params = (
        RuleParam(
            "swir_window",
            int,
            1,
            "swir: minimum steps to stay in a mode before switching again (>= 1)",
            positive_int,
            "must be an int >= 1",
            "Use 1 to allow a switch at every step.",
        ),
        RuleParam(
            "swir_max_switches",
            int | None,
            None,
            "swir: cap on mode switches per row; None = unlimited",
            lambda v: v is None or (isinstance(v, int) and not isinstance(v, bool) and v >= 0),
            "must be an int >= 0 or None",
            "None means no cap.",
        ),
    )
    uses = SoftThinking.uses + ("swir_window", "swir_max_switches")
    needs_thinking = True

    def __init__(self, config, sampling):
        super().__init__(config, sampling)
        self.soft_rule = SoftThinking(config, sampling)
        self.discrete_rule = Discrete(config, sampling)

    def init_state(self, batch_size: int, device: torch.device) -> dict[str, torch.Tensor]:
        return {
            "soft": torch.ones(batch_size, dtype=torch.bool, device=device),
            "reference": torch.full((batch_size,), float("nan"), dtype=torch.float64, device=device),
            "dwell": torch.zeros(batch_size, dtype=torch.long, device=device),
            "switches": torch.zeros(batch_size, dtype=torch.long, device=device),
        }

    def step(self, inputs: StepInput) -> Step:
        soft = swir_update(inputs.state, inputs.entropy, self.config.swir_window, self.config.swir_max_switches)
        return merge_steps(soft, self.soft_rule.step(inputs), self.discrete_rule.step(inputs))
