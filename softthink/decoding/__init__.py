"""The decoder: one loop, pluggable per-step rules, validated config."""

from softthink.decoding.api import build_config, generate
from softthink.decoding.config import DecodeConfig, available_presets, load_decode_config
from softthink.decoding.output import Generation, StepTrace
from softthink.decoding.rules import available_modes

__all__ = [
    "generate",
    "build_config",
    "DecodeConfig",
    "load_decode_config",
    "available_presets",
    "Generation",
    "StepTrace",
    "available_modes",
]
