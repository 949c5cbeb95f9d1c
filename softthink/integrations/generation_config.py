"""Reading a prepared transformers ``GenerationConfig`` (and the processors and criteria built from it) as
softthink decode settings.

`model.generate` turns its config into logits processors and stopping criteria before it calls a
``custom_generate`` callable. softthink's loop applies temperature / top-k / top-p / min-p, EOS, stop strings and
the length limit itself, so those are read from the config and their processors skipped; any other logits
processor (repetition penalty, bad words, min length, ...) would be silently ignored, so it is an error. User
stopping criteria that only look at the tokens are applied afterwards (`apply_stopping_criteria`).
"""

from __future__ import annotations

from typing import Any

from transformers import GenerationConfig, LogitsProcessorList, StoppingCriteriaList
from transformers.generation.logits_process import (
    MinPLogitsWarper,
    TemperatureLogitsWarper,
    TopKLogitsWarper,
    TopPLogitsWarper,
)
from transformers.generation.stopping_criteria import (
    EosTokenCriteria,
    MaxLengthCriteria,
    MaxTimeCriteria,
    StopStringCriteria,
)

from softthink.errors import SoftthinkConfigError

# Processors whose effect softthink's own sampling reproduces from the config fields.
NATIVE_PROCESSORS = (TemperatureLogitsWarper, TopKLogitsWarper, TopPLogitsWarper, MinPLogitsWarper)
# GenerationConfig fields that map one to one onto DecodeConfig fields (None = leave softthink's default).
SAMPLING_FIELDS = ("do_sample", "temperature", "top_k", "top_p", "min_p")


def decode_overrides(generation_config: GenerationConfig, input_length: int) -> dict[str, Any]:
    """DecodeConfig fields set by ``generation_config`` (a config already prepared by ``model.generate``)."""
    check_supported(generation_config)
    overrides: dict[str, Any] = {}
    for name in SAMPLING_FIELDS:
        value = getattr(generation_config, name, None)
        if value is not None:
            overrides[name] = value
    overrides["max_new_tokens"] = max_new_tokens(generation_config, input_length)
    stop = generation_config.stop_strings
    if stop:
        overrides["stop_strings"] = [stop] if isinstance(stop, str) else list(stop)
    return overrides


def max_new_tokens(generation_config: GenerationConfig, input_length: int) -> int:
    """The generation length: ``max_new_tokens``, else ``max_length`` minus the prompt width."""
    if generation_config.max_new_tokens is not None:
        return generation_config.max_new_tokens
    if generation_config.max_length is not None:
        if generation_config.max_length <= input_length:
            raise SoftthinkConfigError(
                f"generation_config.max_length ({generation_config.max_length}) leaves no room after the "
                f"{input_length}-token prompt. Set max_new_tokens instead.",
                param="max_length",
                value=generation_config.max_length,
            )
        return generation_config.max_length - input_length
    raise SoftthinkConfigError(
        "generation_config sets neither max_new_tokens nor max_length; set max_new_tokens.", param="max_new_tokens"
    )


def check_supported(generation_config: GenerationConfig) -> None:
    """Raise for settings softthink cannot honour (rather than ignoring them)."""
    unsupported = {"num_beams": 1, "output_attentions": False, "output_hidden_states": False}
    for name, neutral in unsupported.items():
        value = getattr(generation_config, name, None)
        if value not in (None, neutral):
            raise SoftthinkConfigError(
                f"generation_config.{name}={value!r} is not supported by softthink's custom_generate (its loop "
                f"feeds concept-token embeddings and keeps no per-layer outputs). Use {name}={neutral!r}.",
                param=name,
                value=value,
            )


def eos_ids(generation_config: GenerationConfig) -> set[int]:
    """End-of-sequence ids of the config (an int, a list, or None = never stop on a token)."""
    value = generation_config.eos_token_id
    if value is None:
        return set()
    if isinstance(value, int):
        return {value}
    return {int(v) for v in (value.tolist() if hasattr(value, "tolist") else value)}


def pad_id(generation_config: GenerationConfig, eos: set[int]) -> int:
    """The id that pads finished rows: ``pad_token_id``, else the first EOS id (as transformers does), else 0."""
    if generation_config.pad_token_id is not None:
        return int(generation_config.pad_token_id)
    return min(eos) if eos else 0


def check_processors(logits_processor: LogitsProcessorList | None) -> None:
    """Raise if a processor other than the sampling warpers softthink applies itself is in the list."""
    for processor in logits_processor or ():
        if not isinstance(processor, NATIVE_PROCESSORS):
            name = type(processor).__name__
            raise SoftthinkConfigError(
                f"logits processor {name} is not supported by softthink's custom_generate: the soft-thinking loop "
                "applies only temperature, top_k, top_p and min_p. Remove the setting that adds it (e.g. "
                "repetition_penalty, min_new_tokens, bad_words_ids) or the custom processor.",
                param="logits_processor",
                value=name,
            )


def user_stopping_criteria(
    stopping_criteria: StoppingCriteriaList | None, generation_config: GenerationConfig
) -> StoppingCriteriaList:
    """The criteria not built from config fields that softthink applies natively (length, EOS, stop strings)."""
    native: tuple[type, ...] = (MaxLengthCriteria, EosTokenCriteria)
    if generation_config.stop_strings:
        native += (StopStringCriteria,)
    kept = StoppingCriteriaList()
    for criterion in stopping_criteria or ():
        if isinstance(criterion, MaxTimeCriteria):
            raise SoftthinkConfigError(
                "max_time is not supported by softthink's custom_generate (stopping criteria are applied to the "
                "finished tokens). Use max_new_tokens.",
                param="max_time",
                value=criterion.max_time,
            )
        if not isinstance(criterion, native):
            kept.append(criterion)
    return kept
