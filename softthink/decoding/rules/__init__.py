"""Decode rules: one file per mode, all registered in one registry."""
from softthink.decoding.rules.base import (DecodeRule, Step, StepInput, merge_steps, register_rule, registered_modes,
                                           rule_class)
from softthink.decoding.rules import (discrete, entropy_gated, forking_temperature, mixture_of_inputs,  # noqa: F401
                                      soft_thinking, swir)  # registration


def available_modes() -> list[str]:
    """Names of all registered decode modes."""
    return registered_modes()


__all__ = ["DecodeRule", "Step", "StepInput", "merge_steps", "register_rule", "rule_class", "available_modes"]
