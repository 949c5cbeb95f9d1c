"""Decode speed: model.generate (greedy) vs softthink discrete / soft / gated, on the same model and prompts.

`discrete` is greedy; `discrete_sampled` samples with Soft Thinking's filter chain (T, top-k, top-p, min-p), the
per-step filtering every soft step also pays, so `soft / discrete_sampled` isolates the cost of feeding a mixture.

Prints generated tokens per second (median of --repeats runs, methods interleaved so that machine noise hits all
of them alike) and ratios: softthink discrete / model.generate, and every other mode / discrete.

  python benchmarks/decode_speed.py --smollm2 PATH.gguf    # tiny random Llama + SmolLM2-135M, batch 1 and 8
  python benchmarks/decode_speed.py --models tiny --repeats 3

SmolLM2-135M-Instruct is the GGUF file given by --smollm2, else by $SOFTTHINK_SMOLLM2.
"""

from __future__ import annotations

import argparse
import os
import statistics
import time
from collections.abc import Callable

import torch

import softthink
from softthink.testbed.tiny import build_tiny_model, build_tiny_tokenizer

SMOLLM2_ENV = "SOFTTHINK_SMOLLM2"
PROMPTS = [
    "Natalia sold clips to 48 of her friends in April, and then she sold half as many clips in May. "
    "How many clips did she sell altogether?",
    "What is 15 + 27?",
    "A train travels 60 miles per hour for 3 hours. How far does it go?",
    "Write a short sentence about the sea.",
    "If x + 3 = 10, what is x?",
    "List three prime numbers.",
    "Tom has 5 apples and eats 2. How many are left?",
    "Explain why the sky is blue in one sentence.",
]
# One marker string for every softthink mode, so all pay for the same thinking-phase bookkeeping. SmolLM2 has no
# single-token </think>, so this is a multi-token marker matched on text (the costlier path).
SAMPLING = dict(top_p=0.95, top_k=30, min_p=0.001, temperature=0.6)  # Soft Thinking's released filter chain
SOFT = dict(SAMPLING, mode="soft", max_topk=10)


METHODS = {  # decode settings of each timed method (None: transformers' model.generate, greedy)
    "model.generate": None,
    "discrete": dict(mode="discrete"),
    # sampled discrete decoding with Soft Thinking's filter chain: the same per-step filtering a soft step pays
    "discrete_sampled": dict(SAMPLING, mode="discrete", do_sample=True),
    "soft": SOFT,
    "gated": dict(SOFT, mode="gated", entropy_threshold=0.672, do_sample=True),
    "mixture_of_inputs": dict(SOFT, mode="mixture_of_inputs", do_sample=True),
    "swir": dict(SOFT, mode="swir", swir_window=16),
    "multiplex": dict(SAMPLING, mode="multiplex", do_sample=True, multiplex_k=3),
    "forking_temperature": dict(
        mode="forking_temperature", do_sample=True, temperature=0.6, top_p=0.95, top_k=30, fork_temperature=1.0
    ),
}


def timed_methods(model, tokenizer, max_new_tokens: int, marker: str) -> dict[str, Callable]:
    """``{method: prompts -> (generated tokens, seconds)}`` for every entry of `METHODS`."""

    def method(settings: dict | None) -> Callable:
        if settings is None:
            return lambda prompts: time_hf(model, tokenizer, prompts, max_new_tokens)
        return lambda prompts: time_softthink(
            model, tokenizer, prompts, max_new_tokens, dict(settings, think_end=marker)
        )

    return {name: method(settings) for name, settings in METHODS.items()}


def load(name: str, smollm2_path: str | None):
    if name == "tiny":
        return build_tiny_model("llama"), build_tiny_tokenizer()
    return softthink.load_model(smollm2_path, device="cpu", dtype=torch.float32)


def time_hf(model, tokenizer, prompts, max_new_tokens) -> tuple[int, float]:
    rendered = [
        softthink.generate(model, p, tokenizer=tokenizer, mode="discrete", max_new_tokens=1).prompt for p in prompts
    ]
    tokenizer.padding_side = "left"
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    enc = tokenizer(rendered, return_tensors="pt", padding=True, add_special_tokens=False)
    start = time.perf_counter()
    out = model.generate(**enc, max_new_tokens=max_new_tokens, do_sample=False, pad_token_id=tokenizer.pad_token_id)
    elapsed = time.perf_counter() - start
    new = out[:, enc.input_ids.shape[1] :]
    eos = softthink.decoding.api.eos_token_ids(model, tokenizer)
    # Count real tokens: up to and including the first EOS of each row (model.generate pads the rest).
    count = 0
    for row in new.tolist():
        stop = next((i for i, t in enumerate(row) if t in eos), len(row) - 1)
        count += stop + 1
    return count, elapsed


def time_softthink(model, tokenizer, prompts, max_new_tokens, settings) -> tuple[int, float]:
    start = time.perf_counter()
    gens = softthink.generate(
        model, prompts, tokenizer=tokenizer, max_new_tokens=max_new_tokens, trace=False, **settings
    )
    return sum(g.num_tokens for g in gens), time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--models", nargs="+", default=["tiny", "smollm2"], choices=["tiny", "smollm2"])
    parser.add_argument("--batch-sizes", nargs="+", type=int, default=[1, 8])
    parser.add_argument("--max-new-tokens", type=int, default=64)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument(
        "--smollm2",
        default=os.environ.get(SMOLLM2_ENV),
        help=f"SmolLM2-135M-Instruct GGUF file (default: ${SMOLLM2_ENV})",
    )
    args = parser.parse_args()
    if "smollm2" in args.models and not args.smollm2:
        parser.error(
            f"--models smollm2 needs the model file: pass --smollm2 PATH.gguf or set {SMOLLM2_ENV}=PATH.gguf "
            "(or drop smollm2 from --models)."
        )
    torch.set_num_threads(args.threads)

    rows = []
    for name in args.models:
        model, tokenizer = load(name, args.smollm2)
        marker = "</think>" if name == "smollm2" else "auto"
        methods = timed_methods(model, tokenizer, args.max_new_tokens, marker)
        for batch in args.batch_sizes:
            prompts = (PROMPTS * (batch // len(PROMPTS) + 1))[:batch]
            for fn in methods.values():
                fn(prompts)  # warm-up
            rates: dict[str, list[float]] = {m: [] for m in methods}
            for _ in range(args.repeats):
                for method, fn in methods.items():
                    tokens, seconds = fn(prompts)
                    rates[method].append(tokens / seconds)
            med = {m: statistics.median(r) for m, r in rates.items()}
            rows.append((name, batch, med))
            print(f"{name:8s} batch {batch}: " + ", ".join(f"{m} {v:.1f} tok/s" for m, v in med.items()), flush=True)

    modes = [m for m in rows[0][2] if m not in ("model.generate", "discrete")]
    print(
        "\n| model | batch | model.generate tok/s | discrete tok/s | discrete / generate | "
        + " | ".join(f"{m} / discrete" for m in modes)
        + " | soft / discrete_sampled |"
    )
    print("|---|---|---|---|---|" + "---|" * (len(modes) + 1))
    for name, batch, m in rows:
        print(
            f"| {name} | {batch} | {m['model.generate']:.1f} | {m['discrete']:.1f} | "
            f"{m['discrete'] / m['model.generate']:.2f}x | "
            + " | ".join(f"{m[mode] / m['discrete']:.2f}x" for mode in modes)
            + f" | {m['soft'] / m['discrete_sampled']:.2f}x |"
        )
    print(
        f"\nmedian of {args.repeats} interleaved runs, {args.max_new_tokens} new tokens max, "
        f"{args.threads} threads, torch {torch.__version__}"
    )


if __name__ == "__main__":
    main()
