"""Continuous batching vs fixed chunks: samples/s on a long-tail workload, at the same slot count.

`fixed chunks` is what callers do without ``max_batch_size``: ``generate`` on consecutive chunks of K prompts, each
chunk running until its slowest row ends (its finished rows leave, so the batch shrinks). `continuous` is one
``generate(prompts, max_batch_size=K)``: a finished row's slot takes the next queued prompt at once. Both use
per-sample seeds, so they produce the same samples and differ only in scheduling (up to float32 rounding, which
depends on a batch's shape and can flip a near-tie: the table counts the identical samples; every repeat of a
method must reproduce its first run exactly).

Workloads (each sample is one prompt with its own seed, sampled, ending at EOS or max_new_tokens):
  testbed   the embedded testbed model on its test problems x --samples; traces differ in length by the problem.
  smollm2   SmolLM2-135M-Instruct (GGUF from --smollm2 or $SOFTTHINK_SMOLLM2) on prompts asking for a one-word
            answer or a long explanation, x --samples.

Prints each workload's samples/s per method (median of --repeats runs, methods interleaved so machine noise hits
both alike), the median of the per-repeat ratios continuous / fixed, the share of slot-steps that did work, and
each method's model calls: decode steps (one-token forwards) and prefill forwards. The ratio of decode steps is
the gain where a step costs the same at any batch size (a GPU at these sizes); on a CPU a step costs more with more
rows, so the time ratio is lower.

  python benchmarks/continuous_batching.py                       # testbed, soft and discrete, K=8
  python benchmarks/continuous_batching.py --smollm2 PATH.gguf   # plus SmolLM2
"""

from __future__ import annotations

import argparse
import os
import statistics
import time

import torch

import softthink
from softthink.testbed.tasks import load_problems

SMOLLM2_ENV = "SOFTTHINK_SMOLLM2"
SMOLLM2_PROMPTS = [  # answers from one word to a few paragraphs
    "What is the capital of France? Answer with one word.",
    "Is 7 a prime number? Answer yes or no.",
    "Explain in detail how a steam engine works, step by step.",
    "Name a colour. One word only.",
    "Write a long story about a dragon who learns to bake bread.",
    "What is 2 + 2? Reply with the number only.",
    "Describe the water cycle thoroughly, covering evaporation, condensation and precipitation.",
    "Say hello.",
]
MODES = {
    "discrete": dict(mode="discrete", do_sample=True, temperature=0.8, top_k=30),
    "soft": dict(mode="soft", max_topk=10, top_p=0.95, top_k=30, temperature=0.6, noise="gumbel", gumbel_tau=0.5),
}


def fixed_chunks(model, tokenizer, prompts, seeds, slots, settings):
    out = []
    for lo in range(0, len(prompts), slots):
        out += softthink.generate(
            model, prompts[lo : lo + slots], tokenizer=tokenizer, seeds=seeds[lo : lo + slots], **settings
        )
    return out


def continuous(model, tokenizer, prompts, seeds, slots, settings):
    return softthink.generate(model, prompts, tokenizer=tokenizer, seeds=seeds, max_batch_size=slots, **settings)


METHODS = {"fixed chunks": fixed_chunks, "continuous": continuous}


def workload(name: str, args) -> tuple[object, object, list[str], str]:
    """(model, tokenizer, prompts, think marker) of one workload; every prompt repeated --samples times."""
    if name == "testbed":
        model, tokenizer = softthink.load_model("testbed", device="cpu")
        prompts = [p["question"] for p in load_problems("test", args.problems)]
        marker = "auto"
    else:
        model, tokenizer = softthink.load_model(args.smollm2, device="cpu", dtype=torch.float32)
        prompts = SMOLLM2_PROMPTS
        marker = "</think>"
    return model, tokenizer, [p for p in prompts for _ in range(args.samples)], marker


class ForwardCounter:
    """Counts a model's forwards while active: decode steps (one new token per row) and prefills, with rows."""

    def __init__(self, model):
        self.model = model
        self.steps = self.step_rows = self.prefills = 0

    def _count(self, module, args, kwargs) -> None:
        inputs = kwargs.get("input_ids")
        if inputs is None:
            inputs = kwargs.get("inputs_embeds")
        if inputs is None:
            inputs = args[0]
        rows, length = inputs.shape[0], inputs.shape[1]
        if length == 1:
            self.steps += 1
            self.step_rows += rows
        else:
            self.prefills += 1

    def __enter__(self) -> ForwardCounter:
        self.handle = self.model.register_forward_pre_hook(self._count, with_kwargs=True)
        return self

    def __exit__(self, *exc) -> None:
        self.handle.remove()


def run(model, tokenizer, prompts, marker, mode: str, args) -> dict:
    settings = dict(MODES[mode], max_new_tokens=args.max_new_tokens, think_end=marker, trace=False)
    seeds = list(range(len(prompts)))
    samples: dict[str, list[list[int]]] = {}
    times: dict[str, list[float]] = {m: [] for m in METHODS}
    calls: dict[str, ForwardCounter] = {}
    for repeat in range(args.repeats + 1):  # the first round warms up and counts the model calls
        for method, fn in METHODS.items():
            with ForwardCounter(model) as counter:
                start = time.perf_counter()
                gens = fn(model, tokenizer, prompts, seeds, args.slots, settings)
                seconds = time.perf_counter() - start
            calls.setdefault(method, counter)
            tokens = [g.token_ids for g in gens]
            if samples.setdefault(method, tokens) != tokens:
                raise AssertionError(f"{method} produced different samples than its first run")
            if repeat:
                times[method].append(seconds)
    reference = samples["fixed chunks"]
    # With per-sample seeds the two schedules decode the same samples up to rounding: in float32 a row's logits
    # depend in the last bits on its batch's shape, which can flip a near-tie (float64: identical, tested).
    identical = sum(a == b for a, b in zip(samples["continuous"], reference))
    lengths = sorted(len(t) for t in reference)
    ratios = [f / c for f, c in zip(times["fixed chunks"], times["continuous"])]
    return {
        "samples": len(prompts),
        "rate": {m: len(prompts) / statistics.median(t) for m, t in times.items()},
        "ratio": statistics.median(ratios),
        "ratios": ratios,
        "lengths": (lengths[0], lengths[len(lengths) // 2], lengths[-1]),
        "fixed_busy": _fixed_busy_share(lengths_in_order=[len(t) for t in reference], slots=args.slots),
        "calls": {m: (c.steps, c.step_rows / c.steps, c.prefills) for m, c in calls.items()},
        "identical": identical,
        "tokens": {m: sum(map(len, t)) for m, t in samples.items()},
    }


def _fixed_busy_share(lengths_in_order: list[int], slots: int) -> float:
    """Share of the slot-steps of fixed chunks that decode a live row (the rest wait for the chunk's slowest)."""
    chunks = [lengths_in_order[i : i + slots] for i in range(0, len(lengths_in_order), slots)]
    return sum(map(sum, chunks)) / sum(slots * max(c) for c in chunks)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--slots", type=int, default=8, help="batch slots K (fixed chunks of K; max_batch_size=K)")
    parser.add_argument("--problems", type=int, default=16, help="testbed problems")
    parser.add_argument("--samples", type=int, default=4, help="samples per prompt")
    parser.add_argument("--max-new-tokens", type=int, default=192)
    parser.add_argument("--modes", nargs="+", default=list(MODES), choices=list(MODES))
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument(
        "--smollm2", default=os.environ.get(SMOLLM2_ENV), help=f"SmolLM2-135M-Instruct GGUF (default: ${SMOLLM2_ENV})"
    )
    args = parser.parse_args()
    torch.set_num_threads(args.threads)

    rows = []
    for name in ["testbed"] + (["smollm2"] if args.smollm2 else []):
        model, tokenizer, prompts, marker = workload(name, args)
        for mode in args.modes:
            r = run(model, tokenizer, prompts, marker, mode, args)
            rows.append((name, mode, r))
            print(
                f"{name} {mode}: "
                + ", ".join(f"{m} {v:.2f} samples/s" for m, v in r["rate"].items())
                + f", ratio {r['ratio']:.2f}x (per repeat {', '.join(f'{x:.2f}' for x in r['ratios'])})",
                flush=True,
            )
    print(
        "\n| workload | mode | samples | tokens min/median/max | fixed chunks samples/s | continuous samples/s "
        "| continuous / fixed | fixed chunks busy slots | decode steps fixed / continuous (rows per step) "
        "| prefill forwards fixed / continuous | samples identical | tokens fixed / continuous |"
    )
    print("|---|---|---|---|---|---|---|---|---|---|---|---|")
    for name, mode, r in rows:
        lo, mid, hi = r["lengths"]
        (f_steps, f_rows, f_pre), (c_steps, c_rows, c_pre) = r["calls"]["fixed chunks"], r["calls"]["continuous"]
        print(
            f"| {name} | {mode} | {r['samples']} | {lo}/{mid}/{hi} | {r['rate']['fixed chunks']:.2f} | "
            f"{r['rate']['continuous']:.2f} | {r['ratio']:.2f}x | {r['fixed_busy']:.0%} | "
            f"{f_steps} ({f_rows:.1f}) / {c_steps} ({c_rows:.1f}) = {f_steps / c_steps:.2f}x | {f_pre} / {c_pre} | "
            f"{r['identical']}/{r['samples']} | {r['tokens']['fixed chunks']} / {r['tokens']['continuous']} |"
        )
    print(
        f"\nK={args.slots} slots, median of {args.repeats} interleaved runs (ratio: median of per-repeat ratios), "
        f"{args.max_new_tokens} new tokens max, {args.threads} thread(s), torch {torch.__version__}"
    )


if __name__ == "__main__":
    main()
