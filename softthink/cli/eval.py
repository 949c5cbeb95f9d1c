"""Evaluate decode modes x models on math benchmarks, on equal footing.

subcommands:
  run SUITE.yaml [--set key=value ...]   run a suite (resumes; results in its output dir)
  report SUITE.yaml [...]                rewrite a suite's report from the records on disk (no model, no decoding)
  validate SUITE.yaml [...]              check suites without loading a model
  plan SUITE.yaml                        cells, samples and token budget of a suite (no model loaded)
  ls                                     list benchmarks, decode presets and committed suites
  SUITE.yaml [...]                       shorthand for `run SUITE.yaml ...`

examples:
  softthink eval run eval/suites/quick.yaml
  softthink eval eval/suites/smollm2_gsm8k50.yaml --limit 5 --set decode_overrides.max_new_tokens=64
  softthink eval run eval/suites/smollm2_gsm8k50.yaml --set samples=4 --set 'seeds=[0,1]'
  softthink eval validate eval/suites/*.yaml
  softthink eval plan eval/suites/softthinking_32b_competition.yaml --gpu-tokens-per-second 20
  softthink eval report eval/suites/smollm2_gsm8k50.yaml --data-dir ../shared/data
  accelerate launch --num_processes 4 -m softthink.cli.main eval run SUITE.yaml   # data parallel, GPUs
  torchrun --nproc_per_node 2 -m softthink.cli.main eval run SUITE.yaml           # data parallel, CPU
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

HELP = "evaluate decode modes x models on math benchmarks (run | report | validate | plan | ls)"
SUBCOMMANDS = ("run", "report", "validate", "plan", "ls")
WAIT_HELP = (
    "if another run holds the output dir (its run.lock), wait for it to finish and resume from its records; "
    "default: exit at once with an error naming that run's pid and host"
)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "argv",
        nargs=argparse.REMAINDER,
        metavar="{run,report,validate,plan,ls} ...",
        help="subcommand and its arguments; `softthink eval run -h` for details",
    )


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="softthink eval", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    sub = parser.add_subparsers(dest="action", required=True)
    run_p = sub.add_parser("run", help="run a suite", description="Run an evaluation suite (resumable).")
    run_p.add_argument("suite", help="suite YAML (committed suites live in eval/suites/)")
    _add_override_args(run_p)
    run_p.add_argument("--batch-size", type=int, help="prompts per generate call (suite key batch_size)")
    run_p.add_argument("--output-dir", help="where records and the report go (default eval/results/<name>)")
    run_p.add_argument("--no-progress", action="store_true", help="hide the progress bars")
    run_p.add_argument("--wait", action="store_true", help=WAIT_HELP)
    rep_p = sub.add_parser(
        "report",
        help="rewrite a suite's report from its records on disk",
        description="Rebuild a suite's results and report files from the records in its output "
        "dir, without loading a model; cells with missing samples are reported as "
        "incomplete. Pass the overrides of the run that wrote them.",
    )
    rep_p.add_argument("suite", help="suite YAML of the run")
    _add_override_args(rep_p)
    rep_p.add_argument("--batch-size", type=int, help="the run's batch size, if overridden (suite key batch_size)")
    rep_p.add_argument("--output-dir", help="the run's output dir (default eval/results/<name>)")
    rep_p.add_argument("--wait", action="store_true", help=WAIT_HELP)
    val_p = sub.add_parser(
        "validate",
        help="check suites without loading a model",
        description="Check suites: presets, benchmarks, data files, subsets (no model load).",
    )
    val_p.add_argument("suites", nargs="+", help="suite YAML files")
    _add_override_args(val_p)
    _add_plan_parser(sub)
    sub.add_parser("ls", help="list benchmarks, decode presets and suites")
    return parser


def _add_plan_parser(sub) -> None:
    plan_p = sub.add_parser(
        "plan",
        help="cells, samples and token budget of a suite (no model loaded)",
        description="Print every cell of a suite with its problems x samples, prompt tokens and generated-token "
        "budget (problems x samples x max_new_tokens: an upper bound), without loading model weights. Prompt "
        "tokens are counted with the model's tokenizer when its files are here, else estimated (and marked ~).",
    )
    plan_p.add_argument("suite", help="suite YAML")
    _add_override_args(plan_p)
    plan_p.add_argument(
        "--gpu-tokens-per-second",
        type=float,
        metavar="TOK_S",
        help="decode throughput of one GPU (generated tokens/s summed over its batch); prints the GPU-hours of the "
        "budget at that rate",
    )


def _add_override_args(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--set",
        dest="sets",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="override a suite key; dotted for nested keys (benchmarks.0.limit=10); values are YAML",
    )
    p.add_argument(
        "--limit",
        type=int,
        help="at most the first N problems of every benchmark: wins over a benchmark entry's own `limit` when that "
        "is larger (the suite key `limit` only fills in for benchmarks without one)",
    )
    p.add_argument("--ids", help="comma-separated problem ids")
    p.add_argument(
        "--data-dir", help="folder of benchmark JSONL files (else $SOFTTHINK_DATA_DIR, else the Hugging Face Hub)"
    )


def _overrides(args: argparse.Namespace, suite: str) -> dict:
    from softthink.eval.suite import limit_overrides, parse_suite_set

    overrides = parse_suite_set(args.sets)
    if args.limit is not None:
        overrides.update(limit_overrides(suite, overrides, args.limit))
    for key, value in (
        ("data_dir", args.data_dir),
        ("batch_size", getattr(args, "batch_size", None)),
        ("output_dir", getattr(args, "output_dir", None)),
    ):
        if value is not None:
            overrides[key] = value
    if args.ids:
        overrides["ids"] = [i.strip() for i in args.ids.split(",") if i.strip()]
    return overrides


def run(args: argparse.Namespace) -> int:
    argv = list(args.argv)
    if argv and argv[0] not in SUBCOMMANDS and not argv[0].startswith("-"):
        argv = ["run"] + argv  # `softthink eval SUITE.yaml` shorthand
    parsed = build_parser().parse_args(argv)
    actions = {"run": _run, "report": _report, "validate": _validate, "plan": _plan, "ls": _ls}
    return actions[parsed.action](parsed)


def _run(args: argparse.Namespace) -> int:
    import yaml

    from softthink.eval.runner import load_suite
    from softthink.eval.runner import run as run_suite

    overrides = _overrides(args, args.suite)
    suite = load_suite(args.suite, overrides)  # validate (and show) before any model loads
    print(yaml.safe_dump({"suite": suite.to_dict()}, sort_keys=False, width=120).rstrip())
    results = run_suite(args.suite, progress=not args.no_progress, wait_for_lock=args.wait, **overrides)
    if not results.is_main:  # data parallel: the main process reports
        return 0
    return _print_results(results)


def _report(args: argparse.Namespace) -> int:
    from softthink.errors import SoftthinkError
    from softthink.eval.runner import rebuild_report

    try:
        results = rebuild_report(args.suite, wait_for_lock=args.wait, **_overrides(args, args.suite))
    except SoftthinkError as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
    return _print_results(results)


def _print_results(results) -> int:
    from softthink.eval.report import markdown_table

    print()
    print(markdown_table(results.rows))
    print(f"\nreport: {results.output_dir / 'report.md'}")
    for error in results.errors:
        print(f"error: {error.splitlines()[0]}", file=sys.stderr)
    return 1 if results.errors else 0


def _validate(args: argparse.Namespace) -> int:
    from softthink.errors import SoftthinkError
    from softthink.eval.runner import load_suite
    from softthink.eval.validate import validate_suite

    failed = 0
    for path in args.suites:
        try:
            report = validate_suite(load_suite(path, _overrides(args, path)))
        except SoftthinkError as err:
            print(f"FAIL {path}: {err}")
            failed += 1
            continue
        status = "ok  " if report.ok else "FAIL"
        print(f"{status} {path}: {report.cells} cells, {report.samples} samples")
        for error in report.errors:
            print(f"  error: {error}")
        for warning in report.warnings:
            print(f"  warning: {warning}")
        failed += not report.ok
    return 1 if failed else 0


def _plan(args: argparse.Namespace) -> int:
    from softthink.errors import SoftthinkError
    from softthink.eval.plan import format_plan, plan_suite
    from softthink.eval.runner import load_suite

    try:
        plan = plan_suite(load_suite(args.suite, _overrides(args, args.suite)))
        print(format_plan(plan, args.gpu_tokens_per_second))
    except (SoftthinkError, ValueError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
    return 1 if plan.errors else 0


def _ls(args: argparse.Namespace) -> int:
    import softthink
    from softthink.eval.datasets import BENCHMARKS

    print("benchmarks:")
    for name, entry in BENCHMARKS.items():
        print(f"  {name:10s} {entry.description}")
    print("decode presets: " + ", ".join(softthink.available_presets()))
    print("decode modes:   " + ", ".join(softthink.available_modes()))
    suites = sorted(Path("eval/suites").glob("*.yaml"))
    if suites:
        print("suites (eval/suites/): " + ", ".join(p.name for p in suites))
    return 0
