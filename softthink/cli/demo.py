"""The main job: compare decode modes on the embedded testbed model and its held-out benchmark, offline.

Runs discrete chain-of-thought vs Soft Thinking vs entropy-gated Soft Thinking with the same samples through the
evaluation harness, prints the table (accuracy with 95% CI, tokens, soft-step fraction) and writes the report and
an accuracy-vs-tokens plot into --out.

examples:
  softthink demo
  softthink demo --problems 100 --samples 2 --modes discrete soft gated soft_cold_stop swir
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

HELP = "compare decode modes on the embedded testbed model (offline, about a minute)"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--model", default="testbed", help="model to evaluate (default: the embedded testbed model)")
    parser.add_argument(
        "--modes",
        nargs="+",
        default=["discrete", "soft", "gated"],
        help="decode presets to compare (configs/decode/*.yaml)",
    )
    parser.add_argument("--problems", type=int, default=40, help="held-out testbed problems")
    parser.add_argument("--samples", type=int, default=1, help="samples per problem, equal for every mode")
    parser.add_argument("--batch-size", type=int, default=16)
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
            "description": "softthink demo: decode modes on the testbed model",
            "models": [{"label": Path(args.model).stem if args.model != "testbed" else "testbed", "path": args.model}],
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


def run(args: argparse.Namespace) -> int:
    import softthink.eval
    from softthink.eval.report import markdown_table

    suite = build_suite(args)
    print(
        f"# softthink demo: {args.model} x {', '.join(args.modes)} x {args.problems} testbed problems "
        f"x {args.samples} sample(s)"
    )
    results = softthink.eval.run(suite)
    print()
    print(markdown_table(results.rows))
    print(f"\nreport, CSV and plot in {results.output_dir}")
    errors = [c for c in results.cells if c.error]
    for cell in errors:
        print(f"error in {cell.cell}: {cell.error}", file=sys.stderr)
    return 1 if errors else 0
