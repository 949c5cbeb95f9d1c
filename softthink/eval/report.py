"""Reports of a run: the summary table (markdown + CSV), paired comparisons, a plot, and provenance.

This module only formats and writes: the numbers (rows that pool the seeds of a (model, mode, benchmark), paired
comparisons) come from `softthink.eval.aggregate`. Files written to the suite's output dir: ``report.md``,
``results.csv``, ``summary.json``, ``suite.resolved.yaml`` (with provenance), ``accuracy_vs_tokens.png``.
"""

from __future__ import annotations

import csv
import json
import math
from pathlib import Path
from typing import Any

from matplotlib import colormaps
from matplotlib.figure import Figure

from softthink.eval.aggregate import published_comparison
from softthink.eval.results import EvalResults
from softthink.figures import save_figure
from softthink.provenance import write_provenance

PROVENANCE_PACKAGES = ("math-verify",)
"""Versions the eval provenance lists beyond `softthink.provenance.DEFAULT_PACKAGES`."""

PLOT_NAME = "accuracy_vs_tokens.png"


# ----------------------------------------------------------------------------------------------------------------
# Formatting


def _pct(x: Any) -> str:
    return "–" if x is None or (isinstance(x, float) and math.isnan(x)) else f"{100 * x:.1f}"


def _num(x: Any, digits: int = 1) -> str:
    return "–" if x is None or (isinstance(x, float) and math.isnan(x)) else f"{x:.{digits}f}"


def _p_value(p: float) -> str:
    return "<0.001" if p < 0.001 else f"{p:.3f}"


def _k_columns(rows: list[dict[str, Any]]) -> list[str]:
    keys = sorted(
        {k for r in rows for k in r if k.startswith(("pass@", "maj@"))},
        key=lambda k: (k.split("@")[0] != "pass", int(k.split("@")[1])),
    )
    return [k for k in keys if k not in ("pass@1", "maj@1")]  # both equal accuracy


def markdown_table(rows: list[dict[str, Any]]) -> str:
    """The main table: accuracy with CI, pass@k/maj@k, tokens (all / correct only), Cold Stop, soft steps."""
    ks = _k_columns(rows)
    head = (
        ["model", "mode", "benchmark", "problems x samples", "accuracy % [95% CI]"]
        + [f"{k} %" for k in ks]
        + [
            "tokens think / answer / total",
            "total tokens, correct only",
            "Cold Stop %",
            "soft steps %",
            "no answer %",
            "tok/s",
        ]
    )
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for r in rows:
        if not r.get("n_samples"):
            cells = [r["model"], r["mode"], r["benchmark"], "0"] + ["–"] * (len(head) - 4)
        else:
            cells = [
                r["model"],
                r["mode"],
                r["benchmark"],
                f"{r['n_problems']} x {r['samples_per_problem']}",
                f"{_pct(r['accuracy'])} [{_pct(r['ci_low'])}, {_pct(r['ci_high'])}]",
            ]
            cells += [_pct(r.get(k)) for k in ks]
            cells += [
                f"{_num(r['mean_think_tokens'])} / {_num(r['mean_answer_tokens'])} / {_num(r['mean_total_tokens'])}",
                _num(r["mean_total_tokens_correct"]),
                _pct(r["cold_stop_rate"]),
                _pct(r["soft_fraction"]),
                _pct(r["no_answer_rate"]),
                _num(r["tokens_per_s"]),
            ]
        lines.append("| " + " | ".join(str(c) for c in cells) + " |")
    return "\n".join(lines)


def comparison_table(comparisons: list[dict[str, Any]]) -> str:
    head = [
        "benchmark",
        "fixed",
        "A",
        "B",
        "problems",
        "acc A %",
        "acc B %",
        "B - A (pp) [95% CI]",
        "bootstrap p",
        "McNemar: A only / B only, p",
    ]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for c in comparisons:
        if not c.get("n_problems"):
            continue
        fixed = c.get("model") if c["kind"] == "mode" else c.get("mode")
        mcnemar = f"{c['a_only']} / {c['b_only']}, p={_p_value(c['mcnemar_p'])}" if "mcnemar_p" in c else "–"
        lines.append(
            "| "
            + " | ".join(
                [
                    c["benchmark"],
                    str(fixed),
                    c["a"],
                    c["b"],
                    str(c["n_problems"]),
                    _pct(c["acc_a"]),
                    _pct(c["acc_b"]),
                    f"{100 * c['diff']:+.1f} [{100 * c['diff_ci_low']:+.1f}, {100 * c['diff_ci_high']:+.1f}]",
                    _p_value(c["bootstrap_p"]),
                    mcnemar,
                ]
            )
            + " |"
        )
    return "\n".join(lines)


def published_table(entries: list[dict[str, Any]]) -> str:
    """Published figures beside this run's (`softthink.eval.aggregate.published_comparison`)."""
    head = [
        "model",
        "mode",
        "benchmark",
        "metric",
        "problems x samples",
        "this run",
        "published",
        "this run - published",
    ]
    lines = ["| " + " | ".join(head + ["source"]) + " |", "|" + "---|" * (len(head) + 1)]
    for e in entries:
        run = _num(e["this_run"], 1 if e["metric"] == "mean_total_tokens" else 2)
        if e["ci"] is not None:
            run += f" [{e['ci'][0]:.1f}, {e['ci'][1]:.1f}]"
        diff = "–" if e["difference"] is None else f"{e['difference']:+.2f}"
        cells = [e["model"], e["mode"], e["benchmark"], e["metric"], e["samples"], run, f"{e['published']:g}", diff]
        lines.append("| " + " | ".join(cells + [e["source"]]) + " |")
    return "\n".join(lines)


def write_csv(rows: list[dict[str, Any]], path: Path) -> None:
    flat = [{k: (json.dumps(v) if isinstance(v, (dict, list)) else v) for k, v in r.items()} for r in rows]
    fields = list(dict.fromkeys(k for r in flat for k in r))
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=fields)
        writer.writeheader()
        writer.writerows(flat)


def plot_accuracy_vs_tokens(rows: list[dict[str, Any]], title: str = "") -> Figure:
    """Accuracy (with 95% CI) against mean generated tokens; colour = mode, marker = model; one panel per
    benchmark. Returns the figure (no pyplot state, no backend); save it with ``fig.savefig(path)``."""
    rows = [r for r in rows if r.get("n_samples")]
    benches = list(dict.fromkeys(r["benchmark"] for r in rows))
    modes = list(dict.fromkeys(r["mode"] for r in rows))
    models = list(dict.fromkeys(r["model"] for r in rows))
    markers = "osD^vP*X"
    colours = colormaps["tab10"]
    fig = Figure(figsize=(5.5 * max(1, len(benches)), 4.2))
    axes = fig.subplots(1, max(1, len(benches)), squeeze=False)
    for ax, bench in zip(axes[0], benches):
        for r in rows:
            if r["benchmark"] != bench:
                continue
            colour = colours(modes.index(r["mode"]) % 10)
            acc = 100 * r["accuracy"]
            err = [[max(0.0, acc - 100 * r["ci_low"])], [max(0.0, 100 * r["ci_high"] - acc)]]  # rounding
            ax.errorbar(
                r["mean_total_tokens"],
                acc,
                yerr=err,
                fmt=markers[models.index(r["model"]) % len(markers)],
                color=colour,
                capsize=4,
                markersize=8,
                label=f"{r['mode']}" + (f" / {r['model']}" if len(models) > 1 else ""),
            )
            ax.annotate(
                r["mode"],
                (r["mean_total_tokens"], acc),
                textcoords="offset points",
                xytext=(6, 4),
                fontsize=8,
                color=colour,
            )
        ax.set_title(bench)
        ax.set_xlabel("mean generated tokens per sample")
        ax.set_ylabel("accuracy % (95% CI)")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8, loc="best")
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    return fig


# ----------------------------------------------------------------------------------------------------------------
# Provenance and files


def reproduce_command(results: EvalResults, overrides: dict[str, Any]) -> str:
    source = results.suite.source or "SUITE.yaml"
    sets = " ".join(f"--set {k}={json.dumps(v) if not isinstance(v, str) else v}" for k, v in overrides.items())
    return f"softthink eval run {source} {sets}".strip()


def write_report(results: EvalResults, overrides: dict[str, Any] | None = None) -> Path:
    """Write every report file of ``results`` to its output dir; returns the path of ``report.md``."""
    out = results.output_dir
    out.mkdir(parents=True, exist_ok=True)
    overrides = overrides or {}
    suite = results.suite
    cells = [
        {
            "model": c.cell.model.label,
            "mode": c.cell.decode.label,
            "benchmark": c.cell.benchmark.label,
            "seed": c.cell.seed,
            "hash": c.hash,
            "dir": str(c.dir) if c.dir else None,
            "generated": c.generated,
            "resumed": c.resumed,
            "error": c.error,
            "summary": c.summary,
        }
        for c in results.cells
    ]
    resolved = {
        "suite": suite.to_dict(),
        "overrides": overrides,
        "cells": [{k: c[k] for k in ("model", "mode", "benchmark", "seed", "hash")} for c in cells],
        "decode_configs": {c.cell.decode.label: c.config["decode"] for c in results.cells if c.config},
        "graders": {
            c.cell.benchmark.label: {**c.grader.to_dict(), "fingerprint": c.grader.fingerprint()}
            for c in results.cells
            if c.grader
        },
    }
    prov = write_provenance(out / "suite.resolved.yaml", resolved, PROVENANCE_PACKAGES)["provenance"]
    published = published_comparison(results.rows, suite.published)
    (out / "summary.json").write_text(
        json.dumps(
            {"rows": results.rows, "comparisons": results.comparisons, "published": published, "cells": cells},
            indent=2,
            default=str,
        )
    )
    write_csv(results.rows, out / "results.csv")
    if any(r.get("n_samples") for r in results.rows):
        save_figure(plot_accuracy_vs_tokens(results.rows, title=suite.name), out / PLOT_NAME)
    (out / "report.md").write_text(render_markdown(results, prov, overrides))
    return out / "report.md"


def render_markdown(results: EvalResults, prov: dict[str, Any], overrides: dict[str, Any]) -> str:
    suite = results.suite
    decode = {c.cell.decode.label: c.config["decode"] for c in results.cells if c.config}
    keys = (
        "mode",
        "max_new_tokens",
        "think_end",
        "do_sample",
        "temperature",
        "top_p",
        "top_k",
        "max_topk",
        "entropy_threshold",
        "cold_stop_entropy",
        "cold_stop_patience",
        "stop_strings",
    )
    prompt: dict[str, Any] = next((c.config["prompt"] for c in results.cells if c.config), {})
    grader = next((c.grader.to_dict() for c in results.cells if c.grader), {})
    lines = [
        f"# {suite.name}",
        "",
        suite.description.strip(),
        "",
        f"Run {prov['time']} at commit `{prov['git_commit']}`{' (uncommitted changes)' if prov['git_dirty'] else ''}"
        f"; python {prov['python']}, " + ", ".join(f"{k} {v}" for k, v in prov["versions"].items() if v) + ".",
        "",
        "## Setup",
        "",
        "- models: " + "; ".join(f"`{m.label}` = `{m.path}`" for m in suite.models),
        "- benchmarks: "
        + "; ".join(
            f"`{b.label}`" + (f" (first {b.limit or suite.limit})" if (b.limit or suite.limit) else "")
            for b in suite.benchmarks
        ),
        f"- samples per problem: {suite.samples}; seeds: {suite.seeds}; batch size: {suite.batch_size}",
        f"- prompt: style `{prompt.get('style')}`, template `{json.dumps(prompt.get('template'))}`",
        f"- grader: rules {grader.get('rules')}, math-verify equivalence, {grader.get('timeout_seconds')} s "
        "per-item timeout",
        "",
        "| decode label | " + " | ".join(keys) + " |",
        "|" + "---|" * (len(keys) + 1),
    ]
    for label, cfg in decode.items():
        lines.append(f"| {label} | " + " | ".join(f"`{cfg.get(k)!r}`" for k in keys) + " |")
    lines += [
        "",
        "## Results",
        "",
        markdown_table(results.rows),
        "",
        "Accuracy is the mean over all samples; its CI is Wilson's with one sample per problem, else a "
        "bootstrap over problems. Tokens are means per sample. Cold Stop % = samples whose thinking was "
        "ended by Cold Stop; soft steps % = mean share of thinking steps fed as concept tokens. In the table "
        "below, 'thinking ended by' None means the generation stopped (EOS, stop string) while still "
        "thinking, or had no thinking phase.",
        "",
    ]
    if results.comparisons:
        lines += [
            "## Paired comparisons (same problems)",
            "",
            comparison_table(results.comparisons),
            "",
            "B - A is the difference in per-problem accuracy, with a paired bootstrap CI over problems; "
            "McNemar's exact test when each problem has one sample per side.",
            "",
        ]
    if suite.published:
        lines += [
            "## Published figures",
            "",
            published_table(published_comparison(results.rows, suite.published)),
            "",
            "Rates in percent (this run's accuracy with its 95% CI); tokens are means per sample. Published figures "
            "may use another grader, judge or sample count than this run: see each source.",
            "",
        ]
    if any(r.get("n_samples") for r in results.rows):
        lines += [f"![accuracy vs tokens]({PLOT_NAME})", ""]
    lines += [
        "## Answer extraction and stopping",
        "",
        "| model | mode | benchmark | extraction rule counts | thinking ended by | stop reasons | grader timeouts |",
        "|---|---|---|---|---|---|---|",
    ]
    for r in results.rows:
        lines.append(
            f"| {r['model']} | {r['mode']} | {r['benchmark']} | {json.dumps(r.get('rules', {}))} | "
            f"{json.dumps(r.get('think_end_reasons', {}))} | {json.dumps(r.get('stop_reasons', {}))} | "
            f"{r.get('grader_timeouts', 0)} |"
        )
    errors = results.errors
    if errors:
        lines += ["", "## Errors", ""] + [f"- {e.splitlines()[0]}" for e in errors]
    hints = [f"- model `{m.label}`: {m.hint}" for m in suite.models if m.hint]
    lines += [
        "",
        "## Reproduce",
        "",
        *hints,
        *([""] if hints else []),
        "```",
        reproduce_command(results, overrides),
        "```",
        "",
        "Rerunning resumes: samples already on disk are kept, records graded by another grader are regraded. "
        "Records: `cells/<model>__<mode>__<benchmark>__seed<k>__<hash>/records.jsonl`; the exact prompts are "
        "in `prompts.jsonl` beside them, the resolved configs in `suite.resolved.yaml`.",
        "",
    ]
    return "\n".join(lines)
