"""Metrics over per-sample records: accuracy with 95% CIs, pass@k, maj@k, token statistics, paired comparisons,
the rows and comparisons of a whole run (`build_rows`, `compare_cells`) and published figures beside them
(`published_comparison`), which the report formats.

All metric functions take plain records (dicts as written by the runner) and return plain data, so they work on records
read back from disk. Per-problem accuracy (mean over that problem's samples) is the unit of every CI and paired
test: samples of one problem are not independent.
"""

from __future__ import annotations

import math
import re
from collections import Counter, defaultdict
from collections.abc import Iterable
from typing import Any

import numpy as np

from softthink.eval.grading import normalize_answer
from softthink.eval.published import PublishedFigure
from softthink.eval.results import EvalResults

Z95 = 1.959963984540054


# ----------------------------------------------------------------------------------------------------------------
# Primitive estimators


def wilson_interval(successes: int, n: int, z: float = Z95) -> tuple[float, float]:
    """Wilson score interval of a binomial proportion (95% by default); (nan, nan) when n == 0."""
    if n == 0:
        return math.nan, math.nan
    if successes == 0:
        return 0.0, z * z / (n + z * z)
    if successes == n:
        return n / (n + z * z), 1.0
    p = successes / n
    denom = 1 + z * z / n
    centre = (p + z * z / (2 * n)) / denom
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / denom
    return max(0.0, centre - half), min(1.0, centre + half)


def bootstrap_interval(
    values: Iterable[float], n_boot: int = 2000, seed: int = 0, level: float = 0.95
) -> tuple[float, float]:
    """Percentile bootstrap interval of the mean of ``values`` (resampling the values, e.g. problems)."""
    arr = np.asarray(list(values), dtype=float)
    if arr.size == 0:
        return math.nan, math.nan
    rng = np.random.default_rng(seed)
    means = arr[rng.integers(0, arr.size, size=(n_boot, arr.size))].mean(axis=1)
    alpha = (1 - level) / 2
    return float(np.quantile(means, alpha)), float(np.quantile(means, 1 - alpha))


def pass_at_k(n: int, c: int, k: int) -> float:
    """Unbiased pass@k (Chen et al., 2021): ``1 - C(n-c, k) / C(n, k)``, for ``n`` samples of which ``c`` correct."""
    if not 0 <= c <= n or not 1 <= k <= n:
        raise ValueError(f"pass_at_k needs 0 <= c <= n and 1 <= k <= n, got n={n}, c={c}, k={k}.")
    if n - c < k:
        return 1.0
    return float(1.0 - np.prod(1.0 - k / np.arange(n - c + 1, n + 1)))


def answer_key(extracted: str | None) -> str | None:
    """Voting key of an extracted answer: whitespace, ``$``, thousands separators and trailing ``.0`` removed."""
    if extracted is None:
        return None
    return re.sub(r"\s+", "", normalize_answer(extracted)) or None


def majority_vote(samples: list[dict[str, Any]], k: int) -> bool:
    """maj@k for one problem: the most frequent answer among its first ``k`` samples (by seed, then sample
    index) is correct.

    Samples without an extracted answer do not vote; ties go to the answer seen first.
    """
    first_k = sorted(samples, key=lambda r: (r.get("seed", 0), r["sample_index"]))[:k]
    votes: Counter[str] = Counter()
    correct_of: dict[str, bool] = {}
    for record in first_k:
        key = answer_key(record.get("extracted"))
        if key is None:
            continue
        votes[key] += 1
        correct_of.setdefault(key, bool(record["correct"]))
    if not votes:
        return False
    best = max(votes.values())
    winner = next(key for key in correct_of if votes[key] == best)  # dict order = first seen
    return correct_of[winner]


def mcnemar_exact(b: int, c: int) -> float:
    """Two-sided exact McNemar p-value from the discordant counts ``b`` (A right, B wrong) and ``c`` (the reverse)."""
    n = b + c
    if n == 0:
        return 1.0
    tail = sum(math.comb(n, i) for i in range(0, min(b, c) + 1)) / 2**n
    return min(1.0, 2 * tail)


# ----------------------------------------------------------------------------------------------------------------
# Grouping


def by_problem(records: Iterable[dict[str, Any]]) -> dict[str, list[dict[str, Any]]]:
    groups: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for record in records:
        groups[str(record["problem_id"])].append(record)
    return dict(groups)


def per_problem_accuracy(records: Iterable[dict[str, Any]]) -> dict[str, float]:
    return {pid: float(np.mean([r["correct"] for r in rs])) for pid, rs in by_problem(records).items()}


def _mean(values: list[float]) -> float:
    return float(np.mean(values)) if values else math.nan


# ----------------------------------------------------------------------------------------------------------------
# Cell summary


def summarize(records: list[dict[str, Any]], pass_k: Iterable[int] = (1,), n_boot: int = 2000) -> dict[str, Any]:
    """Everything the report shows for one cell.

    The accuracy CI is Wilson's when every problem has one sample, else a bootstrap over problems.
    """
    groups = by_problem(records)
    n = len(records)
    out: dict[str, Any] = {"n_problems": len(groups), "n_samples": n}
    if n == 0:
        return out
    sizes = {len(rs) for rs in groups.values()}
    out["samples_per_problem"] = (
        sizes.pop()
        if len(sizes) == 1
        else f"{min(len(r) for r in groups.values())}-{max(len(r) for r in groups.values())}"
    )
    n_correct = sum(bool(r["correct"]) for r in records)
    out["accuracy"] = n_correct / n
    if out["samples_per_problem"] == 1:
        out["ci_low"], out["ci_high"] = wilson_interval(n_correct, n)
        out["ci_method"] = "wilson"
    else:
        out["ci_low"], out["ci_high"] = bootstrap_interval(per_problem_accuracy(records).values(), n_boot=n_boot)
        out["ci_method"] = "bootstrap over problems"
    min_samples = min(len(rs) for rs in groups.values())
    for k in pass_k:
        if k <= min_samples:
            out[f"pass@{k}"] = _mean(
                [pass_at_k(len(rs), sum(bool(r["correct"]) for r in rs), k) for rs in groups.values()]
            )
            out[f"maj@{k}"] = _mean([float(majority_vote(rs, k)) for rs in groups.values()])
    correct = [r for r in records if r["correct"]]
    for part in ("think", "answer", "total"):
        field = f"{part}_tokens"
        out[f"mean_{field}"] = _mean([r[field] for r in records])
        out[f"mean_{field}_correct"] = _mean([r[field] for r in correct])
    out["cold_stop_rate"] = sum(r.get("think_end_reason") == "cold_stop" for r in records) / n
    out["soft_fraction"] = _mean([r["soft_fraction"] for r in records])
    entropies = [r["entropy"]["mean"] for r in records if r.get("entropy") and r["entropy"].get("mean") is not None]
    out["mean_entropy"] = _mean(entropies)
    out["no_answer_rate"] = sum(r.get("extracted") is None for r in records) / n
    out["rules"] = dict(Counter(str(r.get("rule")) for r in records))
    out["stop_reasons"] = dict(Counter(str(r.get("stop_reason")) for r in records))
    out["think_end_reasons"] = dict(Counter(str(r.get("think_end_reason")) for r in records))
    out["grader_timeouts"] = sum(bool(r.get("grader_timed_out")) for r in records)
    wall = sum(r.get("wall_time", 0.0) for r in records)
    out["wall_time_s"] = wall
    out["tokens_per_s"] = sum(r["total_tokens"] for r in records) / wall if wall > 0 else math.nan
    out["samples_per_s"] = n / wall if wall > 0 else math.nan
    return out


# ----------------------------------------------------------------------------------------------------------------
# Paired comparison


def paired_comparison(
    records_a: list[dict[str, Any]], records_b: list[dict[str, Any]], n_boot: int = 10000, seed: int = 0
) -> dict[str, Any]:
    """Compare B against A on the problems both have: accuracy difference (B - A) with a paired bootstrap 95% CI
    and p-value over problems, plus exact McNemar when every problem has one sample in each.
    """
    acc_a, acc_b = per_problem_accuracy(records_a), per_problem_accuracy(records_b)
    shared = sorted(set(acc_a) & set(acc_b))
    out: dict[str, Any] = {"n_problems": len(shared)}
    if not shared:
        return out
    diffs = np.array([acc_b[p] - acc_a[p] for p in shared])
    out["acc_a"] = float(np.mean([acc_a[p] for p in shared]))
    out["acc_b"] = float(np.mean([acc_b[p] for p in shared]))
    out["diff"] = float(diffs.mean())
    rng = np.random.default_rng(seed)
    boot = diffs[rng.integers(0, diffs.size, size=(n_boot, diffs.size))].mean(axis=1)
    out["diff_ci_low"], out["diff_ci_high"] = (float(np.quantile(boot, 0.025)), float(np.quantile(boot, 0.975)))
    # Two-sided bootstrap p-value: how often the resampled difference lands on the other side of zero.
    out["bootstrap_p"] = float(min(1.0, 2 * min((boot <= 0).mean(), (boot >= 0).mean()))) if diffs.any() else 1.0
    groups_a, groups_b = by_problem(records_a), by_problem(records_b)
    if all(len(groups_a[p]) == 1 and len(groups_b[p]) == 1 for p in shared):
        b = sum(bool(groups_a[p][0]["correct"]) and not groups_b[p][0]["correct"] for p in shared)
        c = sum(not groups_a[p][0]["correct"] and bool(groups_b[p][0]["correct"]) for p in shared)
        out["a_only"], out["b_only"], out["mcnemar_p"] = b, c, mcnemar_exact(b, c)
    return out


# ----------------------------------------------------------------------------------------------------------------
# A run's rows and comparisons (seeds pooled: seeds are more samples of the same problems)

_ROW_KEYS = ("model", "mode", "benchmark")


def pooled_records(results: EvalResults) -> dict[tuple[str, str, str], list[dict[str, Any]]]:
    """Every record of ``results`` by (model, mode, benchmark) label, seeds pooled."""
    groups: dict[tuple[str, str, str], list[dict[str, Any]]] = defaultdict(list)
    for cell in results.cells:
        groups[cell.cell.key[:3]].extend(cell.records)
    return groups


def build_rows(results: EvalResults) -> list[dict[str, Any]]:
    """One summary row per (model, mode, benchmark), in grid order, seeds pooled."""
    suite = results.suite
    groups = pooled_records(results)
    errors: dict[tuple[str, str, str], list[str]] = defaultdict(list)
    for cell in results.cells:
        if cell.error:
            errors[cell.cell.key[:3]].append(f"seed {cell.cell.seed}: {cell.error}")
    pass_k = suite.report_pass_k
    rows = []
    for key in dict.fromkeys(c.cell.key[:3] for c in results.cells):
        row: dict[str, Any] = dict(zip(_ROW_KEYS, key))
        row["seeds"] = len(suite.seeds)
        row.update(summarize(groups[key], pass_k))
        row["errors"] = errors.get(key, [])
        rows.append(row)
    return rows


def compare_cells(results: EvalResults) -> list[dict[str, Any]]:
    """Paired comparisons on the same problems: every mode vs the baseline mode (per model and benchmark), and
    every model vs the first model (per mode and benchmark) when the grid has several models."""
    suite = results.suite
    groups = pooled_records(results)
    out = []
    models = [m.label for m in suite.models]
    modes = [d.label for d in suite.decode]
    for bench in [b.label for b in suite.benchmarks]:
        for model in models:
            base = suite.baseline_label
            for mode in modes:
                if mode != base and groups.get((model, base, bench)) and groups.get((model, mode, bench)):
                    out.append(
                        {
                            "kind": "mode",
                            "benchmark": bench,
                            "model": model,
                            "a": base,
                            "b": mode,
                            **paired_comparison(groups[(model, base, bench)], groups[(model, mode, bench)]),
                        }
                    )
        for mode in modes:
            for model in models[1:]:
                if groups.get((models[0], mode, bench)) and groups.get((model, mode, bench)):
                    out.append(
                        {
                            "kind": "model",
                            "benchmark": bench,
                            "mode": mode,
                            "a": models[0],
                            "b": model,
                            **paired_comparison(groups[(models[0], mode, bench)], groups[(model, mode, bench)]),
                        }
                    )
    return out


def published_comparison(rows: list[dict[str, Any]], figures: Iterable[PublishedFigure]) -> list[dict[str, Any]]:
    """Each published figure beside this run's value of the same metric in the same row (model, mode,
    benchmark): ``this_run`` (percent for rates, with the accuracy CI as ``ci``), ``published`` and
    ``difference`` (this run - published); ``this_run`` is None while the row has no samples."""
    by_key = {(r["model"], r["mode"], r["benchmark"]): r for r in rows}
    out = []
    for fig in figures:
        row = by_key.get((fig.model, fig.mode, fig.benchmark)) or {}
        value = row.get(fig.metric) if row.get("n_samples") else None
        scale = 100.0 if fig.in_percent else 1.0
        this_run = None if value is None or math.isnan(value) else scale * value
        ci = (100 * row["ci_low"], 100 * row["ci_high"]) if this_run is not None and fig.metric == "accuracy" else None
        out.append(
            {
                "model": fig.model,
                "mode": fig.mode,
                "benchmark": fig.benchmark,
                "metric": fig.metric,
                "samples": f"{row['n_problems']} x {row['samples_per_problem']}" if this_run is not None else "0",
                "this_run": this_run,
                "ci": ci,
                "published": fig.value,
                "difference": None if this_run is None else this_run - fig.value,
                "source": fig.source,
            }
        )
    return out
