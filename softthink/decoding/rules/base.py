"""The per-step decode-rule interface and the mode registry.

The loop (`softthink.decoding.loop`) owns the mechanics: prefill, KV cache, masks, phases, stopping and output.
A rule owns only the decision of one step: given the step's distribution, which visible token to show and which
weighted set of tokens to feed back (one token with weight 1 for a discrete step, a concept-token mixture for a
soft step). Every mode is one small rule class registered with `@register_rule`.
"""
from __future__ import annotations

from dataclasses import dataclass, field, fields
from typing import TYPE_CHECKING, ClassVar

import torch

from softthink.decoding.randomness import GLOBAL_RANDOMNESS, Randomness
from softthink.errors import SoftthinkConfigError, unknown_name_message

if TYPE_CHECKING:
    from softthink.decoding.config import DecodeConfig, SamplingParams

# Config fields that belong to one mode or another; a rule lists the ones it reads in `uses`.
MODE_FIELDS = ("max_topk", "entropy_threshold", "noise", "gumbel_tau", "dirichlet_alpha", "moi_beta",
               "swir_window", "swir_max_switches", "fork_temperature", "fork_threshold")


@dataclass
class StepInput:
    """What a rule sees at one step, for the rows it decides (all tensors share the row order).

    Attributes:
        logits: ``[b, vocab]`` raw next-token logits.
        probs: ``[b, vocab]`` float32 ``softmax(logits / temperature)`` at the phase's temperature.
        entropy: ``[b]`` entropy of ``probs`` in nats.
        state: the rule's per-row state tensors (see `DecodeRule.init_state`); a rule updates it in place.
        random: where the rule's random draws come from (`softthink.decoding.randomness`); a rule never calls
            torch's RNG itself, so per-prompt seeds can make each row's draws independent of the batch.
    """

    logits: torch.Tensor
    probs: torch.Tensor
    entropy: torch.Tensor
    state: dict[str, torch.Tensor] = field(default_factory=dict)
    random: Randomness = GLOBAL_RANDOMNESS


@dataclass
class Step:
    """A rule's decision for a batch of rows.

    Attributes:
        token_ids: ``[b]`` the visible token of each row (the text the step shows).
        kept_ids: ``[b, K]`` the tokens fed back; ``[b, 1]`` for a discrete step.
        weights: ``[b, K]`` float32 (or float64) mixture weights, rows sum to 1 (0 for padding).
        soft: ``[b]`` bool, True where the fed input is a concept-token mixture.
    """

    token_ids: torch.Tensor
    kept_ids: torch.Tensor
    weights: torch.Tensor
    soft: torch.Tensor

    @classmethod
    def discrete(cls, token_ids: torch.Tensor) -> "Step":
        """A discrete step: feed the visible token itself."""
        ones = torch.ones(token_ids.shape[0], 1, dtype=torch.float32, device=token_ids.device)
        return cls(token_ids, token_ids[:, None], ones, torch.zeros_like(token_ids, dtype=torch.bool))

    def width(self, k: int) -> "Step":
        """The same step with ``kept_ids``/``weights`` padded (id 0, weight 0) to width ``k``."""
        pad = k - self.kept_ids.shape[1]
        if pad <= 0:
            return self
        return Step(self.token_ids, torch.nn.functional.pad(self.kept_ids, (0, pad)),
                    torch.nn.functional.pad(self.weights, (0, pad)), self.soft)


def merge_steps(take_first: torch.Tensor, first: Step, second: Step) -> Step:
    """Row-wise choice between two steps over the same rows: ``first`` where ``take_first`` else ``second``."""
    k = max(first.kept_ids.shape[1], second.kept_ids.shape[1])
    first, second = first.width(k), second.width(k)
    row = take_first[:, None]
    return Step(torch.where(take_first, first.token_ids, second.token_ids),
                torch.where(row, first.kept_ids, second.kept_ids),
                torch.where(row, first.weights, second.weights),
                torch.where(take_first, first.soft, second.soft))


class DecodeRule:
    """Base class of decode rules. Subclasses set `name`, `uses`, `needs_thinking` and implement `step`.

    ``sampling`` is the phase's discrete sampling parameters: rules that pick a discrete token use them.
    """

    name: ClassVar[str] = ""
    uses: ClassVar[tuple[str, ...]] = ()
    """Mode-specific config fields this rule reads (others set to non-defaults trigger a no-effect warning)."""
    needs_thinking: ClassVar[bool] = False
    """True for rules that only make sense during a thinking phase (every soft mode)."""

    def __init__(self, config: "DecodeConfig", sampling: "SamplingParams"):
        self.config = config
        self.sampling = sampling

    @classmethod
    def validate_config(cls, config: "DecodeConfig") -> None:
        """Raise `SoftthinkConfigError` if ``config`` lacks something this rule needs (override as needed)."""

    @classmethod
    def mode_fields_unused(cls, config: "DecodeConfig") -> list[str]:
        """Mode-specific fields set away from their defaults that this rule would ignore."""
        from softthink.decoding.config import DecodeConfig

        defaults = {f.name: f.default for f in fields(DecodeConfig)}
        return [name for name in MODE_FIELDS if name not in cls.uses and getattr(config, name) != defaults[name]]

    def init_state(self, batch_size: int, device: torch.device) -> dict[str, torch.Tensor]:
        """Per-row state tensors (first dimension = rows). The loop selects rows of them when the batch shrinks."""
        return {}

    def step(self, inputs: StepInput) -> Step:
        raise NotImplementedError


_RULES: dict[str, type[DecodeRule]] = {}


def register_rule(name: str):
    """Class decorator adding a rule to the mode registry under ``name``."""

    def decorate(cls: type[DecodeRule]) -> type[DecodeRule]:
        if name in _RULES:
            raise ValueError(f"decode mode {name!r} is registered twice ({_RULES[name].__name__}, {cls.__name__})")
        cls.name = name
        _RULES[name] = cls
        return cls

    return decorate


def rule_class(name: str) -> type[DecodeRule]:
    """The rule class of mode ``name``; unknown names raise with suggestions."""
    if name not in _RULES:
        raise SoftthinkConfigError(unknown_name_message("decode mode", name, list(_RULES)), param="mode", value=name)
    return _RULES[name]


def registered_modes() -> list[str]:
    return sorted(_RULES)
