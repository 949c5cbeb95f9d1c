"""Tiny random-init causal LMs built from configs: no downloads, seconds on a CPU.

One builder shared by tests, benchmarks and notebooks. Every architecture gets the same small shape
(2 layers, hidden 64) and a fixed seed, so a test that builds ``build_tiny_model("llama")`` twice gets the
same weights twice.
"""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import TypedDict

import torch
from transformers import (
    AutoModelForCausalLM,
    Gemma3TextConfig,
    GemmaConfig,
    GPT2Config,
    LlamaConfig,
    PreTrainedModel,
    PreTrainedTokenizerFast,
    Qwen2Config,
)

_SPECIALS = ["<pad>", "<s>", "</s>", "<unk>", "</think>"]
TINY_VOCAB_SIZE = len(_SPECIALS) + 95
"""Vocabulary of the tiny character-level tokenizer: 5 special tokens + the 95 printable ASCII characters."""


class _Vocab(TypedDict):
    """The config keys every tiny architecture shares (typed, so each one reaches its config as an int)."""

    vocab_size: int
    bos_token_id: int
    eos_token_id: int
    pad_token_id: int


class _BlockDims(TypedDict):
    """Sizes shared by the tiny Llama and Qwen2 (same block shape), typed like `_Vocab`."""

    hidden_size: int
    intermediate_size: int
    num_hidden_layers: int
    num_attention_heads: int
    num_key_value_heads: int
    max_position_embeddings: int


_LLAMA_LIKE_DIMS = _BlockDims(
    hidden_size=64,
    intermediate_size=128,
    num_hidden_layers=2,
    num_attention_heads=4,
    num_key_value_heads=2,
    max_position_embeddings=512,
)


def _tiny_config(arch: str, vocab_size: int, tie_embeddings: bool):
    common = _Vocab(vocab_size=vocab_size, bos_token_id=1, eos_token_id=2, pad_token_id=0)
    if arch == "llama":
        return LlamaConfig(**_LLAMA_LIKE_DIMS, tie_word_embeddings=tie_embeddings, **common)
    if arch == "qwen2":
        return Qwen2Config(**_LLAMA_LIKE_DIMS, tie_word_embeddings=tie_embeddings, **common)
    if arch == "gpt2":
        return GPT2Config(n_embd=64, n_layer=2, n_head=4, n_positions=512, tie_word_embeddings=tie_embeddings, **common)
    if arch == "gemma":
        # Gemma multiplies the input embeddings by sqrt(hidden_size) inside the model: the case where a
        # concept token must go through the model's own embedding path to be right.
        return GemmaConfig(
            hidden_size=64,
            intermediate_size=128,
            num_hidden_layers=2,
            num_attention_heads=4,
            num_key_value_heads=1,
            head_dim=16,
            max_position_embeddings=512,
            tie_word_embeddings=tie_embeddings,
            **common,
        )
    if arch == "gemma3":
        # Gemma 3 scales inside its embedding module (Gemma3TextScaledWordEmbedding) and uses sliding-window
        # attention layers: a window of 16 makes short tests cross it.
        return Gemma3TextConfig(
            hidden_size=64,
            intermediate_size=128,
            num_hidden_layers=2,
            num_attention_heads=4,
            num_key_value_heads=1,
            head_dim=16,
            max_position_embeddings=512,
            sliding_window=16,
            layer_types=["sliding_attention", "full_attention"],
            tie_word_embeddings=tie_embeddings,
            **common,
        )
    raise ValueError(f"unknown tiny architecture {arch!r}; choose one of {sorted(TINY_ARCHITECTURES)}")


TINY_ARCHITECTURES = ("llama", "qwen2", "gpt2", "gemma", "gemma3")


def build_tiny_model(
    arch: str = "llama", *, seed: int = 0, tie_embeddings: bool = False, dtype: torch.dtype = torch.float32
) -> PreTrainedModel:
    """A 2-layer, hidden-64 random-init causal LM of the given architecture, deterministic in ``seed``.

    ``arch`` is one of ``TINY_ARCHITECTURES``. Its vocabulary matches ``build_tiny_tokenizer()``.
    The weights are scaled up a little so that the random model's next-token distributions are not all flat:
    that gives decode tests a mix of low- and high-entropy steps, as real models have.
    """
    config = _tiny_config(arch, TINY_VOCAB_SIZE, tie_embeddings)
    torch.manual_seed(seed)
    model = AutoModelForCausalLM.from_config(config, dtype=dtype)
    with torch.no_grad():
        for name, param in model.named_parameters():
            if param.dim() == 2:
                is_embedding = "emb" in name or "wte" in name
                # A tied embedding is also the output head: scale it less, or every step is near one-hot.
                param.mul_((5.0 if tie_embeddings else 8.0) if is_embedding else 3.0)
        if not tie_embeddings:
            model.get_output_embeddings().weight.mul_(8.0)
    model.eval()
    return model


def build_tiny_tokenizer(*, think_token: bool = True) -> PreTrainedTokenizerFast:
    """A character-level tokenizer over printable ASCII with ``</think>`` as one token, and a chat template.

    Ids: 0 ``<pad>``, 1 ``<s>``, 2 ``</s>``, 3 ``<unk>``, 4 ``</think>``, then the printable characters.
    ``think_token=False`` leaves ``</think>`` out of the special tokens (it then encodes as 8 characters), for
    tests of models without a think marker.
    """
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers

    vocab = {tok: i for i, tok in enumerate(_SPECIALS)}
    for code in range(32, 127):
        vocab[chr(code)] = len(vocab)
    backend = Tokenizer(models.WordLevel(vocab=vocab, unk_token="<unk>"))
    backend.pre_tokenizer = pre_tokenizers.Split(pattern="", behavior="isolated")
    backend.decoder = decoders.Fuse()
    tok = PreTrainedTokenizerFast(
        tokenizer_object=backend,
        pad_token="<pad>",
        bos_token="<s>",
        eos_token="</s>",
        unk_token="<unk>",
        additional_special_tokens=["</think>"] if think_token else [],
    )
    tok.chat_template = (
        "{% for m in messages %}{{ m['role'] }}: {{ m['content'] }}\n{% endfor %}"
        "{% if add_generation_prompt %}assistant: {% endif %}"
    )
    return tok


def save_tiny(arch: str, directory: str | Path | None = None, **kwargs) -> Path:
    """Save a tiny model and its tokenizer as a Hugging Face directory (for tests of path-based loading)."""
    directory = Path(directory or tempfile.mkdtemp(prefix=f"softthink-tiny-{arch}-"))
    build_tiny_model(arch, **kwargs).save_pretrained(directory)
    build_tiny_tokenizer().save_pretrained(directory)
    return directory
