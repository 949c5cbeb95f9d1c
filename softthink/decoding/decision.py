"""One step's tensor work: the distribution at each row's phase temperature, its entropy, the phase's rule decision,
and the one ``[rows, 3]`` tensor the host reads back (visible token, entropy, soft flag).

`StepDecider` runs it eagerly by default. With ``compile=True`` (and no per-prompt generators) the same function
runs through `torch.compile` (inductor): the softmax, entropy, top-k filter chain, draws and phase merges of a step
are 10-40 small tensor ops, each a dispatch on the CPU (a kernel launch on a GPU), and on an overhead-bound model,
or on a GPU whose forward replays as one CUDA graph, those ops rather than the forward set how much more a soft or
sampled step costs than a greedy one. Compiled, they become a few fused kernels.

Draws stay torch's own kernels inside the compiled graph (inductor's ``fallback_random``), so a compiled run
consumes the global RNG exactly as the eager one does. Per-prompt generators keep the decision eager: a
`torch.Generator` per row cannot enter a compiled graph.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable

import torch

from softthink.analysis.entropy import at_least_float32, probs_and_entropy
from softthink.decoding import compiled
from softthink.decoding.host import host_tensor
from softthink.decoding.randomness import Randomness
from softthink.decoding.rules import DecodeRule, Step, StepInput, merge_steps

THINK, ANSWER, MIXED = "think", "answer", "mixed"
"""The phase variants of a step: every row thinking, every row answering, or some of each (a row mask)."""


def decide_tensors(
    think_rule: DecodeRule,
    answer_rule: DecodeRule,
    logits: torch.Tensor,
    temperature: float | torch.Tensor,
    phase: str,
    thinking: torch.Tensor | None,
    random: Randomness,
    rule_state: dict[str, torch.Tensor],
) -> tuple[torch.Tensor, ...]:
    """``(token_ids, kept_ids, weights, soft, entropy, synced)`` of one step (see `StepDecider`).

    ``phase`` is `THINK` or `ANSWER` (every row follows that phase's rule) or `MIXED` (thinking rows, ``thinking``
    ``[b]`` bool, follow the mode's rule, the others the answer rule; both rules see every row)."""
    log_probs = torch.log_softmax(at_least_float32(logits) / temperature, dim=-1)
    inputs = StepInput(logits, *probs_and_entropy(log_probs), rule_state, random)
    if phase == THINK:
        step = think_rule.step(inputs)
    elif phase == ANSWER:
        step = answer_rule.step(inputs)
    else:
        assert thinking is not None, "a mixed step needs its rows' phases"
        step = merge_steps(thinking, think_rule.step(inputs), answer_rule.step(inputs))
    return step.token_ids, step.kept_ids, step.weights, step.soft, inputs.entropy, host_values(step, inputs.entropy)


def host_values(step: Step, entropy: torch.Tensor) -> torch.Tensor:
    """``[b, 3]`` float64: each row's visible token, entropy and soft flag, the one tensor the host reads a step."""
    return torch.stack([step.token_ids.double(), entropy.double(), step.soft.double()], 1)


class StepDecider:
    """The loop's per-step decision: thinking rows follow the mode's rule, answering rows the discrete answer rule,
    each at its phase's temperature.

    ``both`` runs both rules on every row even when all rows are in one phase (per-prompt seeds: a row's draws must
    not depend on the other rows' phases). ``compile`` runs `decide_tensors` compiled
    (`softthink.decoding.compiled.fused_decision`, one code copy per mode, phase and setting) when the step draws from
    torch's global RNG; with per-row generators it runs eagerly."""

    def __init__(self, think_rule: DecodeRule, answer_rule: DecodeRule, *, both: bool, compile: bool, device):
        self.think_rule, self.answer_rule, self.both, self.device = think_rule, answer_rule, both, device
        self.think_temperature = think_rule.sampling.temperature
        self.answer_temperature = answer_rule.sampling.temperature
        self.compile = compile and not both
        self.compiled: dict[str, Callable[..., tuple[torch.Tensor, ...]]] = {}

    def __call__(
        self, logits: torch.Tensor, thinking: list[bool], random: Randomness, rule_state: dict[str, torch.Tensor]
    ) -> tuple[Step, torch.Tensor, torch.Tensor]:
        """``(step, entropy [b], synced [b, 3] float64)`` for the rows of ``logits``; ``thinking`` is each row's
        phase (host side)."""
        if all(thinking) and not self.both:
            phase, mask = THINK, None
        elif not any(thinking) and not self.both:
            phase, mask = ANSWER, None
        else:
            phase, mask = MIXED, host_tensor(thinking, device=self.device)
        token_ids, kept_ids, weights, soft, entropy, synced = self._function(phase)(
            self.think_rule, self.answer_rule, logits, self._temperature(thinking), phase, mask, random, rule_state
        )
        return Step(token_ids, kept_ids, weights, soft), entropy, synced

    def _function(self, phase: str) -> Callable[..., tuple[torch.Tensor, ...]]:
        if not self.compile:
            return decide_tensors
        if phase not in self.compiled:
            variant = f"{self.think_rule.name}_{phase}_{self._settings_digest()}"
            self.compiled[phase] = compiled.fused_decision(decide_tensors, self.device, variant)
        return self.compiled[phase]

    def _settings_digest(self) -> str:
        """A short hash of what the compiled decision bakes in as constants (both phases' sampling parameters and
        the mode's own fields), so that each setting gets its own code copy and its own recompile budget."""
        config = self.think_rule.config
        settings = (
            self.think_rule.sampling,
            self.answer_rule.sampling,
            [(name, getattr(config, name)) for name in sorted(self.think_rule.uses)],
        )
        return hashlib.sha1(repr(settings).encode()).hexdigest()[:10]

    def _temperature(self, thinking: list[bool]) -> torch.Tensor | float:
        think, answer = self.think_temperature, self.answer_temperature
        if all(thinking) or think == answer:
            return think
        if not any(thinking):
            return answer
        return host_tensor([think if th else answer for th in thinking], device=self.device)[:, None]
