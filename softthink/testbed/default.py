"""Where the shipped testbed model lives: the library's embedded default model (works offline)."""

from __future__ import annotations

from pathlib import Path

from softthink.errors import SoftthinkDataError

CHECKPOINT_DIR = Path(__file__).resolve().parent / "checkpoint"
_REQUIRED = ("config.json", "model.safetensors", "tokenizer.json", "tokenizer_config.json")


def default_model_path() -> Path:
    """The directory of the shipped testbed checkpoint, loadable by ``AutoModelForCausalLM.from_pretrained``,
    ``AutoTokenizer.from_pretrained`` and ``softthink.load_model``.

    Raises ``SoftthinkDataError`` when a file is missing (e.g. an install that dropped package data).
    """
    missing = [name for name in _REQUIRED if not (CHECKPOINT_DIR / name).is_file()]
    if missing:
        raise SoftthinkDataError(
            f"the shipped testbed model is incomplete: {', '.join(missing)} missing in {CHECKPOINT_DIR}. "
            "Reinstall softthink (the checkpoint ships as package data), or rebuild it with "
            "`python -m softthink.testbed.train` (700 steps, about 17 CPU-minutes)."
        )
    return CHECKPOINT_DIR
