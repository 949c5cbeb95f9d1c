"""Published figures a suite reproduces: the ``published:`` key of a suite, validated, and set beside a run.

Each entry names one row of the report (model, mode and benchmark labels of the suite), a metric of that row, the
published value and where it was published::

    published:
      - {model: qwq-32b, mode: discrete, benchmark: aime24, metric: accuracy, value: 76.87,
         source: "UCSB-AI/Soft-Thinking#11: rule-graded pass@1, 16 samples"}

Metrics: ``accuracy``, ``pass@K`` and ``maj@K`` (in percent, 0-100; K one of the k values the report has) and
``mean_total_tokens`` (tokens per sample). One row may carry several figures (a claim and a reproduction of it).
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from typing import Any

from softthink.errors import SoftthinkConfigError

TOKEN_METRICS = ("mean_total_tokens",)
"""Metrics given in tokens; every other metric is a rate given in percent."""

_METRIC_RE = re.compile(r"accuracy|(pass|maj)@([1-9]\d*)|mean_total_tokens")
_KEYS = ("model", "mode", "benchmark", "metric", "value", "source")


@dataclass(frozen=True)
class PublishedFigure:
    """One published number for one report row: ``value`` of ``metric`` for (model, mode, benchmark)."""

    model: str
    mode: str
    benchmark: str
    metric: str
    value: float
    source: str

    @property
    def in_percent(self) -> bool:
        return self.metric not in TOKEN_METRICS


def parse_published(
    entries: Any, *, models: list[str], modes: list[str], benchmarks: list[str], ks: list[int], where: str = ""
) -> list[PublishedFigure]:
    """Validate the ``published:`` entries of a suite against its labels and report k values.

    ``ks`` are the k values of the report's pass@k / maj@k columns. Raises `SoftthinkConfigError` naming the
    entry and the key that is wrong."""
    if entries is None:
        return []
    if not isinstance(entries, list):
        raise SoftthinkConfigError(
            f"suite.published must be a list of figures ({', '.join(_KEYS)}), got {entries!r}{where}.",
            param="published",
            value=entries,
        )
    labels = {"model": models, "mode": modes, "benchmark": benchmarks}
    return [_figure(entry, i, labels, ks, where) for i, entry in enumerate(entries)]


def _figure(entry: Any, index: int, labels: dict[str, list[str]], ks: list[int], where: str) -> PublishedFigure:
    if isinstance(entry, PublishedFigure):
        entry = {key: getattr(entry, key) for key in _KEYS}
    param = f"published[{index}]"

    def fail(key: str, rule: str, remedy: str) -> None:
        value = entry.get(key) if isinstance(entry, dict) else entry
        raise SoftthinkConfigError(
            f"suite.{param}{'.' + key if key else ''} {rule}, got {value!r}{where}. {remedy}",
            param=f"{param}.{key}" if key else param,
            value=value,
        )

    if not isinstance(entry, dict):
        fail("", "must be a mapping", f"Give {', '.join(_KEYS)}.")
    unknown = sorted(set(entry) - set(_KEYS))
    if unknown:
        fail(unknown[0], f"is not a key of a published figure (unknown {unknown})", f"Allowed: {', '.join(_KEYS)}.")
    for key in _KEYS:
        if key not in entry:
            fail(key, "is missing", f"Every figure needs {', '.join(_KEYS)}.")
    for key, allowed in labels.items():
        if entry[key] not in allowed:
            fail(key, f"must be one of the suite's {key} labels {allowed}", "Use a label of the suite.")
    metric = entry["metric"]
    match = _METRIC_RE.fullmatch(metric) if isinstance(metric, str) else None
    if match is None:
        fail("metric", "must be accuracy, pass@K, maj@K or mean_total_tokens", "E.g. metric: accuracy.")
    elif match.group(2) is not None and int(match.group(2)) not in ks:
        fail("metric", f"needs a k the report has ({ks})", "Raise samples / pass_k, or pick another k.")
    value = entry["value"]
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        fail("value", "must be a number", "Rates in percent (76.9), token counts as numbers.")
    if metric in TOKEN_METRICS and not value > 0:
        fail("value", "must be > 0 tokens", "Give the mean generated tokens per sample.")
    if metric not in TOKEN_METRICS and not 0 <= value <= 100:
        fail("value", "must be a percentage in [0, 100]", "Write 76.9 for 76.9%, not 0.769.")
    source = entry["source"]
    if not isinstance(source, str) or not source.strip():
        fail("source", "must be a non-empty string", "Name the paper table or the thread the figure comes from.")
    return PublishedFigure(entry["model"], entry["mode"], entry["benchmark"], metric, float(value), source.strip())
