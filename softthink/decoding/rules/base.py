"""The per-step decode-rule interface and the mode registry.

The loop (`softthink.decoding.loop`) owns the mechanics: prefill, KV cache, masks, phases, stopping and output.
A rule owns only the decision of one step: given the step's distribution, which visible token to show and which
weighted set of tokens to feed back (one token with weight 1 for a discrete step, a concept-token mixture for a
soft step). Every mode is one small rule class registered with `@register_rule`.

A rule declares its own config knobs as `RuleParam`s in ``params``: each becomes a flat field of
`softthink.DecodeConfig` (``DecodeConfig(max_topk=5)``, preset YAML keys, ``--set max_topk=3``), validated by the
param's own check. A new mode is therefore one file: a rule class with its params, registered under its name.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, ClassVar

import torch

from softthink.config_io import check_type
from softthink.decoding.processors import truncate_sorted
from softthink.decoding.randomness import GLOBAL_RANDOMNESS, Randomness
from softthink.errors import SoftthinkConfigError, unknown_name_message

if TYPE_CHECKING:
    from softthink.decoding.config import DecodeConfig, SamplingParams


@dataclass(frozen=True)
class RuleParam:
    """A config field declared by a rule: it becomes a `DecodeConfig` field with this default and help text.

    ``check(value)`` is true for valid values; otherwise `DecodeConfig` raises
    ``decode.<name> <rule>, got <value>. <remedy>``. ``normalise`` maps a given value first (e.g. lower-case);
    the normalised value must then fit ``type`` (`softthink.config_io.check_type`), before ``check`` runs.
    """

    name: str
    type: Any
    default: Any
    help: str
    check: Callable[[Any], bool] = lambda value: True
    rule: str = ""
    remedy: str = ""
    normalise: Callable[[Any], Any] | None = None
    omitted_at_default: bool = False
    """Leave the field out of `DecodeConfig.identity_dict` while it holds its default. Every param added after
    results were first stored sets it, so that registering a new mode never changes the identity (the cell hash and
    folder) of existing evaluation cells; a non-default value is always part of the identity."""

    def validated(self, value: Any) -> Any:
        """``value`` normalised, or `SoftthinkConfigError` naming the field, the value, the rule and the fix."""
        if self.normalise is not None:
            value = self.normalise(value)
        check_type(self.name, value, self.type, what="decode")
        if not self.check(value):
            raise SoftthinkConfigError(
                f"decode.{self.name} {self.rule}, got {value!r}. {self.remedy}", param=self.name, value=value
            )
        return value


def positive_int(value: Any) -> bool:
    """A check for `RuleParam`: an int (not a bool) >= 1."""
    return isinstance(value, int) and not isinstance(value, bool) and value >= 1


def positive(value: Any) -> bool:
    """A check for `RuleParam`: a number > 0."""
    return isinstance(value, (int, float)) and not isinstance(value, bool) and value > 0


def non_negative(value: Any) -> bool:
    """A check for `RuleParam`: a number >= 0."""
    return isinstance(value, (int, float)) and not isinstance(value, bool) and value >= 0


def non_negative_or_none(value: Any) -> bool:
    """A check for `RuleParam`: None (off) or a number >= 0."""
    return value is None or non_negative(value)


def require_sampling(config: DecodeConfig, mode: str, why: str) -> None:
    """`SoftthinkConfigError` unless ``config.do_sample``: for rules that cannot run greedily (``why`` says what
    they sample)."""
    if not config.do_sample:
        raise SoftthinkConfigError(
            f"decode.do_sample must be True in mode {mode!r} ({why}); set do_sample=True, or use mode 'discrete' "
            "for greedy decoding.",
            param="do_sample",
            value=config.do_sample,
        )


@dataclass
class StepInput:
    """What a rule sees at one step, for the rows it decides (all tensors share the row order).

    Attributes:
        logits: ``[b, vocab]`` raw next-token logits.
        probs: ``[b, vocab]`` float32 ``softmax(logits / temperature)`` at the phase's temperature.
        entropy: ``[b]`` entropy of ``probs`` in nats.
        state: the rule's per-row state tensors (see `DecodeRule.init_state`); a rule updates it in place.
        random: where the rule's random draws come from (`softthink.decoding.randomness`); a rule never calls
            torch's RNG itself, so per-prompt seeds can make each row's draws independent of the batch.

    `truncated` filters ``probs`` once per step and filter chain: rules that run on the same step (a gate's two
    branches, both phases' rules) share the pass, a capped request being the prefix of an uncapped one.
    """

    logits: torch.Tensor
    probs: torch.Tensor
    entropy: torch.Tensor
    state: dict[str, torch.Tensor] = field(default_factory=dict)
    random: Randomness = GLOBAL_RANDOMNESS
    _filtered: dict = field(default_factory=dict, repr=False, compare=False)

    def truncated(
        self, *, top_k: int = 0, top_p: float = 1.0, min_p: float = 0.0, max_keep: int | None = None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """`softthink.decoding.processors.truncate_sorted` of ``probs``, computed once per filter chain: a
        request capped at ``max_keep`` is served from an earlier wider result (its first ``max_keep`` columns,
        renormalised: the filters keep prefixes, so that is the same distribution)."""
        key = (top_k, top_p, min_p)
        hit = self._filtered.get(key)
        if hit is not None:
            ids, weights, cap = hit
            if cap == max_keep or (cap is None and max_keep is not None and max_keep >= ids.shape[1]):
                return ids, weights
            if max_keep is not None and (cap is None or max_keep < cap):
                ids, weights = ids[:, :max_keep], weights[:, :max_keep]
                return ids, weights / weights.sum(-1, keepdim=True)
        ids, weights = truncate_sorted(self.probs, top_k=top_k, top_p=top_p, min_p=min_p, max_keep=max_keep)
        if hit is None or max_keep is None or (hit[2] is not None and max_keep > hit[2]):
            self._filtered[key] = (ids, weights, max_keep)
        return ids, weights


@dataclass
class Step:
    """A rule's decision for a batch of rows.

    Attributes:
        token_ids: ``[b]`` the visible token of each row (the text the step shows).
        kept_ids: ``[b, K]`` the tokens fed back; ``[b, 1]`` for a discrete step.
        weights: ``[b, K]`` float32 (or float64) mixture weights, rows sum to 1 (0 for padding).
        soft: ``[b]`` bool, True where the fed input is a concept-token mixture.
    """

    token_ids: torch.Tensor
    kept_ids: torch.Tensor
    weights: torch.Tensor
    soft: torch.Tensor

    @classmethod
    def discrete(cls, token_ids: torch.Tensor) -> Step:
        """A discrete step: feed the visible token itself."""
        ones = torch.ones(token_ids.shape[0], 1, dtype=torch.float32, device=token_ids.device)
        return cls(token_ids, token_ids[:, None], ones, torch.zeros_like(token_ids, dtype=torch.bool))

    def width(self, k: int) -> Step:
        """The same step with ``kept_ids``/``weights`` padded (id 0, weight 0) to width ``k``."""
        pad = k - self.kept_ids.shape[1]
        if pad <= 0:
            return self
        return Step(
            self.token_ids,
            torch.nn.functional.pad(self.kept_ids, (0, pad)),
            torch.nn.functional.pad(self.weights, (0, pad)),
            self.soft,
        )


def merge_steps(take_first: torch.Tensor, first: Step, second: Step) -> Step:
    """Row-wise choice between two steps over the same rows: ``first`` where ``take_first`` else ``second``."""
    k = max(first.kept_ids.shape[1], second.kept_ids.shape[1])
    first, second = first.width(k), second.width(k)
    row = take_first[:, None]
    return Step(
        torch.where(take_first, first.token_ids, second.token_ids),
        torch.where(row, first.kept_ids, second.kept_ids),
        torch.where(row, first.weights, second.weights),
        torch.where(take_first, first.soft, second.soft),
    )


class DecodeRule:
    """Base class of decode rules. Subclasses set `params`, `uses`, `needs_thinking` and implement `step`.

    ``sampling`` is the phase's discrete sampling parameters: rules that pick a discrete token use them.
    """

    name: ClassVar[str] = ""
    params: ClassVar[tuple[RuleParam, ...]] = ()
    """The config fields this rule declares (each becomes a `DecodeConfig` field; declare a field once, in the
    rule that owns it, and list it in ``uses`` of the other rules that read it)."""
    uses: ClassVar[tuple[str, ...]] = ()
    """Mode-specific config fields this rule reads (others set to non-defaults trigger a no-effect warning).
    Default: the names of its own ``params``."""
    needs_thinking: ClassVar[bool] = False
    """True for rules that only make sense during a thinking phase (every soft mode)."""

    def __init__(self, config: DecodeConfig, sampling: SamplingParams):
        self.config = config
        self.sampling = sampling

    @classmethod
    def validate_config(cls, config: DecodeConfig) -> None:
        """Raise `SoftthinkConfigError` if ``config`` lacks something this rule needs (override as needed)."""

    @classmethod
    def mode_fields_unused(cls, config: DecodeConfig) -> list[str]:
        """Mode-specific fields set away from their defaults that this rule would ignore."""
        return [p.name for p in _PARAMS.values() if p.name not in cls.uses and getattr(config, p.name) != p.default]

    def init_state(self, batch_size: int, device: torch.device) -> dict[str, torch.Tensor]:
        """Per-row state tensors (first dimension = rows). The loop selects rows of them when the batch shrinks."""
        return {}

    def step(self, inputs: StepInput) -> Step:
        raise NotImplementedError


_RULES: dict[str, type[DecodeRule]] = {}
_PARAMS: dict[str, RuleParam] = {}
_PARAM_LISTENERS: list[Callable[[], None]] = []


def register_rule(name: str):
    """Class decorator adding a rule to the mode registry under ``name``, and its ``params`` to `DecodeConfig`."""

    def decorate(cls: type[DecodeRule]) -> type[DecodeRule]:
        if name in _RULES:
            raise ValueError(f"decode mode {name!r} is registered twice ({_RULES[name].__name__}, {cls.__name__})")
        own = cls.__dict__.get("params", ())
        clash = [p.name for p in own if p.name in _PARAMS and _PARAMS[p.name] is not p]
        if clash:
            raise ValueError(
                f"decode mode {name!r} declares {clash}, already declared by another mode; list them "
                "in `uses` instead of `params`."
            )
        cls.name = name
        if "uses" not in cls.__dict__:
            cls.uses = tuple(p.name for p in own)
        _RULES[name] = cls
        _PARAMS.update((p.name, p) for p in own)
        _notify()
        return cls

    return decorate


def unregister_rule(name: str) -> None:
    """Remove mode ``name`` and the params it declared (for tests and notebooks that register a mode briefly)."""
    cls = _RULES.pop(name)
    for param in cls.__dict__.get("params", ()):
        _PARAMS.pop(param.name, None)
    _notify()


def registered_params() -> list[RuleParam]:
    """Every param declared by a registered rule, in registration order."""
    return list(_PARAMS.values())


def on_params_changed(callback: Callable[[], None]) -> None:
    """Call ``callback()`` now and whenever a registration changes the declared params (`DecodeConfig` uses it to
    keep one field per param, so the rules never import the config)."""
    _PARAM_LISTENERS.append(callback)
    callback()


def _notify() -> None:
    for callback in _PARAM_LISTENERS:
        callback()


def rule_class(name: str) -> type[DecodeRule]:
    """The rule class of mode ``name``; unknown names raise with suggestions."""
    if name not in _RULES:
        raise SoftthinkConfigError(unknown_name_message("decode mode", name, list(_RULES)), param="mode", value=name)
    return _RULES[name]


def registered_modes() -> list[str]:
    return sorted(_RULES)
