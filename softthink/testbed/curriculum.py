"""The soft-input curriculum of `softthink.testbed.train`: teach the testbed model to read concept tokens.

Scheduled-sampling style. For each micro-batch, a first no-grad teacher-forced pass gives the model's own
next-token distribution at every position. At a random fraction of the *thinking* input positions (completion
tokens from ``<think>`` up to, not including, ``</think>``) the gold token's embedding is replaced by a concept
token: the distribution that predicted that position, filtered exactly as a decode preset's thinking phase
filters it (``softmax(logits / T)`` -> top-k -> top-p -> min-p -> at most ``max_topk`` -> renormalised, i.e.
`softthink.decoding.processors.truncate_sorted`), mixed with the gold token::

    weights = (1 - gold_weight) * filtered + gold_weight * onehot(gold)
    input   = sum_i weights_i * E(token_i)          (through the model's input-embedding module)

The labels stay the gold tokens, so the model learns to continue from a mixture as it would from the token the
mixture leans to. With ``gold_weight >= 0.5`` the gold token is always the mixture's heaviest token, i.e. the
visible token soft decoding would show.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from softthink.analysis.entropy import at_least_float32
from softthink.decoding.concept import concept_embeddings
from softthink.decoding.config import load_decode_config
from softthink.decoding.processors import truncate_sorted


@dataclass(frozen=True)
class MixtureFilters:
    """The thinking-phase filters of a decode preset: what shapes a soft decoding step's concept token."""

    temperature: float
    top_k: int
    top_p: float
    min_p: float
    max_topk: int

    @classmethod
    def from_preset(cls, name: str) -> MixtureFilters:
        """The filters of decode preset ``name`` (e.g. ``"soft"``); unknown presets raise `SoftthinkConfigError`."""
        config = load_decode_config(name)
        s = config.think_sampling()
        return cls(s.temperature, s.top_k, s.top_p, s.min_p, config.max_topk)


def mixture_inputs(
    logits: torch.Tensor, gold: torch.Tensor, filters: MixtureFilters, gold_weight: float
) -> tuple[torch.Tensor, torch.Tensor]:
    """The concept tokens that replace ``gold`` inputs: ``(ids, weights)``, both ``[n, max_topk + 1]``.

    ``logits``: ``[n, vocab]`` the logits that predicted each replaced position; ``gold``: ``[n]`` the gold ids.
    The last column is the gold token with weight ``gold_weight``; the others are the filtered distribution's
    tokens with weight ``(1 - gold_weight) * p_i`` (a token may appear in both: its embedding then counts twice,
    which is the sum of its two weights)."""
    probs = torch.softmax(at_least_float32(logits) / filters.temperature, dim=-1)
    ids, weights = truncate_sorted(
        probs, top_k=filters.top_k, top_p=filters.top_p, min_p=filters.min_p, max_keep=filters.max_topk
    )
    gold_column = torch.full((len(gold), 1), gold_weight, dtype=weights.dtype, device=weights.device)
    return torch.cat([ids, gold[:, None]], 1), torch.cat([(1.0 - gold_weight) * weights, gold_column], 1)


def thinking_positions(input_ids: torch.Tensor, labels: torch.Tensor, think_end_id: int) -> torch.Tensor:
    """``[b, L]`` bool: completion inputs before the row's first ``think_end_id`` (the tokens soft decoding may
    feed as concept tokens; the marker itself is always fed as a token)."""
    ended = (input_ids == think_end_id).long().cumsum(-1) > 0
    return (labels != -100) & ~ended


def curriculum_fraction(target: float, ramp_steps: int, step: int) -> float:
    """The share of thinking positions fed a mixture at optimiser step ``step`` (0-based): a linear ramp from
    ``target / ramp_steps`` to ``target`` over the first ``ramp_steps`` steps, then ``target``."""
    if ramp_steps <= 0:
        return target
    return target * min(1.0, (step + 1) / ramp_steps)


@dataclass
class SoftInputs:
    """Which input positions of a micro-batch take a concept token, and which: position ``(rows[n], cols[n])``
    is fed ``sum_k weights[n, k] * E(ids[n, k])``."""

    rows: torch.Tensor
    cols: torch.Tensor
    ids: torch.Tensor
    weights: torch.Tensor


@torch.no_grad()
def draw_soft_inputs(
    model,
    batch: dict[str, torch.Tensor],
    *,
    fraction: float,
    filters: MixtureFilters,
    gold_weight: float,
    think_end_id: int,
    generator: torch.Generator,
) -> SoftInputs:
    """The concept tokens of one micro-batch: each thinking position is replaced with probability ``fraction``
    (uniforms from ``generator``); their mixtures come from one teacher-forced pass of ``model`` (eval mode)."""
    input_ids = batch["input_ids"]
    eligible = thinking_positions(input_ids, batch["labels"], think_end_id)
    replaced = eligible & (torch.rand(input_ids.shape, generator=generator) < fraction)
    replaced[:, 0] = False  # the first position has no prediction (it is always a prompt token anyway)
    rows, cols = replaced.nonzero(as_tuple=True)
    if not len(rows):
        empty = torch.zeros(0, filters.max_topk + 1)
        return SoftInputs(rows, cols, empty.long(), empty)
    was_training = model.training
    model.eval()
    logits = model(input_ids=input_ids, attention_mask=batch["attention_mask"]).logits
    model.train(was_training)
    ids, weights = mixture_inputs(logits[rows, cols - 1], input_ids[rows, cols], filters, gold_weight)
    return SoftInputs(rows, cols, ids, weights)


def inputs_embeds(model, input_ids: torch.Tensor, soft: SoftInputs) -> torch.Tensor:
    """The training forward's ``inputs_embeds``: ``embed(input_ids)`` with the concept tokens of ``soft`` put in
    (differentiable in the embedding matrix, like the gold inputs)."""
    embed = model.get_input_embeddings()
    mixed = concept_embeddings(embed, soft.ids, soft.weights)
    return embed(input_ids).index_put((soft.rows, soft.cols), mixed)
