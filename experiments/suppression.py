r"""Suppression experiment: does masking reflection / forking tokens during decoding hurt accuracy, and masking an
equally large, frequency-matched random set of tokens not?

Conditions (all decoded with the same prompts, decode config and seeds; one greedy sample per problem, so the
comparison with "none" is paired problem by problem):
  none               no suppression (the baseline)
  reflection         the single-token spellings of softthink.analysis.reflection.DEFAULT_REFLECTION_WORDS
  random_reflection  as many random token ids, frequency-matched to the reflection ids on the training texts
  forking            the K token ids most often forking (top 20% entropy) in the model's teacher-forced entropies
                     on training texts; K = the reflection set's size (or --k when the tokenizer has no
                     reflection words)
  random_forking     as many random ids, frequency-matched to the forking ids
  forking_rate       the K ids with the largest share of forking occurrences (seen >= 20 times)
  random_forking_rate  as many random ids, frequency-matched to those
Special tokens and the think marker are never suppressed or drawn.

The committed report (eval/results/suppression.md) was made with:
  export OMP_NUM_THREADS=1
  python experiments/suppression.py run --model testbed --benchmark testbed --n 300 --k 1 \
      --out eval/results/suppression/testbed_k1.json          # also --k 3; and --k 1 --mode soft (testbed_k1_soft)
  python experiments/suppression.py run --model ~/.cache/softthink-models/SmolLM2-135M-Instruct.Q4_1.gguf \
      --benchmark gsm8k --data-dir ../shared/data --n 30 --n-train 50 --batch-size 30 --max-new-tokens 256 \
      --max-think-tokens 192 --think-end '\boxed{' --conditions none,reflection,random_reflection,forking \
      --out eval/results/suppression/smollm2_gsm8k.json
  python experiments/suppression.py report eval/results/suppression/*.json --notes experiments/suppression_notes.md \
      --out eval/results/suppression.md
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import torch

CONDITIONS = (
    "none",
    "reflection",
    "random_reflection",
    "forking",
    "random_forking",
    "forking_rate",
    "random_forking_rate",
)


def training_texts(benchmark: str, tokenizer, data_dir: str | None, n: int) -> tuple[list[str], list[str]]:
    """(prompts, completions) of training texts the forking statistics are taken on."""
    if benchmark == "testbed":
        from softthink.testbed.tasks import make_dataset
        from softthink.testbed.train import training_text

        pairs = [training_text(p, tokenizer) for p in make_dataset("train", n=n, seed=1)]
        return [p for p, _ in pairs], [c for _, c in pairs]
    rows = [json.loads(line) for line in (Path(data_dir) / "gsm8k_train.jsonl").read_text().splitlines()[:n]]
    import re

    prompts = [
        tokenizer.apply_chat_template(
            [{"role": "user", "content": r["question"]}], tokenize=False, add_generation_prompt=True
        )
        for r in rows
    ]
    completions = [re.sub(r"<<[^>]*>>", "", r["answer"]).replace("####", "The answer is") for r in rows]
    return prompts, completions


def token_sets(
    model, tokenizer, benchmark: str, data_dir: str | None, k: int | None, seed: int, n_train: int
) -> tuple[dict[str, list[int]], dict]:
    from softthink.analysis import token_entropies
    from softthink.analysis.intervention import (
        output_vocab_size,
        random_token_ids,
        token_counts,
        top_forking_token_ids,
    )
    from softthink.analysis.reflection import reflection_token_ids
    from softthink.errors import SoftthinkConfigError

    prompts, completions = training_texts(benchmark, tokenizer, data_dir, n_train)
    records = token_entropies(model, tokenizer, completions, prompts=prompts)
    counts = token_counts(records)
    special = set(tokenizer.all_special_ids)
    for marker in ("</think>", "<think>"):
        ids = tokenizer.encode(marker, add_special_tokens=False)
        if len(ids) == 1:
            special.add(ids[0])
    vocab = output_vocab_size(model)
    sets: dict[str, list[int]] = {}
    info: dict = {"n_train_texts": len(records), "n_train_tokens": sum(len(r) for r in records)}
    try:
        refl = reflection_token_ids(tokenizer)
        sets["reflection"] = sorted(t for t in refl.ids if t not in special)
        info["reflection_skipped_words"] = list(refl.skipped)
    except SoftthinkConfigError as err:
        info["reflection_unavailable"] = str(err)
    size = len(sets["reflection"]) if "reflection" in sets else k
    if size is None:
        raise SystemExit("this tokenizer has no reflection words; give --k for the forking set's size")
    sets["forking"] = top_forking_token_ids(records, size, exclude=special)
    sets["forking_rate"] = top_forking_token_ids(records, size, exclude=special, by="rate")
    banned = special | set(sets.get("reflection", [])) | set(sets["forking"]) | set(sets["forking_rate"])
    for name in ("reflection", "forking", "forking_rate"):
        if name in sets:
            sets[f"random_{name}"] = random_token_ids(
                sets[name], vocab, seed=seed, counts=counts, exclude=banned - set(sets[name])
            )
    info["train_counts"] = {name: [counts.get(t, 0) for t in ids] for name, ids in sets.items()}
    info["tokens"] = {name: tokenizer.convert_ids_to_tokens(ids) for name, ids in sets.items()}
    return sets, info


def run(args: argparse.Namespace) -> None:
    import softthink
    from softthink.analysis import from_generations
    from softthink.analysis.intervention import suppress_tokens
    from softthink.analysis.reflection import compare_reflection, reflection_token_ids
    from softthink.eval.datasets import get_benchmark, load_benchmark
    from softthink.eval.grading import grade
    from softthink.eval.prompts import PromptSpec, fill_template

    torch.set_num_threads(1)
    model, tokenizer = softthink.load_model(args.model, device="cpu", dtype=torch.float32)
    options = {"n": args.n, "seed": 0} if args.benchmark == "testbed" else {}
    problems = load_benchmark(args.benchmark, data_dir=args.data_dir, **options)[: args.n]
    spec = PromptSpec.from_dict(get_benchmark(args.benchmark).prompt)
    prompts = [[{"role": "user", "content": fill_template(spec.resolved_template, p.question)}] for p in problems]
    sets, info = token_sets(model, tokenizer, args.benchmark, args.data_dir, args.k, args.seed, args.n_train)
    decode = {
        "mode": args.mode,
        "max_new_tokens": args.max_new_tokens,
        "think_end": args.think_end,
        "max_think_tokens": args.max_think_tokens,
        "do_sample": False,
        "trace": True,
    }
    results = {
        "model": args.model,
        "benchmark": args.benchmark,
        "n_problems": len(problems),
        "decode": decode,
        "sets": sets,
        "info": info,
        "records": {},
        "seconds": {},
    }
    for condition in [c for c in args.conditions.split(",") if c == "none" or c in sets]:
        start, records, gens_all = time.time(), [], []
        for i in range(0, len(problems), args.batch_size):
            batch = prompts[i : i + args.batch_size]
            if condition == "none":
                gens = softthink.generate(model, batch, tokenizer=tokenizer, **decode)
            else:
                with suppress_tokens(model, sets[condition]):
                    gens = softthink.generate(model, batch, tokenizer=tokenizer, **decode)
            gens_all += gens
            for p, g in zip(problems[i : i + args.batch_size], gens):
                hit = sorted(set(g.token_ids) & set(sets.get(condition, [])))
                records.append(
                    {
                        "problem_id": p.id,
                        "correct": bool(grade(g.text, p.answer).correct),
                        "tokens": g.num_tokens,
                        "suppressed_emitted": hit,
                    }
                )
        results["records"][condition] = records
        results["seconds"][condition] = time.time() - start
        print(
            f"{condition}: {sum(r['correct'] for r in records)}/{len(records)} in {time.time() - start:.0f}s",
            flush=True,
        )
        if condition == "none":
            try:
                cmp = compare_reflection(from_generations(gens_all, tokenizer), reflection_token_ids(tokenizer))
                results["reflection_entropy"] = cmp.to_dict()
            except softthink.SoftthinkError as err:
                results["reflection_entropy"] = {"unavailable": str(err)}
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(results, indent=1))


def report(args: argparse.Namespace) -> None:
    import matplotlib.figure

    from softthink.eval.aggregate import paired_comparison, wilson_interval

    runs = [json.loads(Path(p).read_text()) for p in args.results]
    lines = [
        "# Suppression experiment: reflection / forking tokens vs random tokens",
        "",
        (
            "Generated by `experiments/suppression.py` (see its docstring for the commands). Each condition masks a "
            "set of token ids at the output head during decoding (`softthink.analysis.intervention."
            "suppress_tokens`); everything else is identical. One greedy sample per problem, so each condition is "
            "compared with `none` problem by problem: B - A is the accuracy difference in percentage points with a "
            "paired bootstrap 95% CI over problems (10,000 resamples, seed 0) and McNemar's exact p-value. "
            "Accuracy CIs are Wilson 95% intervals."
        ),
        "",
    ]
    if args.notes:
        lines += [Path(args.notes).read_text().strip(), ""]
    fig = matplotlib.figure.Figure(figsize=(5 * len(runs), 3.6))
    for j, res in enumerate(runs):
        recs = res["records"]
        k = len(res["sets"].get("forking", []))
        lines += [
            (
                f"## {Path(res['model']).name} on {res['benchmark']}: {res['decode']['mode']} decoding, K = {k} "
                f"({res['n_problems']} problems)"
            ),
            "",
            (
                f"Decode: `{json.dumps(res['decode'])}`. Forking statistics from teacher-forced entropies on "
                f"{res['info']['n_train_texts']} training texts ({res['info']['n_train_tokens']} tokens)."
            ),
            "",
        ]
        if "reflection_unavailable" in res["info"]:
            lines += [f"No reflection condition: {res['info']['reflection_unavailable']}", ""]
        lines += [
            (
                "| condition | ids | accuracy % [95% CI] | B - A vs none (pp) [95% CI] | bootstrap p | "
                "McNemar none only / cond only, p | mean tokens | suppressed ids emitted | time s |"
            ),
            "|---|---|---|---|---|---|---|---|---|",
        ]
        names, accs, errs = [], [], []
        for cond, rows in recs.items():
            n, c = len(rows), sum(r["correct"] for r in rows)
            lo, hi = wilson_interval(c, n)
            cells = ["–"] * 3
            if cond != "none":
                cmp = paired_comparison(recs["none"], rows)
                cells = [
                    f"{100 * cmp['diff']:+.1f} [{100 * cmp['diff_ci_low']:+.1f}, {100 * cmp['diff_ci_high']:+.1f}]",
                    f"{cmp['bootstrap_p']:.3f}",
                    f"{cmp['a_only']} / {cmp['b_only']}, {cmp['mcnemar_p']:.3f}",
                ]
            emitted = sum(bool(r["suppressed_emitted"]) for r in rows)
            lines.append(
                f"| {cond} | {len(res['sets'].get(cond, []))} | {100 * c / n:.1f} [{100 * lo:.1f}, "
                f"{100 * hi:.1f}] | {' | '.join(cells)} | {sum(r['tokens'] for r in rows) / n:.1f} | "
                f"{emitted} | {res['seconds'][cond]:.0f} |"
            )
            names.append(cond)
            accs.append(100 * c / n)
            errs.append([100 * (c / n - lo), 100 * (hi - c / n)])
        lines += ["", "Suppressed tokens (training-text counts):", ""]
        for cond, toks in res["info"]["tokens"].items():
            counts = res["info"]["train_counts"][cond]
            lines.append(f"- {cond}: " + ", ".join(f"`{t!r}` ({k})" for t, k in zip(toks, counts)))
        refl = res.get("reflection_entropy", {})
        if "groups" in refl:
            lines += [
                "",
                (
                    "Entropy (nats) of the baseline's own generated tokens, from its traces "
                    "(`softthink.analysis.reflection.compare_reflection`, forking = top 20% of the pooled tokens; "
                    f"{100 * refl['reflection_forking_share']:.0f}% of reflection tokens are forking):"
                ),
                "",
                "| group | n | mean [95% CI] | median |",
                "|---|---|---|---|",
            ]
            for g, s in refl["groups"].items():
                lines.append(
                    f"| {g} | {s['n']} | {s['mean']:.3f} [{s['ci_low']:.3f}, {s['ci_high']:.3f}] | {s['median']:.3f} |"
                )
        elif refl:
            lines += ["", f"Reflection-token entropy: {refl.get('unavailable')}"]
        lines.append("")
        ax = fig.add_subplot(1, len(runs), j + 1)
        ax.bar(range(len(names)), accs, yerr=list(zip(*errs)), capsize=4, color="#4878a8")
        ax.set_xticks(range(len(names)), names, rotation=30, ha="right", fontsize=8)
        ax.set_ylabel("accuracy % (Wilson 95% CI)")
        ax.set_title(f"{Path(res['model']).name} / {res['benchmark']}: {res['decode']['mode']}, K = {k}", fontsize=9)
    fig.tight_layout()
    plot = Path(args.out).with_suffix(".png")
    fig.savefig(plot, dpi=110)
    lines += [f"![accuracy per condition]({plot.name})", ""]
    Path(args.out).write_text("\n".join(lines) + "\n")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    r = sub.add_parser("run", help="decode every condition and write a results JSON")
    r.add_argument("--model", default="testbed")
    r.add_argument("--benchmark", default="testbed", choices=["testbed", "gsm8k"])
    r.add_argument("--data-dir", default=None)
    r.add_argument("--n", type=int, default=300, help="problems (testbed: held-out test split)")
    r.add_argument("--n-train", type=int, default=200, help="training texts for the forking statistics")
    r.add_argument("--k", type=int, default=None, help="set size when the tokenizer has no reflection words")
    r.add_argument("--conditions", default=",".join(CONDITIONS))
    r.add_argument("--mode", default="discrete")
    r.add_argument("--max-new-tokens", type=int, default=128)
    r.add_argument("--max-think-tokens", type=int, default=None)
    r.add_argument("--think-end", default="auto")
    r.add_argument("--batch-size", type=int, default=50)
    r.add_argument("--seed", type=int, default=0, help="seed of the random control sets")
    r.add_argument("--out", required=True)
    rep = sub.add_parser("report", help="write the markdown report and plot from results JSONs")
    rep.add_argument("results", nargs="+")
    rep.add_argument("--out", required=True)
    rep.add_argument("--notes", default=None, help="markdown file with the findings, inserted after the intro")
    args = parser.parse_args(argv)
    (run if args.command == "run" else report)(args)
    return 0


if __name__ == "__main__":
    sys.exit(main())
