"""What a suite will cost before it runs: cells, samples, prompt tokens and the generated-token budget.

No model weights are loaded. Prompt tokens are counted with the model's tokenizer when its files are here
(`softthink.eval.model_files`), exactly as `softthink.generate` encodes them; otherwise they are estimated as
characters / 4 of the filled prompt template (the chat template's own tokens not counted) and marked so.

The generated-token budget of a cell is ``problems x samples x max_new_tokens``: an upper bound, reached when every
sample uses its whole budget. GPU-hours follow from it and a decode throughput the caller states
(`SuitePlan.gpu_hours`); nothing here measures a throughput.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace

import torch

from softthink.decoding import DecodeConfig
from softthink.decoding.prompts import encode_prompts
from softthink.errors import SoftthinkError
from softthink.eval.datasets import Problem
from softthink.eval.model_files import ModelFiles, local_model_files, looks_local
from softthink.eval.prompts import PromptBuilder, PromptSpec
from softthink.eval.runner import Runner
from softthink.eval.suite import Cell, ModelSpec, Suite

CHARS_PER_TOKEN = 4
"""Characters per token of the prompt estimate used when no tokenizer is available (typical of English BPE)."""


@dataclass
class CellPlan:
    """One cell's work: its problems, samples per problem, resolved decode config and prompt lengths."""

    cell: Cell
    config: DecodeConfig
    problems: list[Problem]
    samples_per_problem: int
    prompt_tokens: list[int]
    """Per problem, in the cell's problem order."""
    counted: bool
    """True: counted with the model's tokenizer; False: estimated (`CHARS_PER_TOKEN`)."""

    @property
    def samples(self) -> int:
        return len(self.problems) * self.samples_per_problem

    @property
    def generated_budget(self) -> int:
        """Tokens generated when every sample uses its whole ``max_new_tokens``."""
        return self.samples * self.config.max_new_tokens

    @property
    def prompt_budget(self) -> int:
        """Prompt tokens encoded over all samples (each sample encodes its prompt)."""
        return sum(self.prompt_tokens) * self.samples_per_problem

    @property
    def longest_prompt(self) -> tuple[int, str]:
        """``(tokens, problem id)`` of the longest prompt; ``(0, "")`` for a cell without problems."""
        if not self.problems:
            return 0, ""
        i = max(range(len(self.problems)), key=self.prompt_tokens.__getitem__)
        return self.prompt_tokens[i], self.problems[i].id


@dataclass
class SuitePlan:
    """The cells of a suite that resolve, what failed to resolve (``errors``) and notes about the models
    (``notes``: whose prompts are estimated and why); ``files`` holds the local files of each model label."""

    suite: Suite
    cells: list[CellPlan] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    files: dict[str, ModelFiles | None] = field(default_factory=dict)

    @property
    def samples(self) -> int:
        return sum(c.samples for c in self.cells)

    @property
    def generated_budget(self) -> int:
        return sum(c.generated_budget for c in self.cells)

    @property
    def prompt_budget(self) -> int:
        return sum(c.prompt_budget for c in self.cells)

    def gpu_hours(self, tokens_per_second: float) -> float:
        """GPU-hours of the generated-token budget at ``tokens_per_second`` generated tokens per second on one GPU
        (summed over its batch): an upper bound, as every sample is counted at its whole budget."""
        if not tokens_per_second > 0:
            raise ValueError(f"tokens_per_second must be > 0, got {tokens_per_second!r}.")
        return self.generated_budget / tokens_per_second / 3600


def plan_suite(suite: Suite, *, read_model_files: bool = True) -> SuitePlan:
    """Resolve every cell of ``suite`` as a run would and size it; ``read_model_files=False`` never touches model
    files (every prompt is estimated)."""
    plan = SuitePlan(suite)
    runner = Runner(suite, num_processes=1, process_index=0, progress=False)
    for model in suite.models:
        plan.files[model.label] = _model_files(plan, model, read_model_files)
    lengths: dict[tuple[str, str], tuple[list[int], bool]] = {}
    seen: set[str] = set()
    for cell in suite.cells():
        try:
            resolved = runner.resolve(cell)
            key = (cell.model.label, cell.benchmark.label)
            if key not in lengths:
                exemplars = runner._exemplars(resolved.prompt)
                lengths[key] = _prompt_lengths(resolved.prompt, exemplars, resolved.problems, plan.files[key[0]])
        except SoftthinkError as err:
            message = f"{cell.model.label} / {cell.decode.label} / {cell.benchmark.label}: {err}"
            if message not in seen:
                seen.add(message)
                plan.errors.append(message)
            continue
        tokens, counted = lengths[key]
        plan.cells.append(CellPlan(cell, resolved.config, resolved.problems, suite.samples, tokens, counted))
    return plan


def _model_files(plan: SuitePlan, model: ModelSpec, read: bool) -> ModelFiles | None:
    """The model's local files, or None with a note saying why (an error when they exist but are unreadable)."""
    estimated = f"prompt tokens estimated as characters / {CHARS_PER_TOKEN}"
    if not read:
        plan.notes.append(f"model {model.label!r}: model files not read; {estimated}, nothing checked.")
        return None
    try:
        path = model.resolved_path
        files, why = local_model_files(path)
    except SoftthinkError as err:
        plan.errors.append(f"model {model.label!r}: {err}")
        return None
    if files is None and looks_local(path):
        hint = f" {model.hint.rstrip('.')}." if model.hint else ""
        plan.notes.append(f"model {model.label!r}: {why}.{hint} Not checked; {estimated}.")
    elif files is None:
        plan.notes.append(f"model {model.label!r}: not checked: not available offline ({why}); {estimated}.")
    return files


def _prompt_lengths(
    spec: PromptSpec, exemplars: list[tuple[str, str]], problems: list[Problem], files: ModelFiles | None
) -> tuple[list[int], bool]:
    """Prompt tokens per problem: counted with the tokenizer as `softthink.generate` encodes them, else estimated."""
    if files is not None:
        builder = PromptBuilder(spec, files.tokenizer, exemplars)
        cpu = torch.device("cpu")
        counts = [
            len(
                encode_prompts(
                    [builder.model_input(p.question)], files.tokenizer, spec.uses_chat_template, 0, cpu
                ).token_ids[0]
            )
            for p in problems
        ]
        return counts, True
    # Without a tokenizer: the same text as a plain prompt (the chat/think templates add their own tokens).
    plain = PromptBuilder(replace(spec, style="plain") if spec.style in ("chat", "think") else spec, None, exemplars)
    extra = len(spec.system or "")
    return [math.ceil((len(str(plain.model_input(p.question))) + extra) / CHARS_PER_TOKEN) for p in problems], False


def format_plan(plan: SuitePlan, tokens_per_second: float | None = None) -> str:
    """The plan as text: one table row per cell, totals, notes and errors; GPU-hours when a throughput is given.
    Estimated prompt tokens are marked ``~``."""
    suite = plan.suite
    lines = [
        f"suite {suite.name}: {len(plan.cells)} cells, {plan.samples} samples ({suite.samples} per problem), "
        f"seeds {suite.seeds}, batch size {suite.batch_size}",
        "",
        "| model | mode | benchmark | seed | problems x samples | max_new_tokens | prompt tokens (longest) | "
        "generated-token budget |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for c in plan.cells:
        mark = "" if c.counted else "~"
        lines.append(
            f"| {c.cell.model.label} | {c.cell.decode.label} | {c.cell.benchmark.label} | {c.cell.seed} | "
            f"{len(c.problems)} x {c.samples_per_problem} | {c.config.max_new_tokens} | "
            f"{mark}{c.prompt_budget:,} ({mark}{c.longest_prompt[0]}) | {c.generated_budget:,} |"
        )
    estimated = any(not c.counted for c in plan.cells)
    lines += [
        "",
        f"total: {plan.samples:,} samples; generated-token budget {plan.generated_budget:,} tokens (every sample at "
        f"its max_new_tokens: an upper bound); prompt tokens {'~' if estimated else ''}{plan.prompt_budget:,}"
        + (" (~: estimated, no tokenizer here)" if estimated else " (counted with the tokenizers)"),
    ]
    if tokens_per_second is not None:
        lines.append(
            f"GPU-hours at {tokens_per_second:g} generated tokens/s per GPU: {plan.gpu_hours(tokens_per_second):,.2f} "
            "(upper bound; data parallel splits the wall time, not the GPU-hours)"
        )
    lines += [f"note: {n}" for n in plan.notes] + [f"error: {e}" for e in plan.errors]
    return "\n".join(lines)
