"""Testbed RL experiment: the four recipes at equal compute, then every policy and the base model through the
evaluation harness under discrete / soft / gated decoding with equal samples. Writes eval/results/testbed_rl.md.

Stages (each resumable: rerun the same command after an interruption):

1. train   `softthink.rl.train(recipe, output_dir=OUT/<recipe>)` for full, forking, clip_cov, kl_cov, all with the
           shared budget of configs/rl/_testbed.yaml (same steps, rollouts, generation length, learning rate).
2. eval    one `softthink.eval.run` grid: {base, full, forking, clip_cov, kl_cov} x {discrete, soft, gated} on the
           testbed test split, the same problems and samples in every cell.
3. report  per-recipe dynamics and entropy-law fits, figures, the eval table -> eval/results/testbed_rl.md and
           eval/results/testbed_rl/.

Reproduce (from the repository root):

    python experiments/testbed_rl.py --out runs/testbed_rl              # all stages
    python experiments/testbed_rl.py --out runs/testbed_rl --stage report

    # the training stage split over two processes (one core each), then eval + report:
    python experiments/testbed_rl.py --out runs/testbed_rl --stage train --recipe full --recipe forking --threads 1 &
    python experiments/testbed_rl.py --out runs/testbed_rl --stage train --recipe clip_cov --recipe kl_cov --threads 1
    wait
    python experiments/testbed_rl.py --out runs/testbed_rl --stage eval
    python experiments/testbed_rl.py --out runs/testbed_rl --stage report

``--toolbox`` runs the same stages for issue 12's recipes (gppo, entropy_advantage) and the base, and writes
eval/results/testbed_rl_entropy_toolbox.md against the committed four (experiments/testbed_rl_toolbox.py; commands
in experiments/testbed_rl_toolbox_notes.md).
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import time
from pathlib import Path

RECIPES = ("full", "forking", "clip_cov", "kl_cov")
NEW_RECIPES = ("gppo", "entropy_advantage")  # issue 12: trained and evaluated on the same budget, reported apart
MODES = ("discrete", "soft", "gated")
# Two more views of the same policies: greedy, and pure sampling at temperature 1 (the RL rollouts' distribution,
# where the training reward was measured; the `discrete` preset samples at T 0.6, top-p 0.95, top-k 30).
EXTRA_DECODE = (
    {"label": "greedy", "preset": "greedy"},
    {"label": "sample_t1", "preset": "discrete", "overrides": {"temperature": 1.0, "top_p": 1.0, "top_k": 0}},
)
BIN = 10  # rollout steps per point in the binned law fit
WINDOW = 25  # steps averaged for the "first -> last" columns
PER_PROCESS_FLAGS = ("--stage", "--recipe", "--threads")  # left out of the report's reproduce command
READING_MARK = "<!-- results -->"  # in --notes-file: what follows goes to the report's "What happened" section
REPO = Path(__file__).resolve().parents[1]
RESULTS_MD = REPO / "eval" / "results" / "testbed_rl.md"  # figures and summary.json go to eval/results/testbed_rl/


def pin_difficulty(name: str) -> None:
    """Serve testbed problems of this difficulty to the RL data and the eval harness (both read
    `softthink.testbed.tasks.DEFAULT_DIFFICULTY` when they load problems)."""
    from softthink.testbed import tasks

    tasks.resolve_difficulty(name)  # raises on an unknown name
    tasks.DEFAULT_DIFFICULTY = name


def stage_train(out: Path, model: str, overrides: dict, recipes: tuple[str, ...] = RECIPES) -> None:
    from softthink.rl import train

    for recipe in recipes:
        run_dir = out / recipe
        timing_path = run_dir / "timing.json"
        timing = json.loads(timing_path.read_text()) if timing_path.exists() else {"seconds": 0.0, "sessions": 0}
        start = time.time()
        print(f"[testbed_rl] training {recipe} -> {run_dir}", flush=True)
        result = train(recipe, model, output_dir=run_dir, **overrides)
        timing = {
            "seconds": timing["seconds"] + time.time() - start,
            "sessions": timing["sessions"] + 1,
            "global_step": result.global_step,
        }
        timing_path.write_text(json.dumps(timing, indent=2) + "\n")
        print(
            f"[testbed_rl] {recipe}: step {result.global_step}, {timing['seconds'] / 60:.1f} min in total", flush=True
        )


def suite_dict(
    out: Path,
    model: str,
    problems: int,
    samples: int,
    max_new_tokens: int,
    batch_size: int,
    difficulty: str,
    recipes: tuple[str, ...] = RECIPES,
) -> dict:
    """The eval grid: the base and ``recipes``' policies; `NEW_RECIPES` get their own folder (``eval_<d>_toolbox``)
    and otherwise the very same cells as the four recipes (problems, samples, decodings, seeds)."""
    models = [{"label": "base", "path": model}]
    models += [{"label": recipe, "path": str(out / recipe)} for recipe in recipes]
    toolbox = recipes == NEW_RECIPES
    return {
        "name": "testbed_rl_entropy_toolbox" if toolbox else "testbed_rl",
        "description": f"Testbed base model and its RL policies {', '.join(recipes)} (equal compute) x decodings.",
        "models": models,
        "decode": [*MODES, *EXTRA_DECODE],
        "benchmarks": [{"name": "testbed", "limit": problems}],
        "samples": samples,
        "seeds": [0],
        "batch_size": batch_size,
        "seed_per_sample": True,
        "decode_overrides": {"max_new_tokens": max_new_tokens},
        "output_dir": str(out / (f"eval_{difficulty}_toolbox" if toolbox else f"eval_{difficulty}")),
    }


def stage_eval(suite: dict, difficulty: str):
    """Run one `suite_dict` grid with the testbed problems pinned to ``difficulty``."""
    from softthink.eval import Suite, run

    pin_difficulty(difficulty)
    results = run(Suite.from_dict(suite, source=__file__))
    if results.errors:
        raise SystemExit("eval cells failed:\n" + "\n".join(results.errors))
    return results


# ---------------------------------------------------------------------------------------------------- report


def _fmt(x, digits=3):
    return "–" if x is None or x != x else f"{x:.{digits}f}"


def _mean(rows, key, sl=slice(None)):
    values = [r[key] for r in rows[sl] if r.get(key) is not None]
    return sum(values) / len(values) if values else None


def _try(fit, *args):
    """A law fit, or None (with the reason printed) when there are too few points."""
    try:
        return fit(*args)
    except ValueError as err:
        print(f"[testbed_rl] no law fit: {err}")
        return None


def _zero_std_fraction(run_dir: Path) -> float | None:
    """Mean fraction of prompt groups whose 8 rewards were all equal (no advantage, no gradient), from trl's log
    history in the run's last checkpoint."""
    states = sorted(run_dir.glob("checkpoint-*/trainer_state.json"), key=lambda p: int(p.parent.name.split("-")[1]))
    if not states:
        return None
    values = [
        h["frac_reward_zero_std"]
        for h in json.loads(states[-1].read_text())["log_history"]
        if "frac_reward_zero_std" in h
    ]
    return sum(values) / len(values) if values else None


def dynamics_section(out: Path, fig_dir: Path, extra: dict[str, Path]) -> tuple[list[str], dict]:
    from softthink.figures import save_figure
    from softthink.rl.dynamics import fit_dynamics, fit_entropy_law, law_points, read_dynamics
    from softthink.rl.plots import plot_dynamics

    dirs = {**{r: out / r for r in RECIPES}, **extra}
    runs = {label: read_dynamics(d / "dynamics.jsonl") for label, d in dirs.items()}
    laws = {recipe: _try(fit_dynamics, rows) for recipe, rows in runs.items()}
    lines = []
    for recipe in RECIPES:
        one_law = {recipe: laws[recipe]} if laws[recipe] else None
        save_figure(plot_dynamics({recipe: runs[recipe]}, laws=one_law), fig_dir / f"dynamics_{recipe}.png")
        # the per-step log itself, for notebooks/03 and anyone re-plotting without the run folder
        shutil.copy(dirs[recipe] / "dynamics.jsonl", fig_dir / f"dynamics_{recipe}.jsonl")
    main_runs = {r: runs[r] for r in RECIPES}
    save_figure(plot_dynamics(main_runs, laws={k: laws[k] for k in RECIPES if laws[k]}), fig_dir / "dynamics_all.png")
    if extra:
        extra_laws = {k: laws[k] for k in extra if laws[k]}
        save_figure(plot_dynamics({k: runs[k] for k in extra}, laws=extra_laws), fig_dir / "dynamics_extra.png")
    pooled = {}
    for bin_size in (1, BIN):
        h_all, r_all = [], []
        for rows in main_runs.values():
            h, r = law_points(rows, bin_size)
            h_all += h
            r_all += r
        pooled[bin_size] = _try(fit_entropy_law, h_all, r_all)
    binned = {recipe: _try(fit_dynamics, rows, BIN) for recipe, rows in runs.items()}

    k = WINDOW
    lines += [
        f"Means over the first and the last {k} steps (a step's reward is that of the 32 rollouts it trained "
        "on, so single steps are noisy).",
        "",
        f"| recipe | steps | wall time (min) | reward first→last {k} steps | entropy all first→last | "
        "forking first→last | execution first→last | frac > 0.672 first→last | recipe counter (mean) | "
        "groups with zero reward variance |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for recipe, rows in runs.items():
        timing_path = dirs[recipe] / "timing.json"
        timing = json.loads(timing_path.read_text()) if timing_path.exists() else {"seconds": float("nan")}
        counter = {"clip_cov": "clip_cov_detached_fraction", "kl_cov": "kl_cov_penalised_fraction"}.get(
            json.loads((dirs[recipe] / "softthink_rl.json").read_text())["recipe"]
        )
        counter_text = f"{counter.split('_', 2)[2]} {_fmt(_mean(rows, counter), 5)}" if counter else "–"
        pair = lambda key, rows=rows, k=k: (
            f"{_fmt(_mean(rows, key, slice(0, k)))} → {_fmt(_mean(rows, key, slice(-k, None)))}"
        )
        lines.append(
            f"| {recipe} | {len(rows)} | {timing['seconds'] / 60:.1f} | {pair('reward')} | "
            f"{pair('entropy_all')} | {pair('entropy_forking')} | {pair('entropy_execution')} | "
            f"{pair('frac_above')} | {counter_text} | {_fmt(_zero_std_fraction(dirs[recipe]))} |"
        )
    lines += [
        "",
        "Entropy-performance law R = -a·exp(H) + b, fitted on the steps that generated rollouts "
        "(R = their mean reward over 32 completions, H = mean token entropy of the policy on them). "
        f"'binned' averages {BIN} consecutive rollouts per point to reduce the reward's sampling noise:",
        "",
        "| fit | a | b | R² | points | binned a | binned b | binned R² | binned points |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for name, law, law_b in [
        *((r, laws.get(r), binned.get(r)) for r in runs),
        ("all four pooled", pooled[1], pooled[BIN]),
    ]:
        cells = [f"{x.a:.4g} | {x.b:.4g} | {_fmt(x.r2)} | {x.n}" if x else "– | – | – | –" for x in (law, law_b)]
        lines.append(f"| {name} | {cells[0]} | {cells[1]} |")
    as_dict = lambda law: law.to_dict() if law else None
    summary = {
        "laws": {k: as_dict(v) for k, v in laws.items()},
        "binned_laws": {k: as_dict(v) for k, v in binned.items()},
        "bin_size": BIN,
        "pooled_law": as_dict(pooled[1]),
        "pooled_binned_law": as_dict(pooled[BIN]),
    }
    return lines, summary


def eval_section(eval_dir: Path, fig_dir: Path, tag: str) -> tuple[list[str], list[dict]]:
    summary = json.loads((eval_dir / "summary.json").read_text())
    rows = summary["rows"]
    lines = [
        "| policy | mode | accuracy | 95% CI | samples | mean tokens (think / answer / total) | "
        "mean entropy | no-answer rate |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for row in rows:
        lines.append(
            f"| {row['model']} | {row['mode']} | {100 * row['accuracy']:.1f}% | "
            f"[{100 * row['ci_low']:.1f}, {100 * row['ci_high']:.1f}] ({row['ci_method']}) | {row['n_samples']} | "
            f"{_fmt(row['mean_think_tokens'], 1)} / {_fmt(row['mean_answer_tokens'], 1)} / "
            f"{_fmt(row['mean_total_tokens'], 1)} | {_fmt(row['mean_entropy'])} | {_fmt(row['no_answer_rate'])} |"
        )
    comparisons = [c for c in summary.get("comparisons", []) if c.get("kind") == "model"]
    if comparisons:
        keys = ["acc_a", "acc_b", "diff", "diff_ci_low", "diff_ci_high", "bootstrap_p"]
        lines += [
            "",
            "Paired comparisons of each policy against the base model (same problems and samples):",
            "",
            "| mode | policy | " + " | ".join(keys) + " |",
            "|---|---|" + "---|" * len(keys),
        ]
        for c in comparisons:
            lines.append(f"| {c['mode']} | {c['b']} | " + " | ".join(_fmt(c.get(k)) for k in keys) + " |")
    for name in ("report.md", "accuracy_vs_tokens.png", "results.csv"):
        if (eval_dir / name).exists():
            shutil.copy(eval_dir / name, fig_dir / f"eval_{tag}_{name}")
    lines += ["", f"![accuracy vs tokens, {tag}]({fig_dir.name}/eval_{tag}_accuracy_vs_tokens.png)"]
    return lines, rows


def stage_report(
    out: Path,
    report: Path,
    command: str,
    notes: str,
    extra: dict[str, Path],
    eval_difficulties: list[str],
    train_difficulty: str,
) -> Path:
    notes, _, reading = notes.partition(READING_MARK)
    notes, reading = notes.strip(), reading.strip()
    fig_dir = report.with_suffix("")
    fig_dir.mkdir(parents=True, exist_ok=True)
    dyn_lines, dyn_summary = dynamics_section(out, fig_dir, extra)
    eval_lines, eval_rows = [], {}
    for difficulty in eval_difficulties:
        lines, rows = eval_section(out / f"eval_{difficulty}", fig_dir, difficulty)
        eval_lines += [f"### Testbed test split, difficulty '{difficulty}'", "", *lines, ""]
        eval_rows[difficulty] = rows
    provenance = json.loads((out / "full" / "softthink_rl.json").read_text())
    config, config_model = provenance["config"], provenance["run"]["model"]
    budget = {
        k: config.get(k)
        for k in (
            "max_steps",
            "per_device_train_batch_size",
            "gradient_accumulation_steps",
            "steps_per_generation",
            "num_generations",
            "max_completion_length",
            "learning_rate",
            "temperature",
            "loss_type",
            "epsilon",
            "epsilon_high",
            "beta",
            "seed",
        )
    }
    md = [
        "# Testbed RL: full vs forking vs Clip-Cov vs KL-Cov",
        "",
        "Generated by `experiments/testbed_rl.py`; every number below was produced by the command at the end.",
        "",
        "## Setup",
        "",
        f"Base policy: `{config_model}` ('testbed' = the shipped testbed model). RL data: "
        f"testbed train split at difficulty '{train_difficulty}'; reward = `softthink.eval.grade` correctness (1/0). "
        "One shared budget for all four "
        "recipes (configs/rl/_testbed.yaml and the overrides below):",
        "",
        "```json",
        json.dumps(budget, indent=2),
        "```",
        "",
        notes,
        "",
        "## Training dynamics",
        "",
        *dyn_lines,
        "",
        f"![all recipes]({fig_dir.name}/dynamics_all.png)",
        "",
        *[f"![{r}]({fig_dir.name}/dynamics_{r}.png)" for r in RECIPES],
        "",
        *(
            [
                f"Extra runs ({', '.join(extra)}), not part of the equal-compute comparison:",
                "",
                f"![extra runs]({fig_dir.name}/dynamics_extra.png)",
                "",
            ]
            if extra
            else []
        ),
        "## Evaluation: every policy x {discrete, soft, gated}, and greedy / T=1 sampling",
        "",
        *eval_lines,
    ]
    return write_report(report, md, reading, command, {**dyn_summary, "eval_rows": eval_rows, "budget": budget})


def write_report(report: Path, md: list[str], reading: str, command: str, summary: dict) -> Path:
    """``md`` + the "What happened" section (if any) + the reproduce command -> ``report``; ``summary`` -> its
    figure folder's summary.json."""
    reading = reading.strip()
    md = [*md, *(["## What happened", "", reading, ""] if reading else []), "## Reproduce", "", "```bash", command]
    report.write_text("\n".join([*md, "```", ""]))
    (report.with_suffix("") / "summary.json").write_text(json.dumps(summary, indent=2, default=str) + "\n")
    return report


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default="runs/testbed_rl", help="run directory (checkpoints, eval records)")
    parser.add_argument("--stage", choices=("all", "train", "eval", "report"), default="all")
    parser.add_argument("--model", default="testbed", help="base policy (default: the shipped testbed model)")
    parser.add_argument(
        "--report",
        default=str(RESULTS_MD),
        help="where to write the markdown report (figures go to the same path without .md)",
    )
    parser.add_argument("--max-steps", type=int, default=None, help="override the recipes' max_steps (all four)")
    parser.add_argument(
        "--recipe",
        action="append",
        choices=RECIPES + NEW_RECIPES,
        default=None,
        help="train only this recipe (repeatable; default: all four). Lets two processes share "
        "the training stage; eval and report need all four",
    )
    parser.add_argument(
        "--toolbox",
        action="store_true",
        help=f"issue 12's recipes ({', '.join(NEW_RECIPES)}): train and evaluate them (with the base) on the same "
        "budget and cells, and report them against the committed four in eval/results/testbed_rl_entropy_toolbox.md",
    )
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads of this process")
    parser.add_argument(
        "--seed",
        type=int,
        default=None,
        help="training seed of all four recipes (default: the recipes' seed, 0); a replication "
        "run uses its own --out and --report",
    )
    parser.add_argument("--problems", type=int, default=200, help="testbed test problems in the eval")
    parser.add_argument("--samples", type=int, default=2, help="samples per problem in every eval cell")
    parser.add_argument("--max-new-tokens", type=int, default=160)
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument(
        "--testbed-difficulty",
        default=None,
        help="pin the testbed task difficulty of the RL data (default: the generator's default)",
    )
    parser.add_argument(
        "--eval-difficulty",
        action="append",
        default=None,
        help="testbed difficulty of the eval problems (repeatable; default: the training one)",
    )
    parser.add_argument(
        "--notes-file",
        help="markdown for the report's setup section; text after a line "
        f"'{READING_MARK}' goes to a closing 'What happened' section",
    )
    parser.add_argument(
        "--extra-run",
        action="append",
        default=[],
        metavar="LABEL=DIR",
        help="another finished run to show in the dynamics table and an extra figure",
    )
    args = parser.parse_args(argv)
    out = Path(args.out)
    if args.threads:
        import torch

        torch.set_num_threads(args.threads)
    from softthink.testbed import tasks

    if args.testbed_difficulty:
        pin_difficulty(args.testbed_difficulty)
    train_difficulty = tasks.DEFAULT_DIFFICULTY
    eval_difficulties = args.eval_difficulty or [train_difficulty]
    overrides = {"max_steps": args.max_steps} if args.max_steps else {}
    if args.seed is not None:
        overrides["seed"] = args.seed
    recipes = NEW_RECIPES if args.toolbox else RECIPES
    if args.stage in ("all", "train"):
        stage_train(out, args.model, overrides, tuple(args.recipe or recipes))
    if args.stage in ("all", "eval"):
        for difficulty in eval_difficulties:
            grid = (args.problems, args.samples, args.max_new_tokens, args.batch_size, difficulty, recipes)
            stage_eval(suite_dict(out, args.model, *grid), difficulty)
        pin_difficulty(train_difficulty)
    if args.stage in ("all", "report"):
        given = argv if argv is not None else sys.argv[1:]
        kept, skip = [], False
        for item in given:  # the reproduce command runs every stage and every recipe
            if skip or item in PER_PROCESS_FLAGS or item.split("=")[0] in PER_PROCESS_FLAGS:
                skip = item in PER_PROCESS_FLAGS
                continue
            kept.append(item)
        command = "python experiments/testbed_rl.py " + " ".join(kept)
        notes = Path(args.notes_file).read_text() if args.notes_file else ""
        if args.toolbox:
            from testbed_rl_toolbox import toolbox_report

            print(toolbox_report(out, command, notes, eval_difficulties[0]))
            return 0
        extra = {item.split("=", 1)[0]: Path(item.split("=", 1)[1]) for item in args.extra_run}
        print(stage_report(out, Path(args.report), command, notes, extra, eval_difficulties, train_difficulty))
    return 0


if __name__ == "__main__":
    sys.exit(main())
