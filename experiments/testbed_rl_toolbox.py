"""Report of issue 12's recipes (GPPO, entropy-shaped advantage) in the testbed RL experiment, against the committed
base model and four recipes of eval/results/testbed_rl.md. Called by `experiments/testbed_rl.py --toolbox`.

The four recipes are not re-run: their dynamics come from the committed eval/results/testbed_rl/dynamics_*.jsonl and
their evaluation rows from eval/results/testbed_rl/eval_hard_results.csv. The base model is evaluated again with the
new policies (same cells: problems, samples, decodings, per-sample seeds), so the paired comparisons use the same
samples, and its rows are checked against the committed ones.
"""

from __future__ import annotations

import csv
import json
import shutil
from pathlib import Path

from testbed_rl import BIN, NEW_RECIPES, READING_MARK, RECIPES, WINDOW, _fmt, _mean, _try, eval_section, write_report

COMMITTED = Path(__file__).resolve().parents[1] / "eval" / "results" / "testbed_rl"
TOOLBOX_MD = COMMITTED.parent / "testbed_rl_entropy_toolbox.md"
NEW_COLUMNS = ("cov_logp_adv", "tokens_clipped", "entropy_p50", "entropy_p90", "entropy_p99")


def _law_cells(law) -> str:
    if law is None:
        return "– | – | – | – | –"
    ci = f"[{_fmt(law.ceiling_ci_low)}, {_fmt(law.ceiling_ci_high)}]"
    return f"{law.a:.4g} | {law.b:.4g} | {_fmt(law.r2)} | {_fmt(law.ceiling)} | {ci}"


def dynamics_lines(out: Path, fig_dir: Path) -> tuple[list[str], dict]:
    """Dynamics of the new runs and of the committed four: first→last means, law fits with the ceiling's CI."""
    from softthink.figures import save_figure
    from softthink.rl.dynamics import fit_dynamics, read_dynamics
    from softthink.rl.plots import plot_dynamics

    runs = {r: read_dynamics(out / r / "dynamics.jsonl") for r in NEW_RECIPES}
    runs.update({r: read_dynamics(COMMITTED / f"dynamics_{r}.jsonl") for r in RECIPES})
    laws = {r: _try(fit_dynamics, rows) for r, rows in runs.items()}
    binned = {r: _try(fit_dynamics, rows, BIN) for r, rows in runs.items()}
    for r in NEW_RECIPES:
        save_figure(plot_dynamics({r: runs[r]}, laws={r: laws[r]} if laws[r] else None), fig_dir / f"dynamics_{r}.png")
        shutil.copy(out / r / "dynamics.jsonl", fig_dir / f"dynamics_{r}.jsonl")
    save_figure(plot_dynamics(runs, laws={k: v for k, v in laws.items() if v}), fig_dir / "dynamics_all.png")

    k = WINDOW

    def pair(rows, key):
        return f"{_fmt(_mean(rows, key, slice(0, k)))} → {_fmt(_mean(rows, key, slice(-k, None)))}"

    lines = [
        f"Means over the first and the last {k} steps. Rows marked * are the committed runs of testbed_rl.md "
        "(their logs predate the new per-step keys).",
        "",
        f"| recipe | steps | wall time (min) | reward first→last {k} | entropy all | forking | execution | "
        "frac > 0.672 |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for r, rows in runs.items():
        timing = out / r / "timing.json"
        minutes = (
            f"{json.loads(timing.read_text())['seconds'] / 60:.1f}" if r in NEW_RECIPES and timing.exists() else "–"
        )
        name = r if r in NEW_RECIPES else f"{r}*"
        cells = " | ".join(pair(rows, key) for key in ("reward", "entropy_all", "entropy_forking", "entropy_execution"))
        lines.append(f"| {name} | {len(rows)} | {minutes} | {cells} | {pair(rows, 'frac_above')} |")
    lines += [
        "",
        "New per-step diagnostics (first→last; token counts are per micro-batch of 8 completions):",
        "",
        "| recipe | " + " | ".join(NEW_COLUMNS) + " | tokens_valid (mean) | entropy_adv_bonus (mean) |",
        "|---|" + "---|" * (len(NEW_COLUMNS) + 2),
    ]
    for r in NEW_RECIPES:
        rows = runs[r]
        cells = " | ".join(pair(rows, key) for key in NEW_COLUMNS)
        lines.append(
            f"| {r} | {cells} | {_fmt(_mean(rows, 'tokens_valid'), 1)} | {_fmt(_mean(rows, 'entropy_adv_bonus'), 4)} |"
        )
    lines += [
        "",
        "Entropy-performance law R = -a·exp(H) + b on the rollout steps, with the predicted ceiling -a + b (reward "
        "at H = 0) and its 95% percentile-bootstrap CI (2000 resamples of the points, seed 0); 'binned' averages "
        f"{BIN} consecutive rollouts per point:",
        "",
        "| fit | a | b | R² | ceiling | ceiling 95% CI | bin a | bin b | bin R² | bin ceiling | bin CI |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in runs:
        name = r if r in NEW_RECIPES else f"{r}*"
        lines.append(f"| {name} | {_law_cells(laws[r])} | {_law_cells(binned[r])} |")
    as_dict = lambda law: law.to_dict() if law else None
    return lines, {
        "laws": {r: as_dict(v) for r, v in laws.items()},
        "binned_laws": {r: as_dict(v) for r, v in binned.items()},
    }


def committed_rows(difficulty: str) -> list[dict]:
    with (COMMITTED / f"eval_{difficulty}_results.csv").open() as f:
        return list(csv.DictReader(f))


def base_check(new_rows: list[dict], old_rows: list[dict]) -> list[str]:
    """One line per decoding: does the re-evaluated base reproduce the committed base row?"""
    old = {r["mode"]: float(r["accuracy"]) for r in old_rows if r["model"] == "base"}
    lines = []
    for row in new_rows:
        if row["model"] == "base" and row["mode"] in old:
            same = abs(row["accuracy"] - old[row["mode"]]) < 1e-9
            lines.append(
                f"- base {row['mode']}: {100 * row['accuracy']:.1f}% now, {100 * old[row['mode']]:.1f}% committed"
                + (" (identical)" if same else " (DIFFERS)")
            )
    return lines


def toolbox_report(out: Path, command: str, notes: str, difficulty: str, report: Path = TOOLBOX_MD) -> Path:
    notes, _, reading = notes.partition(READING_MARK)
    fig_dir = report.with_suffix("")
    fig_dir.mkdir(parents=True, exist_ok=True)
    dyn_lines, dyn_summary = dynamics_lines(out, fig_dir)
    eval_lines, new_rows = eval_section(out / f"eval_{difficulty}_toolbox", fig_dir, difficulty)
    old_rows = committed_rows(difficulty)
    config = json.loads((out / NEW_RECIPES[0] / "softthink_rl.json").read_text())["config"]
    params = {k: config.get(k) for k in ("gppo_beta1", "gppo_beta2", "epsilon", "epsilon_high")}
    params_ea = json.loads((out / NEW_RECIPES[1] / "softthink_rl.json").read_text())["config"]
    params.update({k: params_ea.get(k) for k in ("entropy_adv_alpha", "entropy_adv_kappa")})
    committed_table = [
        "| policy | mode | accuracy | 95% CI |",
        "|---|---|---|---|",
        *(
            f"| {r['model']} | {r['mode']} | {100 * float(r['accuracy']):.1f}% | "
            f"[{100 * float(r['ci_low']):.1f}, {100 * float(r['ci_high']):.1f}] |"
            for r in old_rows
            if r["model"] != "base"
        ),
    ]
    md = [
        "# Testbed RL, issue 12: GPPO and the entropy-shaped advantage against the four recipes",
        "",
        "Generated by `experiments/testbed_rl.py --toolbox`; the new numbers were produced by the commands at the "
        "end. Rows marked * (and the committed table) are copied from `testbed_rl.md` / `testbed_rl/`, not re-run.",
        "",
        "## Setup",
        "",
        "Same budget, data, base model and seed as the four recipes of `testbed_rl.md` (configs/rl/_testbed.yaml "
        "with the same overrides); only the objective differs. Recipe parameters:",
        "",
        "```json",
        json.dumps(params, indent=2),
        "```",
        "",
        notes.strip(),
        "",
        "## Training dynamics",
        "",
        *dyn_lines,
        "",
        f"![all six]({fig_dir.name}/dynamics_all.png)",
        "",
        *[f"![{r}]({fig_dir.name}/dynamics_{r}.png)" for r in NEW_RECIPES],
        "",
        f"## Evaluation: testbed test split, difficulty '{difficulty}'",
        "",
        "The new policies and the base, re-evaluated on the same cells as `testbed_rl.md`:",
        "",
        *eval_lines,
        "",
        "Base model re-evaluated vs committed:",
        "",
        *base_check(new_rows, old_rows),
        "",
        "The committed four recipes (from `testbed_rl/eval_hard_results.csv`):",
        "",
        *committed_table,
        "",
    ]
    return write_report(report, md, reading, command, {**dyn_summary, "eval_rows": new_rows, "params": params})
