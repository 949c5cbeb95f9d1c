"""Testbed: the synthetic reasoning tasks and the shipped default model (`default_model_path`), plus tiny
random-init models for tests. Training and quality measurement live in `softthink.testbed.train` and
`softthink.testbed.quality` (not imported here: they pull in the training machinery)."""

from softthink.testbed.default import default_model_path
from softthink.testbed.tasks import (
    DEFAULT_DIFFICULTY,
    DIFFICULTIES,
    Difficulty,
    check_solution,
    load_problems,
    make_dataset,
    token_roles,
)
from softthink.testbed.tiny import TINY_ARCHITECTURES, build_tiny_model, build_tiny_tokenizer

__all__ = [
    "default_model_path",
    "DEFAULT_DIFFICULTY",
    "DIFFICULTIES",
    "Difficulty",
    "check_solution",
    "load_problems",
    "make_dataset",
    "token_roles",
    "TINY_ARCHITECTURES",
    "build_tiny_model",
    "build_tiny_tokenizer",
]
