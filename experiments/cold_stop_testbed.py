"""Cold Stop on the testbed: calibrate the entropy threshold and patience to its traces, then measure tokens saved
vs the accuracy change. Writes eval/results/cold_stop_testbed.md.

Cold Stop ends thinking after ``cold_stop_patience`` consecutive thinking steps below ``cold_stop_entropy`` nats.
The paper's 0.01 / 256 never fires on the testbed: its whole traces are ~50-200 tokens. Calibration (on the
*val* split, so the test problems stay unseen): decode ``--calib-n`` val problems with the discrete preset (the
model's sound reasoning: soft decoding of the base model is mostly derailed), and take, over the correct traces
that ended with their own ``</think>``, the longest run of consecutive thinking steps below the threshold. The
patience is the ``--quantile`` (default 0.9) of those longest runs, plus one: a sound trace of the calibration
set is cut with probability about 1 - quantile, while a trace that stalls in a long confident stretch (a loop, a
derailed mixture) is cut after that many steps. The threshold stays the paper's 0.01 nats (69% of the testbed's
tokens are below it; its decisions sit near 1.4 nats).

Evaluation: the first ``--n`` test problems, one sample each with per-prompt seeds, under ``soft`` and under
``soft`` + Cold Stop (the preset ``configs/decode/soft_cold_stop_testbed.yaml``), per model: accuracy, paired
difference with a 95% bootstrap CI, tokens per completion, thinking tokens, share of traces Cold Stop ended.

    python experiments/cold_stop_testbed.py                       # base testbed (and testbed-soft if shipped)
    python experiments/cold_stop_testbed.py --models testbed --n 300 --calib-n 200
"""

from __future__ import annotations

import argparse
import json
import math
from pathlib import Path

import torch

import softthink
from softthink.decoding.config import load_decode_config
from softthink.testbed.quality import decode_problems, is_correct
from softthink.testbed.tasks import load_problems

REPO = Path(__file__).resolve().parents[1]
PRESET = "soft_cold_stop_testbed"
REPORT = REPO / "eval" / "results" / "cold_stop_testbed.md"


def decode(model, tokenizer, problems: list[dict], preset: str, **overrides) -> list[dict]:
    """One sample per problem (per-prompt seed = index): correctness, tokens and the thinking trace."""
    rows = []
    for g, p in zip(decode_problems(model, tokenizer, problems, preset, **overrides), problems):
        rows.append(
            {
                "correct": is_correct(g.text, p["answer"]),
                "tokens": g.num_tokens,
                "think_tokens": g.think_tokens,
                "think_end_reason": g.think_end_reason,
                "think_entropy": [h for h, th in zip(g.trace.entropy, g.trace.thinking) if th],
            }
        )
    return rows


def longest_run_below(entropies: list[float], threshold: float) -> int:
    """The longest run of consecutive values below ``threshold``."""
    best = run = 0
    for h in entropies:
        run = run + 1 if h < threshold else 0
        best = max(best, run)
    return best


def quantile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, math.ceil(q * len(ordered)) - 1)]


def calibrate(model, tokenizer, n: int, threshold: float, q: float) -> dict:
    rows = decode(model, tokenizer, load_problems("val", n, seed=0), "discrete")
    sound = [r for r in rows if r["correct"] and r["think_end_reason"] == "think_marker"]
    # the marker step itself is not a content step: drop the last thinking entropy
    runs = [longest_run_below(r["think_entropy"][:-1], threshold) for r in sound]
    lengths = [r["think_tokens"] for r in rows]
    return {
        "n": n,
        "sound_traces": len(sound),
        "accuracy": sum(r["correct"] for r in rows) / n,
        "think_tokens": {f"p{int(100 * x)}": quantile(lengths, x) for x in (0.1, 0.5, 0.9, 1.0)},
        "longest_low_run": {f"p{int(100 * x)}": quantile(runs, x) for x in (0.1, 0.5, 0.9, 0.95, 1.0)},
        "threshold": threshold,
        "quantile": q,
        "patience": int(quantile(runs, q)) + 1,
    }


def paired_ci(a: list[bool], b: list[bool], seed: int = 0, draws: int = 2000) -> tuple[float, float, float]:
    """Mean of b - a and its 95% paired bootstrap interval."""
    diff = torch.tensor([float(y) - float(x) for x, y in zip(a, b)], dtype=torch.float64)
    g = torch.Generator().manual_seed(seed)
    means = diff[torch.randint(len(diff), (draws, len(diff)), generator=g)].mean(1).sort().values
    return float(diff.mean()), float(means[int(0.025 * draws)]), float(means[int(0.975 * draws) - 1])


def summary(rows: list[dict]) -> dict:
    n = len(rows)
    return {
        "accuracy": sum(r["correct"] for r in rows) / n,
        "tokens": sum(r["tokens"] for r in rows) / n,
        "think_tokens": sum(r["think_tokens"] for r in rows) / n,
        "cold_stopped": sum(r["think_end_reason"] == "cold_stop" for r in rows) / n,
    }


def compare(plain: list[dict], cold: list[dict]) -> dict:
    diff = paired_ci([r["correct"] for r in plain], [r["correct"] for r in cold])
    return {"n": len(plain), "soft": summary(plain), "cold": summary(cold), "accuracy_change": diff}


def evaluate(model, tokenizer, n: int, threshold: float, sweep: list[int], sweep_n: int) -> dict:
    """soft vs the preset on ``n`` test problems, and vs other patiences on the first ``sweep_n`` of them (per-prompt
    seeds make the first ``sweep_n`` rows of the ``n``-problem run exactly a ``sweep_n``-problem run)."""
    problems = load_problems("test", n, seed=0)
    plain, cold = decode(model, tokenizer, problems, "soft"), decode(model, tokenizer, problems, PRESET)
    runs = [longest_run_below(r["think_entropy"], threshold) for r in plain]
    swept = {
        p: compare(plain[:sweep_n], decode(model, tokenizer, problems[:sweep_n], PRESET, cold_stop_patience=p))
        for p in sweep
    }
    return {
        **compare(plain, cold),
        "soft_longest_low_run": {f"p{int(100 * x)}": quantile(runs, x) for x in (0.5, 0.9, 0.99, 1.0)},
        "sweep": swept,
    }


def write_report(calibration: dict, results: dict, preset: dict, command: str) -> None:
    c = calibration
    lines = [
        "# Cold Stop on the testbed: tokens saved vs accuracy",
        "",
        f"Preset `configs/decode/{PRESET}.yaml`: `soft` + `cold_stop_entropy: {preset['cold_stop_entropy']}`, "
        f"`cold_stop_patience: {preset['cold_stop_patience']}`.",
        "",
        "## Calibration (val split, discrete preset, the base testbed)",
        "",
        f"{c['n']} val problems, accuracy {c['accuracy']:.3f}; {c['sound_traces']} correct traces that ended with "
        f"their own `</think>`. Thinking tokens per trace (all traces): "
        + ", ".join(f"{k} {v}" for k, v in c["think_tokens"].items())
        + f". Longest run of consecutive thinking steps below {c['threshold']} nats (sound traces): "
        + ", ".join(f"{k} {v}" for k, v in c["longest_low_run"].items())
        + f". Patience = the {c['quantile']} quantile + 1 = **{c['patience']}**.",
        "",
        "## Test split: soft vs soft + Cold Stop (same problems, same per-prompt seeds)",
        "",
        "| model | n | soft accuracy | + Cold Stop | change (95% paired bootstrap CI) | tokens soft | tokens + CS "
        "| tokens saved | thinking tokens soft | + CS | traces Cold Stop ended |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]

    def row(label: str, r: dict) -> str:
        s, cs = r["soft"], r["cold"]
        d, lo, hi = r["accuracy_change"]
        return (
            f"| {label} | {r['n']} | {s['accuracy']:.3f} | {cs['accuracy']:.3f} | {d:+.3f} [{lo:+.3f}, {hi:+.3f}] | "
            f"{s['tokens']:.1f} | {cs['tokens']:.1f} | {100 * (1 - cs['tokens'] / s['tokens']):.1f}% | "
            f"{s['think_tokens']:.1f} | {cs['think_tokens']:.1f} | {100 * cs['cold_stopped']:.1f}% |"
        )

    lines += [row(name, r) for name, r in results.items()]
    lines += ["", "Longest run of thinking steps below the threshold in the *soft* test traces: "]
    lines += [
        f"- {name}: " + ", ".join(f"{k} {v}" for k, v in r["soft_longest_low_run"].items())
        for name, r in results.items()
    ]
    if any(r["sweep"] for r in results.values()):
        lines += [
            "",
            "## Other patiences (same threshold; the first problems of the same test run)",
            "",
            "| model, patience | n | soft accuracy | + Cold Stop | change (95% paired bootstrap CI) | tokens soft | "
            "tokens + CS | tokens saved | thinking tokens soft | + CS | traces Cold Stop ended |",
            "|---|---|---|---|---|---|---|---|---|---|---|",
        ]
        lines += [row(f"{name}, {p}", r) for name, res in results.items() for p, r in res["sweep"].items()]
    lines += ["", f"Reproduce: `{command}`", ""]
    REPORT.write_text("\n".join(lines))
    (REPORT.with_suffix(".json")).write_text(json.dumps({"calibration": c, "results": results}, indent=1) + "\n")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--models", nargs="+", default=None, help="default: testbed, and testbed-soft if shipped")
    parser.add_argument("--n", type=int, default=300, help="test problems per model")
    parser.add_argument("--calib-n", type=int, default=200, help="val problems for the calibration")
    parser.add_argument("--threshold", type=float, default=0.01)
    parser.add_argument("--quantile", type=float, default=0.9)
    parser.add_argument("--sweep", type=int, nargs="*", default=[5, 10, 15], help="other patiences to measure")
    parser.add_argument("--sweep-n", type=int, default=100, help="test problems for the other patiences")
    parser.add_argument(
        "--calibration-cache",
        default="runs/cold_stop_calibration.json",
        help="reused when it was computed with the same --calib-n, --threshold and --quantile",
    )
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    models = args.models
    if models is None:
        models = ["testbed"] + (["testbed-soft"] if (REPO / "softthink/testbed/checkpoint_soft").is_dir() else [])
    cache = Path(args.calibration_cache)
    key = {"n": args.calib_n, "threshold": args.threshold, "quantile": args.quantile}
    calibration = json.loads(cache.read_text()) if cache.is_file() else None
    if calibration is None or {k: calibration[k] for k in key} != key:
        base, base_tokenizer = softthink.load_model("testbed", device="cpu")
        calibration = calibrate(base, base_tokenizer, args.calib_n, args.threshold, args.quantile)
        cache.parent.mkdir(parents=True, exist_ok=True)
        cache.write_text(json.dumps(calibration, indent=1) + "\n")
    print(json.dumps(calibration, indent=1))
    preset = load_decode_config(PRESET)
    committed = {"cold_stop_entropy": preset.cold_stop_entropy, "cold_stop_patience": preset.cold_stop_patience}
    if committed != {"cold_stop_entropy": args.threshold, "cold_stop_patience": calibration["patience"]}:
        print(
            f"note: configs/decode/{PRESET}.yaml has {committed}; this calibration gives patience "
            f"{calibration['patience']} at {args.threshold} nats. Update the preset and rerun."
        )
        return 1
    results = {}
    for name in models:
        model, tokenizer = softthink.load_model(name, device="cpu")
        results[name] = evaluate(model, tokenizer, args.n, args.threshold, args.sweep, args.sweep_n)
        print(name, json.dumps(results[name], indent=1))
    command = (
        f"python experiments/cold_stop_testbed.py --models {' '.join(models)} --n {args.n} --calib-n {args.calib_n} "
        f"--threshold {args.threshold} --quantile {args.quantile} --sweep {' '.join(map(str, args.sweep))} "
        f"--sweep-n {args.sweep_n}"
    )
    write_report(calibration, results, committed, command)
    print(REPORT.read_text())
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
