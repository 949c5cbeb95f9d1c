"""`SoftRLTrainer`: the soft-thinking recipes (``soft_grpo``, ``soft_gaussian``) on trl's GRPOTrainer.

Seams (everything else, rewards, group advantages, PPO clipping, loss aggregation, logging, checkpoints, is trl's
and `SoftthinkGRPOTrainer`'s):

- ``_generate_single_turn``: instead of ``model.generate``, a soft rollout through softthink's decode loop
  (`softthink.rl.soft_rollout.soft_rollout`) on trl's tokenized prompts, one generator per completion seeded by
  (run seed, micro-step, row), all restored with a checkpoint: a resumed run redraws exactly what an uninterrupted
  one would. What each step
  fed is kept (``soft_*`` tensors) and travels with trl's batch through its shuffle and split
  (``_generate_and_score_completions``).
- ``_score_completions`` (the one scoring hook of `SoftthinkGRPOTrainer`, used for the old, reference and policy
  log-probs alike): a forward on ``inputs_embeds`` that rebuilds every soft step's input from what the rollout fed,
  then `soft_completion_logps`: the recipe's soft-step log-prob (`softthink.rl.soft_objectives`) at soft steps, the
  ordinary token log-prob (at its phase's temperature) elsewhere, and the entropy of each step's distribution.

Logged per rollout: ``soft/step_share`` (soft steps / completion tokens), ``soft/mixture_width`` (mean
``exp(H(y))`` of the fed weights over soft steps) and ``soft/mixture_kept`` (mean number of weights > 1e-3).
"""

from __future__ import annotations

import torch

from softthink.decoding.concept import mixture_embedding
from softthink.errors import SoftthinkConfigError
from softthink.rl import soft_objectives as so
from softthink.rl.soft_config import SoftRLConfig
from softthink.rl.soft_rollout import SoftRolloutBatch, input_embeddings, rollout_seeds, soft_rollout
from softthink.rl.trainer import SoftthinkGRPOTrainer


def soft_completion_logps(
    logits: torch.Tensor,
    completion_ids: torch.Tensor,
    soft: dict[str, torch.Tensor],
    args: SoftRLConfig,
    embed: torch.nn.Module,
    fed: torch.Tensor | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-step log-probs and entropies ``[B, C]`` of completions whose step-``t`` logits are ``logits[:, t]``.

    ``soft`` holds the rollout's ``soft_*`` tensors for these rows (`SoftRolloutBatch.tensors`); ``fed`` the
    ``[B, C, D]`` embeddings fed at each completion position (needed by ``soft_gaussian``).
    """
    think_t, answer_t = args.think_temperature, args.answer_step_temperature
    temperature = torch.where(soft["soft_thinking"], think_t, answer_t).to(logits.dtype)[..., None]
    log_probs = torch.log_softmax(logits / temperature, dim=-1)
    token_logp = log_probs.gather(-1, completion_ids[..., None]).squeeze(-1)
    entropies = -(log_probs.exp() * log_probs).sum(-1)
    kept_ids, kept_mask = soft["soft_kept_ids"], soft["soft_kept_mask"]
    kept_mask = kept_mask | ~kept_mask.any(-1, keepdim=True)  # rows with no kept token (padding): any column
    kept_logp = so.kept_log_probs(logits, kept_ids, kept_mask, temperature)
    if args.recipe == "soft_grpo":
        step_logp = so.gumbel_step_logp(kept_logp, soft["soft_perturbed"], kept_mask)
    else:
        if fed is None:
            raise ValueError("soft_gaussian needs the fed embeddings")
        sigma = float(args.gaussian_sigma)
        if args.gaussian_variant == "hard":
            top = soft["soft_weights"].argmax(-1, keepdim=True)
            token_part = kept_logp.gather(-1, top).squeeze(-1)
            mean = embed(kept_ids.gather(-1, top).squeeze(-1))
            step_logp = token_part + so.gaussian_step_logp(fed.detach(), mean, sigma)
        else:
            probs = torch.exp(kept_logp)  # 0 at padding columns
            mean = mixture_embedding(probs.to(fed.dtype), embed(kept_ids))
            step_logp = so.gaussian_step_logp(fed.detach(), mean, sigma)
    return torch.where(soft["soft_soft"], step_logp, token_logp), entropies


def replay_logits(
    model, embed, input_ids, attention_mask, logits_to_keep: int, soft: dict[str, torch.Tensor]
) -> tuple[torch.Tensor, torch.Tensor]:
    """The training forward of prompt + completion rows (trl's layout: left-padded prompts, right-padded
    completions of ``logits_to_keep`` steps) with each soft step's input rebuilt from the rollout
    (`softthink.rl.soft_rollout.input_embeddings`) and the decode loop's position ids.

    Returns ``(logits, fed)``: ``[B, C, V]`` the logits of every completion step (float32 at least) and the
    ``[B, C, D]`` embeddings fed at the completion positions."""
    prompt_len = input_ids.size(1) - logits_to_keep
    embeds = input_embeddings(embed, input_ids[:, :prompt_len], input_ids[:, prompt_len:], soft)
    position_ids = (attention_mask.cumsum(-1) - 1).clamp_min(0)
    out = model(inputs_embeds=embeds, attention_mask=attention_mask, position_ids=position_ids, use_cache=False)
    logits = out.logits[:, prompt_len - 1 : -1]
    if logits.dtype not in (torch.float32, torch.float64):
        logits = logits.float()  # as trl's scoring: log-probs in float32 at least
    return logits, embeds[:, prompt_len:]


class SoftRLTrainer(SoftthinkGRPOTrainer):
    """A `SoftthinkGRPOTrainer` whose rollouts are soft-thinking decodes (recipe ``soft_grpo`` / ``soft_gaussian``)."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        if not isinstance(self.args, SoftRLConfig):
            raise SoftthinkConfigError(
                f"SoftRLTrainer needs a SoftRLConfig, got {type(self.args).__name__}.", param="args"
            )
        if self.use_vllm or self.use_transformers_continuous_batching:
            raise SoftthinkConfigError(
                f"recipe {self.args.recipe!r} rolls out through softthink's decode loop; set use_vllm: false and "
                "use_transformers_paged: false.",
                param="use_vllm",
            )
        self.decode_config = self.args.decode_config()
        self._think_marker = self._check_think_marker()
        self._rollout_tensors: dict[str, torch.Tensor] | None = None

    def _check_think_marker(self):
        from softthink.decoding.markers import resolve_think_marker

        try:
            return resolve_think_marker(
                self.decode_config.think_end, self.processing_class, required_by=self.args.recipe
            )
        except SoftthinkConfigError as err:
            raise SoftthinkConfigError(
                f"recipe {self.args.recipe!r} trains soft thinking, which needs a thinking phase: {err} "
                "(recipe key: think_end.)",
                param="think_end",
                value=self.decode_config.think_end,
            ) from err

    def _check_prompts_leave_thinking_open(self, prompt_ids) -> None:
        """A prompt that already holds the think-end marker (e.g. a chat template's empty ``<think></think>``
        block, as with ``enable_thinking=False``) has no thinking phase left to roll out in soft mode."""
        marker = tuple(self._think_marker.token_ids)
        width = len(marker)
        for i, ids in enumerate(prompt_ids):
            ids = list(ids)
            if any(tuple(ids[j : j + width]) == marker for j in range(len(ids) - width + 1)):
                text = self.processing_class.decode(ids)
                raise SoftthinkConfigError(
                    f"recipe {self.args.recipe!r}: training prompt {i} of this rollout already contains the think-end "
                    f"marker {self._think_marker.text!r}, so its completion has no thinking phase and no soft step "
                    f"(prompt text: ...{text[-120:]!r}). Build the dataset's prompts without a closed thinking "
                    "block (e.g. a chat template with thinking enabled), or set think_end to the marker the "
                    "completions end their reasoning with.",
                    param="dataset",
                )

    # -- generation ---------------------------------------------------------------------------------------------
    def _generate_single_turn(self, prompt_ids, images, multimodal_fields, num_generations, has_tool_images=False):
        if images is not None or multimodal_fields:
            raise SoftthinkConfigError(f"recipe {self.args.recipe!r} does not support multimodal prompts.")
        self._check_prompts_leave_thinking_open(prompt_ids)
        model = self.accelerator.unwrap_model(self.model)
        was_training = model.training
        mode = "train" if was_training else "eval"
        # The micro-step index from restored state: a resumed run starts at an optimiser-step boundary (trl's
        # own _step restarts at 0 there), so several rollouts within one optimiser step still get distinct seeds.
        accumulation = self.current_gradient_accumulation_steps
        micro_step = self.state.global_step * accumulation + self._step % accumulation
        seeds = rollout_seeds(
            self.args.seed,
            micro_step,
            len(prompt_ids),
            offset=(self.accelerator.process_index + 1) * len(prompt_ids) * (1 if was_training else -1),
        )
        model.eval()
        try:
            batch = soft_rollout(
                model,
                self.processing_class,
                prompt_ids,
                self.decode_config,
                seeds,
                embedding_sigma=float(self.args.gaussian_sigma),
                max_batch_size=self.args.rollout_batch_size,
            )
        finally:
            model.train(was_training)
        self._rollout_tensors = batch.tensors()
        self._log_rollout(batch, mode)
        return batch.completion_ids, None

    def _log_rollout(self, batch: SoftRolloutBatch, mode: str) -> None:
        lengths = torch.tensor([len(ids) for ids in batch.completion_ids])
        valid = torch.arange(batch.soft.shape[1])[None, :] < lengths[:, None]
        soft = batch.soft.cpu() & valid
        metrics = self._metrics[mode]
        metrics["soft/step_share"].append(float(soft.sum()) / max(int(valid.sum()), 1))
        if soft.any():
            width, kept = so.mixture_width(batch.weights.cpu()[soft].double(), batch.kept_mask.cpu()[soft])
            metrics["soft/mixture_width"].append(float(width.mean()))
            metrics["soft/mixture_kept"].append(float(kept.mean()))

    def _generate_and_score_completions(self, inputs):
        self._rollout_tensors = None
        try:
            output = super()._generate_and_score_completions(inputs)
            tensors = self._rollout_tensors
        finally:
            self._rollout_tensors = None
        if tensors is None:
            raise RuntimeError("SoftRLTrainer: trl generated without calling _generate_single_turn.")
        n, length = output["completion_ids"].shape
        output.update(SoftRolloutBatch.slice_tensors(tensors, 0, n, length))
        return output

    # -- scoring ------------------------------------------------------------------------------------------------
    def _score_completions(
        self, model, input_ids, attention_mask, logits_to_keep, batch_size=None, compute_entropy=False, **kwargs
    ):
        source = self._loss_inputs if self._loss_inputs is not None else self._rollout_tensors
        if source is None or "soft_soft" not in source:
            raise RuntimeError("SoftRLTrainer: no soft rollout data for these completions.")
        soft_all = {k: v for k, v in source.items() if k.startswith("soft_")}
        batch_size = batch_size or input_ids.size(0)
        logps, entropies = [], []
        for start in range(0, input_ids.size(0), batch_size):
            end = min(start + batch_size, input_ids.size(0))
            soft = SoftRolloutBatch.slice_tensors(soft_all, start, end, logits_to_keep)
            lp, ent = self.soft_forward(model, input_ids[start:end], attention_mask[start:end], logits_to_keep, soft)
            logps.append(lp)
            entropies.append(ent)
        return torch.cat(logps), torch.cat(entropies) if compute_entropy else None, None

    def soft_forward(self, model, input_ids, attention_mask, logits_to_keep: int, soft: dict[str, torch.Tensor]):
        """``(log-probs, entropies)`` ``[B, C]`` of one chunk, replaying the rollout's soft inputs."""
        embed = self.accelerator.unwrap_model(model).get_input_embeddings()
        with self.accelerator.autocast():
            logits, fed = replay_logits(model, embed, input_ids, attention_mask, logits_to_keep, soft)
        completion_ids = input_ids[:, input_ids.size(1) - logits_to_keep :]
        return soft_completion_logps(logits, completion_ids, soft, self.args, embed, fed=fed)


def trainer_class(recipe: str) -> type[SoftthinkGRPOTrainer]:
    """The trainer of ``recipe``: `SoftRLTrainer` for the soft recipes, `SoftthinkGRPOTrainer` otherwise."""
    from softthink.rl.soft_config import SOFT_RECIPE_NAMES

    return SoftRLTrainer if recipe in SOFT_RECIPE_NAMES else SoftthinkGRPOTrainer
