"""Decode rules: one file per mode, all registered in one registry."""
from softthink.decoding.rules.base import (DecodeRule, Step, StepInput, merge_steps, register_rule, registered_modes,
                                           rule_class)
from softthink.decoding.rules import discrete, soft_thinking, entropy_gated  # noqa: F401  (registration)


def available_modes() -> list[str]:
    """Names of all registered decode modes."""
    return registered_modes()


__all__ = ["DecodeRule", "Step", "StepInput", "merge_steps", "register_rule", "rule_class", "available_modes"]
