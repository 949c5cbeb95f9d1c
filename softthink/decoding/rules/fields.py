"""The static types of the built-in rules' `DecodeConfig` fields, for type checkers.

Each rule declares its knobs as `RuleParam`s and the registry adds them to `DecodeConfig` at import time
(`softthink.decoding.config._add_rule_fields`), which a type checker cannot see. `DecodeConfig` inherits these
annotations (a plain class, not a dataclass, so it adds no field and changes nothing at run time), so that
``config.max_topk`` type-checks as an ``int``. ``tests/decoding/test_rule_params.py`` keeps this list equal to
the registered params (names and types): a new built-in knob is declared in its rule file and listed here.
"""

from __future__ import annotations


class RuleFields:
    """Annotations only: one per `RuleParam` of a built-in rule (see each rule file for defaults and help)."""

    # soft (also read by gated and mixture_of_inputs)
    max_topk: int
    noise: str
    gumbel_tau: float
    dirichlet_alpha: float
    # gated
    entropy_threshold: float | None
    # forking_temperature
    fork_temperature: float
    fork_threshold: float
    # mixture_of_inputs
    moi_beta: float
    # multiplex
    multiplex_k: int
    # swir
    swir_window: int
    swir_max_switches: int | None
