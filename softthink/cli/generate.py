"""Decode one or more prompts and print the text and a compact entropy trace.

examples:
  softthink generate --model testbed --mode soft "3 5 7 -> 22"
  softthink generate --model testbed --set max_new_tokens=64 "3 5 7 -> 22"
  softthink generate --model ~/.cache/softthink-models/SmolLM2-135M-Instruct.Q4_1.gguf --mode soft \\
      --set think_end='\\boxed' --set max_new_tokens=128 "What is 15 + 27?"
  softthink generate --model Qwen/Qwen3-0.6B --config soft_cold_stop --json "Solve x^2 = 4"
  torchrun --nproc_per_node 2 -m softthink.cli.main generate --model DIR --tp-plan auto "What is 15 + 27?"
"""

from __future__ import annotations

import argparse
import json
import os

from softthink.cli.options import add_config_arguments, parse_overrides

HELP = "decode prompts with a decode mode (soft, gated, discrete, ...)"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("prompts", nargs="+", help="one or more prompts (decoded as a batch)")
    parser.add_argument("--model", required=True, help="'testbed', a local directory, a .gguf file, or a Hub id")
    parser.add_argument("--mode", help="decode mode (overrides the preset's)")
    add_config_arguments(parser, "decode")
    parser.add_argument("--json", action="store_true", help="print the whole Generation(s) as JSON")
    parser.add_argument("--device", help="cpu, cuda, cuda:1 ... (default: cuda if available)")
    parser.add_argument(
        "--tp-plan",
        help="'auto': shard the model over the processes of a torchrun launch (tensor parallel; rank 0 prints)",
    )


def run(args: argparse.Namespace) -> int:
    import softthink
    from softthink.decoding.api import build_config

    overrides = parse_overrides(args.set)
    config = build_config(args.config, args.mode, overrides)
    printing = os.environ.get("RANK", "0") == "0"  # under torchrun every process decodes; the first one prints
    model, tokenizer = softthink.load_model(args.model, device=args.device, tp_plan=args.tp_plan)
    if "max_new_tokens" not in overrides and config.max_new_tokens == softthink.DecodeConfig.max_new_tokens:
        config = fit_default_budget(config, model, tokenizer, list(args.prompts))
    if not args.json and printing:
        changed = {k: v for k, v in config.to_dict().items() if v != getattr(softthink.DecodeConfig, k, v)}
        print(f"# decode config: {json.dumps(changed)}")
    gens = softthink.generate(model, list(args.prompts), tokenizer=tokenizer, config=config)
    if not printing:
        return 0
    if args.json:
        print(json.dumps([g.to_dict() for g in gens], indent=1))
        return 0
    for prompt, g in zip(args.prompts, gens):
        print(f"\n=== {prompt}")
        print(g.text)
        print(
            f"--- {g.think_tokens} thinking + {g.answer_tokens} answer tokens, {g.soft_steps} soft steps, "
            f"stop: {g.stop_reason}, thinking ended by: {g.think_end_reason}"
        )
        print(f"--- entropy (nats) per step, * = soft: {format_trace(g)}")
    return 0


def fit_default_budget(config, model, tokenizer, prompts: list[str]):
    """``config`` with the default ``max_new_tokens`` lowered to what the model's context leaves after the longest
    prompt, with a note on stderr (a value given with ``--set`` or by the preset is kept: too large, it is an error).
    The testbed model's context is 384 tokens, less than the library default of 512."""
    import sys

    from softthink.decoding.prompts import encode_prompts
    from softthink.models import context_length

    limit = context_length(model)
    if limit is None:
        return config
    device = model.get_input_embeddings().weight.device
    longest = encode_prompts(prompts, tokenizer, config.chat_template, 0, device).input_ids.shape[1]
    room = limit - longest
    if room <= 0 or config.max_new_tokens <= room:
        return config  # fits, or the prompt alone is too long: generate() says so
    print(
        f"# max_new_tokens: {room} (the default {config.max_new_tokens} does not fit the model's context of "
        f"{limit} tokens after the {longest}-token prompt; --set max_new_tokens=N to choose)",
        file=sys.stderr,
    )
    fitted = {"max_new_tokens": room}
    if config.max_think_tokens is not None and config.max_think_tokens >= room:
        fitted["max_think_tokens"] = max(1, room // 2)  # keep room for the answer, as DecodeConfig requires
    return config.replace(**fitted)


def format_trace(g, limit: int = 48) -> str:
    """``0.12* 1.30* 0.00 ...`` for the first ``limit`` steps."""
    parts = [f"{h:.2f}{'*' if s else ''}" for h, s in zip(g.trace.entropy[:limit], g.trace.soft[:limit])]
    return " ".join(parts) + (" ..." if g.num_tokens > limit else "")
