"""`gated`: Soft Thinking only at forking steps — entropy at or above ``entropy_threshold`` nats — and discrete
decoding (with the thinking phase's sampling parameters) elsewhere."""

from __future__ import annotations

from typing import TYPE_CHECKING

from softthink.analysis.forking import FORKING_ENTROPY_NATS
from softthink.decoding.rules.base import (
    DecodeRule,
    RuleParam,
    Step,
    StepInput,
    merge_steps,
    non_negative_or_none,
    register_rule,
)
from softthink.decoding.rules.discrete import Discrete
from softthink.decoding.rules.soft_thinking import SoftThinking
from softthink.errors import SoftthinkConfigError

if TYPE_CHECKING:
    from softthink.decoding.config import DecodeConfig


@register_rule("gated")
class EntropyGated(DecodeRule):
    params = (
        RuleParam(
            "entropy_threshold",
            float | None,
            None,
            "gated: soft step when the step's entropy (nats) is >= this, discrete otherwise",
            non_negative_or_none,
            "must be >= 0 nats",
            "0 makes every step soft; None disables gating.",
        ),
    )
    uses = SoftThinking.uses + ("entropy_threshold",)
    needs_thinking = True

    def __init__(self, config, sampling):
        super().__init__(config, sampling)
        self.threshold = self.required_threshold(config)
        self.inner = SoftThinking(config, sampling)
        self.fallback = Discrete(config, sampling)

    @classmethod
    def validate_config(cls, config) -> None:
        cls.required_threshold(config)

    @staticmethod
    def required_threshold(config: DecodeConfig) -> float:
        """``config.entropy_threshold``, or `SoftthinkConfigError` when it is None (the gate needs a threshold)."""
        if config.entropy_threshold is None:
            raise SoftthinkConfigError(
                "decode.entropy_threshold is required by mode 'gated' (soft steps where entropy >= threshold). "
                f"Set it in nats, e.g. {FORKING_ENTROPY_NATS} (the 80th-percentile entropy reported for Qwen3), or use "
                "mode 'soft'.",
                param="entropy_threshold",
                value=None,
            )
        return config.entropy_threshold

    def step(self, inputs: StepInput) -> Step:
        gate = inputs.entropy >= self.threshold
        s = self.sampling
        if s.do_sample:  # one filtering pass for both branches: the sampled fallback's, whose prefix is the soft one
            inputs.truncated(top_k=s.top_k, top_p=s.top_p, min_p=s.min_p)
        return merge_steps(gate, self.inner.step(inputs), self.fallback.step(inputs))
