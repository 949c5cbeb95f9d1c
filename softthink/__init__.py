"""softthink: latent-reasoning (Soft Thinking) decoding, token-entropy analysis, forking-token RL and a fair
math evaluation harness, for any Hugging Face causal language model."""

from softthink.decoding import (
    DecodeConfig,
    Generation,
    StepTrace,
    available_modes,
    available_presets,
    generate,
    load_decode_config,
)
from softthink.errors import SoftthinkConfigError, SoftthinkDataError, SoftthinkError, SoftthinkInputError
from softthink.models import load_model

__version__ = "0.2.0"

__all__ = [
    "generate",
    "load_model",
    "DecodeConfig",
    "load_decode_config",
    "available_modes",
    "available_presets",
    "Generation",
    "StepTrace",
    "SoftthinkError",
    "SoftthinkConfigError",
    "SoftthinkInputError",
    "SoftthinkDataError",
    "__version__",
]
