"""Checking a suite without loading a model: presets, benchmarks, data files, subsets, prompt and grader options."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from softthink.errors import SoftthinkError
from softthink.eval.runner import Runner
from softthink.eval.suite import Suite


@dataclass
class ValidationReport:
    """Per-cell problems (``errors``) and environment notes (``warnings``, e.g. a model file not present here)."""

    suite: Suite
    errors: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    cells: int = 0
    samples: int = 0

    @property
    def ok(self) -> bool:
        return not self.errors


def _looks_local(path: str) -> bool:
    """A file path rather than a Hub id or 'testbed'."""
    return path.startswith(("/", ".", "~")) or path.endswith(".gguf")


def validate_suite(suite: Suite) -> ValidationReport:
    """Resolve every cell as a run would (decode config, prompt, grader, problems) and collect what fails."""
    report = ValidationReport(suite)
    runner = Runner(suite, num_processes=1, process_index=0, progress=False)
    for model in suite.models:
        try:
            path = model.resolved_path
        except SoftthinkError as err:
            report.errors.append(f"model {model.label!r}: {err}")
            continue
        if _looks_local(path) and not Path(path).exists():
            hint = f" {model.hint}" if model.hint else ""
            report.warnings.append(f"model {model.label!r}: {path} does not exist on this machine.{hint}")
    seen: set[str] = set()
    for cell in suite.cells():
        try:
            problems = runner.resolve(cell).problems
        except SoftthinkError as err:
            message = f"{cell.decode.label} / {cell.benchmark.label}: {err}"
            if message not in seen:
                seen.add(message)
                report.errors.append(message)
            continue
        report.cells += 1
        report.samples += len(problems) * suite.samples
    return report
