"""testbed-soft: warm-start the testbed model with the soft-input curriculum, measure it against the base model.

Stages (each resumable or cheap to rerun; run from the repository root):

1. train    ``python -m softthink.testbed.train`` warm-started from the shipped testbed with the curriculum of
            `TRAIN_SETTINGS` into ``--out`` (resumable: rerun the same command after an interruption).
2. base     the base model's accuracy under the discrete / soft / gated presets on the first N test problems
            -> ``--out``/base_decoding.json (its greedy / pass@k / entropy figures are the shipped checkpoint's
            quality.json, measured on the same problems).
3. decode   the candidate under greedy and the same presets, same problems -> ``--out``/soft_decoding.json.
4. quality  ``python -m softthink.testbed.quality`` on the candidate (QUALITY.md, quality.json, quality.png in
            ``--out``: greedy, pass@1, pass@8, entropy profile, decode presets). Slow: its pass@8 sampling is
            2,400 ``model.generate`` completions (hours on a contended shared CPU).
5. report   the side-by-side table -> eval/results/testbed_soft.md (the candidate's pass@k only once the
            quality stage has run).

    python experiments/testbed_soft.py --stage train     # 60 steps, 3 CPU-minutes (36 min wall on a shared CPU)
    python experiments/testbed_soft.py --stage base --stage decode --stage report
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
BASE = REPO / "softthink" / "testbed" / "checkpoint"
REPORT = REPO / "eval" / "results" / "testbed_soft.md"
PRESETS = ("discrete", "soft", "gated")
N, K = 300, 8
TRAIN_SETTINGS = {
    "init_from": "testbed",
    "soft_fraction": 0.5,
    "soft_ramp_steps": 20,
    "soft_gold_weight": 0.5,
    "max_steps": 60,
    "batch_size": 32,
    "micro_batches": 1,
    "learning_rate": 3e-4,
    "min_learning_rate": 3e-5,
    "warmup_steps": 5,
    "log_interval": 5,
    "eval_interval": 30,
    "save_interval": 10,
    "num_threads": 1,
}


def train_command(out: Path) -> list[str]:
    sets = [x for key, value in TRAIN_SETTINGS.items() for x in ("--set", f"{key}={value}")]
    return [sys.executable, "-m", "softthink.testbed.train", "--out", str(out), "--minutes", "26", *sets]


def decoding(out: Path, model_name: str, presets: tuple[str, ...], file: str) -> None:
    """Accuracy of ``model_name`` under ``presets`` on the N test problems -> ``out/file``."""
    import torch

    import softthink
    from softthink.testbed.quality import decode_accuracy
    from softthink.testbed.tasks import load_problems

    torch.set_num_threads(1)
    model, tokenizer = softthink.load_model(model_name, device="cpu")
    problems = load_problems("test", N, seed=0)
    path = out / file
    results = json.loads(path.read_text()) if path.is_file() else {}
    for preset in presets:  # written after each preset, so an interrupted stage keeps what it measured
        if preset not in results:
            results[preset] = decode_accuracy(model, tokenizer, problems, preset, seed=0)
            path.write_text(json.dumps(results, indent=1) + "\n")
    print(json.dumps(results, indent=1))


def report(out: Path) -> None:
    base = json.loads((BASE / "quality.json").read_text())
    base_decode = json.loads((out / "base_decoding.json").read_text())
    soft_decode = json.loads((out / "soft_decoding.json").read_text())
    soft_quality = json.loads((out / "quality.json").read_text()) if (out / "quality.json").is_file() else None
    lines = [
        "# testbed-soft vs testbed: does a soft-input curriculum make concept tokens usable?",
        "",
        f"Both models on the first {N} test problems (`load_problems('test', {N}, seed=0)`). Decode presets "
        "(`configs/decode/`): one sample per problem, per-prompt seeds from 0, `softthink.testbed.quality."
        "decode_accuracy`. testbed's greedy / pass@k / entropy figures are its shipped `quality.json` (same "
        "problems; greedy by `model.generate`, which the `greedy` preset equals token for token).",
        "",
        "| | testbed | testbed-soft |",
        "|---|---|---|",
        f"| greedy accuracy | {base['overall']['greedy_accuracy']:.3f} | {soft_decode['greedy']['accuracy']:.3f} |",
    ]
    for preset in PRESETS:
        b, s = base_decode[preset], soft_decode[preset]
        lines.append(f"| {preset} accuracy | {b['accuracy']:.3f} | {s['accuracy']:.3f} |")
        lines.append(f"| {preset} tokens per completion | {b['mean_tokens']:.1f} | {s['mean_tokens']:.1f} |")
    for label, key in [("pass@1 (T=1)", "pass@1"), (f"pass@{K} (T=1)", f"pass@{K}")]:
        other = f"{soft_quality['overall'][key]:.3f}" if soft_quality else "not measured"
        lines.append(f"| {label} | {base['overall'][key]:.3f} | {other} |")
    lines += [
        "",
        "Training: `python experiments/testbed_soft.py --stage train` = `python -m softthink.testbed.train` with "
        + ", ".join(f"`{k}={v}`" for k, v in TRAIN_SETTINGS.items())
        + ".",
        "",
        "Reproduce: `python experiments/testbed_soft.py --stage train` then "
        "`python experiments/testbed_soft.py --stage base --stage decode --stage report`.",
        "",
    ]
    REPORT.write_text("\n".join(lines))
    print(REPORT.read_text())


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", default="runs/testbed_soft", help="training / scratch directory")
    parser.add_argument(
        "--stage", action="append", choices=["train", "base", "decode", "quality", "report"], required=True
    )
    args = parser.parse_args(argv)
    out = Path(args.out)
    for stage in args.stage:
        if stage == "train":
            subprocess.run(train_command(out), check=True)
        elif stage == "base":
            decoding(out, "testbed", PRESETS, "base_decoding.json")
        elif stage == "decode":
            decoding(out, str(out), ("soft", "discrete", "greedy", "gated"), "soft_decoding.json")
        elif stage == "quality":
            quality = [sys.executable, "-m", "softthink.testbed.quality", "--model", str(out)]
            subprocess.run([*quality, "--n", str(N), "--k", str(K), "--threads", "1"], check=True)
        else:
            report(out)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
