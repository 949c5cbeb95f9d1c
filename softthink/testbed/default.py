"""Where the shipped testbed model lives: the library's embedded default model (works offline)."""

from __future__ import annotations

from pathlib import Path

from softthink.errors import SoftthinkDataError

CHECKPOINT_DIR = Path(__file__).resolve().parent / "checkpoint"
SOFT_CHECKPOINT_DIR = Path(__file__).resolve().parent / "checkpoint_soft"
SOFT_RL_CHECKPOINT_DIR = Path(__file__).resolve().parent / "checkpoint_soft_rl"
TESTBED_MODELS = {
    "testbed": CHECKPOINT_DIR,
    "testbed-soft": SOFT_CHECKPOINT_DIR,
    "testbed-soft-rl": SOFT_RL_CHECKPOINT_DIR,
}
"""The shipped checkpoints by name: ``testbed`` (the embedded default), ``testbed-soft`` (the same model
fine-tuned with the soft-input curriculum, so that concept tokens are in distribution) and ``testbed-soft-rl``
(the best soft-thinking RL policy trained from testbed-soft, float16 weights loaded as float32). Each has its
QUALITY.md."""
_REBUILD = {
    "testbed": "`python -m softthink.testbed.train` (700 steps, about 17 CPU-minutes)",
    "testbed-soft": "`python experiments/testbed_soft.py --stage train` (60 steps from testbed, about 3 CPU-minutes)",
    "testbed-soft-rl": "`python experiments/latent_comparison.py --stage train` then `--stage ship`",
}
_REQUIRED = ("config.json", "model.safetensors", "tokenizer.json", "tokenizer_config.json")


def default_model_path(name: str = "testbed") -> Path:
    """The directory of the shipped testbed checkpoint ``name`` (a key of `TESTBED_MODELS`), loadable by
    ``AutoModelForCausalLM.from_pretrained``, ``AutoTokenizer.from_pretrained`` and ``softthink.load_model``.

    Raises ``SoftthinkDataError`` when a file is missing (e.g. an install that dropped package data).
    """
    if name not in TESTBED_MODELS:
        from softthink.errors import unknown_name_message

        raise SoftthinkDataError(unknown_name_message("testbed model", name, list(TESTBED_MODELS)))
    directory = TESTBED_MODELS[name]
    missing = [file for file in _REQUIRED if not (directory / file).is_file()]
    if missing:
        raise SoftthinkDataError(
            f"the shipped {name} model is incomplete: {', '.join(missing)} missing in {directory}. "
            f"Reinstall softthink (the checkpoint ships as package data), or rebuild it with {_REBUILD[name]}."
        )
    return directory
