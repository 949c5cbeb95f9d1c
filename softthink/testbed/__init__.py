"""Testbed: tiny random-init models for tests, and (see `softthink.testbed.tasks`) the synthetic reasoning tasks."""
from softthink.testbed.tiny import TINY_ARCHITECTURES, build_tiny_model, build_tiny_tokenizer

__all__ = ["TINY_ARCHITECTURES", "build_tiny_model", "build_tiny_tokenizer"]
