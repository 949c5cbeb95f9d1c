"""Checking a suite without loading model weights: presets, benchmarks, data files, subsets, prompt and grader
options, and, where a model's tokenizer and config are here (`softthink.eval.model_files`), what would fail at run
time: a mode that needs a think marker the tokenizer cannot give, and a prompt + ``max_new_tokens`` beyond the
model's context."""

from __future__ import annotations

from dataclasses import dataclass, field

from softthink.decoding.markers import resolve_think_marker
from softthink.decoding.rules import rule_class
from softthink.errors import SoftthinkConfigError
from softthink.eval.model_files import ModelFiles
from softthink.eval.plan import CellPlan, plan_suite
from softthink.eval.suite import Suite


@dataclass
class ValidationReport:
    """Per-cell problems (``errors``) and environment notes (``warnings``, e.g. a model not available here, so
    not checked)."""

    suite: Suite
    errors: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    cells: int = 0
    samples: int = 0

    @property
    def ok(self) -> bool:
        return not self.errors


def validate_suite(suite: Suite, *, read_model_files: bool = True) -> ValidationReport:
    """Resolve every cell as a run would (decode config, prompt, grader, problems) and collect what fails; with
    the model files at hand, also the think-marker and context checks of `check_cell`."""
    plan = plan_suite(suite, read_model_files=read_model_files)
    report = ValidationReport(suite, errors=list(plan.errors), warnings=list(plan.notes))
    report.cells, report.samples = len(plan.cells), plan.samples
    seen: set[str] = set(report.errors)
    for cell in plan.cells:
        files = plan.files.get(cell.cell.model.label)
        if files is None:
            continue
        for message in check_cell(cell, files):
            if message not in seen:
                seen.add(message)
                report.errors.append(message)
    for label, files in plan.files.items():
        if files is not None and files.context is None:
            report.warnings.append(f"model {label!r}: its config states no context length; budgets not checked.")
    return report


def check_cell(cell: CellPlan, files: ModelFiles) -> list[str]:
    """What `softthink.generate` would reject in this cell with this tokenizer and config, each with its fix."""
    cfg, where = cell.config, f"{cell.cell.model.label} / {cell.cell.decode.label}"
    problems = []
    try:
        resolve_think_marker(
            cfg.think_end,
            files.tokenizer,
            required_by=cfg.mode if rule_class(cfg.mode).needs_thinking else None,
            needs_injection=cfg.max_think_tokens is not None or cfg.cold_stop_entropy is not None,
        )
    except SoftthinkConfigError as err:
        problems.append(f"{where}: {err} (tokenizer of {files.source})")
    longest, problem_id = cell.longest_prompt
    if files.context is not None and longest + cfg.max_new_tokens > files.context:
        room = files.context - longest
        fix = (
            f"Set decode_overrides.max_new_tokens (or this decode entry's overrides) to at most {room}"
            if room > 0
            else "Shorten the prompt template or drop this problem"
        )
        problems.append(
            f"{where} / {cell.cell.benchmark.label}: the longest prompt (problem {problem_id!r}, {longest} tokens) + "
            f"max_new_tokens {cfg.max_new_tokens} = {longest + cfg.max_new_tokens} tokens exceeds the context of "
            f"{files.source} ({files.context} tokens). {fix}."
        )
    return problems
