"""A suite model's tokenizer and config, read from local files only (no weights, no network).

`eval plan` counts prompt tokens with the tokenizer and `eval validate` checks think markers and context lengths
against them. Local model folders, ``.gguf`` files and ``testbed`` are read; a Hub id only when the local Hugging
Face cache holds it. Anything else is "not available offline": the caller says so and estimates.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from types import SimpleNamespace
from typing import Any

from softthink.errors import SoftthinkInputError
from softthink.models import context_length


@dataclass(frozen=True)
class ModelFiles:
    """What a model's local files say without its weights: the tokenizer, the config and the context length
    (None when the config states none)."""

    tokenizer: Any
    config: Any
    context: int | None
    source: str


def looks_local(path: str) -> bool:
    """A file path rather than a Hub id or 'testbed'."""
    return path.startswith(("/", ".", "~")) or path.endswith(".gguf")


@lru_cache(maxsize=32)
def local_model_files(path: str) -> tuple[ModelFiles | None, str | None]:
    """``(files, None)`` when the tokenizer and config of ``path`` (anything `softthink.load_model` takes) can be
    read here without a network, else ``(None, why not)``. Files that exist but cannot be read raise
    `SoftthinkInputError` (the run would fail on them too). Cached per path for the process."""
    from transformers import AutoConfig, AutoTokenizer

    kwargs: dict[str, Any] = {}
    hub = False
    from softthink.testbed.default import TESTBED_MODELS, default_model_path

    if path in TESTBED_MODELS:
        source, where = str(default_model_path(path)), f"the shipped {path} checkpoint"
    elif path.endswith(".gguf"):
        if not Path(path).is_file():
            return None, f"{path} does not exist on this machine"
        source, where, kwargs = str(Path(path).parent), path, {"gguf_file": Path(path).name}
    elif looks_local(path) or Path(path).is_dir():
        if not Path(path).is_dir():
            return None, f"{path} does not exist on this machine"
        source, where = path, path
    else:
        source, where, hub = path, f"the local Hugging Face cache ({path})", True
    try:
        tokenizer = AutoTokenizer.from_pretrained(source, local_files_only=True, **kwargs)
        config = AutoConfig.from_pretrained(source, local_files_only=True, **kwargs)
    except Exception as err:  # every reason present files cannot be read (bad gguf, bad json) is the same error
        if hub:  # not cached, or not a Hub id at all (a folder that is not here)
            return None, f"{path} is neither a folder here nor in the local Hugging Face cache"
        raise SoftthinkInputError(f"cannot read the tokenizer/config of {where}: {type(err).__name__}: {err}") from err
    return ModelFiles(tokenizer, config, context_length(SimpleNamespace(config=config)), where), None
