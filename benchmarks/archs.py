"""Architecture hyperparameters of real model families, to build random-init models of their real sizes.

No download: the shapes below are those of the published checkpoints' ``config.json`` files (parameter counts
pinned in tests/scale/test_decode_benchmark.py), the weights are random. Decode speed depends on the shapes and
the dtype, not on the weight values, so a random model of the real size times like the real one (its outputs are
noise: every soft step keeps ``max_topk`` tokens, the costliest case).

The tokenizer is the tiny character-level one (`softthink.testbed.tiny.build_tiny_tokenizer`): prompts are
encoded with it, so their ids lie in its 100-token range; the model's vocabulary keeps its real size (and so the
real cost of the output head and of the per-step filtering over the vocabulary). The special ids match the
tokenizer's (bos 1, eos 2, pad 0, ``</think>`` 4).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path

import torch
from transformers import AutoModelForCausalLM, LlamaConfig, PretrainedConfig, PreTrainedModel, Qwen2Config

from softthink.errors import SoftthinkInputError

_CONFIG_CLASSES: dict[str, tuple[type[PretrainedConfig], str]] = {
    "llama": (LlamaConfig, "LlamaForCausalLM"),
    "qwen2": (Qwen2Config, "Qwen2ForCausalLM"),
}


@dataclass(frozen=True)
class Arch:
    """The shape of one model: what `config` turns into a transformers config."""

    family: str
    """``"llama"`` or ``"qwen2"`` (Qwen2 adds biases to q/k/v)."""
    hidden_size: int
    intermediate_size: int
    num_hidden_layers: int
    num_attention_heads: int
    num_key_value_heads: int
    vocab_size: int
    tie_word_embeddings: bool
    rope_theta: float
    max_position_embeddings: int
    rms_norm_eps: float

    def __post_init__(self) -> None:
        if self.family not in _CONFIG_CLASSES:
            raise SoftthinkInputError(f"Arch.family must be one of {sorted(_CONFIG_CLASSES)}, got {self.family!r}.")
        if self.hidden_size % self.num_attention_heads or self.num_attention_heads % self.num_key_value_heads:
            raise SoftthinkInputError(
                f"Arch: hidden_size ({self.hidden_size}) must divide by num_attention_heads "
                f"({self.num_attention_heads}), which must divide by num_key_value_heads ({self.num_key_value_heads})."
            )

    def config(self) -> PretrainedConfig:
        """The transformers config of this shape, with the tiny tokenizer's special ids."""
        config_class, architecture = _CONFIG_CLASSES[self.family]
        fields = {
            f.name: getattr(self, f.name) for f in dataclasses.fields(self) if f.name not in ("family", "rope_theta")
        }
        config = config_class(
            **fields,
            rope_parameters={"rope_type": "default", "rope_theta": self.rope_theta},
            bos_token_id=1,
            eos_token_id=2,
            pad_token_id=0,
        )
        config.architectures = [architecture]
        return config


ARCHS: dict[str, Arch] = {
    # a tiny Llama (the testbed shape): the overhead-bound case, seconds on a CPU
    "tiny-llama": Arch("llama", 64, 128, 2, 4, 2, 100, False, 10000.0, 512, 1e-6),
    "smollm2-135m": Arch("llama", 576, 1536, 30, 9, 3, 49152, True, 100000.0, 8192, 1e-5),
    "qwen2.5-0.5b": Arch("qwen2", 896, 4864, 24, 14, 2, 151936, True, 1000000.0, 32768, 1e-6),
    "qwen2.5-1.5b": Arch("qwen2", 1536, 8960, 28, 12, 2, 151936, True, 1000000.0, 32768, 1e-6),
    "qwen2.5-7b": Arch("qwen2", 3584, 18944, 28, 28, 4, 152064, False, 1000000.0, 32768, 1e-6),
    "llama3-8b": Arch("llama", 4096, 14336, 32, 32, 8, 128256, False, 500000.0, 8192, 1e-5),
}


def get_arch(name: str) -> Arch:
    """`ARCHS` entry ``name``; `SoftthinkInputError` listing the known names otherwise."""
    if name not in ARCHS:
        raise SoftthinkInputError(f"unknown architecture {name!r}; choose one of {sorted(ARCHS)}.")
    return ARCHS[name]


def build_random_model(name: str, *, device: str | torch.device, dtype: torch.dtype, seed: int = 0) -> PreTrainedModel:
    """A random-init model of architecture ``name``, built directly on ``device`` (an 8B model never passes through
    host memory)."""
    config = get_arch(name).config()
    torch.manual_seed(seed)
    with torch.device(device):
        model = AutoModelForCausalLM.from_config(config, dtype=dtype)
    return model.eval()


def save_config_folder(name: str, directory: str | Path, dtype: torch.dtype) -> Path:
    """A model folder with ``config.json`` only (no weights), for engines that random-init from a config
    (vLLM's ``load_format="dummy"``)."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    config = get_arch(name).config()
    config.dtype = dtype
    config.save_pretrained(directory)
    return directory
