"""The main job: the comparison that matters, on the embedded testbed models and their held-out benchmark, offline.

The base model (`testbed`) and the best soft-trained policy (`testbed-soft-rl`: the concept-aware testbed-soft
trained further by soft-thinking RL, eval/results/latent_comparison.md), each under discrete decoding and Soft
Thinking, with the same problems and samples through the evaluation harness. Prints the table (accuracy with 95%
CI, tokens, soft-step fraction), every cell's paired difference from the base under discrete decoding, and a
verdict: does Soft Thinking win, lose, or show no difference? Writes the report and an accuracy-vs-tokens plot
into --out.

examples:
  softthink demo
  softthink demo --models testbed testbed-soft testbed-soft-rl --modes discrete soft gated multiplex
  softthink demo --problems 200 --samples 2
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

HELP = "base vs soft-trained policy, discrete vs soft decoding, on the embedded testbed (offline, about a minute)"
DEMO_MODELS = ["testbed", "testbed-soft-rl"]
REFERENCE_MODE = "discrete"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--models",
        "--model",
        nargs="+",
        default=DEMO_MODELS,
        help="models to evaluate, the first one the reference (default: the base testbed model and the best "
        "soft-trained policy, testbed-soft-rl)",
    )
    parser.add_argument(
        "--modes",
        nargs="+",
        default=[REFERENCE_MODE, "soft"],
        help="decode presets to compare (configs/decode/*.yaml); the verdict needs 'discrete' among them",
    )
    parser.add_argument("--problems", type=int, default=100, help="held-out testbed problems")
    parser.add_argument("--samples", type=int, default=1, help="samples per problem, equal for every mode")
    parser.add_argument("--batch-size", type=int, default=50)
    parser.add_argument(
        "--max-new-tokens",
        type=int,
        default=224,
        help="token budget (testbed solutions: median 54, max 194 tokens; context 384)",
    )
    parser.add_argument("--out", default="softthink-demo", help="output directory (report.md, results.csv, plot)")


def build_suite(args: argparse.Namespace):
    """The demo's evaluation grid as a `softthink.eval.Suite`."""
    from softthink.eval import Suite

    return Suite.from_dict(
        {
            "name": "demo",
            "description": "softthink demo: the base and the soft-trained testbed policy under each decode mode",
            "models": [{"label": _label(model), "path": model} for model in args.models],
            "decode": list(args.modes),
            # The testbed model was trained on the bare question in its chat template (no instruction text).
            "benchmarks": [
                {"name": "testbed", "limit": args.problems, "prompt": {"style": "chat", "template": "{question}"}}
            ],
            "samples": args.samples,
            "batch_size": args.batch_size,
            "seeds": [0],
            "decode_overrides": {"max_new_tokens": args.max_new_tokens},
            "output_dir": str(Path(args.out).resolve()),
        },
        source="softthink demo",
    )


def _label(model: str) -> str:
    """A shipped model's name as it is; a path by its last component."""
    from softthink.testbed.default import TESTBED_MODELS

    return model if model in TESTBED_MODELS else Path(model).name


def verdict_lines(results) -> list[str]:
    """Each cell's paired difference from the first model under discrete decoding, and whether Soft Thinking (the
    best cell of a non-discrete mode) beats it: a difference counts only when its 95% CI excludes zero."""
    from softthink.eval.aggregate import paired_comparison, pooled_records

    records = {(model, mode): recs for (model, mode, _), recs in pooled_records(results).items()}
    accuracy = {(r["model"], r["mode"]): r.get("accuracy") for r in results.rows}
    reference = (results.suite.models[0].label, REFERENCE_MODE)
    if not records.get(reference):
        return [f"(no verdict: the first model has no '{REFERENCE_MODE}' cell to compare against)"]
    lines = [f"Paired differences from {reference[0]} under {REFERENCE_MODE} (points, 95% paired bootstrap CI):"]
    diffs = {}
    for key, recs in records.items():
        if key == reference or not recs:
            continue
        c = paired_comparison(records[reference], recs)
        diffs[key] = c
        lines.append(
            f"  {key[0]:>16s} {key[1]:<12s} {100 * c['diff']:+6.1f} [{100 * c['diff_ci_low']:+.1f}, "
            f"{100 * c['diff_ci_high']:+.1f}]"
        )
    soft = [k for k in diffs if k[1] != REFERENCE_MODE and accuracy.get(k) is not None]
    if not soft:
        return lines
    best = max(soft, key=lambda k: accuracy[k])
    c = diffs[best]
    ref_acc = 100 * accuracy[reference]
    what = (
        f"{best[0]} under {best[1]} ({100 * accuracy[best]:.1f}%) vs {reference[0]} under {REFERENCE_MODE} "
        f"({ref_acc:.1f}%)"
    )
    if c["diff_ci_high"] < 0:
        lines.append(f"Verdict: Soft Thinking still loses here. Its best cell, {what}, is lower with 95% confidence.")
    elif c["diff_ci_low"] > 0:
        lines.append(f"Verdict: Soft Thinking wins here. Its best cell, {what}, is higher with 95% confidence.")
    else:
        lines.append(
            f"Verdict: no evidence of a difference. Soft Thinking's best cell, {what}, is within the 95% CI of "
            f"the reference (run more --problems / --samples to narrow it)."
        )
    return lines


def run(args: argparse.Namespace) -> int:
    import softthink.eval
    from softthink.eval.report import markdown_table

    suite = build_suite(args)
    print(
        f"# softthink demo: {', '.join(args.models)} x {', '.join(args.modes)} x {args.problems} testbed problems "
        f"x {args.samples} sample(s)"
    )
    results = softthink.eval.run(suite)
    print()
    print(markdown_table(results.rows))
    print()
    print("\n".join(verdict_lines(results)))
    print(f"\nreport, CSV and plot in {results.output_dir}")
    errors = [c for c in results.cells if c.error]
    for cell in errors:
        print(f"error in {cell.cell}: {cell.error}", file=sys.stderr)
    return 1 if errors else 0
