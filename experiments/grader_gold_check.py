"""Validate the grader on gold data: reference solutions graded against their own gold answers.

Targets: GSM8K (test and train) 100%, MATH-500 >= 99%; AIME 2024 (written solutions, several without a box) is
reported without a target. As a control that the grader is not lenient, every
reference solution is also graded against the gold answer of the next problem (a different answer): that must
almost never count as correct.

    python experiments/grader_gold_check.py [--data-dir DIR] [--out eval/results/grader_gold.md]
"""

from __future__ import annotations

import argparse
import time
from collections import Counter

from tqdm import tqdm

from softthink.eval import grade, load_benchmark
from softthink.eval.grading import normalize_answer

# (benchmark, split, field of the reference solution, target accuracy; None = reported only)
CHECKS = [
    ("gsm8k", "test", "answer", 1.0),
    ("gsm8k", "train", "answer", 1.0),
    ("math500", None, "solution", 0.99),
    ("aime24", None, "solution", None),
]


def check(name: str, split: str | None, field: str, data_dir: str | None) -> dict:
    problems = load_benchmark(name, data_dir=data_dir, split=split)
    start = time.perf_counter()
    results = [grade(p.meta[field], p.answer) for p in tqdm(problems, desc=f"{name} {split or ''}".strip())]
    seconds = time.perf_counter() - start
    failures = [(p, r) for p, r in zip(problems, results) if not r.correct]
    # Control: the solution of problem i against the (different) gold answer of problem i+1.
    pairs = [
        (a, b)
        for a, b in zip(problems, problems[1:] + problems[:1])
        if normalize_answer(a.answer) != normalize_answer(b.answer)
    ]
    false_pos = sum(grade(a.meta[field], b.answer).correct for a, b in pairs)
    return {
        "name": f"{name}" + (f" ({split})" if split else ""),
        "n": len(problems),
        "correct": len(problems) - len(failures),
        "rules": Counter(r.rule for r in results),
        "methods": Counter(r.method for r in results),
        "timeouts": sum(r.timed_out for r in results),
        "seconds": seconds,
        "failures": failures,
        "control_n": len(pairs),
        "control_fp": false_pos,
    }


def render(rows: list[dict], targets: list[float]) -> str:
    lines = [
        "# Grader on gold data",
        "",
        "Reference solutions graded against their own gold answers with `softthink.eval.grade` (default rules: "
        "last `\\boxed{}`, `####`, 'the answer is', last number; math-verify equivalence; 5 s per-item timeout). "
        "Control: each solution graded against the next problem's (different) gold answer. Compared by: "
        "`exact` = equal strings after normalisation, `math_verify` = math-verify equivalence.",
        "",
        "| benchmark | problems | correct | accuracy | target | extraction rules | compared by | timeouts | "
        "control false positives | seconds |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for row, target in zip(rows, targets):
        acc = row["correct"] / row["n"]
        goal = "–" if target is None else f">= {100 * target:.0f}% {'(met)' if acc >= target else '(NOT met)'}"
        lines.append(
            f"| {row['name']} | {row['n']} | {row['correct']} | {100 * acc:.2f}% | {goal} "
            f"| {dict(row['rules'])} | {dict(row['methods'])} | "
            f"{row['timeouts']} | {row['control_fp']} / {row['control_n']} | {row['seconds']:.1f} |"
        )
    for row in rows:
        if row["failures"]:
            lines += ["", f"Not accepted in {row['name']}:", ""]
            lines += [
                f"- `{p.id}`: extracted `{r.extracted}` ({r.rule}), gold `{p.answer}`" for p, r in row["failures"]
            ]
    lines += ["", "Reproduce: `python experiments/grader_gold_check.py --out eval/results/grader_gold.md`", ""]
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--data-dir", help="benchmark JSONL folder (default: $SOFTTHINK_DATA_DIR, else the Hugging Face Hub)"
    )
    parser.add_argument("--out", help="also write the markdown report to this file")
    args = parser.parse_args()
    rows = [check(name, split, field, args.data_dir) for name, split, field, _ in CHECKS]
    text = render(rows, [target for *_, target in CHECKS])
    print(text)
    if args.out:
        with open(args.out, "w", encoding="utf-8") as handle:
            handle.write(text)
    return 0 if all(t is None or r["correct"] / r["n"] >= t for r, (*_, t) in zip(rows, CHECKS)) else 1


if __name__ == "__main__":
    raise SystemExit(main())
