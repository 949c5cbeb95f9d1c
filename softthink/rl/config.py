"""`SoftthinkGRPOConfig`: trl's `GRPOConfig` plus the fields that choose and tune a softthink RL recipe.

A recipe decides which completion tokens carry policy gradient, on top of trl's GRPO objective:

- ``full``: every completion token (plain trl GRPO).
- ``forking``: only the top ``forking_quantile`` (20 %) of tokens by entropy in each batch, as in "Beyond the 80/20
  Rule" (Wang et al., 2025). Implemented with trl's own ``top_entropy_quantile``.
- ``clip_cov``: Clip-Cov from "The Entropy Mechanism of Reinforcement Learning for Reasoning Language Models"
  (Cui et al., 2025): the gradient of a random ``clip_cov_fraction`` of the tokens whose centred covariance
  ``(A - mean A) * (log p - mean log p)`` lies in ``(clip_cov_low, clip_cov_high)`` is detached.
- ``kl_cov``: KL-Cov from the same paper: a penalty ``kl_cov_coef * |log p - log p_old|`` on the top
  ``kl_cov_fraction`` of tokens by that covariance.

Defaults are the papers': rho = 0.2; Clip-Cov r = 2e-4, band (1, 5); KL-Cov k = 2e-3 (their Qwen2.5-7B setting;
2e-4 for 32B), beta = 1.

Where this follows trl rather than the papers' code (stated so results can be compared):
- the forking threshold is the quantile of the current micro-batch's token entropies (trl's
  ``get_high_entropy_mask``), not of the whole rollout batch;
- Clip-Cov and KL-Cov select tokens per micro-batch (as the reference verl code does) and keep trl's clipped
  surrogate underneath; the reference KL-Cov code drops the PPO ratio clip. Both penalties act only on off-policy
  updates (``log p != log p_old``): with ``steps_per_generation == gradient_accumulation_steps`` and
  ``num_iterations == 1`` every update is on-policy, so KL-Cov adds nothing and the PPO clip never binds.
- entropies are those trl computes: of the policy at the rollout ``temperature``.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field

from trl import GRPOConfig

from softthink.analysis.forking import DEFAULT_QUANTILE, FORKING_ENTROPY_NATS
from softthink.deprecation import renamed_attributes
from softthink.errors import SoftthinkConfigError, unknown_name_message

RECIPE_NAMES = ("full", "forking", "clip_cov", "kl_cov")
"""The objectives a `SoftthinkGRPOTrainer` can optimise."""

FORKING_NORMALIZATIONS = ("all_tokens", "selected_tokens")
"""How the forking recipe averages its token losses (see `SoftthinkGRPOConfig.forking_normalization`)."""

COV_LOSS_TYPES = ("grpo", "bnpo", "dr_grpo", "dapo")
"""trl loss types that use the clipped PPO surrogate, which Clip-Cov and KL-Cov are defined on."""


@dataclass
class SoftthinkGRPOConfig(GRPOConfig):
    """trl `GRPOConfig` with the softthink recipe fields. Every trl field keeps its meaning and default.

    Parameters that choose the recipe:
        recipe: "full" | "forking" | "clip_cov" | "kl_cov".
        forking_quantile: fraction rho of highest-entropy tokens that keep their gradient (forking recipe), and the
            fraction counted as "forking" in the entropy-dynamics log for every recipe.
        forking_normalization: "all_tokens" (the paper's Eq.: masked token losses divided by the number of all
            completion tokens, i.e. trl's ``top_entropy_quantile`` as is) or "selected_tokens" (divided by the
            number of selected tokens, so the loss scale does not shrink by ~rho).
        clip_cov_fraction / clip_cov_low / clip_cov_high: Clip-Cov's r and its covariance band (omega_low, omega_high).
        kl_cov_fraction / kl_cov_coef: KL-Cov's k and beta.
        entropy_log_threshold: nats; the dynamics log reports the fraction of tokens above it.
    """

    recipe: str = field(default="full", metadata={"help": "Objective: 'full', 'forking', 'clip_cov' or 'kl_cov'."})
    forking_quantile: float = field(
        default=DEFAULT_QUANTILE,
        metadata={"help": "Fraction rho of highest-entropy tokens trained by the forking recipe, in (0, 1]."},
    )
    forking_normalization: str = field(
        default="all_tokens",
        metadata={"help": "'all_tokens' (paper) or 'selected_tokens': denominator of the forking token mean."},
    )
    clip_cov_fraction: float = field(
        default=2e-4, metadata={"help": "Clip-Cov r: fraction of all completion tokens whose gradient is detached."}
    )
    clip_cov_low: float = field(default=1.0, metadata={"help": "Clip-Cov omega_low: lower covariance bound."})
    clip_cov_high: float = field(default=5.0, metadata={"help": "Clip-Cov omega_high: upper covariance bound."})
    kl_cov_fraction: float = field(
        default=2e-3, metadata={"help": "KL-Cov k: fraction of completion tokens (top covariance) penalised."}
    )
    kl_cov_coef: float = field(default=1.0, metadata={"help": "KL-Cov beta: weight of |log p - log p_old|."})
    entropy_log_threshold: float = field(
        default=FORKING_ENTROPY_NATS,
        metadata={"help": "Nats; the dynamics log reports the fraction of tokens with entropy above it."},
    )

    def __post_init__(self):
        self._validate_recipe_fields()
        if self.recipe == "forking":
            # The forking recipe *is* trl's top_entropy_quantile; one knob, so the two cannot disagree.
            if self.top_entropy_quantile not in (1.0, self.forking_quantile):
                raise SoftthinkConfigError(
                    f"top_entropy_quantile={self.top_entropy_quantile} conflicts with forking_quantile="
                    f"{self.forking_quantile} under recipe='forking'. Set only forking_quantile.",
                    param="top_entropy_quantile",
                    value=self.top_entropy_quantile,
                )
            self.top_entropy_quantile = self.forking_quantile
        elif self.top_entropy_quantile != 1.0:
            raise SoftthinkConfigError(
                f"top_entropy_quantile={self.top_entropy_quantile} masks tokens by entropy, but recipe="
                f"{self.recipe!r}. Use recipe='forking' with forking_quantile={self.top_entropy_quantile} instead.",
                param="top_entropy_quantile",
                value=self.top_entropy_quantile,
            )
        super().__post_init__()

    def _validate_recipe_fields(self) -> None:
        if self.recipe not in RECIPE_NAMES:
            raise SoftthinkConfigError(
                unknown_name_message("RL recipe", str(self.recipe), RECIPE_NAMES), param="recipe", value=self.recipe
            )
        _check_fraction("forking_quantile", self.forking_quantile)
        if self.forking_normalization not in FORKING_NORMALIZATIONS:
            raise SoftthinkConfigError(
                unknown_name_message("forking_normalization", str(self.forking_normalization), FORKING_NORMALIZATIONS),
                param="forking_normalization",
                value=self.forking_normalization,
            )
        if self.forking_normalization != "all_tokens" and self.recipe != "forking":
            warnings.warn(
                f"forking_normalization={self.forking_normalization!r} has no effect with recipe="
                f"{self.recipe!r}; it only applies to recipe='forking'.",
                stacklevel=3,
            )
        _check_fraction("clip_cov_fraction", self.clip_cov_fraction)
        _check_fraction("kl_cov_fraction", self.kl_cov_fraction)
        if not self.clip_cov_low < self.clip_cov_high:
            raise SoftthinkConfigError(
                f"clip_cov_low={self.clip_cov_low} must be < clip_cov_high={self.clip_cov_high}: they bound the "
                "covariance band Clip-Cov samples from (paper: 1 and 5).",
                param="clip_cov_low",
                value=self.clip_cov_low,
            )
        if self.kl_cov_coef < 0:
            raise SoftthinkConfigError(
                f"kl_cov_coef={self.kl_cov_coef} must be >= 0 (a negative KL weight would push the policy away).",
                param="kl_cov_coef",
                value=self.kl_cov_coef,
            )
        if self.entropy_log_threshold < 0:
            raise SoftthinkConfigError(
                f"entropy_log_threshold={self.entropy_log_threshold} must be >= 0 nats.",
                param="entropy_log_threshold",
                value=self.entropy_log_threshold,
            )
        if self.recipe in ("clip_cov", "kl_cov") and self.loss_type not in COV_LOSS_TYPES:
            raise SoftthinkConfigError(
                f"recipe={self.recipe!r} is defined on the clipped PPO surrogate, but loss_type={self.loss_type!r}. "
                f"Use one of {', '.join(COV_LOSS_TYPES)}.",
                param="loss_type",
                value=self.loss_type,
            )


def _check_fraction(name: str, value: float) -> None:
    if not (isinstance(value, (int, float)) and 0.0 < value <= 1.0):
        raise SoftthinkConfigError(f"{name}={value!r} must be a fraction in (0, 1].", param=name, value=value)


__getattr__ = renamed_attributes(__name__, {"SofthinkGRPOConfig": "SoftthinkGRPOConfig"})  # misspelt pre-0.2 names
