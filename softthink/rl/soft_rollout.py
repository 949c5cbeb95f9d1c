"""Soft-thinking rollouts through softthink's decode loop, recorded so that a training forward can replay them.

`soft_rollout` decodes a batch of already tokenized prompts with `softthink.decoding.loop.decode` (any soft mode:
``soft`` or ``gated``, with the loop's own ``gumbel`` / ``dirichlet`` weight noise, plus optional Gaussian noise
on the fed embedding) and records, for every generated step of every row, what was fed back:

- ``soft``: whether the step fed a concept-token mixture (False for discrete steps, answer tokens, markers);
- ``kept_ids`` / ``weights``: the kept tokens and the weights the loop mixed (``[N, C, K]``, zero-padded);
- ``kept_mask``: the kept tokens (for Gumbel noise: the tokens with a pre-noise weight > 0);
- ``perturbed``: Gumbel noise only, SofT-GRPO's perturbed log-weights ``z = log w + g`` (`gumbel_perturbed_logits`)
  from the exact uniforms the loop drew (a `RecordingGenerators` is the loop's per-row randomness);
- ``noise``: Gaussian noise only, the ``sigma * n`` added to each soft step's embedding (``[N, C, D]``);
- ``thinking``: whether the step was in the thinking phase (its temperature is the think temperature).

Every row draws from its own generators, seeded by ``seeds[row]`` (`rollout_seeds` derives them from the run seed
and the optimiser step, so a resumed run redraws exactly what an uninterrupted one would). The replay rule
(`SoftRolloutBatch.input_embeddings`): the input at completion position ``t`` is ``sum_k weights[t, k] *
E[kept_ids[t, k]] + noise[t]`` where ``soft[t]``, else ``E[token_ids[t]]``: the same embeddings the loop fed.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch

from softthink.decoding.api import eos_token_ids
from softthink.decoding.concept import mixture_embedding
from softthink.decoding.config import DecodeConfig
from softthink.decoding.loop import decode
from softthink.decoding.markers import resolve_think_marker
from softthink.decoding.prompts import left_pad
from softthink.decoding.randomness import PerRowRandomness, PromptGenerators
from softthink.decoding.rules import Step
from softthink.rl.soft_objectives import gumbel_perturbed_logits

_NOISE_SEED_OFFSET = 0x5EED_0F_5EED
"""The Gaussian-noise generator of a row is seeded with ``seed + this`` (independent of its decode generator)."""


def rollout_seeds(seed: int, step: int, n: int, offset: int = 0) -> list[int]:
    """Per-row seeds of the rollout generated at optimiser step ``step``: a function of (run seed, step, row)."""
    base = (int(seed) * 1_000_003 + int(step)) * 100_003 + int(offset)
    return [(base + row) % (2**62) for row in range(n)]


class _RecordingRandomness(PerRowRandomness):
    """Per-row draws that also keep the step's Gumbel inputs (pre-noise weights and clamped uniforms)."""

    def __init__(self, generators, owner: RecordingGenerators):
        super().__init__(generators)
        self.owner = owner

    def uniform_like(self, x: torch.Tensor) -> torch.Tensor:
        uniforms = super().uniform_like(x)
        # The Gumbel rule clamps these in place before use; keeping the tensor keeps the clamped values.
        self.owner.last_gumbel = (x.detach().clone(), uniforms)
        return uniforms


class RecordingGenerators(PromptGenerators):
    """`PromptGenerators` whose draws the rollout can read back after each step (``last_gumbel``)."""

    def __init__(self, seeds: Sequence[int], device: torch.device):
        super().__init__(seeds, device)
        self.last_gumbel: tuple[torch.Tensor, torch.Tensor] | None = None

    def for_rows(self, rows: Sequence[int]) -> PerRowRandomness:
        self.last_gumbel = None  # one call per decode step
        return _RecordingRandomness([self.generators[r] for r in rows], self)


@dataclass
class _FedStep:
    """What one decode step fed, for its active rows (`_assemble` places it at each row's own next completion
    position)."""

    rows: torch.Tensor
    soft: torch.Tensor
    kept_ids: torch.Tensor
    weights: torch.Tensor
    kept_mask: torch.Tensor
    perturbed: torch.Tensor
    noise: torch.Tensor | None


class _Recorder:
    """The loop's ``on_feed``: records each step's fed inputs and adds the Gaussian embedding noise."""

    def __init__(self, generators: RecordingGenerators, sigma: float, seeds: Sequence[int], device):
        self.steps: list[_FedStep] = []
        self.generators = generators
        self.sigma = sigma
        self.noise_generators = (
            [torch.Generator(device=device).manual_seed((s + _NOISE_SEED_OFFSET) % (2**62)) for s in seeds]
            if sigma > 0
            else []
        )

    def __call__(self, rows: list[int], step: Step, mixture: torch.Tensor) -> torch.Tensor:
        width = step.kept_ids.shape[1]
        soft = step.soft.bool()
        kept = step.weights > 0
        perturbed = torch.zeros_like(step.weights)
        gumbel = self.generators.last_gumbel
        if gumbel is not None:  # Gumbel noise: SofT-GRPO's z, and the kept set = tokens with a pre-noise weight
            pre_noise, uniforms = gumbel
            z = gumbel_perturbed_logits(pre_noise, uniforms)
            z = torch.nn.functional.pad(z, (0, width - z.shape[1]), value=float("-inf")).to(perturbed.dtype)
            finite = torch.isfinite(z)
            kept = torch.where(soft[:, None], finite, kept)
            perturbed = torch.where(soft[:, None] & finite, z, perturbed)
        noise = None
        if self.sigma > 0 and bool(soft.any()):
            noise = torch.zeros_like(mixture)
            for i in torch.nonzero(soft).flatten().tolist():  # each row's own generator: batch-independent draws
                gen = self.noise_generators[rows[i]]
                noise[i] = self.sigma * torch.randn(
                    mixture.shape[1], generator=gen, dtype=mixture.dtype, device=mixture.device
                )
            mixture = mixture + noise
        self.steps.append(_FedStep(torch.tensor(rows), soft, step.kept_ids, step.weights, kept, perturbed, noise))
        return mixture


@dataclass
class SoftRolloutBatch:
    """What a batch of soft rollouts fed, padded to ``[N, C, ...]`` (``C`` = longest completion). See the module
    docstring for the fields; ``completion_ids`` are the visible tokens (lists, EOS included when generated)."""

    completion_ids: list[list[int]]
    soft: torch.Tensor
    thinking: torch.Tensor
    kept_ids: torch.Tensor
    weights: torch.Tensor
    kept_mask: torch.Tensor
    perturbed: torch.Tensor
    noise: torch.Tensor | None
    logits: torch.Tensor | None = None
    """``[N, C, V]`` the rollout's raw logits per step (only with ``record_logits=True``; for replay tests)."""

    TENSOR_FIELDS = ("soft", "thinking", "kept_ids", "weights", "kept_mask", "perturbed", "noise")

    def tensors(self, prefix: str = "soft_") -> dict[str, torch.Tensor]:
        """The per-step tensors, keyed ``prefix + name`` (what the trainer keeps beside trl's batch)."""
        out = {prefix + name: getattr(self, name) for name in self.TENSOR_FIELDS}
        return {k: v for k, v in out.items() if v is not None}

    @staticmethod
    def slice_tensors(tensors: dict[str, torch.Tensor], start: int, end: int, length: int) -> dict[str, torch.Tensor]:
        """Rows ``start:end`` of `tensors` with the step dimension cut or zero-padded to ``length``."""
        out = {}
        for key, value in tensors.items():
            value = value[start:end, :length]
            if value.shape[1] < length:
                pad = [0, 0] * (value.dim() - 2) + [0, length - value.shape[1]]
                value = torch.nn.functional.pad(value, pad)
            out[key] = value
        return out


def input_embeddings(
    embed: torch.nn.Module, prompt_ids: torch.Tensor, completion_ids: torch.Tensor, soft: dict[str, torch.Tensor]
) -> torch.Tensor:
    """``[B, P + C, D]`` input embeddings of prompt + completion, with each soft step's input rebuilt from what the
    rollout fed (``soft``: `SoftRolloutBatch.tensors` sliced to these rows and ``C`` steps). Soft inputs are
    detached (the action is fixed); token inputs keep the embedding's gradient."""
    tokens = embed(torch.cat([prompt_ids, completion_ids], dim=1))
    mixture = mixture_embedding(soft["soft_weights"].to(tokens.dtype), embed(soft["soft_kept_ids"]))
    if "soft_noise" in soft:
        mixture = mixture + soft["soft_noise"].to(tokens.dtype)
    completion = torch.where(soft["soft_soft"][..., None], mixture.detach(), tokens[:, prompt_ids.shape[1] :])
    return torch.cat([tokens[:, : prompt_ids.shape[1]], completion], dim=1)


def soft_rollout(
    model,
    tokenizer,
    prompt_ids: list[list[int]],
    config: DecodeConfig,
    seeds: Sequence[int],
    *,
    embedding_sigma: float = 0.0,
    record_logits: bool = False,
    max_batch_size: int | None = None,
) -> SoftRolloutBatch:
    """Decode ``prompt_ids`` (token ids, e.g. chat-templated) with ``config`` through softthink's decode loop, one
    generator per row (``seeds``), adding ``N(0, embedding_sigma^2 I)`` noise to every soft step's embedding, and
    record what every step fed (`SoftRolloutBatch`). Call with the model in eval mode; runs under ``no_grad``.
    ``max_batch_size``: continuous batching with that many slots (a finished row's slot refilled from the rest);
    every row draws from its own generators, so the rollout is the same as all rows at once."""
    from softthink.decoding.rules import rule_class

    device = model.get_input_embeddings().weight.device
    pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0
    batch = left_pad(["" for _ in prompt_ids], [list(p) for p in prompt_ids], pad_id, device)
    marker = resolve_think_marker(
        config.think_end,
        tokenizer,
        required_by=config.mode if rule_class(config.mode).needs_thinking else None,
        needs_injection=config.max_think_tokens is not None or config.cold_stop_entropy is not None,
    )
    generators = RecordingGenerators(seeds, device)
    recorder = _Recorder(generators, embedding_sigma, seeds, device)
    logits_steps: list[list[torch.Tensor]] = [[] for _ in prompt_ids]

    def on_step(rows: list[int], logits: torch.Tensor) -> None:
        for i, row in enumerate(rows):
            logits_steps[row].append(logits[i].detach().clone())

    with torch.no_grad():
        result = decode(
            model,
            tokenizer,
            batch,
            config,
            marker,
            eos_token_ids(model, tokenizer),
            list(seeds),
            on_step=on_step if record_logits else None,
            generators=generators,
            on_feed=recorder,
            max_batch_size=max_batch_size,
        )
    return _assemble(result.records, recorder, logits_steps if record_logits else None, model)


def _assemble(records, recorder: _Recorder, logits_steps, model) -> SoftRolloutBatch:
    n = len(records)
    length = max(len(rec.token_ids) for rec in records)
    width = max((step.kept_ids.shape[1] for step in recorder.steps), default=1)
    embed = model.get_input_embeddings().weight
    device = embed.device
    weight_dtype = recorder.steps[0].weights.dtype if recorder.steps else torch.float32
    soft = torch.zeros(n, length, dtype=torch.bool, device=device)
    thinking = torch.zeros(n, length, dtype=torch.bool)
    kept_ids = torch.zeros(n, length, width, dtype=torch.long, device=device)
    weights = torch.zeros(n, length, width, dtype=weight_dtype, device=device)
    kept_mask = torch.zeros(n, length, width, dtype=torch.bool, device=device)
    perturbed = torch.zeros(n, length, width, dtype=weight_dtype, device=device)
    noise = torch.zeros(n, length, embed.shape[1], dtype=embed.dtype, device=device) if recorder.sigma > 0 else None
    # Each row's own position counter: with continuous batching a row joins after others started, so loop step s is
    # not completion position s of every row (without it, all rows start together and the two coincide).
    position = torch.zeros(n, dtype=torch.long, device=device)
    for step in recorder.steps:
        rows, k = step.rows.to(device), step.kept_ids.shape[1]
        t = position[rows]
        position[rows] += 1
        inside = t < length
        if not bool(inside.all()):  # a row's final decision past the longest completion: never fed
            noise_kept = None if step.noise is None else step.noise[inside.to(step.noise.device)]
            kept = inside.to(step.soft.device)
            step = _FedStep(
                rows[inside],
                step.soft[kept],
                step.kept_ids[kept],
                step.weights[kept],
                step.kept_mask[kept],
                step.perturbed[kept],
                noise_kept,
            )
            rows, t = step.rows, t[inside]
        soft[rows, t] = step.soft
        kept_ids[rows, t, :k] = step.kept_ids
        weights[rows, t, :k] = step.weights
        kept_mask[rows, t, :k] = step.kept_mask
        perturbed[rows, t, :k] = step.perturbed
        if noise is not None and step.noise is not None:
            noise[rows, t] = step.noise
    for r, rec in enumerate(records):
        thinking[r, : len(rec.in_thinking)] = torch.tensor(rec.in_thinking, dtype=torch.bool)
    logits = None
    if logits_steps is not None:
        vocab = logits_steps[0][0].shape[-1]
        logits = torch.zeros(n, length, vocab, dtype=logits_steps[0][0].dtype)
        for r, row in enumerate(logits_steps):
            if row:
                logits[r, : len(row)] = torch.stack(row).cpu()
    return SoftRolloutBatch(
        completion_ids=[list(rec.token_ids) for rec in records],
        soft=soft,
        thinking=thinking.to(device),
        kept_ids=kept_ids,
        weights=weights,
        kept_mask=kept_mask,
        perturbed=perturbed,
        noise=noise,
        logits=logits,
    )
