"""Issue 9's comparison: do policies trained for concept tokens beat discrete decoding of the best discrete-token
policy, and forking-token RL? Writes eval/results/latent_comparison.md (figures and summary.json beside it).

Policies (all at the one budget of configs/rl/_testbed.yaml: same steps, completions, lengths, learning rate):
``full`` and ``forking`` start from the shipped ``testbed`` model (the best discrete start: the curriculum cost
``testbed-soft`` 2 discrete points), ``soft_grpo`` and ``soft_gaussian`` from ``testbed-soft`` (the concept-aware
base; training soft rollouts on the base testbed would feed it mixtures it never saw). Two training seeds each.
The two untrained bases are evaluated beside them.

Stages (each resumable: rerun the same command after an interruption):

1. train   `softthink.rl.train(recipe, base, output_dir=OUT/seed<s>/<recipe>, seed=s)` for every recipe and seed.
2. eval    one `softthink.eval.run` grid: the 2 bases + 8 policies x 8 decodings (greedy, the discrete preset,
           discrete T=1, soft, gated, soft + Gumbel noise, soft + the testbed's Cold Stop, multiplex) on the same
           test problems and per-sample seeds (``--problems`` x ``--samples``).
3. report  accuracy with CIs, pass@k / maj@k, tokens, Cold Stop's tokens saved, paired tests against base-discrete
           and against the best discrete-token policy, training dynamics -> the markdown report.
4. ship    pick the best soft-trained policy by `soft`-decoding accuracy on validation problems (not the test
           problems of the report), and write it as the shipped `testbed-soft-rl` checkpoint
           (softthink/testbed/checkpoint_soft_rl: float16 weights, loaded as float32) with its QUALITY.md.

    python experiments/latent_comparison.py --stage train --seed 0 --recipe full --recipe forking &   # one core
    python experiments/latent_comparison.py --stage train --seed 0 --recipe soft_grpo --recipe soft_gaussian
    ... (the same for --seed 1), then
    python experiments/latent_comparison.py --stage eval
    python experiments/latent_comparison.py --stage report --notes-file experiments/latent_comparison_notes.md
    python experiments/latent_comparison.py --stage ship
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from testbed_rl import READING_MARK, WINDOW, _fmt, _mean, stage_train, write_report  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
REPORT = REPO / "eval" / "results" / "latent_comparison.md"
SHIP_DIR = REPO / "softthink" / "testbed" / "checkpoint_soft_rl"
SHIP_FILES = ("chat_template.jinja", "generation_config.json", "tokenizer.json", "tokenizer_config.json")
VAL_PROBLEMS = 200
DISCRETE_RECIPES = ("full", "forking")
SOFT_RECIPES = ("soft_grpo", "soft_gaussian")
RECIPES = DISCRETE_RECIPES + SOFT_RECIPES
BASE_OF = {"full": "testbed", "forking": "testbed", "soft_grpo": "testbed-soft", "soft_gaussian": "testbed-soft"}
BASES = ("testbed", "testbed-soft")
SEEDS = (0, 1)
DECODE = (
    {"label": "greedy", "preset": "greedy"},
    # the discrete preset samples with the soft presets' filters (T 0.6, top-p 0.95, top-k 30): the matched pair
    {"label": "discrete", "preset": "discrete"},
    {"label": "discrete_t1", "preset": "discrete", "overrides": {"temperature": 1.0, "top_p": 1.0, "top_k": 0}},
    {"label": "soft", "preset": "soft"},
    {"label": "gated", "preset": "gated"},
    {"label": "soft_gumbel", "preset": "soft_gumbel"},
    {"label": "soft_cold_stop", "preset": "soft_cold_stop_testbed"},
    {"label": "multiplex", "preset": "multiplex"},
)
DISCRETE_MODES = ("greedy", "discrete", "discrete_t1")
SOFT_MODES = ("soft", "gated", "soft_gumbel", "soft_cold_stop", "multiplex")
BASELINE = ("testbed", "discrete")  # "base-discrete": the base under the discrete preset


def policy_label(recipe: str, seed: int) -> str:
    return f"{recipe}-s{seed}"


def suite_dict(out: Path, problems: int, samples: int, max_new_tokens: int, batch_size: int) -> dict:
    models = [{"label": base, "path": base} for base in BASES]
    models += [{"label": policy_label(r, s), "path": str(out / f"seed{s}" / r)} for s in SEEDS for r in RECIPES]
    return {
        "name": "latent_comparison",
        "description": "Bases and their RL policies (full, forking, soft_grpo, soft_gaussian; 2 seeds) x 8 decodings.",
        "models": models,
        "decode": list(DECODE),
        "benchmarks": [{"name": "testbed", "limit": problems}],
        "samples": samples,
        "seeds": [0],
        "batch_size": batch_size,
        "seed_per_sample": True,
        # Fixed batches of 256: on this overhead-bound model at 256 slots, continuous batching ran at 0.65-0.92x
        # fixed chunks (600 test prompts, soft and discrete, measured while the trainings shared the CPU).
        "continuous_batching": False,
        "decode_overrides": {"max_new_tokens": max_new_tokens},
        "output_dir": str(out / "eval"),
    }


def stage_eval(suite: dict):
    from softthink.eval import Suite, run

    results = run(Suite.from_dict(suite, source=__file__))
    if results.errors:
        raise SystemExit("eval cells failed:\n" + "\n".join(results.errors))
    return results


# ---------------------------------------------------------------------------------------------------- report


def _pct(x) -> str:
    return "–" if x is None or x != x else f"{100 * x:.1f}"


def cell_records(results) -> dict[tuple[str, str], list[dict]]:
    """Records by (model, mode): the grid has one benchmark and one seed."""
    from softthink.eval.aggregate import pooled_records

    return {(model, mode): recs for (model, mode, _), recs in pooled_records(results).items()}


def _paired(records, a: tuple[str, str], b: tuple[str, str]) -> dict:
    from softthink.eval.aggregate import paired_comparison

    return paired_comparison(records[a], records[b])


def _diff_cell(c: dict) -> str:
    star = "*" if c.get("diff_ci_low", 0) > 0 or c.get("diff_ci_high", 0) < 0 else ""
    return (
        f"{100 * c['diff']:+.1f} [{100 * c['diff_ci_low']:+.1f}, {100 * c['diff_ci_high']:+.1f}]{star} "
        f"(p {c['bootstrap_p']:.3f})"
    )


def _table_head(first: str, columns: list[str]) -> list[str]:
    return ["| " + " | ".join([first, *columns]) + " |", "|---|" + "---|" * len(columns)]


def models_in_order() -> list[str]:
    return [*BASES, *(policy_label(r, s) for r in RECIPES for s in SEEDS)]


def accuracy_tables(rows: dict, ks: list[int]) -> list[str]:
    labels = [d["label"] for d in DECODE]
    lines = [
        "Accuracy (%, all samples) per policy and decoding, 95% bootstrap CI over problems in brackets:",
        "",
        *_table_head("policy", labels),
    ]
    for model in models_in_order():
        cells = []
        for mode in labels:
            r = rows.get((model, mode))
            cells.append(f"{_pct(r['accuracy'])} [{_pct(r['ci_low'])}, {_pct(r['ci_high'])}]" if r else "–")
        lines.append(f"| {model} | " + " | ".join(cells) + " |")
    lines += [
        "",
        "pass@k / maj@k (%) for k = " + ", ".join(map(str, ks)) + " (unbiased pass@k; maj@k = the majority answer of "
        "the first k samples):",
        "",
        "| policy | mode | "
        + " | ".join(f"pass@{k}" for k in ks)
        + " | "
        + " | ".join(f"maj@{k}" for k in ks)
        + " | mean tokens (think / total) | soft share | no answer |",
        "|---|---|" + "---|" * (2 * len(ks) + 3),
    ]
    for model in models_in_order():
        for mode in labels:
            r = rows.get((model, mode))
            if not r:
                continue
            lines.append(
                f"| {model} | {mode} | "
                + " | ".join(_pct(r.get(f"pass@{k}")) for k in ks)
                + " | "
                + " | ".join(_pct(r.get(f"maj@{k}")) for k in ks)
                + f" | {_fmt(r['mean_think_tokens'], 1)} / {_fmt(r['mean_total_tokens'], 1)} | "
                f"{_fmt(r['soft_fraction'], 2)} | {_fmt(r['no_answer_rate'], 3)} |"
            )
    return lines


def best_discrete_policy(rows: dict) -> tuple[str, str]:
    """The strongest discrete competitor: the (discrete-token policy, discrete decoding) cell of highest accuracy,
    over the base and full/forking (either seed) under greedy, the discrete preset and T=1 sampling."""
    candidates = ["testbed", *(policy_label(r, s) for r in DISCRETE_RECIPES for s in SEEDS)]
    present = [(m, mode) for m in candidates for mode in DISCRETE_MODES if (m, mode) in rows]
    return max(present, key=lambda k: rows[k]["accuracy"])


def paired_tables(records: dict, rows: dict, best: tuple[str, str]) -> tuple[list[str], list[dict]]:
    labels = [d["label"] for d in DECODE]
    found = []
    lines = [
        f"Paired differences (points, B - A, same problems and samples; paired bootstrap 95% CI over problems, * = "
        f"CI excludes 0) of every policy x decoding against A = base-discrete (`{BASELINE[0]}` under "
        f"`{BASELINE[1]}`) and against A = the best discrete-token policy under its best discrete decoding "
        f"(`{best[0]}` under `{best[1]}`, {_pct(rows[best]['accuracy'])}%):",
        "",
        "| policy | mode | accuracy | vs base-discrete | vs best discrete-token policy |",
        "|---|---|---|---|---|",
    ]
    for model in models_in_order():
        for mode in labels:
            key = (model, mode)
            if key not in records:
                continue
            vs_base, vs_best = _paired(records, BASELINE, key), _paired(records, best, key)
            found.append({"model": model, "mode": mode, "vs_base": vs_base, "vs_best": vs_best})
            lines.append(
                f"| {model} | {mode} | {_pct(rows[key]['accuracy'])} | "
                f"{'–' if key == BASELINE else _diff_cell(vs_base)} | {'–' if key == best else _diff_cell(vs_best)} |"
            )
    return lines, found


def train_soft_infer_hard(records: dict, rows: dict) -> list[str]:
    """Each soft-trained policy decoded discretely, paired against its own base decoded the same way."""
    lines = [
        "Train soft, infer hard: each soft-trained policy under discrete decoding, paired against its start "
        "(`testbed-soft`) and against the base `testbed` under the same decoding:",
        "",
        "| policy | mode | accuracy | vs testbed-soft | vs testbed |",
        "|---|---|---|---|---|",
    ]
    for recipe in SOFT_RECIPES:
        for seed in SEEDS:
            for mode in DISCRETE_MODES:
                key = (policy_label(recipe, seed), mode)
                if key not in records:
                    continue
                lines.append(
                    f"| {key[0]} | {mode} | {_pct(rows[key]['accuracy'])} | "
                    f"{_diff_cell(_paired(records, ('testbed-soft', mode), key))} | "
                    f"{_diff_cell(_paired(records, ('testbed', mode), key))} |"
                )
    return lines


def cold_stop_table(records: dict, rows: dict) -> list[str]:
    lines = [
        "Cold Stop (`soft_cold_stop_testbed`: 0.01 nats for 20 thinking steps) against plain soft decoding, same "
        "problems and seeds:",
        "",
        "| policy | soft accuracy | + Cold Stop | change | total tokens soft → CS | tokens saved | traces Cold Stop "
        "ended |",
        "|---|---|---|---|---|---|---|",
    ]
    for model in models_in_order():
        soft, cs = rows.get((model, "soft")), rows.get((model, "soft_cold_stop"))
        if not soft or not cs:
            continue
        saved = 1 - cs["mean_total_tokens"] / soft["mean_total_tokens"]
        lines.append(
            f"| {model} | {_pct(soft['accuracy'])} | {_pct(cs['accuracy'])} | "
            f"{_diff_cell(_paired(records, (model, 'soft'), (model, 'soft_cold_stop')))} | "
            f"{_fmt(soft['mean_total_tokens'], 1)} → {_fmt(cs['mean_total_tokens'], 1)} | {100 * saved:.1f}% | "
            f"{_pct(cs['cold_stop_rate'])}% |"
        )
    return lines


def seed_means(rows: dict) -> list[str]:
    labels = [d["label"] for d in DECODE]
    lines = [
        "Mean of the two training seeds (accuracy %; the seeds' spread in brackets):",
        "",
        *_table_head("recipe", labels),
    ]
    for recipe in RECIPES:
        cells = []
        for mode in labels:
            accs = [
                rows[(policy_label(recipe, s), mode)]["accuracy"]
                for s in SEEDS
                if (policy_label(recipe, s), mode) in rows
            ]
            cells.append(f"{_pct(sum(accs) / len(accs))} ({_pct(min(accs))}-{_pct(max(accs))})" if accs else "–")
        lines.append(f"| {recipe} | " + " | ".join(cells) + " |")
    return lines


def dynamics_lines(out: Path, fig_dir: Path) -> list[str]:
    from softthink.figures import save_figure
    from softthink.rl.dynamics import read_dynamics
    from softthink.rl.plots import plot_dynamics

    runs = {policy_label(r, s): read_dynamics(out / f"seed{s}" / r / "dynamics.jsonl") for r in RECIPES for s in SEEDS}
    save_figure(plot_dynamics(runs), fig_dir / "dynamics_all.png")
    k = WINDOW
    lines = [
        f"Means over the first and the last {k} steps (reward = the rollouts' correctness under the recipe's own "
        "rollout decoding: discrete T=1 for full/forking, noisy soft for the soft recipes):",
        "",
        f"| policy | start | steps | wall time (min) | reward first→last {k} | entropy all | soft step share | "
        "mixture width |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for recipe in RECIPES:
        for seed in SEEDS:
            label, run_dir = policy_label(recipe, seed), out / f"seed{seed}" / recipe
            rows = runs[label]
            timing = json.loads((run_dir / "timing.json").read_text()) if (run_dir / "timing.json").exists() else {}
            minutes = f"{timing['seconds'] / 60:.1f}" if "seconds" in timing else "–"
            pair = lambda key, rows=rows: (
                f"{_fmt(_mean(rows, key, slice(0, k)))} → {_fmt(_mean(rows, key, slice(-k, None)))}"
                if _mean(rows, key) is not None
                else "–"
            )
            lines.append(
                f"| {label} | {BASE_OF[recipe]} | {len(rows)} | {minutes} | {pair('reward')} | {pair('entropy_all')} "
                f"| {pair('soft_step_share')} | {pair('mixture_width')} |"
            )
    return [*lines, "", f"![training dynamics]({fig_dir.name}/dynamics_all.png)"]


def accuracy_figure(rows: dict, path: Path) -> None:
    """Grouped bars: accuracy per decoding for the bases and the seed-mean of every recipe."""
    import matplotlib.pyplot as plt

    from softthink.figures import save_figure

    labels = [d["label"] for d in DECODE]
    groups = [*BASES, *RECIPES]
    fig, ax = plt.subplots(figsize=(12, 4.5))
    width = 0.8 / len(groups)
    for i, group in enumerate(groups):
        models = [group] if group in BASES else [policy_label(group, s) for s in SEEDS]
        accs = []
        for mode in labels:
            vals = [rows[(m, mode)]["accuracy"] for m in models if (m, mode) in rows]
            accs.append(100 * sum(vals) / len(vals) if vals else 0.0)
        ax.bar([j + i * width for j in range(len(labels))], accs, width, label=group)
    ax.set_xticks([j + 0.4 - width / 2 for j in range(len(labels))], labels)
    ax.set_ylabel("accuracy (%)")
    ax.set_title("Testbed test problems: bases and RL policies (seed mean) under each decoding")
    ax.legend(ncol=3, fontsize=8)
    save_figure(fig, path)


def stage_report(out: Path, suite: dict, report: Path, command: str, notes: str) -> Path:
    from softthink.eval import Suite
    from softthink.eval.runner import rebuild_report

    notes, _, reading = notes.partition(READING_MARK)
    fig_dir = report.with_suffix("")
    fig_dir.mkdir(parents=True, exist_ok=True)
    results = rebuild_report(Suite.from_dict(suite, source=__file__))
    if results.errors:
        raise SystemExit("eval cells incomplete:\n" + "\n".join(results.errors))
    rows = {(r["model"], r["mode"]): r for r in results.rows}
    records = cell_records(results)
    ks = results.suite.resolved_pass_k
    best = best_discrete_policy(rows)
    paired, paired_rows = paired_tables(records, rows, best)
    accuracy_figure(rows, fig_dir / "accuracy.png")
    budget = json.loads((out / "seed0" / "full" / "softthink_rl.json").read_text())["config"]
    md = [
        "# Latent reasoning on the testbed: soft-thinking RL vs discrete-token RL, 8 decodings",
        "",
        "Generated by `experiments/latent_comparison.py`; every number below was produced by the command at the end.",
        "",
        notes.strip(),
        "",
        "## Setup",
        "",
        f"Eval: {suite['benchmarks'][0]['limit']} testbed test problems (difficulty 'hard') x {suite['samples']} "
        f"samples, per-sample seeds, max {suite['decode_overrides']['max_new_tokens']} new tokens; the same problems "
        "and seeds in every cell. Policies: 200 GRPO steps of 32 completions (8 per prompt) each "
        f"(learning rate {budget.get('learning_rate')}, max completion {budget.get('max_completion_length')} tokens), "
        "configs/rl/<recipe>.yaml with configs/rl/_testbed.yaml; full/forking from `testbed`, "
        "soft_grpo/soft_gaussian from `testbed-soft`; training seeds 0 and 1.",
        "",
        "## Accuracy",
        "",
        *accuracy_tables(rows, ks),
        "",
        f"![accuracy per decoding]({fig_dir.name}/accuracy.png)",
        "",
        *seed_means(rows),
        "",
        "## Paired tests",
        "",
        *paired,
        "",
        *train_soft_infer_hard(records, rows),
        "",
        "## Cold Stop",
        "",
        *cold_stop_table(records, rows),
        "",
        "## Training",
        "",
        *dynamics_lines(out, fig_dir),
        "",
    ]
    for name in ("report.md", "results.csv", "accuracy_vs_tokens.png"):
        src = Path(suite["output_dir"]) / name
        if src.exists():
            (fig_dir / f"eval_{name}").write_bytes(src.read_bytes())
    summary = {"rows": results.rows, "paired": paired_rows, "best_discrete_policy": list(best), "budget": budget}
    return write_report(report, md, reading, command, summary)


# ------------------------------------------------------------------------------------------------------ ship


def _accuracy(model_path: str, preset: str, problems: list[dict], dtype=None) -> dict:
    import softthink
    from softthink.testbed.quality import decode_accuracy

    model, tokenizer = softthink.load_model(model_path, device="cpu", dtype=dtype)
    return decode_accuracy(model, tokenizer, problems, preset, seed=0)


def stage_ship(out: Path, ship_dir: Path = SHIP_DIR) -> Path:
    """Select the best soft-trained policy on validation problems and write it as the shipped checkpoint."""
    import shutil

    import torch
    from safetensors.torch import load_file, save_file

    from softthink.testbed.tasks import load_problems

    val = load_problems("val", VAL_PROBLEMS, seed=0)
    test = load_problems("test", 300, seed=0)
    candidates = {policy_label(r, s): out / f"seed{s}" / r for r in SOFT_RECIPES for s in SEEDS}
    selection = {label: _accuracy(str(path), "soft", val) for label, path in candidates.items()}
    for label, result in selection.items():
        print(f"[ship] {label}: soft accuracy {result['accuracy']:.3f} on {VAL_PROBLEMS} val problems", flush=True)
    best = max(selection, key=lambda k: selection[k]["accuracy"])
    source = candidates[best]
    ship_dir.mkdir(parents=True, exist_ok=True)
    for name in SHIP_FILES:
        shutil.copy(source / name, ship_dir / name)
    config = json.loads((source / "config.json").read_text())
    config["dtype"] = "float32"  # the weights are stored in float16 (package-data budget) and load as float32
    (ship_dir / "config.json").write_text(json.dumps(config, indent=2) + "\n")
    weights = load_file(str(source / "model.safetensors"))
    save_file(
        {k: v.to(torch.float16).contiguous() for k, v in weights.items()},
        str(ship_dir / "model.safetensors"),
        metadata={"format": "pt"},
    )
    provenance = json.loads((source / "softthink_rl.json").read_text())
    (ship_dir / "train_config.json").write_text(json.dumps(provenance, indent=2) + "\n")
    dynamics = [json.loads(line) for line in (source / "dynamics.jsonl").read_text().splitlines() if line.strip()]
    (ship_dir / "training_log.json").write_text(json.dumps({"policy": best, "dynamics": dynamics}) + "\n")
    rounding = {
        f"{preset}, {kind}": _accuracy(path, preset, test)
        for preset in ("greedy", "soft")
        for kind, path in (("float32 trained", str(source)), ("float16 shipped", str(ship_dir)))
    }
    quality = {"policy": best, "selection_val": selection, "rounding_test": rounding}
    (ship_dir / "quality.json").write_text(json.dumps(quality, indent=2) + "\n")
    recipe, seed = best.rsplit("-s", 1)
    md = [
        "# testbed-soft-rl: the best soft-trained testbed policy",
        "",
        f"`{best}`: recipe `{recipe}` (configs/rl/{recipe}.yaml with configs/rl/_testbed.yaml: 200 GRPO steps of 32 "
        f"completions), training seed {seed}, started from `{BASE_OF[recipe]}`. Written by "
        "`python experiments/latent_comparison.py --stage ship`; its evaluation against the other policies under 8 "
        "decodings is eval/results/latent_comparison.md (there: the float32 weights).",
        "",
        f"## Selection: `soft` decoding, {VAL_PROBLEMS} validation problems (one sample each, seeds 0..)",
        "",
        "| candidate | accuracy | mean tokens | soft share |",
        "|---|---|---|---|",
        *(
            f"| {label}{' (shipped)' if label == best else ''} | {r['accuracy']:.3f} | {r['mean_tokens']:.1f} | "
            f"{r['soft_share']:.2f} |"
            for label, r in selection.items()
        ),
        "",
        "## Float16 storage: the shipped weights against the trained ones (300 test problems)",
        "",
        "The package-data budget (20 MiB for all shipped checkpoints) holds this third one only in float16; it "
        "loads as float32. Same problems and seeds:",
        "",
        "| decoding, weights | accuracy | mean tokens |",
        "|---|---|---|",
        *(f"| {k} | {r['accuracy']:.3f} | {r['mean_tokens']:.1f} |" for k, r in rounding.items()),
        "",
    ]
    (ship_dir / "QUALITY.md").write_text("\n".join(md))
    print(f"[ship] {best} -> {ship_dir}")
    return ship_dir


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default="runs/latent", help="run directory (checkpoints, eval records)")
    parser.add_argument("--stage", choices=("all", "train", "eval", "report", "ship"), default="all")
    parser.add_argument("--recipe", action="append", choices=RECIPES, help="train only this recipe (repeatable)")
    parser.add_argument("--seed", action="append", type=int, choices=SEEDS, help="train only this seed (repeatable)")
    parser.add_argument("--threads", type=int, default=1, help="torch CPU threads of this process")
    parser.add_argument("--problems", type=int, default=300, help="testbed test problems in the eval")
    parser.add_argument("--samples", type=int, default=4, help="samples per problem in every eval cell")
    parser.add_argument("--max-new-tokens", type=int, default=160)
    parser.add_argument("--batch-size", type=int, default=256, help="eval batch size (the testbed is overhead-bound)")
    parser.add_argument("--report", default=str(REPORT))
    parser.add_argument(
        "--notes-file",
        help=f"markdown opening the report (the answers); text after a line '{READING_MARK}' goes to 'What happened'",
    )
    args = parser.parse_args(argv)
    import torch

    torch.set_num_threads(args.threads)
    out = Path(args.out)
    if args.stage in ("all", "train"):
        for seed in args.seed or SEEDS:
            for recipe in args.recipe or RECIPES:
                stage_train(out / f"seed{seed}", BASE_OF[recipe], {"seed": seed}, (recipe,))
    suite = suite_dict(out, args.problems, args.samples, args.max_new_tokens, args.batch_size)
    if args.stage in ("all", "eval"):
        # policies still training are left for a later run of this stage (which resumes the grid)
        ready = [m for m in suite["models"] if m["path"] in BASES or (Path(m["path"]) / "model.safetensors").is_file()]
        skipped = [m["label"] for m in suite["models"] if m not in ready]
        if skipped:
            print(f"[latent_comparison] not trained yet, evaluated later: {', '.join(skipped)}", flush=True)
        stage_eval({**suite, "models": ready})
    if args.stage in ("all", "report"):
        notes = Path(args.notes_file).read_text() if args.notes_file else ""
        command = "python experiments/latent_comparison.py --stage all" + (
            f" --notes-file {args.notes_file}" if args.notes_file else ""
        )
        print(stage_report(out, suite, Path(args.report), command, notes))
    if args.stage in ("all", "ship"):
        stage_ship(out)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
