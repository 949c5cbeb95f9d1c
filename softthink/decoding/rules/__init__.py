"""Decode rules: one file per mode, all registered in one registry."""
from softthink.decoding.rules.base import (DecodeRule, RuleParam, Step, StepInput, merge_steps, on_params_changed,
                                           register_rule, registered_modes, registered_params, rule_class,
                                           unregister_rule)
from softthink.decoding.rules import (discrete, soft_thinking, entropy_gated, mixture_of_inputs,  # noqa: F401
                                      swir, forking_temperature)  # registration, in the order of DecodeConfig's fields


def available_modes() -> list[str]:
    """Names of all registered decode modes."""
    return registered_modes()


__all__ = ["DecodeRule", "RuleParam", "Step", "StepInput", "merge_steps", "register_rule", "unregister_rule",
           "rule_class", "available_modes", "registered_params", "on_params_changed"]
