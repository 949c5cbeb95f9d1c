"""Calling transformers models the same way across the transformers versions softthink supports.

The supported range is pyproject's ``transformers`` pin; CI tests its oldest and newest ends (``.ci/run``).

transformers 5 renamed the KV-cache argument of ``forward`` from ``past_key_values`` to ``cache``: the old name
still works there but warns on every call (a ``FutureWarning``) and goes away in 5.40, while 4.x knows only the
old name. `cache_kwarg_name` picks the name a model takes once per call site (from ``forward``'s signature), so
the hot loop never inspects anything per step.
"""

from __future__ import annotations

import inspect
from collections.abc import Collection
from functools import cache

CURRENT = "cache"
LEGACY = "past_key_values"


def forward_parameters(model) -> frozenset[str]:
    """The keyword names ``model.forward`` declares (transformers' deprecation wrappers keep the signature)."""
    return frozenset(inspect.signature(model.forward).parameters)


def cache_kwarg_name(parameters: Collection[str]) -> str:
    """The name under which to pass the KV cache to a forward that declares ``parameters`` (`forward_parameters`).

    A forward that declares neither name (a wrapper taking ``**kwargs``, e.g. a PEFT model) gets the name the
    installed transformers uses."""
    if CURRENT in parameters:
        return CURRENT
    if LEGACY in parameters:
        return LEGACY
    return _installed_cache_name()


@cache
def _installed_cache_name() -> str:
    from transformers import GenerationMixin

    return CURRENT if CURRENT in inspect.signature(GenerationMixin.prepare_inputs_for_generation).parameters else LEGACY
