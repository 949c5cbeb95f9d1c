"""`SoftRLConfig`: `SoftthinkGRPOConfig` plus the fields of the soft-thinking RL recipes.

- ``soft_grpo`` (SofT-GRPO, arXiv 2511.06411): soft rollouts with Gumbel-softmax weights at temperature
  ``gumbel_tau``; a soft step's log-probability is the Gumbel log-density of its perturbed log-weights
  (`softthink.rl.soft_objectives.gumbel_step_logp`). Defaults are the authors' training script
  (``SofT-GRPO-deepscaler-8k.sh``): ``gumbel_tau = 0.1``, top-k 5 (``max_topk = 5``), top-p 0.95, temperature 1.
- ``soft_gaussian`` ("Soft Tokens, Hard Truths", arXiv 2509.19170): Gaussian noise of scale ``gaussian_sigma`` on
  the fed embedding; a soft step's log-probability is ``log N(h; mu_theta, sigma^2 I)``. ``gaussian_variant``:
  ``"soft"`` (the mixture at the think temperature, the paper's 0.5), ``"fuzzy"`` (the mixture at
  ``fuzzy_temperature``, the paper's 1e-4, so it is nearly the top token's embedding) or ``"hard"`` (a token
  sampled from the kept distribution, fed as its embedding plus the noise; log-prob ``log p~(x) + log N``).

Both recipes keep trl's GRPO group advantages, PPO clipping and loss aggregation; answer-phase (and other discrete)
tokens use the ordinary token log-prob at their phase's temperature. The rollout goes through softthink's decode
loop (`softthink.rl.soft_rollout`); ``rollout_mode`` is ``soft`` or ``gated`` (``entropy_threshold``),
``think_end`` / ``max_think_tokens`` are as in `softthink.generate`, and the think phase uses trl's
``temperature``, ``top_k``, ``top_p`` and ``min_p``; ``answer_do_sample`` / ``answer_temperature`` set the
answer phase.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from softthink.errors import SoftthinkConfigError, unknown_name_message
from softthink.rl.config import RECIPE_NAMES, SoftthinkGRPOConfig

SOFT_RECIPE_NAMES = ("soft_grpo", "soft_gaussian")
"""The soft-thinking recipes (`SoftRLConfig`, `softthink.rl.soft_trainer.SoftRLTrainer`)."""

ROLLOUT_MODES = ("soft", "gated")
"""Decode modes a soft recipe can roll out with: their soft steps mix the kept tokens with softthink's weights."""

GAUSSIAN_VARIANTS = ("soft", "fuzzy", "hard")

HARD_GUMBEL_TAU = 1e-6
"""``gaussian_variant="hard"`` samples its token by Gumbel-max: Gumbel-softmax at this temperature is one-hot."""


def _help(default: Any, text: str) -> Any:
    return field(default=default, metadata={"help": text})


@dataclass
class SoftRLConfig(SoftthinkGRPOConfig):
    """`SoftthinkGRPOConfig` for the soft-thinking recipes (module docstring). Every other field keeps its meaning.

    Parameters:
        rollout_mode: "soft" | "gated"; entropy_threshold: the gate (nats) of "gated".
        rollout_noise: decode-loop weight noise: "gumbel" (soft_grpo, required) | "dirichlet" | "none".
        gumbel_tau: Gumbel-softmax temperature (> 0); dirichlet_alpha: Dirichlet scale (> 0).
        max_topk: tokens kept in a mixture (>= 1).
        gaussian_sigma: std of the embedding noise (> 0 for soft_gaussian; 0 = none for soft_grpo).
        gaussian_variant: "soft" | "fuzzy" | "hard"; fuzzy_temperature: fuzzy's mixture temperature (> 0).
        think_end / max_think_tokens: as in `softthink.DecodeConfig`.
        answer_do_sample / answer_temperature: answer-phase sampling (None = the think phase's temperature).
        rollout_batch_size: continuous batching of the rollouts with this many slots (None = all at once).
    """

    recipe_names = SOFT_RECIPE_NAMES

    recipe: str = _help("soft_grpo", "Soft-thinking objective: 'soft_grpo' or 'soft_gaussian'.")
    rollout_mode: str = _help("soft", "Decode mode of the rollouts: 'soft' or 'gated'.")
    rollout_noise: str = _help("gumbel", "Decode-loop weight noise: 'gumbel', 'dirichlet' or 'none'.")
    gumbel_tau: float = _help(0.1, "Gumbel-softmax temperature of the soft weights (> 0; SofT-GRPO: 0.1).")
    dirichlet_alpha: float = _help(1.0, "Dirichlet noise scale: weights ~ Dir(alpha * p) (> 0).")
    max_topk: int = _help(5, "Tokens kept in a concept-token mixture (>= 1).")
    entropy_threshold: float | None = _help(None, "rollout_mode='gated': soft steps where entropy >= this (nats).")
    gaussian_sigma: float = _help(0.0, "Std of the Gaussian noise on soft steps' embeddings (soft_gaussian: > 0).")
    gaussian_variant: str = _help("soft", "soft_gaussian variant: 'soft', 'fuzzy' or 'hard'.")
    fuzzy_temperature: float = _help(1e-4, "gaussian_variant='fuzzy': temperature of the mixture (> 0).")
    think_end: str | None = _help("auto", "Think-end marker, as in softthink.DecodeConfig.think_end.")
    max_think_tokens: int | None = _help(None, "Thinking budget in tokens (None: only max_completion_length).")
    answer_do_sample: bool = _help(True, "Sample answer tokens (False: greedy answers).")
    answer_temperature: float | None = _help(None, "Answer-phase temperature (None: the think temperature).")
    rollout_batch_size: int | None = _help(
        None,
        "Slots of the rollout decode (continuous batching: a finished completion's slot takes the next one at "
        "once; the rollout is the same). None: every completion of the generation batch at once.",
    )

    def _validate_recipe_fields(self) -> None:
        super()._validate_recipe_fields()
        self._check_soft_fields()

    def _check_soft_fields(self) -> None:
        if self.rollout_mode not in ROLLOUT_MODES:
            raise SoftthinkConfigError(
                f"rollout_mode={self.rollout_mode!r} is not a soft mode: the soft recipes train the concept tokens "
                f"that a soft mode feeds. {unknown_name_message('rollout mode', str(self.rollout_mode), ROLLOUT_MODES)}"
                " Use recipe 'full' (or 'forking') for discrete-token RL.",
                param="rollout_mode",
                value=self.rollout_mode,
            )
        if self.rollout_noise not in ("gumbel", "dirichlet", "none"):
            self._fail("rollout_noise", "must be 'gumbel', 'dirichlet' or 'none'", "SofT-GRPO uses 'gumbel'.")
        for name in ("gumbel_tau", "dirichlet_alpha", "fuzzy_temperature"):
            if not _positive(getattr(self, name)):
                self._fail(name, "must be > 0", "SofT-GRPO uses gumbel_tau=0.1; fuzzy tokens use 1e-4.")
        if not (isinstance(self.max_topk, int) and not isinstance(self.max_topk, bool) and self.max_topk >= 1):
            self._fail("max_topk", "must be an int >= 1", "SofT-GRPO keeps 5 tokens.")
        if not (isinstance(self.gaussian_sigma, (int, float)) and self.gaussian_sigma >= 0):
            self._fail("gaussian_sigma", "must be >= 0", "Use e.g. 0.5 times the embeddings' RMS.")
        if self.gaussian_variant not in GAUSSIAN_VARIANTS:
            raise SoftthinkConfigError(
                unknown_name_message("gaussian_variant", str(self.gaussian_variant), GAUSSIAN_VARIANTS),
                param="gaussian_variant",
                value=self.gaussian_variant,
            )
        if self.rollout_mode == "gated" and self.entropy_threshold is None:
            self._fail("entropy_threshold", "is required by rollout_mode='gated'", "Set it in nats, e.g. 0.672.")
        if self.recipe == "soft_grpo":
            if self.rollout_noise != "gumbel":
                self._fail(
                    "rollout_noise",
                    "must be 'gumbel' for recipe 'soft_grpo' (its step log-prob is the Gumbel noise's density)",
                    "Set rollout_noise: gumbel, or use recipe 'soft_gaussian' with Gaussian embedding noise.",
                )
        elif self.recipe == "soft_gaussian":
            if not self.gaussian_sigma > 0:
                self._fail(
                    "gaussian_sigma",
                    "must be > 0 for recipe 'soft_gaussian' (its step log-prob is the Gaussian noise's density)",
                    "Set e.g. gaussian_sigma: 0.5.",
                )
            if self.rollout_noise != "none":
                self._fail(
                    "rollout_noise",
                    "must be 'none' for recipe 'soft_gaussian' (its noise is on the embedding, not the weights)",
                    "Set rollout_noise: none.",
                )
        if self.rollout_batch_size is not None and not (
            isinstance(self.rollout_batch_size, int)
            and not isinstance(self.rollout_batch_size, bool)
            and self.rollout_batch_size >= 1
        ):
            self._fail("rollout_batch_size", "must be an int >= 1 or null", "Use null for all completions at once.")
        if self.answer_temperature is not None and not _positive(self.answer_temperature):
            self._fail("answer_temperature", "must be > 0 or null", "Use null for the think temperature.")
        if not _positive(self.temperature):
            self._fail("temperature", "must be > 0", "Use 1.0.")

    def _fail(self, name: str, rule: str, remedy: str) -> None:
        value = getattr(self, name)
        raise SoftthinkConfigError(f"{name}={value!r} {rule}. {remedy}", param=name, value=value)

    def decode_config(self):
        """The `softthink.DecodeConfig` of this recipe's rollouts."""
        from softthink.decoding.config import DecodeConfig

        hard = self.recipe == "soft_gaussian" and self.gaussian_variant == "hard"
        fuzzy = self.recipe == "soft_gaussian" and self.gaussian_variant == "fuzzy"
        think_temperature = self.fuzzy_temperature if fuzzy else self.temperature
        answer_temperature = self.answer_temperature
        if answer_temperature is None and fuzzy:
            answer_temperature = self.temperature
        values: dict[str, Any] = dict(
            mode=self.rollout_mode,
            max_new_tokens=self.max_completion_length,
            think_end=self.think_end,
            max_think_tokens=self.max_think_tokens,
            do_sample=True,  # gated mode's discrete thinking steps are sampled
            temperature=think_temperature,
            top_k=self.top_k or 0,
            top_p=self.top_p,
            min_p=self.min_p or 0.0,
            answer_do_sample=self.answer_do_sample,
            answer_temperature=answer_temperature,
            max_topk=self.max_topk,
            noise="gumbel" if hard else self.rollout_noise,
            seed=None,
            trace=False,
            chat_template=False,
        )
        if values["noise"] == "gumbel":
            values["gumbel_tau"] = HARD_GUMBEL_TAU if hard else self.gumbel_tau
        if values["noise"] == "dirichlet":
            values["dirichlet_alpha"] = self.dirichlet_alpha
        if self.rollout_mode == "gated":
            values["entropy_threshold"] = self.entropy_threshold
        try:
            return DecodeConfig(**values)
        except SoftthinkConfigError as err:
            raise SoftthinkConfigError(
                f"the rollout's decode config is invalid: {err}", param=err.param, value=err.value
            ) from err

    @property
    def think_temperature(self) -> float:
        """Temperature of thinking steps (the mixture's, for the fuzzy variant)."""
        fuzzy = self.recipe == "soft_gaussian" and self.gaussian_variant == "fuzzy"
        return self.fuzzy_temperature if fuzzy else self.temperature

    @property
    def answer_step_temperature(self) -> float:
        """Temperature of answer-phase steps."""
        return self.temperature if self.answer_temperature is None else self.answer_temperature


def _positive(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and value > 0


def config_class(recipe: str | None) -> type[SoftthinkGRPOConfig]:
    """The config class of ``recipe``: `SoftRLConfig` for the soft recipes, `SoftthinkGRPOConfig` otherwise."""
    return SoftRLConfig if recipe in SOFT_RECIPE_NAMES else SoftthinkGRPOConfig


ALL_RECIPE_NAMES = (*RECIPE_NAMES, *SOFT_RECIPE_NAMES)
"""Every recipe name `softthink.rl.train` can run."""


def check_soft_keys(config: dict[str, Any], source: str) -> None:
    """Refuse soft-recipe keys (e.g. ``gumbel_tau``) in a non-soft recipe: they would have no effect."""
    if config.get("recipe") in SOFT_RECIPE_NAMES:
        return
    import dataclasses

    base = {f.name for f in dataclasses.fields(SoftthinkGRPOConfig)}
    soft_only = sorted(k for k in config if k not in base and k in {f.name for f in dataclasses.fields(SoftRLConfig)})
    if soft_only:
        raise SoftthinkConfigError(
            f"{source}: {', '.join(soft_only)} {'applies' if len(soft_only) == 1 else 'apply'} only to the soft "
            f"recipes ({', '.join(SOFT_RECIPE_NAMES)}), but recipe={config.get('recipe')!r}. Remove "
            f"{'it' if len(soft_only) == 1 else 'them'} or set recipe: soft_grpo / soft_gaussian.",
            param=soft_only[0],
            value=config[soft_only[0]],
        )
