"""`softthink.generate`: the public entry point of the decoder."""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Sequence
from typing import Any

import torch

from softthink.decoding.config import DecodeConfig, load_decode_config
from softthink.decoding.loop import LoopResult, decode
from softthink.decoding.markers import ThinkMarker, resolve_think_marker
from softthink.decoding.output import Generation, StepTrace
from softthink.decoding.prompts import EncodedBatch, PromptLike, encode_prompts, split_batch
from softthink.decoding.rules import rule_class
from softthink.errors import SoftthinkConfigError, SoftthinkInputError
from softthink.models import check_model, context_length, load_model


def generate(
    model,
    prompt: PromptLike | Sequence[PromptLike],
    tokenizer=None,
    mode: str | None = None,
    config: DecodeConfig | dict | str | None = None,
    *,
    seeds: Sequence[int] | None = None,
    max_batch_size: int | None = None,
    **overrides: Any,
) -> Generation | list[Generation]:
    """Decode ``prompt`` with ``model``; Soft Thinking by default.

    Args:
        model: a loaded ``PreTrainedModel`` (then pass ``tokenizer``), or a string accepted by
            `softthink.load_model` (Hub id, local directory, ``.gguf`` file, ``"testbed"``).
        prompt: a string, chat messages (list of ``{"role", "content"}`` dicts), or a list of either (a batch).
        tokenizer: the model's tokenizer (loaded with the model when ``model`` is a string).
        mode: decode mode (``"discrete"``, ``"soft"``, ``"gated"``, ... see `softthink.available_modes`);
            overrides the config's mode.
        config: a `DecodeConfig`, a dict of its fields, or a preset name / YAML path; default ``DecodeConfig()``.
        seeds: one seed per prompt (a list as long as the batch). Each prompt then draws from its own generator,
            so its sample depends only on (prompt, seed, config), never on the other prompts of the batch:
            batched sampling equals one-by-one sampling. Replaces ``config.seed``. Default: one batched RNG
            seeded by ``config.seed`` (faster; samples depend on the batch's composition).
        max_batch_size: continuous batching: decode at most this many prompts at once, and as soon as a row
            finishes, start the next queued prompt in its slot, so the batch stays full while prompts remain.
            Default: all prompts in one batch. With ``seeds`` the results do not depend on it.
        **overrides: any `DecodeConfig` field, applied last (``max_new_tokens=128, temperature=0.6``).

    Returns:
        One `Generation` for a single prompt, a list for a batch (in prompt order).
    """
    model, tokenizer = _resolve_model(model, tokenizer)
    cfg = build_config(config, mode, overrides)
    prompts, batched = split_batch(prompt)
    device = model.get_input_embeddings().weight.device
    batch = encode_prompts(prompts, tokenizer, cfg.chat_template, _pad_token_id(tokenizer, model), device)
    generations = generate_encoded(model, tokenizer, batch, cfg, seeds=seeds, max_batch_size=max_batch_size)
    return generations if batched else generations[0]


def generate_encoded(
    model,
    tokenizer,
    batch: EncodedBatch,
    cfg: DecodeConfig,
    *,
    seeds: Sequence[int] | None = None,
    eos_ids: set[int] | None = None,
    on_step: Callable[[list[int], torch.Tensor], None] | None = None,
    max_batch_size: int | None = None,
) -> list[Generation]:
    """`generate` on prompts that are already tokenized and left-padded (``batch``), with a resolved config.

    For integrations that receive token ids (transformers ``custom_generate``, lm-eval). ``eos_ids`` replaces the
    model's and tokenizer's end-of-sequence ids (`eos_token_ids`); ``on_step`` and ``max_batch_size`` (see
    `generate`) are passed to the decode loop.
    """
    check_model(model)
    rule = rule_class(cfg.mode)
    marker = resolve_think_marker(
        cfg.think_end,
        tokenizer,
        required_by=cfg.mode if rule.needs_thinking else None,
        needs_injection=cfg.max_think_tokens is not None or cfg.cold_stop_entropy is not None,
    )
    prompt_seeds = _check_seeds(seeds, len(batch.token_ids))
    _check_max_batch_size(max_batch_size)
    _check_context(model, batch, cfg)
    eos = eos_token_ids(model, tokenizer) if eos_ids is None else set(eos_ids)
    with torch.no_grad(), _seeded(cfg.seed if prompt_seeds is None else None, batch.input_ids.device):
        result = decode(
            model, tokenizer, batch, cfg, marker, eos, prompt_seeds, on_step=on_step, max_batch_size=max_batch_size
        )
    return _assemble(result, batch, tokenizer, cfg, marker)


def build_config(config: DecodeConfig | dict | str | None, mode: str | None, overrides: dict[str, Any]) -> DecodeConfig:
    """Resolve ``config`` (dataclass, dict, preset name or path) and apply ``mode`` and ``overrides``."""
    if mode is not None:
        overrides = {"mode": mode, **overrides}
    if config is None:
        return DecodeConfig.from_dict(overrides)
    if isinstance(config, DecodeConfig):
        return config.replace(**overrides) if overrides else config
    if isinstance(config, dict):
        return DecodeConfig.from_dict({**config, **overrides})
    if isinstance(config, str):
        return load_decode_config(config, **overrides)
    raise SoftthinkConfigError(
        f"config must be a DecodeConfig, a dict, a preset name or a YAML path; got {type(config).__name__}.",
        param="config",
        value=config,
    )


def eos_token_ids(model, tokenizer) -> set[int]:
    """End-of-sequence ids: the model's generation config and the tokenizer's, together."""
    ids: set[int] = set()
    gen_eos = getattr(getattr(model, "generation_config", None), "eos_token_id", None)
    for value in (gen_eos, tokenizer.eos_token_id):
        if isinstance(value, int):
            ids.add(value)
        elif value is not None:
            ids.update(int(v) for v in value)
    return ids


def _resolve_model(model, tokenizer):
    if isinstance(model, str):
        loaded, loaded_tokenizer = load_model(model)
        return loaded, tokenizer or loaded_tokenizer
    if tokenizer is None:
        raise SoftthinkInputError(
            "a loaded model needs its tokenizer: generate(model, prompt, tokenizer=tok). "
            "Or pass the model's path/id as a string to load both."
        )
    check_model(model)
    return model, tokenizer


def _check_seeds(seeds: Sequence[int] | None, n_prompts: int) -> list[int] | None:
    if seeds is None:
        return None
    if isinstance(seeds, (int, str)) or not all(isinstance(s, int) and not isinstance(s, bool) for s in seeds):
        raise SoftthinkInputError(
            f"seeds must be a list of ints, one per prompt; got {seeds!r}. For one seed for the whole call use seed=..."
        )
    seeds = list(seeds)
    if len(seeds) != n_prompts:
        raise SoftthinkInputError(
            f"seeds has {len(seeds)} entries but there are {n_prompts} prompts; pass one seed "
            "per prompt (a single prompt takes seeds=[s])."
        )
    if any(s < 0 for s in seeds):
        raise SoftthinkInputError(f"seeds must be non-negative ints; got {seeds!r}.")
    return seeds


def _check_max_batch_size(value: int | None) -> None:
    if value is not None and (not isinstance(value, int) or isinstance(value, bool) or value < 1):
        raise SoftthinkInputError(
            f"max_batch_size must be None (one batch) or an int >= 1 (the number of slots); got {value!r}."
        )


def _pad_token_id(tokenizer, model) -> int:
    # Padding is masked out everywhere, so any valid id works when the tokenizer defines none.
    for value in (tokenizer.pad_token_id, tokenizer.eos_token_id, getattr(model.config, "pad_token_id", None)):
        if isinstance(value, int):
            return value
    return 0


def _check_context(model, batch: EncodedBatch, cfg: DecodeConfig) -> None:
    limit = context_length(model)
    if limit is None:
        return
    longest = batch.input_ids.shape[1]
    if longest >= limit:
        raise SoftthinkInputError(
            f"prompt is {longest} tokens, but the model's context is {limit} tokens; shorten the prompt."
        )
    if longest + cfg.max_new_tokens > limit:
        raise SoftthinkInputError(
            f"prompt ({longest} tokens) + max_new_tokens ({cfg.max_new_tokens}) exceeds the model's context of "
            f"{limit} tokens; set max_new_tokens <= {limit - longest} or shorten the prompt."
        )


@contextlib.contextmanager
def _seeded(seed: int | None, device: torch.device):
    """Seed torch's RNG for the call without disturbing the caller's RNG state."""
    if seed is None:
        yield
        return
    devices = [device] if device.type == "cuda" else []
    with torch.random.fork_rng(devices=devices):
        torch.manual_seed(seed)
        yield


def _assemble(
    result: LoopResult, batch: EncodedBatch, tokenizer, cfg: DecodeConfig, marker: ThinkMarker | None
) -> list[Generation]:
    decode_text = lambda ids: tokenizer.decode(ids, skip_special_tokens=False)
    out = []
    for row, rec in enumerate(result.records):
        ids = rec.token_ids
        assert rec.stop_reason is not None, "the decode loop gives every row a stop reason by its last step"
        body = ids[:-1] if rec.stop_reason == "eos" else ids  # the final EOS is not part of the text
        think_tokens = sum(rec.in_thinking)
        thinking_text = decode_text(body[:think_tokens])
        if rec.think_end_reason is not None and marker is not None:
            thinking_text = thinking_text.rsplit(marker.text, 1)[0]
        trace = StepTrace(
            token_ids=list(ids),
            entropy=rec.entropy,
            soft=rec.soft,
            thinking=rec.in_thinking,
            kept_ids=result.kept_ids[row] if result.kept_ids else [],
            kept_weights=result.kept_weights[row] if result.kept_weights else [],
        )
        out.append(
            Generation(
                text=decode_text(body),
                thinking_text=thinking_text,
                answer_text=decode_text(body[think_tokens:]),
                token_ids=list(ids),
                prompt=batch.texts[row],
                prompt_token_ids=batch.token_ids[row],
                think_tokens=think_tokens,
                answer_tokens=len(ids) - think_tokens,
                soft_steps=sum(rec.soft),
                stop_reason=rec.stop_reason,
                think_end_reason=rec.think_end_reason,
                mode=cfg.mode,
                trace=trace,
            )
        )
    return out
