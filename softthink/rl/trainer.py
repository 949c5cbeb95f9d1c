"""`SoftthinkGRPOTrainer`: trl's `GRPOTrainer` with the forking, Clip-Cov and KL-Cov recipes and entropy logging.

Seams overridden (everything else, generation, rewards, advantages, clipping, normalisation, is trl's):

- ``get_high_entropy_mask``: forking recipe with ``forking_normalization="selected_tokens"`` turns trl's boolean
  mask into weights ``n_valid / n_selected`` (the "all_tokens" normalisation is trl's behaviour unchanged).
- ``_get_per_token_logps_and_entropies``: for the policy forward inside the loss, records the log-probs and
  entropies, and for Clip-Cov detaches the selected tokens' log-probs, so trl's loss gets no gradient from them.
- ``_compute_loss``: wraps trl's loss; adds the KL-Cov penalty aggregated with trl's own normaliser, and logs the
  entropy dynamics (``entropy/all``, ``entropy/forking``, ``entropy/execution``, ``entropy/frac_above``).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from trl import GRPOTrainer

from softthink.analysis.forking import batch_entropy_stats
from softthink.deprecation import renamed_attributes
from softthink.errors import SoftthinkConfigError
from softthink.rl import objectives
from softthink.rl.config import SoftthinkGRPOConfig


@dataclass
class _PolicyForward:
    """What the loss forward of one micro-batch saw: used by the KL-Cov term and the entropy log."""

    logps: torch.Tensor
    entropies: torch.Tensor
    mask: torch.Tensor
    old_logps: torch.Tensor
    advantages: torch.Tensor


class SoftthinkGRPOTrainer(GRPOTrainer):
    """A `trl.GRPOTrainer` whose objective is chosen by ``args.recipe`` (see `SoftthinkGRPOConfig`)."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        if not isinstance(self.args, SoftthinkGRPOConfig):
            raise SoftthinkConfigError(
                f"SoftthinkGRPOTrainer needs a SoftthinkGRPOConfig, got {type(self.args).__name__}. "
                "Build one with softthink.rl.SoftthinkGRPOConfig(..., recipe=...).",
                param="args",
            )
        self._loss_inputs: dict | None = None
        self._policy_forward: _PolicyForward | None = None

    @property
    def recipe(self) -> str:
        return self.args.recipe

    # -- seam 1: forking-token mask -------------------------------------------------------------------------------
    def get_high_entropy_mask(self, entropies: torch.Tensor, mask: torch.Tensor, threshold: float) -> torch.Tensor:
        selected = super().get_high_entropy_mask(entropies, mask, threshold)
        if self.args.forking_normalization == "selected_tokens":
            return objectives.selected_token_weights(selected, mask)
        return selected

    # -- seam 2: the policy forward inside the loss ---------------------------------------------------------------
    def _get_per_token_logps_and_entropies(self, model, input_ids, attention_mask, logits_to_keep, *args, **kwargs):
        logps, entropies, aux_loss = super()._get_per_token_logps_and_entropies(
            model, input_ids, attention_mask, logits_to_keep, *args, **kwargs
        )
        inputs = self._loss_inputs
        if inputs is None or self._policy_forward is not None or entropies is None:
            return logps, entropies, aux_loss  # generation-time scoring (old / reference log-probs): untouched
        mask = inputs["completion_mask"]
        if "tool_mask" in inputs:
            mask = mask * inputs["tool_mask"]
        old = inputs.get("old_per_token_logps")
        forward = _PolicyForward(
            logps=logps,
            entropies=entropies,
            mask=mask,
            old_logps=logps.detach() if old is None else old,
            advantages=inputs["advantages"],
        )
        self._policy_forward = forward
        if self.recipe == "clip_cov":
            logps = self._clip_cov(forward)
        return logps, entropies, aux_loss

    def _clip_cov(self, fw: _PolicyForward) -> torch.Tensor:
        ratio = torch.exp(fw.logps.detach() - fw.old_logps)
        already_clipped = objectives.ppo_clipped_tokens(ratio, fw.advantages, self.epsilon_low, self.epsilon_high)
        cov = objectives.centred_covariance(fw.advantages, fw.logps, fw.mask)
        selected = objectives.clip_cov_selection(
            cov,
            fw.mask,
            self.args.clip_cov_fraction,
            self.args.clip_cov_low,
            self.args.clip_cov_high,
            exclude=already_clipped & fw.mask.bool(),
        )
        self._log_token_fraction("clip_cov/detached_fraction", selected, fw.mask)
        return objectives.detach_selected(fw.logps, selected)

    # -- seam 3: the loss ----------------------------------------------------------------------------------------
    def _compute_loss(self, model, inputs):
        self._loss_inputs, self._policy_forward = inputs, None
        try:
            loss = super()._compute_loss(model, inputs)
        finally:
            self._loss_inputs = None
        forward, self._policy_forward = self._policy_forward, None
        if forward is None:  # trl changed its loss path; refuse to train a recipe silently as "full"
            raise RuntimeError(
                "SoftthinkGRPOTrainer: trl's _compute_loss did not call "
                "_get_per_token_logps_and_entropies with entropies; recipe hooks cannot run."
            )
        if self.recipe == "kl_cov":
            loss = loss + self._kl_cov_term(forward, inputs)
        self._log_entropy_dynamics(forward)
        return loss

    def _kl_cov_term(self, fw: _PolicyForward, inputs: dict) -> torch.Tensor:
        cov = objectives.centred_covariance(fw.advantages, fw.logps, fw.mask)
        selected = objectives.kl_cov_selection(cov, fw.mask, self.args.kl_cov_fraction)
        penalty = objectives.kl_cov_penalty(fw.logps, fw.old_logps, selected, self.args.kl_cov_coef)
        self._log_token_fraction("kl_cov/penalised_fraction", selected, fw.mask)
        self._metrics[self._mode]["kl_cov/penalty"].append(
            (penalty.detach().sum() / selected.sum().clamp(min=1)).item()
        )
        return self._token_normalizer(inputs)(penalty, fw.mask)

    def _token_normalizer(self, inputs: dict) -> objectives.TokenNormalizer:
        """trl's aggregation of token losses for this micro-batch (mirrors GRPOTrainer._compute_loss)."""
        training = self._mode == "train"
        accumulation = self.current_gradient_accumulation_steps if training else 1.0
        dapo_denominator = None
        if self.loss_type == "dapo":
            dapo_denominator = inputs["num_items_in_batch"].clamp(min=1.0) / self.accelerator.num_processes
            if training:
                dapo_denominator = dapo_denominator * accumulation / self.args.steps_per_generation
        return objectives.TokenNormalizer(
            self.loss_type,
            accumulation_steps=accumulation,
            max_completion_length=self.max_completion_length,
            dapo_denominator=dapo_denominator,
        )

    # -- logging --------------------------------------------------------------------------------------------------
    @property
    def _mode(self) -> str:
        return "train" if self.model.training else "eval"

    def _log_token_fraction(self, name: str, selected: torch.Tensor, mask: torch.Tensor) -> None:
        fraction = (selected.bool() & mask.bool()).sum().float() / mask.sum().clamp(min=1)
        self._metrics[self._mode][name].append(fraction.item())

    def _log_entropy_dynamics(self, fw: _PolicyForward) -> None:
        stats = batch_entropy_stats(fw.entropies, fw.mask, self.args.forking_quantile, self.args.entropy_log_threshold)
        if stats is None:
            return
        metrics = self._metrics[self._mode]
        metrics["entropy/all"].append(stats.mean_all)
        metrics["entropy/forking"].append(stats.mean_forking)
        metrics["entropy/execution"].append(stats.mean_execution)
        metrics["entropy/frac_above"].append(stats.frac_above)
        metrics["entropy/forking_threshold"].append(stats.forking_threshold)


__getattr__ = renamed_attributes(__name__, {"SofthinkGRPOTrainer": "SoftthinkGRPOTrainer"})  # misspelt pre-0.2 names
