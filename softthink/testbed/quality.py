"""Measure the testbed model: accuracy, pass@k, and the forking-token shape of its entropy.

``python -m softthink.testbed.quality [--model DIR] [--n 300] [--k 8]`` writes ``QUALITY.md``, ``quality.png``
and ``quality.json`` into the model directory (default: the shipped checkpoint). It measures

- greedy accuracy on the held-out test split;
- pass@1 and pass@k with sampling at temperature 1 (the model's own distribution; k samples per problem);
- the entropy profile over the sampled completions (teacher-forced, temperature 1, nats): the fraction of tokens
  below 0.01 nats, the share of the entropy mass held by the top 20% of tokens, and which roles
  (``tasks.token_roles``: decision, copied, computed, structure) those top-20% positions play;
- accuracy under softthink decoding presets (``--decode``, default discrete, soft and gated: one sample per
  problem, seed 0, on the same problems), with tokens per completion and the share of soft steps.

Grading is exact: the last ``\\boxed{...}`` must equal the gold integer.
"""

from __future__ import annotations

import argparse
import json
import re
from collections import Counter
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch
from matplotlib.figure import Figure
from tqdm import tqdm
from transformers import AutoModelForCausalLM, AutoTokenizer, PreTrainedModel, PreTrainedTokenizerBase

from softthink.analysis.entropy import entropy_from_logits
from softthink.decoding.api import generate
from softthink.figures import save_figure
from softthink.testbed.default import CHECKPOINT_DIR
from softthink.testbed.tasks import ROLES, load_problems, token_roles

MAX_NEW_TOKENS = 256  # the longest training solution at the "hard" difficulty is ~230 tokens
LOW_ENTROPY = 0.01  # nats: "near zero"
TOP_FRACTION = 0.2


def extract_boxed(text: str) -> str | None:
    """The content of the last ``\\boxed{...}`` in ``text`` (no nested braces in testbed answers)."""
    found = re.findall(r"\\boxed\{([^{}]*)\}", text)
    return found[-1].strip() if found else None


def is_correct(completion: str, answer: str) -> bool:
    return extract_boxed(completion) == answer


def _prompts(tokenizer: PreTrainedTokenizerBase, problems: list[dict]) -> list[list[int]]:
    return [
        tokenizer.apply_chat_template(
            [{"role": "user", "content": p["question"]}], tokenize=True, add_generation_prompt=True, return_dict=False
        )
        for p in problems
    ]


@torch.no_grad()
def sample_completions(
    model: PreTrainedModel,
    tokenizer: PreTrainedTokenizerBase,
    problems: list[dict],
    *,
    num_samples: int = 1,
    do_sample: bool = False,
    temperature: float = 1.0,
    seed: int = 0,
    batch_size: int = 64,
    max_new_tokens: int = MAX_NEW_TOKENS,
    progress: bool = False,
) -> list[list[list[int]]]:
    """Completion token ids (up to and including EOS) per problem, ``num_samples`` per problem.

    Uses ``model.generate`` with left padding; sampling is pure (no top-k/top-p) at ``temperature``.
    """
    prompts = _prompts(tokenizer, problems)
    pad, eos = tokenizer.pad_token_id, tokenizer.eos_token_id
    torch.manual_seed(seed)
    out: list[list[list[int]]] = []
    rows_per_batch = max(1, batch_size // num_samples)
    for start in tqdm(range(0, len(prompts), rows_per_batch), disable=not progress, desc="generate"):
        chunk = prompts[start : start + rows_per_batch]
        width = max(len(p) for p in chunk)
        ids = torch.tensor([[pad] * (width - len(p)) + p for p in chunk])
        mask = torch.tensor([[0] * (width - len(p)) + [1] * len(p) for p in chunk])
        kwargs = (
            dict(do_sample=True, temperature=temperature, top_k=0, top_p=1.0) if do_sample else dict(do_sample=False)
        )
        gen = model.generate(
            input_ids=ids,
            attention_mask=mask,
            max_new_tokens=max_new_tokens,
            num_return_sequences=num_samples,
            pad_token_id=pad,
            eos_token_id=eos,
            **kwargs,
        )
        completions = []
        for row in gen[:, width:].tolist():
            completions.append(row[: row.index(eos) + 1] if eos in row else row)
        out += [completions[i : i + num_samples] for i in range(0, len(completions), num_samples)]
    return out


def decode_problems(
    model: PreTrainedModel,
    tokenizer: PreTrainedTokenizerBase,
    problems: list[dict],
    preset: str,
    *,
    seed: int = 0,
    batch_size: int = 64,
    max_new_tokens: int = MAX_NEW_TOKENS,
    **overrides,
) -> list:
    """One ``softthink.generate`` `Generation` per problem under decode preset ``preset`` (plus ``overrides``), the
    bare question as the chat prompt, per-prompt seeds ``seed + i`` (so a result never depends on the batching)."""
    outs: list = []
    for start in range(0, len(problems), batch_size):
        chunk = problems[start : start + batch_size]
        outs += generate(
            model,
            [p["question"] for p in chunk],
            tokenizer=tokenizer,
            config=preset,
            max_new_tokens=max_new_tokens,
            seeds=[seed + start + i for i in range(len(chunk))],
            **overrides,
        )
    return outs


def decode_accuracy(
    model: PreTrainedModel, tokenizer: PreTrainedTokenizerBase, problems: list[dict], preset: str, **options
) -> dict:
    """Accuracy under decode preset ``preset`` (`decode_problems` with ``options``: one sample per problem), with
    the mean number of generated tokens and the share of soft steps."""
    outs = decode_problems(model, tokenizer, problems, preset, trace=False, **options)
    tokens = sum(g.num_tokens for g in outs)
    return {
        "accuracy": sum(is_correct(g.text, p["answer"]) for g, p in zip(outs, problems)) / len(problems),
        "mean_tokens": tokens / len(problems),
        "soft_share": sum(g.soft_steps for g in outs) / tokens,
    }


def greedy_accuracy(model: PreTrainedModel, tokenizer: PreTrainedTokenizerBase, problems: list[dict]) -> float:
    """Fraction of ``problems`` whose greedy completion boxes the gold answer."""
    completions = sample_completions(model, tokenizer, problems)
    return sum(is_correct(tokenizer.decode(c[0]), p["answer"]) for c, p in zip(completions, problems)) / len(problems)


@torch.no_grad()
def completion_entropies(
    model: PreTrainedModel, tokenizer: PreTrainedTokenizerBase, problem: dict, completions: list[list[int]]
) -> list[list[float]]:
    """Teacher-forced next-token entropy (temperature 1, nats) at every position of each completion."""
    prompt = _prompts(tokenizer, [problem])[0]
    width = max(len(c) for c in completions)
    ids = torch.tensor([prompt + c + [tokenizer.pad_token_id] * (width - len(c)) for c in completions])
    mask = torch.tensor([[1] * (len(prompt) + len(c)) + [0] * (width - len(c)) for c in completions])
    logits = model(input_ids=ids, attention_mask=mask).logits[:, len(prompt) - 1 : -1]
    ent = entropy_from_logits(logits)
    return [ent[i, : len(c)].tolist() for i, c in enumerate(completions)]


def entropy_profile(entropies: list[float], roles: list[str]) -> dict:
    """Forking-shape statistics of a pool of token entropies with their roles.

    ``role_share_top20`` / ``role_share_top5``: which roles the 20% / 5% highest-entropy tokens play;
    ``entropy_mass_by_role``: the share of the total entropy that sits at each role's positions.
    """
    ent = torch.tensor(entropies)
    order = torch.argsort(ent, descending=True).tolist()
    top20 = order[: max(1, round(TOP_FRACTION * len(ent)))]
    top5 = order[: max(1, round(0.05 * len(ent)))]
    all_roles = Counter(roles)

    def share(idx):
        counts = Counter(roles[i] for i in idx)
        return {r: counts[r] / len(idx) for r in ROLES}

    by_role = {r: [i for i, x in enumerate(roles) if x == r] for r in ROLES}
    return {
        "num_tokens": len(ent),
        "mean_entropy": float(ent.mean()),
        "frac_below_0.01": float((ent < LOW_ENTROPY).float().mean()),
        "top20_entropy_share": float(ent[top20].sum() / ent.sum()),
        "top20_threshold": float(ent[top20].min()),
        "top5_threshold": float(ent[top5].min()),
        "role_share_all": {r: all_roles[r] / len(roles) for r in ROLES},
        "role_share_top20": share(top20),
        "role_share_top5": share(top5),
        "entropy_mass_by_role": {r: float(ent[idx].sum() / ent.sum()) if idx else 0.0 for r, idx in by_role.items()},
        "mean_entropy_by_role": {r: float(ent[idx].mean()) for r, idx in by_role.items() if idx},
    }


def measure(
    model_dir: str | Path,
    *,
    n: int = 300,
    k: int = 8,
    seed: int = 0,
    decode: Sequence[str] = (),
    progress: bool = True,
) -> dict:
    """All quality figures of the model in ``model_dir`` on the first ``n`` test problems (and its accuracy under
    each decode preset in ``decode``)."""
    model = AutoModelForCausalLM.from_pretrained(model_dir).eval()
    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    problems = load_problems("test", n, seed=seed)
    greedy = sample_completions(model, tokenizer, problems, progress=progress)
    samples = sample_completions(
        model, tokenizer, problems, num_samples=k, do_sample=True, seed=seed, progress=progress
    )
    per_problem, pool_ent, pool_roles, examples = [], [], [], []
    for p, g, s in tqdm(list(zip(problems, greedy, samples)), disable=not progress, desc="entropy"):
        ok = [is_correct(tokenizer.decode(c), p["answer"]) for c in s]
        per_problem.append(
            {
                "id": p["id"],
                "task": p["task"],
                "greedy": is_correct(tokenizer.decode(g[0]), p["answer"]),
                "correct_samples": sum(ok),
            }
        )
        for c, e in zip(s, completion_entropies(model, tokenizer, p, s)):
            tokens = tokenizer.convert_ids_to_tokens(c)
            roles = token_roles(p, tokens)
            pool_ent += e
            pool_roles += roles
            if len(per_problem) <= 40 and len(tokens) <= 90:  # example candidates: early, short enough to read
                examples.append(
                    {"question": p["question"], "task": p["task"], "tokens": tokens, "entropy": e, "roles": roles}
                )

    # show the two samples of each task with the most decisions (the search that tried most values)
    examples = [
        ex
        for task in ("search", "sum")
        for ex in sorted((x for x in examples if x["task"] == task), key=lambda x: -x["roles"].count("decision"))[:2]
    ]

    def rates(rows):
        return {
            "n": len(rows),
            "greedy_accuracy": sum(r["greedy"] for r in rows) / len(rows),
            "pass@1": sum(r["correct_samples"] for r in rows) / (k * len(rows)),
            f"pass@{k}": sum(r["correct_samples"] > 0 for r in rows) / len(rows),
        }

    return {
        "model_dir": str(model_dir),
        "n": n,
        "k": k,
        "seed": seed,
        "temperature": 1.0,
        "overall": rates(per_problem),
        "by_task": {
            t: rates([r for r in per_problem if r["task"] == t]) for t in sorted({r["task"] for r in per_problem})
        },
        "entropy": entropy_profile(pool_ent, pool_roles),
        "examples": examples,
        "num_parameters": sum(p.numel() for p in model.parameters()),
        "decoding": {
            preset: decode_accuracy(model, tokenizer, problems, preset, seed=seed)
            for preset in tqdm(decode, disable=not progress, desc="decode presets")
        },
        "_pool_entropy": pool_ent,
    }


# ------------------------------------------------------------------------------------------------ report
ROLE_COLORS = {
    "decision": "tab:red",
    "copied": "tab:blue",
    "computed": "tab:green",
    "structure": "tab:gray",
    "other": "black",
}


def plot_quality(results: dict) -> Figure:
    """Entropy histogram, role shares (all vs top-20% tokens) and one example trace coloured by role (a figure
    with no pyplot state; save it with ``fig.savefig(path)``)."""
    e = results["entropy"]
    fig = Figure(figsize=(13, 7.5))
    ax1, ax2 = fig.add_subplot(2, 2, 1), fig.add_subplot(2, 2, 2)
    ax3 = fig.add_subplot(2, 1, 2)
    ent = np.clip(np.array(results["_pool_entropy"]), 1e-6, None)
    ax1.hist(ent, bins=np.logspace(-6, np.log10(max(ent.max(), 1.0)), 60), color="tab:purple")
    ax1.set_xscale("log")
    ax1.axvline(LOW_ENTROPY, color="k", ls="--", label=f"{LOW_ENTROPY} nats")
    ax1.axvline(e["top20_threshold"], color="tab:red", ls="--", label="top-20% threshold")
    ax1.set(
        xlabel="token entropy (nats, log scale)",
        ylabel="tokens",
        title=f"{100 * e['frac_below_0.01']:.0f}% of tokens < 0.01 nats; "
        f"top 20% hold {100 * e['top20_entropy_share']:.0f}% of the entropy",
    )
    ax1.legend(fontsize=8)
    roles = [r for r in ROLES if e["role_share_all"][r] > 0]
    x = np.arange(len(roles))
    bars = [
        ("all tokens", "role_share_all", "lightgray"),
        ("top-20% entropy tokens", "role_share_top20", "tab:orange"),
        ("top-5% entropy tokens", "role_share_top5", "tab:red"),
        ("share of entropy mass", "entropy_mass_by_role", "tab:purple"),
    ]
    for i, (label, key, color) in enumerate(bars):
        ax2.bar(x + (i - 1.5) * 0.2, [e[key][r] for r in roles], 0.2, label=label, color=color)
    ax2.set_xticks(x, roles)
    ax2.set(ylabel="share", title="what the high-entropy positions are")
    ax2.legend(fontsize=8)
    ex = results["examples"][0]
    ax3.bar(range(len(ex["entropy"])), ex["entropy"], color=[ROLE_COLORS[r] for r in ex["roles"]])
    ax3.set_xticks(range(len(ex["tokens"])), [t.replace("\n", "\\n") for t in ex["tokens"]], fontsize=6, rotation=90)
    ax3.set(
        ylabel="entropy (nats)",
        title=f"one sampled completion for: {ex['question']}   "
        f"(colour = role: red decision, blue copied, green computed)",
    )
    fig.tight_layout()
    return fig


def _marked(example: dict, threshold: float) -> str:
    """The completion text with tokens above ``threshold`` nats written as ``[token|H]``."""
    parts = []
    for tok, h in zip(example["tokens"], example["entropy"]):
        parts.append(f"[{tok}|{h:.2f}]" if h >= threshold else tok)
    return "".join(parts)


def write_report(results: dict, out_dir: str | Path, command: str) -> Path:
    """Write ``QUALITY.md``, ``quality.png`` and ``quality.json`` into ``out_dir``; returns the markdown path."""
    out_dir = Path(out_dir)
    k, o, e = results["k"], results["overall"], results["entropy"]
    save_figure(plot_quality(results), out_dir / "quality.png")
    (out_dir / "quality.json").write_text(
        json.dumps({key: v for key, v in results.items() if not key.startswith("_")}, indent=1) + "\n"
    )
    top5 = e["role_share_top5"]
    checks = [
        ("greedy accuracy in [0.30, 0.80]", 0.30 <= o["greedy_accuracy"] <= 0.80),
        (f"pass@{k} clearly above pass@1 (by >= 0.15)", o[f"pass@{k}"] - o["pass@1"] >= 0.15),
        ("most tokens near zero entropy (> 50% below 0.01 nats)", e["frac_below_0.01"] > 0.5),
        ("top 20% of tokens hold most of the entropy (> 50%)", e["top20_entropy_share"] > 0.5),
        (
            "the highest-entropy (top-5%) positions are mostly decisions, not copied digits",
            top5["decision"] > 0.5 and top5["decision"] > 5 * top5["copied"],
        ),
    ]
    lines = [
        "# Testbed model quality",
        "",
        f"Measured by `{command}` on the first {results['n']} problems of the test split "
        f"(`softthink.testbed.tasks.load_problems('test')`), {results['num_parameters'] / 1e6:.2f}M parameters. "
        f"Sampling: temperature {results['temperature']}, no top-k/top-p, {k} samples per problem. "
        "Entropy: teacher-forced next-token entropy (nats, temperature 1) over every position of the sampled "
        "completions. Grading: the last `\\boxed{}` equals the gold integer.",
        "",
        "| | n | greedy accuracy | pass@1 | pass@" + str(k) + " |",
        "|---|---|---|---|---|",
    ]
    for name, r in [("all", o)] + sorted(results["by_task"].items()):
        lines.append(f"| {name} | {r['n']} | {r['greedy_accuracy']:.3f} | {r['pass@1']:.3f} | {r[f'pass@{k}']:.3f} |")
    lines += [
        "",
        "## Entropy profile",
        "",
        f"- tokens measured: {e['num_tokens']}; mean entropy {e['mean_entropy']:.3f} nats",
        f"- tokens below {LOW_ENTROPY} nats: {100 * e['frac_below_0.01']:.1f}%",
        f"- share of the entropy mass in the top 20% of tokens: {100 * e['top20_entropy_share']:.1f}% "
        f"(top-20% threshold {e['top20_threshold']:.3f} nats)",
        "",
        "| role | share of all tokens | of top-20% tokens | of top-5% tokens | share of entropy mass | "
        "mean entropy (nats) |",
        "|---|---|---|---|---|---|",
    ]
    for r in ROLES:
        if e["role_share_all"][r]:
            lines.append(
                f"| {r} | {100 * e['role_share_all'][r]:.1f}% | {100 * e['role_share_top20'][r]:.1f}% | "
                f"{100 * top5[r]:.1f}% | {100 * e['entropy_mass_by_role'][r]:.1f}% | "
                f"{e['mean_entropy_by_role'][r]:.3f} |"
            )
    lines += [
        "",
        "Roles (`softthink.testbed.tasks.token_roles`): *decision* = a digit where the task allowed more "
        "than one valid next token (which value to guess, which number to add next); *copied* = a digit "
        "repeating a number already in the context; *computed* = an arithmetic result or low/high/yes "
        "verdict; *structure* = operators, separators and markers.",
        "",
        f"## Examples (sampled; tokens in the top 5% of entropy, >= {e['top5_threshold']:.2f} nats, written "
        "as `[token|H]`)",
        "",
    ]
    for ex in results["examples"]:
        lines += [f"`{ex['question']}`", "", "```", _marked(ex, e["top5_threshold"]), "```", ""]
    if results.get("decoding"):
        lines += [
            "## Accuracy under softthink decoding",
            "",
            f"`softthink.generate` with each decode preset (`configs/decode/`) on the same {results['n']} problems, "
            f"one sample per problem (per-prompt seeds from {results['seed']}), at most {MAX_NEW_TOKENS} new tokens.",
            "",
            "| preset | accuracy | tokens per completion | soft steps |",
            "|---|---|---|---|",
        ]
        for preset, d in results["decoding"].items():
            lines.append(f"| {preset} | {d['accuracy']:.3f} | {d['mean_tokens']:.1f} | {100 * d['soft_share']:.1f}% |")
        lines.append("")
    log_path = out_dir / "training_log.json"
    if log_path.is_file():
        log = json.loads(log_path.read_text())
        steps = log["records"][-1]["step"] if log["records"] else 0
        lines += [
            "## Training",
            "",
            f"`python -m softthink.testbed.train` with `train_config.json`: {steps} steps, "
            f"{log.get('cpu_s', float('nan')) / 60:.1f} CPU-minutes ({log['elapsed_s'] / 60:.1f} min wall clock "
            f"on the machine it ran on), final validation loss {log['evals'][-1]['val_loss']:.3f}.",
            "",
        ]
    lines += ["## Requirements", ""] + [f"- [{'x' if ok else ' '}] {name}" for name, ok in checks]
    lines += ["", "![quality](quality.png)", ""]
    path = out_dir / "QUALITY.md"
    path.write_text("\n".join(lines))
    return path


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", default=str(CHECKPOINT_DIR), help="model directory (default: %(default)s)")
    parser.add_argument("--n", type=int, default=300, help="test problems (default: %(default)s)")
    parser.add_argument("--k", type=int, default=8, help="samples per problem for pass@k (default: %(default)s)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=2, help="torch CPU threads")
    parser.add_argument(
        "--decode",
        nargs="*",
        default=["discrete", "soft", "gated"],
        help="decode presets to measure accuracy under (default: %(default)s; none: skip)",
    )
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    results = measure(args.model, n=args.n, k=args.k, seed=args.seed, decode=args.decode)
    command = (
        f"python -m softthink.testbed.quality --model {args.model} --n {args.n} --k {args.k} --seed {args.seed} "
        f"--decode {' '.join(args.decode)}"
    )
    path = write_report(results, args.model, command)
    o = results["overall"]
    print(json.dumps({"overall": o, "entropy": {key: v for key, v in results["entropy"].items()}}, indent=1))
    print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
