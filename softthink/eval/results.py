"""What an evaluation produces: the per-sample record (its schema), per-cell results and a run's results.

A record is one JSON line of a cell's ``records.jsonl`` (written by `make_record`, stored by
`softthink.eval.store.CellStore`). Its layout has a version, `RECORD_SCHEMA_VERSION`, kept in every record under
``record_schema``; records written by older versions are upgraded when read (`upgrade_record`), so results on
disk stay usable after a rename:

- version 1 (no ``record_schema`` key): the seed a sample was decoded with was stored as ``batch_seed``;
- version 2: that seed is ``sample_seed`` (its batch's seed, or its own under ``seed_per_sample``).

`CELL_SCHEMA_VERSION` is different: it is part of every cell hash and changes only when what a generated sample
*is* changes (so that old samples are never mixed with new ones). Renaming a record key does not.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from softthink.errors import SoftthinkDataError
from softthink.eval.datasets import Problem
from softthink.eval.grading import GraderConfig, grade
from softthink.eval.suite import Cell, Suite
from softthink.provenance import code_identity

RECORD_SCHEMA_VERSION = 2
"""Layout of a record's keys; bump (and extend `upgrade_record`) when a key is renamed or changes meaning."""

CELL_SCHEMA_VERSION = 1
"""Part of every cell hash (the ``schema`` key of a cell config): bump when what a sample *is* changes."""

_RENAMED_IN = {2: {"batch_seed": "sample_seed"}}
"""Keys renamed by each record schema version: ``{version: {old key: new key}}``."""


# ----------------------------------------------------------------------------------------------------------------
# Records


def upgrade_record(record: dict[str, Any]) -> dict[str, Any]:
    """``record`` in the current schema (a new dict when it was older; the same dict when it is current).

    Raises `SoftthinkDataError` for a record written by a newer softthink than this one."""
    version = int(record.get("record_schema", 1))
    if version == RECORD_SCHEMA_VERSION:
        return record
    if version > RECORD_SCHEMA_VERSION:
        raise SoftthinkDataError(
            f"record_schema = {version} in record {record.get('problem_id')!r}/{record.get('sample_index')!r}: "
            f"this softthink reads record schemas up to {RECORD_SCHEMA_VERSION}. Upgrade softthink to read it."
        )
    out = dict(record)
    for step in range(version + 1, RECORD_SCHEMA_VERSION + 1):
        for old, new in _RENAMED_IN.get(step, {}).items():
            if old in out:
                out[new] = out.pop(old)
    out["record_schema"] = RECORD_SCHEMA_VERSION
    return out


def _entropy_summary(entropy: list[float]) -> dict[str, float | None]:
    values = np.asarray([e for e in entropy if e is not None and not math.isnan(e)], dtype=float)
    if values.size == 0:
        return {"mean": None, "max": None, "p90": None, "n": 0}
    return {
        "mean": float(values.mean()),
        "max": float(values.max()),
        "p90": float(np.quantile(values, 0.9)),
        "n": int(values.size),
    }


def grade_fields(text: str, gold: str, grader: GraderConfig, choices: list[str] | None = None) -> dict[str, Any]:
    """The grading part of a record (recomputed when the grader changes; generation is not). ``choices``: the
    options of a multiple-choice problem (kept in its record, for regrading)."""
    result = grade(text, gold, grader, choices=choices)
    return {
        "extracted": result.extracted,
        "rule": result.rule,
        "correct": result.correct,
        "grader_method": result.method,
        "grader_timed_out": result.timed_out,
        "grader_error": result.error,
        "grader": grader.fingerprint(),
    }


def regrade(record: dict[str, Any], grader: GraderConfig) -> dict[str, Any]:
    """``record`` graded by ``grader`` (unchanged when it already was)."""
    if record.get("grader") == grader.fingerprint():
        return record
    return {**record, **grade_fields(record["output_text"], record["gold"], grader, record.get("choices"))}


@dataclass(frozen=True)
class SampleInfo:
    """Where one generated sample came from: its cell, problem, sample index and the seed it was decoded with."""

    cell: Cell
    problem: Problem
    sample_index: int
    sample_seed: int
    """The seed the sample was decoded with: its batch's, or its own under ``seed_per_sample``."""
    cell_hash: str
    model_path: str


def make_record(
    info: SampleInfo, gen: Any, grader: GraderConfig, prompt_text_hash: str, wall_time: float
) -> dict[str, Any]:
    """One JSONL record (schema `RECORD_SCHEMA_VERSION`): identity, output, grading, token counts, soft/entropy
    statistics, timing."""
    cell = info.cell
    return {
        "record_schema": RECORD_SCHEMA_VERSION,
        "problem_id": info.problem.id,
        "sample_index": info.sample_index,
        "benchmark": cell.benchmark.label,
        "model": cell.model.label,
        "model_path": info.model_path,
        "mode": cell.decode.label,
        "decode_mode": getattr(gen, "mode", None),
        "seed": cell.seed,
        "sample_seed": info.sample_seed,
        "cell_hash": info.cell_hash,
        "prompt_hash": prompt_text_hash,
        "gold": info.problem.answer,
        "output_text": gen.text,
        "answer_text": gen.answer_text,
        **grade_fields(gen.text, info.problem.answer, grader, info.problem.meta.get("choices")),
        **({"choices": info.problem.meta["choices"]} if info.problem.meta.get("choices") else {}),
        "think_tokens": gen.think_tokens,
        "answer_tokens": gen.answer_tokens,
        "total_tokens": gen.num_tokens,
        "stop_reason": gen.stop_reason,
        "think_end_reason": gen.think_end_reason,
        "soft_steps": gen.soft_steps,
        "soft_fraction": gen.soft_fraction,
        "entropy": _entropy_summary(list(getattr(getattr(gen, "trace", None), "entropy", []) or [])),
        "wall_time": wall_time,
        "code": code_identity(),
    }


# ----------------------------------------------------------------------------------------------------------------
# Results


@dataclass
class CellResult:
    """Outcome of one grid cell: its records (only those of the requested plan), summary, or error."""

    cell: Cell
    records: list[dict[str, Any]] = field(default_factory=list)
    summary: dict[str, Any] = field(default_factory=dict)
    config: dict[str, Any] | None = None
    grader: GraderConfig | None = None
    hash: str | None = None
    dir: Path | None = None
    generated: int = 0
    resumed: int = 0
    error: str | None = None


@dataclass
class EvalResults:
    """What `softthink.eval.run` returns (and the CLI writes): per-cell records and summaries, comparisons,
    errors."""

    suite: Suite
    output_dir: Path
    cells: list[CellResult]
    comparisons: list[dict[str, Any]] = field(default_factory=list)
    rows: list[dict[str, Any]] = field(default_factory=list)
    """One summary row per (model, mode, benchmark), seeds pooled: the report's table."""
    is_main: bool = True
    """False in the non-main processes of a data-parallel run (their records are merged by the main one)."""

    @property
    def records(self) -> list[dict[str, Any]]:
        return [r for c in self.cells for r in c.records]

    @property
    def summary(self) -> list[dict[str, Any]]:
        return self.rows

    @property
    def errors(self) -> list[str]:
        return [f"{c.cell}: {c.error}" for c in self.cells if c.error]
