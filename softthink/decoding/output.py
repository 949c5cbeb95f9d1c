"""What `softthink.generate` returns: the text, its phases, counts, stop reasons and a per-step trace."""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field
from typing import Any

STOP_REASONS = ("eos", "stop_string", "max_tokens", "stopping_criteria")  # the last: transformers criteria
THINK_END_REASONS = ("think_marker", "cold_stop", "think_budget")


@dataclass
class StepTrace:
    """Per generated position (all lists have one entry per generated token).

    Attributes:
        token_ids: the visible token.
        entropy: entropy in nats of the temperature-scaled full distribution, before any filtering.
        soft: True where a concept-token mixture was fed back.
        thinking: True for positions in the thinking phase (the think-end marker included).
        kept_ids / kept_weights: the tokens fed back and their mixture weights (one token, weight 1, when
            discrete). Empty lists when the config had ``trace=False``.
    """

    token_ids: list[int] = field(default_factory=list)
    entropy: list[float] = field(default_factory=list)
    soft: list[bool] = field(default_factory=list)
    thinking: list[bool] = field(default_factory=list)
    kept_ids: list[list[int]] = field(default_factory=list)
    kept_weights: list[list[float]] = field(default_factory=list)


@dataclass
class Generation:
    """One decoded sequence.

    ``text`` is the whole generated text (special tokens shown, final EOS dropped); ``thinking_text`` is the
    thinking phase without the marker; ``answer_text`` what follows the marker. Without a thinking phase,
    everything is answer.
    """

    text: str
    thinking_text: str
    answer_text: str
    token_ids: list[int]
    prompt: str
    prompt_token_ids: list[int]
    think_tokens: int
    answer_tokens: int
    soft_steps: int
    stop_reason: str
    think_end_reason: str | None
    mode: str
    trace: StepTrace

    @property
    def num_tokens(self) -> int:
        """Generated tokens in all (thinking + answer)."""
        return len(self.token_ids)

    @property
    def soft_fraction(self) -> float:
        """Share of thinking steps that were soft (0.0 without thinking steps)."""
        return self.soft_steps / self.think_tokens if self.think_tokens else 0.0

    @property
    def mean_entropy(self) -> float:
        """Mean per-step entropy in nats (NaN for an empty generation)."""
        return sum(self.trace.entropy) / len(self.trace.entropy) if self.trace.entropy else math.nan

    def to_dict(self, *, trace: bool = True) -> dict[str, Any]:
        """JSON-ready dict (with the derived counts); ``trace=False`` leaves out the per-step trace."""
        out = dataclasses.asdict(self)
        if not trace:
            out.pop("trace")
        out.update(num_tokens=self.num_tokens, soft_fraction=self.soft_fraction, mean_entropy=self.mean_entropy)
        return out
