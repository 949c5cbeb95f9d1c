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

    Raises `SoftthinkInputError` before loading any weights for: a path that does not exist, a folder without
    ``config.json`` or tokenizer files, an unreadable or truncated ``.gguf``, an encoder-decoder or other
    non-causal-LM checkpoint, an unknown dtype and a device that is unknown or absent (``"cuda"`` without a GPU).
    """
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tp_kwargs = tensor_parallel_kwargs(tp_plan, device)
    device = resolve_device(device)
    dtype = resolve_dtype(dtype, device)
    source, kwargs = resolve_source(name_or_path)
    check_causal_lm_config(source, kwargs, name_or_path)
    _check_tokenizer_files(source, kwargs)
    try:
        tokenizer = AutoTokenizer.from_pretrained(source, **kwargs)
        model = AutoModelForCausalLM.from_pretrained(source, dtype=dtype, **kwargs, **tp_kwargs)
    except (OSError, ValueError) as err:
        raise SoftthinkInputError(f"could not load model {name_or_path!r}: {err}\n{_REMEDY}") from err
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


def load_tokenizer(name_or_path: str):
    """The tokenizer of what `load_model` accepts (``"testbed"``, a folder, a ``.gguf`` file, a Hub id), with the
    same checks of the path."""
    from transformers import AutoTokenizer

    source, kwargs = resolve_source(name_or_path, need_config=False)
    _check_tokenizer_files(source, kwargs)
    try:
        return AutoTokenizer.from_pretrained(source, **kwargs)
    except (OSError, ValueError) as err:
        raise SoftthinkInputError(f"could not load a tokenizer from {name_or_path!r}: {err}\n{_REMEDY}") from err


_REMEDY = (
    "Pass a local model directory, a .gguf file, 'testbed', or a Hub id (needs network access or a populated "
    "Hugging Face cache)."
)
_TOKENIZER_FILES = ("tokenizer.json", "tokenizer_config.json", "tokenizer.model", "vocab.json", "spiece.model")
_DTYPES = ("float32", "float16", "bfloat16", "float64")


def resolve_device(device: str | torch.device | None) -> torch.device:
    """``device`` as a `torch.device` (default CUDA when available, else CPU); an unknown or absent device raises."""
    if device is None:
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        resolved = torch.device(device)
    except (RuntimeError, TypeError) as err:
        raise SoftthinkInputError(
            f"unknown device {device!r} ({err}). Use 'cpu', 'cuda', 'cuda:1', 'mps', or leave it unset."
        ) from None
    if resolved.type == "cuda":
        count = torch.cuda.device_count() if torch.cuda.is_available() else 0
        if count == 0:
            raise SoftthinkInputError(
                f"device={str(device)!r} but no CUDA GPU is available to this torch "
                f"(torch {torch.__version__}, CUDA build: {torch.version.cuda or 'no'}). Use device='cpu', or leave "
                "the device unset to take a GPU when there is one."
            )
        if resolved.index is not None and resolved.index >= count:
            raise SoftthinkInputError(
                f"device={str(device)!r} but only {count} CUDA GPU(s) are visible (cuda:0..cuda:{count - 1})."
            )
    if resolved.type == "mps" and not torch.backends.mps.is_available():
        raise SoftthinkInputError(f"device={str(device)!r} but MPS is not available here. Use device='cpu'.")
    return resolved


def resolve_dtype(dtype: torch.dtype | str | None, device: torch.device) -> torch.dtype:
    """``dtype`` as a `torch.dtype` (names such as ``"bfloat16"`` or ``"torch.float16"``); default bfloat16 on CUDA
    (when supported), float32 otherwise. An unknown name raises."""
    if dtype is None:
        return torch.bfloat16 if device.type == "cuda" and torch.cuda.is_bf16_supported() else torch.float32
    if isinstance(dtype, torch.dtype):
        return dtype
    value = getattr(torch, dtype.removeprefix("torch."), None) if isinstance(dtype, str) else None
    if not isinstance(value, torch.dtype) or not value.is_floating_point:
        raise SoftthinkInputError(
            f"unknown dtype {dtype!r}: a model's weights take a floating-point torch dtype. Use one of "
            f"{', '.join(_DTYPES)}, or leave it unset."
        )
    return value


def resolve_source(name_or_path: str, *, need_config: bool = True) -> tuple[str, dict]:
    """``(what to pass to from_pretrained, its keyword arguments)`` for a `load_model` argument. A local folder
    must exist and hold ``config.json`` (``need_config``); a ``.gguf`` file must be readable."""
    source = str(name_or_path)
    from softthink.testbed.default import TESTBED_MODELS, default_model_path

    if source in TESTBED_MODELS:
        return str(default_model_path(source)), {}
    path = Path(source).expanduser()
    if source.endswith(".gguf"):
        if not path.is_file():
            raise SoftthinkInputError(f"GGUF file {source} does not exist.")
        _check_gguf(path)
        return str(path.parent), {"gguf_file": path.name}
    if path.is_dir():
        _check_folder(path, need_config)
        return str(path), {}
    if path.exists() or _is_local_path(source):
        what = "is a file, not a model folder or a .gguf file" if path.exists() else "does not exist"
        raise SoftthinkInputError(f"model path {source} {what}. {_REMEDY}")
    return source, {}  # a Hub id


def _is_local_path(source: str) -> bool:
    """Text that can only be a local path: absolute, ``./``, ``../``, ``~``, or not of the Hub's ``org/name`` form."""
    import re

    if source.startswith(("/", ".", "~")) or "\\" in source:
        return True
    return not re.fullmatch(r"[A-Za-z0-9][\w.-]*(/[A-Za-z0-9][\w.-]*)?", source)


def _files(path: Path) -> tuple[list[str], str]:
    files = sorted(p.name for p in path.iterdir())
    return files, ", ".join(files[:8]) + (", ..." if len(files) > 8 else "") if files else "it is empty"


def _check_folder(path: Path, need_config: bool) -> None:
    files, shown = _files(path)
    if need_config and "config.json" not in files:
        raise SoftthinkInputError(
            f"folder {path} is not a model folder: it has no config.json ({shown}). Pass a folder written by "
            "model.save_pretrained() and tokenizer.save_pretrained(), a .gguf file, 'testbed' or a Hub id."
        )


def _check_tokenizer_files(source: str, kwargs: dict) -> None:
    path = Path(source)
    if not path.is_dir() or "gguf_file" in kwargs:
        return  # a Hub id, or the folder of a .gguf file (the tokenizer is inside the file)
    files, shown = _files(path)
    if not any(name in files for name in _TOKENIZER_FILES):
        raise SoftthinkInputError(
            f"model folder {path} has no tokenizer files ({', '.join(_TOKENIZER_FILES)}; found: {shown}). Save the "
            "tokenizer into it with tokenizer.save_pretrained(folder)."
        )


def _check_gguf(path: Path) -> None:
    """Read the GGUF header and tensor index (memory-mapped; no weights are loaded)."""
    from softthink.extras import require

    gguf = require("gguf", extra="gguf", feature="loading a .gguf model")
    size = path.stat().st_size
    with path.open("rb") as handle:
        magic = handle.read(4)
    if magic != b"GGUF":
        raise SoftthinkInputError(
            f"{path} is not a GGUF file (it does not start with the bytes 'GGUF'; {size} bytes). Check the path, or "
            "download the model again."
        )
    try:
        gguf.GGUFReader(str(path))
    except Exception as err:  # struct, reshape, memmap and key errors all mean one thing: the file is damaged
        raise SoftthinkInputError(
            f"GGUF file {path} ({size} bytes) is truncated or damaged: {type(err).__name__}: {err}. Download it "
            "again (compare its size with the source's)."
        ) from None


def check_causal_lm_config(source: str, kwargs: dict, name_or_path: str) -> None:
    """Raise `SoftthinkInputError` when the checkpoint's config is not a decoder-only causal LM (read before any
    weights: an encoder-decoder such as T5 is named as such rather than with transformers' list of 200 classes)."""
    from transformers import AutoConfig
    from transformers.models.auto.modeling_auto import MODEL_FOR_CAUSAL_LM_MAPPING

    try:
        config = AutoConfig.from_pretrained(source, **kwargs)
    except (OSError, ValueError) as err:
        local = "" if Path(source).exists() else f" (there is no local folder {source}; as a Hub id)"
        raise SoftthinkInputError(f"could not load model {name_or_path!r}{local}: {err}\n{_REMEDY}") from err
    kind = getattr(config, "model_type", type(config).__name__)
    if getattr(config, "is_encoder_decoder", False):
        raise SoftthinkInputError(
            f"model {name_or_path!r} is an encoder-decoder checkpoint (model_type {kind!r}); softthink decodes "
            "decoder-only causal LMs (AutoModelForCausalLM). Use a decoder-only model."
        )
    if type(config) not in MODEL_FOR_CAUSAL_LM_MAPPING:
        raise SoftthinkInputError(
            f"model {name_or_path!r} (model_type {kind!r}) is not a causal language model transformers can load "
            "with AutoModelForCausalLM. Use a decoder-only LM checkpoint."
        )


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
