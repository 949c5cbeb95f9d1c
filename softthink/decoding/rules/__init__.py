"""Decode rules: one file per mode, all registered in one registry."""

from softthink.decoding.rules import (  # noqa: F401
    discrete,
    entropy_gated,
    forking_temperature,
    mixture_of_inputs,
    multiplex,
    soft_thinking,
    swir,  # registration, in the order of DecodeConfig's fields
)
from softthink.decoding.rules.base import (
    DecodeRule,
    RuleParam,
    Step,
    StepInput,
    merge_steps,
    on_params_changed,
    register_rule,
    registered_modes,
    registered_params,
    rule_class,
    unregister_rule,
)


def available_modes() -> list[str]:
    """Names of all registered decode modes."""
    return registered_modes()


__all__ = [
    "DecodeRule",
    "RuleParam",
    "Step",
    "StepInput",
    "merge_steps",
    "register_rule",
    "unregister_rule",
    "rule_class",
    "available_modes",
    "registered_params",
    "on_params_changed",
]
