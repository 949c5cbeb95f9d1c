"""softthink as a transformers ``custom_generate`` decoding method.

    from softthink.integrations.transformers import generate as softthink_generate
    out = model.generate(**inputs, custom_generate=softthink_generate, softthink_tokenizer=tokenizer, mode="soft",
                         max_new_tokens=256, return_dict_in_generate=True, output_scores=True)
    out.sequences            # [batch, prompt + new] like stock generate (finished rows padded with pad_token_id)
    out.scores               # one [batch, vocab] tensor per generated step
    out.generations[0].trace # softthink's per-step trace (entropy, soft flags, concept-token mixtures)

transformers prepares the GenerationConfig (max_new_tokens, do_sample, temperature, top_k, top_p, min_p, eos / pad
ids, stop_strings) and calls `generate`; the decoding itself is `softthink.decoding.api.generate_encoded`, the
same loop as `softthink.generate`. The Hub-folder route (``custom_generate="DIR"``) goes through `hub_generate`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
from transformers import GenerationConfig, GenerationMixin, LogitsProcessorList, StoppingCriteriaList
from transformers.generation.utils import GenerateDecoderOnlyOutput

from softthink.decoding.api import build_config, generate_encoded
from softthink.decoding.config import DecodeConfig
from softthink.decoding.output import Generation
from softthink.decoding.processors import truncate_sorted
from softthink.decoding.prompts import left_pad
from softthink.errors import SoftthinkInputError
from softthink.integrations import generation_config as hf
from softthink.integrations.truncate import truncate_generation

# Model inputs that transformers prepares for its own loop; softthink's loop builds its own, so they are dropped.
_PREPARED_MODEL_KWARGS = (
    "attention_mask",
    "position_ids",
    "use_cache",
    "logits_to_keep",
    "cache",
    "past_key_values",
    "cache_position",
)
_OUTPUT_FLAGS = ("output_attentions", "output_hidden_states")  # some versions pass them as model inputs


@dataclass
class SoftthinkGenerateOutput(GenerateDecoderOnlyOutput):
    """`GenerateDecoderOnlyOutput` plus softthink's `Generation` per row (text, phases, stop reasons, trace)."""

    generations: list[Generation] | None = None


def generate(
    model,
    input_ids: torch.LongTensor,
    logits_processor: LogitsProcessorList | None = None,
    stopping_criteria: StoppingCriteriaList | None = None,
    generation_config: GenerationConfig | None = None,
    synced_gpus: bool = False,
    streamer=None,
    *,
    softthink_tokenizer=None,
    tokenizer=None,
    mode: str | None = None,
    softthink_config: DecodeConfig | dict | str | None = None,
    think_end: str | None = "auto",
    max_topk: int | None = None,
    max_think_tokens: int | None = None,
    cold_stop_entropy: float | None = None,
    entropy_threshold: float | None = None,
    seed: int | None = None,
    **model_kwargs: Any,
) -> torch.LongTensor | SoftthinkGenerateOutput:
    """Decode with softthink inside ``model.generate(..., custom_generate=generate)``.

    transformers calls this with the prompt ids, its prepared processors, criteria and GenerationConfig.

    Args:
        softthink_tokenizer: the model's tokenizer. transformers 5.x consumes ``tokenizer=`` itself and does not
            hand it to a custom_generate callable, so pass ``softthink_tokenizer=tok``; without it the tokenizer
            is loaded from ``model.name_or_path``.
        tokenizer: used when a transformers version does forward it.
        mode: softthink decode mode (``"soft"``, ``"discrete"``, ``"gated"``, ...); default the config's ("soft").
        softthink_config: a `DecodeConfig`, dict or preset name for every other softthink field.
        think_end, max_topk, max_think_tokens, cold_stop_entropy, entropy_threshold: the `DecodeConfig` fields of
            the same names (None = the config's value). ``think_end``: "auto" (default) keeps
            ``softthink_config``'s marker or softthink's auto-detection; None = no thinking phase.
        seed: seed for sampling; None (default) draws from torch's global RNG, like stock ``generate``.

    GenerationConfig fields honoured: max_new_tokens / max_length, do_sample, temperature, top_k, top_p, min_p,
    eos_token_id, pad_token_id, stop_strings (answer phase), return_dict_in_generate, output_scores,
    output_logits. User stopping criteria are applied to the generated tokens, position by position. Other
    logits processors, beams, streamers and attention / hidden-state outputs raise `SoftthinkConfigError`.

    Returns:
        ``sequences`` ``[batch, prompt + new]`` (rows that stop early are padded with ``pad_token_id``), or with
        ``return_dict_in_generate`` a `SoftthinkGenerateOutput`.
    """
    generation_config = generation_config or model.generation_config
    tokenizer = _resolve_tokenizer(softthink_tokenizer or tokenizer, model)
    if streamer is not None:
        raise SoftthinkInputError(
            "streamer is not supported by softthink's custom_generate (the batch is decoded "
            "before tokens are returned); drop streamer=."
        )
    hf.check_processors(logits_processor)
    criteria = hf.user_stopping_criteria(stopping_criteria, generation_config)
    attention_mask = _check_model_kwargs(model_kwargs, input_ids)

    eos = hf.eos_ids(generation_config)
    pad = hf.pad_id(generation_config, eos)
    mine = dict(
        think_end=think_end,
        max_topk=max_topk,
        max_think_tokens=max_think_tokens,
        cold_stop_entropy=cold_stop_entropy,
        entropy_threshold=entropy_threshold,
    )
    overrides = {
        **hf.decode_overrides(generation_config, input_ids.shape[1]),
        **{k: v for k, v in mine.items() if v is not None},
        "seed": seed,
    }
    if think_end != "auto" or softthink_config is None:
        overrides["think_end"] = think_end
    cfg = build_config(softthink_config, mode, overrides)

    rows = [ids[mask.bool()].tolist() for ids, mask in zip(input_ids, attention_mask)]
    batch = left_pad(tokenizer.batch_decode(rows, skip_special_tokens=False), rows, pad, input_ids.device)
    want_scores = generation_config.output_scores or generation_config.output_logits or len(criteria) > 0
    steps: list[tuple[list[int], torch.Tensor]] = []
    record = (lambda active, logits: steps.append((active, logits))) if want_scores else None
    generations = generate_encoded(model, tokenizer, batch, cfg, eos_ids=eos, on_step=record)

    raw = _per_step_logits(steps, len(rows), pad)
    scores = [_processed(step, gens_phase, cfg) for step, gens_phase in zip(raw, _phases(generations, len(raw)))]
    sequences = _sequences(input_ids, generations, pad)
    if len(criteria) > 0:
        generations = _apply_criteria(criteria, sequences, scores, generations, input_ids.shape[1], tokenizer)
        sequences = _sequences(input_ids, generations, pad)
    width = sequences.shape[1] - input_ids.shape[1]
    if not generation_config.return_dict_in_generate:
        return sequences
    return SoftthinkGenerateOutput(
        sequences=sequences,
        scores=tuple(scores[:width]) if generation_config.output_scores else None,
        logits=tuple(raw[:width]) if generation_config.output_logits else None,
        generations=generations,
    )


def hub_generate(model, *args: Any, **kwargs: Any):
    """Entry point of the Hub folder's ``custom_generate/generate.py``.

    The string route (``custom_generate="DIR"``) hands over ``generate``'s raw arguments; this re-enters
    transformers' own ``generate`` (not ``model.generate``, which a Hub checkpoint may have replaced with this
    function) with the Callable, so the GenerationConfig is prepared exactly as on the Callable route.
    """
    kwargs = {k: v for k, v in kwargs.items() if v is not None or k == "think_end"}
    kwargs.pop("custom_generate", None)
    if "tokenizer" in kwargs and "softthink_tokenizer" not in kwargs:
        kwargs["softthink_tokenizer"] = kwargs["tokenizer"]  # transformers does not forward tokenizer= to callables
    return GenerationMixin.generate(model, *args, custom_generate=generate, **kwargs)


def _resolve_tokenizer(tokenizer, model):
    if tokenizer is not None:
        return tokenizer
    path = getattr(model, "name_or_path", "") or ""
    if path:
        from transformers import AutoTokenizer

        try:
            return AutoTokenizer.from_pretrained(path)
        except (OSError, ValueError):
            pass
    raise SoftthinkInputError(
        f"softthink's custom_generate needs the model's tokenizer (think marker, stop strings, texts) and could not "
        f"load one from model.name_or_path={path!r}: call model.generate(..., softthink_tokenizer=tokenizer)."
    )


def _check_model_kwargs(model_kwargs: dict[str, Any], input_ids: torch.Tensor) -> torch.Tensor:
    """The attention mask (all ones when transformers dropped it); raise on inputs softthink would ignore."""
    hf.check_supported(GenerationConfig(**{k: model_kwargs[k] for k in _OUTPUT_FLAGS if k in model_kwargs}))
    unknown = [k for k, v in model_kwargs.items() if k not in _PREPARED_MODEL_KWARGS + _OUTPUT_FLAGS and v is not None]
    if unknown:
        raise SoftthinkInputError(
            f"softthink's custom_generate does not take {', '.join(sorted(unknown))}; it decodes "
            "from input_ids and attention_mask only. Remove them."
        )
    cache = model_kwargs.get("cache") or model_kwargs.get("past_key_values")
    if cache is not None and cache.get_seq_length() > 0:
        raise SoftthinkInputError(
            "softthink's custom_generate starts from an empty cache; do not pass a filled past_key_values / cache."
        )
    mask = model_kwargs.get("attention_mask")
    return torch.ones_like(input_ids) if mask is None else mask


def _per_step_logits(steps: list[tuple[list[int], torch.Tensor]], n: int, pad: int) -> list[torch.Tensor]:
    """One ``[n, vocab]`` tensor per step; rows finished before that step score only the pad token (0, else -inf)."""
    out = []
    for rows, logits in steps:
        full = torch.full((n, logits.shape[-1]), float("-inf"), dtype=logits.dtype, device=logits.device)
        full[:, pad] = 0.0
        full[torch.tensor(rows, device=logits.device)] = logits
        out.append(full)
    return out


def _phases(generations: list[Generation], n_steps: int) -> list[list[bool | None]]:
    """Per step, per row: True if the row was thinking at that step, False if answering, None if finished."""
    return [[g.trace.thinking[t] if t < len(g.trace.thinking) else None for g in generations] for t in range(n_steps)]


def _processed(logits: torch.Tensor, thinking: list[bool | None], cfg: DecodeConfig) -> torch.Tensor:
    """Scores like transformers': greedy phases keep the raw logits; sampled phases are divided by the
    temperature, with tokens outside top-k / top-p / min-p at -inf. Finished rows keep their pad-only row."""
    out = logits.clone()
    for row, phase in enumerate(thinking):
        if phase is None:
            continue
        params = cfg.think_sampling() if phase else cfg.answer_sampling()
        if not params.do_sample:
            continue
        scaled = logits[row : row + 1].float() / params.temperature
        ids, weights = truncate_sorted(
            torch.softmax(scaled, -1), top_k=params.top_k, top_p=params.top_p, min_p=params.min_p
        )
        kept = ids[weights > 0]
        row_scores = torch.full_like(scaled[0], float("-inf"))
        row_scores[kept] = scaled[0, kept]
        out[row] = row_scores.to(out.dtype)
    return out


def _sequences(input_ids: torch.Tensor, generations: list[Generation], pad: int) -> torch.Tensor:
    width = max((g.num_tokens for g in generations), default=0)
    new = torch.full((len(generations), width), pad, dtype=input_ids.dtype, device=input_ids.device)
    for row, g in enumerate(generations):
        new[row, : g.num_tokens] = torch.tensor(g.token_ids, dtype=input_ids.dtype)
    return torch.cat([input_ids, new], dim=1)


def _apply_criteria(
    criteria: StoppingCriteriaList,
    sequences: torch.Tensor,
    scores: list[torch.Tensor],
    generations: list[Generation],
    prompt_width: int,
    tokenizer,
) -> list[Generation]:
    """Cut each row after the first position where a user stopping criterion fires (as the stock loop would)."""
    cut: list[int | None] = [None] * len(generations)
    for t, step_scores in enumerate(scores):
        fired = criteria(sequences[:, : prompt_width + t + 1], step_scores).tolist()
        for row, g in enumerate(generations):
            if fired[row] and cut[row] is None and t + 1 < g.num_tokens:
                cut[row] = t + 1
    return [g if n is None else truncate_generation(g, n, tokenizer) for g, n in zip(generations, cut)]
