"""Loading a causal LM and its tokenizer from a Hub id, a local directory, a .gguf file or the testbed default,
and checking that softthink can drive it."""

from __future__ import annotations

import inspect
import os
from pathlib import Path

import torch

from softthink.errors import SoftthinkInputError

TP_PLANS = ("auto",)
"""The tensor-parallel plans `load_model` accepts: ``"auto"`` is the model's own plan (its config's
``base_model_tp_plan``)."""


def load_model(
    name_or_path: str,
    *,
    device: str | torch.device | None = None,
    dtype: torch.dtype | str | None = None,
    tp_plan: str | None = None,
):
    """Load ``(model, tokenizer)``.

    Args:
        name_or_path: ``"testbed"`` (the embedded default model), a Hugging Face Hub id, a local model directory,
            or a ``.gguf`` file (dequantized by transformers; needs the ``gguf`` package).
        device: where to put the model; default CUDA when available, else CPU.
        dtype: torch dtype or its name; default bfloat16 on CUDA (when supported), float32 on CPU.
        tp_plan: ``"auto"`` shards the model over the processes of a ``torchrun`` launch with transformers' tensor
            parallelism (NCCL on GPUs, gloo on CPU), each process holding its shard on its local device, so
            ``device`` must be left unset. Every process must then decode the same prompts with the same settings
            (docs/scale.md).
    """
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tp_kwargs = tensor_parallel_kwargs(tp_plan, device)
    device = torch.device(device or ("cuda" if torch.cuda.is_available() else "cpu"))
    if dtype is None:
        dtype = torch.bfloat16 if device.type == "cuda" and torch.cuda.is_bf16_supported() else torch.float32
    elif isinstance(dtype, str):
        dtype = getattr(torch, dtype)
    source = str(name_or_path)
    kwargs = {}
    if source == "testbed":
        from softthink.testbed.default import default_model_path

        source = str(default_model_path())
    elif source.endswith(".gguf"):
        path = Path(source)
        if not path.is_file():
            raise SoftthinkInputError(f"GGUF file {source} does not exist.")
        from softthink.extras import require

        require("gguf", extra="gguf", feature="loading a .gguf model")
        source, kwargs = str(path.parent), {"gguf_file": path.name}
    try:
        tokenizer = AutoTokenizer.from_pretrained(source, **kwargs)
        model = AutoModelForCausalLM.from_pretrained(source, dtype=dtype, **kwargs, **tp_kwargs)
    except (OSError, ValueError) as err:
        raise SoftthinkInputError(
            f"could not load model {name_or_path!r}: {err}\nPass a local model directory, a .gguf file, 'testbed', "
            "or a Hub id (needs network access or a populated Hugging Face cache)."
        ) from err
    # transformers wraps PreTrainedModel.to with functools.wraps, and typeshed's _Wrapped does not bind self, so
    # mypy reads the device as the model argument.
    if tp_plan is None or process_group_size() == 1:  # tensor-parallel shards are on their local devices already
        model.to(device)  # type: ignore[arg-type]
    model.eval()
    check_model(model)
    return model, tokenizer


def tensor_parallel_kwargs(tp_plan: str | None, device: str | torch.device | None = None) -> dict:
    """The `from_pretrained` arguments of ``tp_plan`` (none for ``None``); raises `SoftthinkInputError` for a plan
    other than `TP_PLANS`, an explicit ``device``, or a process not started by ``torchrun``."""
    if tp_plan is None:
        return {}
    if tp_plan not in TP_PLANS:
        raise SoftthinkInputError(
            f"tp_plan must be one of {list(TP_PLANS)} or None, got {tp_plan!r}. 'auto' uses the model's own "
            "tensor-parallel plan; for a custom plan call transformers' from_pretrained(distributed_config=...)."
        )
    if device is not None:
        raise SoftthinkInputError(
            f"tp_plan={tp_plan!r} places each shard on its process's local device (cuda:LOCAL_RANK, or cpu), so "
            f"device must be left unset; got device={str(device)!r}."
        )
    if "WORLD_SIZE" not in os.environ:
        raise SoftthinkInputError(
            f"tp_plan={tp_plan!r} shards the model over the processes of a torchrun launch, but WORLD_SIZE is not "
            "set: start the program with `torchrun --nproc_per_node N ...` (N devices), or drop tp_plan."
        )
    from transformers import distributed

    config_class = getattr(distributed, "DistributedConfig", None)
    if config_class is not None and "tp_plan" in inspect.signature(config_class).parameters:
        return {"distributed_config": config_class(tp_plan=tp_plan)}
    return {"tp_plan": tp_plan}  # transformers < 5 takes the plan itself


def process_group_size() -> int:
    """How many processes share this process's torch.distributed group (1 when there is none)."""
    dist = torch.distributed
    return dist.get_world_size() if dist.is_available() and dist.is_initialized() else 1


def check_model(model) -> None:
    """Raise `SoftthinkInputError` unless ``model`` is a decoder-only LM with an input-embedding module."""
    config = getattr(model, "config", None)
    if config is not None and getattr(config, "is_encoder_decoder", False):
        raise SoftthinkInputError(
            f"{type(model).__name__} is an encoder-decoder model; softthink decodes decoder-only causal LMs "
            "(AutoModelForCausalLM). Use a decoder-only model."
        )
    try:
        embed = model.get_input_embeddings()
    except (AttributeError, NotImplementedError):
        embed = None
    if embed is None or not hasattr(embed, "weight"):
        raise SoftthinkInputError(
            f"{type(model).__name__} exposes no input-embedding module (get_input_embeddings()); concept tokens "
            "are mixtures of input embeddings, so softthink cannot drive this model."
        )


def context_length(model) -> int | None:
    """The model's maximum sequence length from its config, if it states one."""
    config = model.config.get_text_config() if hasattr(model.config, "get_text_config") else model.config
    for name in ("max_position_embeddings", "n_positions", "seq_length"):
        value = getattr(config, name, None)
        if isinstance(value, int) and value > 0:
            return value
    return None
