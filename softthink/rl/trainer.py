"""`SoftthinkGRPOTrainer`: trl's `GRPOTrainer` with the softthink recipes (forking, Clip-Cov, KL-Cov, GPPO, entropy
advantage) and entropy logging.

Seams overridden (everything else, generation, rewards, advantages, clipping, normalisation, is trl's):

- ``get_high_entropy_mask``: forking recipe with ``forking_normalization="selected_tokens"`` turns trl's boolean
  mask into weights ``n_valid / n_selected``; with ``selection="batch"`` the mask (and those counts) are the
  optimiser batch's (below).
- ``_get_per_token_logps_and_entropies``: for the policy forward inside the loss, records the log-probs and
  entropies; for Clip-Cov detaches the selected tokens' log-probs, so trl's loss gets no gradient from them; for
  the entropy advantage replaces the micro-batch's advantages, which trl reads right after, by
  ``A + min(alpha * H.detach(), |A| / kappa)``.
- ``_compute_loss``: wraps trl's loss; adds the KL-Cov penalty, or GPPO's clipped-token gradient (a term whose value
  is 0, so the loss value stays clip-higher PPO's), aggregated with trl's own normaliser, and logs the dynamics:
  entropy means and percentiles, Cov(log pi, A), and the tokens selected / clipped / penalised.

``selection="batch"``: at the first micro-batch of each optimiser step the trainer runs a no-grad forward over every
micro-batch of the accumulation window (slices of trl's buffered generation batch, ``_buffered_inputs``), selects
tokens with the batch-scope functions of `softthink.rl.objectives` and caches one mask per micro-batch. The
parameters do not change inside the window, so these are the tokens the loss forwards see; the selection does not
depend on how the window is split. Cost: one extra forward pass per micro-batch.
"""

from __future__ import annotations

import warnings
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


@dataclass
class _WindowSelection:
    """``selection="batch"``: the selected tokens of each micro-batch of one optimiser step, and the window's totals."""

    key: tuple[int, int]
    selected: list[torch.Tensor]
    n_valid: int
    n_selected: int


ENTROPY_PERCENTILES = (10, 50, 90, 99)
"""Percentiles of the token entropy logged every step (``entropy/p10`` ...)."""


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
        self._window: _WindowSelection | None = None
        self._batch_selected: torch.Tensor | None = None  # this micro-batch's tokens under selection="batch"
        self._inactive_streak = 0  # consecutive micro-batches on which KL-Cov / GPPO had nothing to act on
        self._warned_inactive = False

    @property
    def recipe(self) -> str:
        return self.args.recipe

    # -- seam 1: forking-token mask -------------------------------------------------------------------------------
    def get_high_entropy_mask(self, entropies: torch.Tensor, mask: torch.Tensor, threshold: float) -> torch.Tensor:
        selected = self._batch_selected
        if selected is None:
            selected = super().get_high_entropy_mask(entropies, mask, threshold)
        self._log_tokens("tokens/selected", selected, mask)
        if self.args.forking_normalization == "all_tokens":
            return selected
        if self._batch_selected is None:
            return objectives.selected_token_weights(selected, mask)
        window = self._window
        return selected.float() * (window.n_valid / max(window.n_selected, 1))  # the window's n_valid / n_selected

    # -- seam 2: the policy forward inside the loss ---------------------------------------------------------------
    def _get_per_token_logps_and_entropies(self, model, input_ids, attention_mask, logits_to_keep, *args, **kwargs):
        logps, entropies, aux_loss = self._score_completions(
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
        elif self.recipe == "entropy_advantage":
            forward.advantages = inputs["advantages"] = self._entropy_advantages(forward)
        return logps, entropies, aux_loss

    def _score_completions(self, model, input_ids, attention_mask, logits_to_keep, *args, **kwargs):
        """Per-token log-probs, entropies and aux loss of the completions: trl's. A subclass that feeds other inputs
        (the soft-thinking trainer) overrides this one method; every recipe hook above sees its output."""
        return super()._get_per_token_logps_and_entropies(
            model, input_ids, attention_mask, logits_to_keep, *args, **kwargs
        )

    def _clip_cov(self, fw: _PolicyForward) -> torch.Tensor:
        selected = self._batch_selected
        if selected is None:
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
        self._log_tokens("tokens/selected", selected, fw.mask)
        return objectives.detach_selected(fw.logps, selected)

    def _entropy_advantages(self, fw: _PolicyForward) -> torch.Tensor:
        advantages = objectives.entropy_shaped_advantages(
            fw.advantages, fw.entropies, alpha=self.args.entropy_adv_alpha, kappa=self.args.entropy_adv_kappa
        )
        base = fw.advantages.float()
        bonus = advantages - (base.unsqueeze(-1) if base.dim() == 1 else base)
        valid = fw.mask.bool()
        if valid.any():
            self._metrics[self._mode]["entropy_adv/bonus"].append(bonus[valid].mean().item())
        return advantages

    # -- seam 3: the loss ----------------------------------------------------------------------------------------
    def _compute_loss(self, model, inputs):
        inputs = dict(inputs)  # the entropy advantage replaces "advantages"; trl's buffered batch stays as it was
        self._loss_inputs, self._policy_forward = inputs, None
        try:
            self._batch_selected = self._window_selection(model)
            loss = super()._compute_loss(model, inputs)
        finally:
            self._loss_inputs = None
        forward, self._policy_forward = self._policy_forward, None
        if forward is None:  # trl changed its loss path; refuse to train a recipe silently as "full"
            raise RuntimeError(
                "SoftthinkGRPOTrainer: trl's _compute_loss did not call "
                "_get_per_token_logps_and_entropies with entropies; recipe hooks cannot run."
            )
        selected, self._batch_selected = self._batch_selected, None
        if self.recipe == "kl_cov":
            loss = loss + self._kl_cov_term(forward, inputs, selected)
        elif self.recipe == "gppo":
            loss = loss + self._gppo_term(forward, inputs)
        self._log_entropy_dynamics(forward)
        return loss

    def _kl_cov_term(self, fw: _PolicyForward, inputs: dict, selected: torch.Tensor | None) -> torch.Tensor:
        if selected is None:
            cov = objectives.centred_covariance(fw.advantages, fw.logps, fw.mask)
            selected = objectives.kl_cov_selection(cov, fw.mask, self.args.kl_cov_fraction)
        penalty = objectives.kl_cov_penalty(fw.logps, fw.old_logps, selected, self.args.kl_cov_coef)
        self._log_token_fraction("kl_cov/penalised_fraction", selected, fw.mask)
        self._log_tokens("tokens/penalised", selected, fw.mask)
        self._metrics[self._mode]["kl_cov/penalty"].append(
            (penalty.detach().sum() / selected.sum().clamp(min=1)).item()
        )
        self._note_inactive(objectives.penalty_is_inactive(fw.logps, fw.old_logps, selected & fw.mask.bool()))
        return self._token_normalizer(inputs)(penalty, fw.mask)

    def _gppo_term(self, fw: _PolicyForward, inputs: dict) -> torch.Tensor:
        """GPPO's gradient on PPO-clipped tokens, as a term of value 0 (trl's loss already has PPO's value and its
        gradient on the unclipped tokens)."""
        params = objectives.GPPOParams(self.epsilon_low, self.epsilon_high, self.args.gppo_beta1, self.args.gppo_beta2)
        ratio = torch.exp(fw.logps.detach() - fw.old_logps)
        low, high = objectives.ppo_clip_regions(ratio, fw.advantages, self.epsilon_low, self.epsilon_high)
        clipped = (low | high) & fw.mask.bool()
        per_token = objectives.gppo_token_loss(fw.logps, fw.old_logps, fw.advantages, params)
        extra = torch.where(clipped, per_token - per_token.detach(), torch.zeros_like(per_token))
        self._note_inactive(objectives.penalty_is_inactive(fw.logps, fw.old_logps, fw.mask))
        return self._token_normalizer(inputs)(extra, fw.mask)

    def _note_inactive(self, inactive: bool) -> None:
        """Warn once when KL-Cov / GPPO had nothing to act on for a whole generation cycle (every update on-policy)."""
        self._inactive_streak = self._inactive_streak + 1 if inactive else 0
        cycle = self.args.steps_per_generation * self.num_iterations
        if self._inactive_streak >= cycle and not self._warned_inactive and self._mode == "train":
            self._warned_inactive = True
            warnings.warn(
                f"recipe={self.recipe!r}: log p == log p_old on every token for {self._inactive_streak} micro-batches "
                "(a whole generation cycle), so the recipe's term is 0. Set num_iterations >= 2 or "
                "steps_per_generation to a multiple > 1 of gradient_accumulation_steps.",
                stacklevel=2,
            )

    # -- selection="batch" ----------------------------------------------------------------------------------------
    def _window_selection(self, model) -> torch.Tensor | None:
        """This micro-batch's selected tokens under ``selection="batch"``; None otherwise (and in evaluation, where
        a batch is never split)."""
        if self.args.selection != "batch" or self.recipe not in ("forking", "clip_cov", "kl_cov"):
            return None
        if self._mode != "train" or self._buffered_inputs is None:
            return None
        accumulation = self.current_gradient_accumulation_steps
        step, position = divmod(self._step, accumulation)
        key = (step, id(self._buffered_inputs))
        if self._window is None or self._window.key != key:
            spg = self.args.steps_per_generation
            micro = [self._buffered_inputs[(step * accumulation + i) % spg] for i in range(accumulation)]
            self._window = self._select_window(model, micro, key)
        return self._window.selected[position]

    def _select_window(self, model, micro: list[dict], key: tuple[int, int]) -> _WindowSelection:
        """Select tokens over the micro-batches ``micro`` of one optimiser step, with no-grad policy forwards."""
        logps, entropies, masks, olds, advs = [], [], [], [], []
        with torch.no_grad():
            for inputs in micro:
                completion_ids = inputs["completion_ids"]
                lp, ent, _ = super()._get_per_token_logps_and_entropies(
                    model,
                    torch.cat([inputs["prompt_ids"], completion_ids], dim=1),
                    torch.cat([inputs["prompt_mask"], inputs["completion_mask"]], dim=1),
                    completion_ids.size(1),
                    compute_entropy=True,
                )
                mask = (
                    inputs["completion_mask"] * inputs["tool_mask"]
                    if "tool_mask" in inputs
                    else inputs["completion_mask"]
                )
                old = inputs.get("old_per_token_logps")
                logps.append(lp)
                entropies.append(ent)
                masks.append(mask)
                olds.append(lp if old is None else old)
                advs.append(inputs["advantages"])
        args = self.args
        if self.recipe == "forking":
            selected = objectives.forking_masks_scoped(entropies, masks, args.forking_quantile, scope="batch")
        elif self.recipe == "kl_cov":
            selected = objectives.kl_cov_masks(advs, logps, masks, args.kl_cov_fraction, scope="batch")
        else:
            exclude = [
                objectives.ppo_clipped_tokens(torch.exp(lp - old), a, self.epsilon_low, self.epsilon_high) & m.bool()
                for lp, old, a, m in zip(logps, olds, advs, masks)
            ]
            selected = objectives.clip_cov_masks(
                advs,
                logps,
                masks,
                args.clip_cov_fraction,
                args.clip_cov_low,
                args.clip_cov_high,
                scope="batch",
                exclude=exclude,
                seed=args.seed * 1_000_003 + key[0],
            )
        counts = objectives.token_counts(selected, masks)
        return _WindowSelection(key, selected, counts["n_valid"], counts["n_selected"])

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

    def _log_tokens(self, name: str, selected: torch.Tensor, mask: torch.Tensor) -> None:
        """Number of valid tokens in ``selected`` (trl averages a step's micro-batches: tokens per micro-batch)."""
        self._metrics[self._mode][name].append(float((selected.bool() & mask.bool()).sum()))

    def _log_entropy_dynamics(self, fw: _PolicyForward) -> None:
        stats = batch_entropy_stats(fw.entropies, fw.mask, self.args.forking_quantile, self.args.entropy_log_threshold)
        if stats is None:
            return
        metrics = self._metrics[self._mode]
        ratio = torch.exp(fw.logps.detach() - fw.old_logps)
        low, high = objectives.ppo_clip_regions(ratio, fw.advantages, self.epsilon_low, self.epsilon_high)
        self._log_tokens("tokens/clipped", low | high, fw.mask)
        self._log_tokens("tokens/valid", fw.mask, fw.mask)
        metrics["rl/cov_logp_adv"].append(objectives.cov_logp_advantage(fw.logps, fw.advantages, fw.mask))
        for p, value in objectives.entropy_percentiles(fw.entropies, fw.mask, ENTROPY_PERCENTILES).items():
            metrics[f"entropy/p{p}"].append(value)
        metrics["entropy/all"].append(stats.mean_all)
        metrics["entropy/forking"].append(stats.mean_forking)
        metrics["entropy/execution"].append(stats.mean_execution)
        metrics["entropy/frac_above"].append(stats.frac_above)
        metrics["entropy/forking_threshold"].append(stats.forking_threshold)


__getattr__ = renamed_attributes(__name__, {"SofthinkGRPOTrainer": "SoftthinkGRPOTrainer"})  # misspelt pre-0.2 names
