"""The evaluation harness: decode modes x policies x math benchmarks, on equal footing.

Public API (stable names):

- `load_benchmark(name_or_yaml, data_dir=None)` -> list of `Problem` (``id``, ``question``, ``answer``)
- `grade(completion_text, gold_answer)` -> `GradeResult` (``correct``, ``extracted``, ``rule``)
- `run(suite_or_path, **overrides)` -> `EvalResults` (``records``, ``summary``), the same as ``softthink eval run``
- `rebuild_report(suite_or_path, **overrides)` -> `EvalResults` from the records on disk (no model), the same as
  ``softthink eval report``
- `metric_path()` -> path of the math-equivalence metric for ``evaluate.load``
"""

from pathlib import Path

from softthink.eval.datasets import BENCHMARKS, Problem, get_benchmark, load_benchmark, register_benchmark
from softthink.eval.grading import GraderConfig, GradeResult, extract_answer, grade, is_equivalent
from softthink.eval.results import EvalResults
from softthink.eval.runner import rebuild_report, run
from softthink.eval.suite import Suite


def metric_path() -> str:
    """Path of the `evaluate` metric module (``evaluate.load(softthink.eval.metric_path())``)."""
    return str(Path(__file__).resolve().parent / "metric" / "math_equivalence.py")


__all__ = [
    "load_benchmark",
    "grade",
    "run",
    "rebuild_report",
    "metric_path",
    "Problem",
    "GradeResult",
    "GraderConfig",
    "EvalResults",
    "Suite",
    "BENCHMARKS",
    "register_benchmark",
    "get_benchmark",
    "extract_answer",
    "is_equivalent",
]
