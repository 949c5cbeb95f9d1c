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
- ``gppo``: gradient-preserving clipping (GPPO, Klear-Reasoner, arXiv 2508.07629; CE-GPPO, arXiv 2509.20712):
  the loss value of clip-higher PPO, but clipped tokens keep the gradient ``beta (1 -/+ eps) A grad log p``, with
  ``gppo_beta1`` on low-clipped (negative-advantage) and ``gppo_beta2`` on high-clipped (positive-advantage)
  tokens. ``beta1 = beta2 = 1`` is GPPO (the default).
- ``entropy_advantage``: "Reasoning with Exploration: An Entropy Perspective" (Cheng et al., arXiv 2506.14758):
  the PPO term uses ``A'_t = A_t + min(entropy_adv_alpha * H_t.detach(), |A_t| / entropy_adv_kappa)``.

``selection`` ("micro_batch" | "batch") chooses where forking, Clip-Cov and KL-Cov take their entropy quantile,
covariance means and token budget: per micro-batch (trl's and the verl code's behaviour), or over the whole
optimiser batch (the accumulation window; the papers' batch-level threshold), so the selected tokens do not depend
on how gradient accumulation splits the batch.

Defaults are the papers': rho = 0.2; Clip-Cov r = 2e-4, band (1, 5); KL-Cov k = 2e-3 (their Qwen2.5-7B setting;
2e-4 for 32B), beta = 1; GPPO beta1 = beta2 = 1 with trl's epsilon / epsilon_high as the clip range; entropy
advantage alpha = 0.4, kappa = 2. (GPPO's beta1 = beta2 = 1 and the 0.2 / 0.28 clip-higher range are those of the
Klear-Reasoner README; its verl code also applies dual-clip (ratio capped at 3 for negative advantages), which trl
and this recipe do not. The entropy advantage's alpha and kappa are as written in phase 1 and could not be checked
against the paper's text here.)

Where this follows trl rather than the papers' code (stated so results can be compared):
- with ``selection="micro_batch"`` (default) the forking threshold is the quantile of the current micro-batch's
  token entropies (trl's ``get_high_entropy_mask``); ``selection="batch"`` takes it over the accumulation window;
- Clip-Cov and KL-Cov keep trl's clipped surrogate underneath; the reference KL-Cov code drops the PPO ratio
  clip. KL-Cov, GPPO's clipped-token gradient and the PPO clip act only on off-policy updates
  (``log p != log p_old``): with ``steps_per_generation == gradient_accumulation_steps`` and ``num_iterations ==
  1`` every update is on-policy, so they do nothing; the config warns (`ONE_PASS_NO_OPS`).
- entropies are those trl computes: of the policy at the rollout ``temperature``.
"""

from __future__ import annotations

import dataclasses
import warnings
from dataclasses import dataclass, field
from typing import ClassVar

from trl import GRPOConfig

from softthink.analysis.forking import DEFAULT_QUANTILE, FORKING_ENTROPY_NATS
from softthink.config_io import check_type
from softthink.deprecation import renamed_attributes
from softthink.errors import SoftthinkConfigError, unknown_name_message
from softthink.rl.objectives import (
    ENTROPY_ADVANTAGE_ALPHA,
    ENTROPY_ADVANTAGE_KAPPA,
    GPPOParams,
    check_entropy_advantage,
    check_selection_scope,
)

RECIPE_NAMES = ("full", "forking", "clip_cov", "kl_cov", "gppo", "entropy_advantage")
"""The objectives a `SoftthinkGRPOTrainer` can optimise."""

FORKING_NORMALIZATIONS = ("all_tokens", "selected_tokens")
"""How the forking recipe averages its token losses (see `SoftthinkGRPOConfig.forking_normalization`)."""

COV_LOSS_TYPES = ("grpo", "bnpo", "dr_grpo", "dapo")
"""trl loss types that use the clipped PPO surrogate, which Clip-Cov, KL-Cov, GPPO and the entropy advantage are
defined on."""

SELECTING_RECIPES = ("forking", "clip_cov", "kl_cov")
"""Recipes that select tokens, hence read `SoftthinkGRPOConfig.selection`."""

ONE_PASS_NO_OPS = ("kl_cov", "gppo")
"""Recipes whose extra term is zero when every update is on-policy (one optimisation pass per rollout)."""


@dataclass
class SoftthinkGRPOConfig(GRPOConfig):
    """trl `GRPOConfig` with the softthink recipe fields. Every trl field keeps its meaning and default.

    Parameters that choose the recipe:
        recipe: "full" | "forking" | "clip_cov" | "kl_cov" | "gppo" | "entropy_advantage".
        forking_quantile: fraction rho of highest-entropy tokens that keep their gradient (forking recipe), and the
            fraction counted as "forking" in the entropy-dynamics log for every recipe.
        forking_normalization: "all_tokens" (the paper's Eq.: masked token losses divided by the number of all
            completion tokens, i.e. trl's ``top_entropy_quantile`` as is) or "selected_tokens" (divided by the
            number of selected tokens, so the loss scale does not shrink by ~rho).
        clip_cov_fraction / clip_cov_low / clip_cov_high: Clip-Cov's r and its covariance band (omega_low, omega_high).
        kl_cov_fraction / kl_cov_coef: KL-Cov's k and beta.
        selection: "micro_batch" | "batch": scope of the forking / Clip-Cov / KL-Cov token selection.
        gppo_beta1 / gppo_beta2: GPPO / CE-GPPO gradient weights of low- / high-clipped tokens (>= 0; 1 = GPPO).
        entropy_adv_alpha / entropy_adv_kappa: alpha (>= 0) and kappa (> 0) of the entropy-shaped advantage.
        entropy_log_threshold: nats; the dynamics log reports the fraction of tokens above it.
    """

    recipe_names: ClassVar[tuple[str, ...]] = RECIPE_NAMES
    """The recipes this config class accepts (`softthink.rl.soft_config.SoftRLConfig` accepts the soft ones)."""

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
    selection: str = field(
        default="micro_batch",
        metadata={"help": "Token-selection scope of forking / clip_cov / kl_cov: 'micro_batch' or 'batch'."},
    )
    gppo_beta1: float = field(
        default=1.0, metadata={"help": "GPPO beta1: gradient weight of low-clipped (A < 0) tokens, >= 0."}
    )
    gppo_beta2: float = field(
        default=1.0, metadata={"help": "GPPO beta2: gradient weight of high-clipped (A > 0) tokens, >= 0."}
    )
    entropy_adv_alpha: float = field(
        default=ENTROPY_ADVANTAGE_ALPHA, metadata={"help": "Entropy advantage alpha: weight of H_t.detach(), >= 0."}
    )
    entropy_adv_kappa: float = field(
        default=ENTROPY_ADVANTAGE_KAPPA, metadata={"help": "Entropy advantage kappa: cap |A| / kappa, > 0."}
    )
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
        self._warn_no_ops()

    def _warn_no_ops(self) -> None:
        """Checks on trl's derived sizes, and warnings when the configuration makes the recipe's extra term a no-op."""
        if self.selection == "batch" and self.steps_per_generation % self.gradient_accumulation_steps:
            raise SoftthinkConfigError(
                f"selection='batch' needs steps_per_generation ({self.steps_per_generation}) to be a multiple of "
                f"gradient_accumulation_steps ({self.gradient_accumulation_steps}), so every optimiser batch lies "
                "inside one generation batch. Change steps_per_generation, or use selection='micro_batch'.",
                param="steps_per_generation",
                value=self.steps_per_generation,
            )
        on_policy = self.num_iterations == 1 and self.steps_per_generation == self.gradient_accumulation_steps
        if self.recipe in ONE_PASS_NO_OPS and on_policy:
            what = "the KL-Cov penalty |log p - log p_old|" if self.recipe == "kl_cov" else "GPPO's clipped gradient"
            warnings.warn(
                f"recipe={self.recipe!r} with num_iterations=1 and steps_per_generation == "
                f"gradient_accumulation_steps ({self.steps_per_generation}): every update is on-policy "
                f"(log p == log p_old), so {what} is always 0 and no token is ever clipped. Set num_iterations >= 2 "
                "or steps_per_generation to a multiple > 1 of gradient_accumulation_steps.",
                stacklevel=4,
            )
        if self.recipe == "gppo" and self.gppo_beta1 == 0 and self.gppo_beta2 == 0:
            warnings.warn(
                "recipe='gppo' with gppo_beta1 = gppo_beta2 = 0 gives clipped tokens no gradient: it is clip-higher "
                "PPO, i.e. recipe='full'. Use beta1 = beta2 = 1 for GPPO.",
                stacklevel=4,
            )
        if self.recipe == "kl_cov" and self.kl_cov_coef == 0:
            warnings.warn("recipe='kl_cov' with kl_cov_coef=0 adds no penalty: it is recipe='full'.", stacklevel=4)
        if self.recipe == "entropy_advantage" and self.entropy_adv_alpha == 0:
            warnings.warn(
                "recipe='entropy_advantage' with entropy_adv_alpha=0 leaves the advantages unchanged: it is "
                "recipe='full'. The paper uses alpha = 0.4.",
                stacklevel=4,
            )

    def _validate_recipe_fields(self) -> None:
        for own in _RECIPE_FIELDS:  # the softthink fields' types; trl's own fields are trl's to check
            check_type(own.name, getattr(self, own.name), own.type, what="rl")
        if self.recipe not in self.recipe_names:
            from softthink.rl.soft_config import SOFT_RECIPE_NAMES

            hint = (
                " Soft-thinking recipes are configured by softthink.rl.soft_config.SoftRLConfig."
                if self.recipe in SOFT_RECIPE_NAMES
                else ""
            )
            raise SoftthinkConfigError(
                unknown_name_message("RL recipe", str(self.recipe), self.recipe_names) + hint,
                param="recipe",
                value=self.recipe,
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
        self._check_new_recipe_fields()
        if self.recipe in ("clip_cov", "kl_cov", "gppo", "entropy_advantage") and self.loss_type not in COV_LOSS_TYPES:
            raise SoftthinkConfigError(
                f"recipe={self.recipe!r} is defined on the clipped PPO surrogate, but loss_type={self.loss_type!r}. "
                f"Use one of {', '.join(COV_LOSS_TYPES)}.",
                param="loss_type",
                value=self.loss_type,
            )

    def _check_new_recipe_fields(self) -> None:
        """selection, GPPO and entropy-advantage fields, re-raised with the config field's name."""
        check_selection_scope(self.selection)  # its error names the field
        if self.recipe == "gppo" and (self.importance_sampling_level != "token" or self.delta is not None):
            raise SoftthinkConfigError(
                f"recipe='gppo' is defined on the token-level clipped ratio, but importance_sampling_level="
                f"{self.importance_sampling_level!r} and delta={self.delta!r}. Use importance_sampling_level='token' "
                "and delta=None.",
                param="importance_sampling_level",
                value=self.importance_sampling_level,
            )
        if self.selection != "micro_batch" and self.recipe not in SELECTING_RECIPES:
            warnings.warn(
                f"selection={self.selection!r} has no effect with recipe={self.recipe!r}; it applies to "
                f"{', '.join(SELECTING_RECIPES)}.",
                stacklevel=4,
            )
        try:
            high = self.epsilon if self.epsilon_high is None else self.epsilon_high  # trl's default, set later
            GPPOParams(self.epsilon, high, self.gppo_beta1, self.gppo_beta2)
        except SoftthinkConfigError as err:
            name = {"beta1": "gppo_beta1", "beta2": "gppo_beta2", "epsilon_low": "epsilon"}.get(err.param, err.param)
            raise SoftthinkConfigError(
                f"{name}={getattr(self, name)!r}: {err}", param=name, value=getattr(self, name)
            ) from err
        try:
            check_entropy_advantage(self.entropy_adv_alpha, self.entropy_adv_kappa)
        except SoftthinkConfigError as err:
            name = f"entropy_adv_{err.param}"
            raise SoftthinkConfigError(
                f"{name}={getattr(self, name)!r}: {err}", param=name, value=getattr(self, name)
            ) from err


_RECIPE_FIELDS = tuple(
    f for f in dataclasses.fields(SoftthinkGRPOConfig) if f.name in SoftthinkGRPOConfig.__annotations__
)
"""The fields `SoftthinkGRPOConfig` adds to trl's `GRPOConfig`."""


def _check_fraction(name: str, value: float) -> None:
    if not (isinstance(value, (int, float)) and 0.0 < value <= 1.0):
        raise SoftthinkConfigError(f"{name}={value!r} must be a fraction in (0, 1].", param=name, value=value)


__getattr__ = renamed_attributes(__name__, {"SofthinkGRPOConfig": "SoftthinkGRPOConfig"})  # misspelt pre-0.2 names
