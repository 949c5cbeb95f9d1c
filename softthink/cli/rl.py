"""Train a policy with GRPO and a forking-token / covariance recipe, or check recipes with a tiny dry run.

examples:
  softthink rl list
  softthink rl train --recipe forking --model testbed --dataset testbed --output runs/forking
  softthink rl train --recipe qwen2.5-1.5b-gsm8k-forking --output runs/q15-forking --set learning_rate=2e-6
  softthink rl dry-run                      # every recipe, one step each on a tiny random model
  softthink rl dry-run --recipe kl_cov

A rerun of `train` with the same --output resumes from the last checkpoint there.
"""

from __future__ import annotations

import argparse
import tempfile

HELP = "RL training (GRPO via trl): full / forking / clip_cov / kl_cov recipes"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    actions = parser.add_subparsers(dest="rl_action", required=True)
    actions.add_parser("list", help="list the named recipes")

    train = actions.add_parser("train", help="train a policy with a recipe (resumable)")
    train.add_argument("--recipe", required=True, help="recipe name in configs/rl/ or a YAML path")
    train.add_argument(
        "--model", help="model path or Hub id; 'testbed' for the testbed checkpoint (default: the recipe's)"
    )
    train.add_argument(
        "--dataset",
        help="'testbed', a benchmark name (e.g. 'gsm8k'), a benchmark YAML or a .jsonl file (default: the recipe's)",
    )
    train.add_argument("--output", required=True, help="output directory (checkpoints, final policy, dynamics)")
    train.add_argument(
        "--set",
        dest="overrides",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="override a recipe key, e.g. --set max_steps=10 (repeatable)",
    )
    train.add_argument("--no-resume", action="store_true", help="ignore checkpoints already in --output")

    dry = actions.add_parser("dry-run", help="one training step per recipe on a tiny random model")
    dry.add_argument("--recipe", action="append", help="recipe to check (repeatable; default: all)")
    dry.add_argument("--output", help="where to write the dry-run outputs (default: a temporary directory)")


def run(args: argparse.Namespace) -> int:
    from softthink.rl.recipes import available_recipes, load_recipe, parse_overrides

    if args.rl_action == "list":
        for name in available_recipes():
            spec = load_recipe(name)
            print(
                f"{name:32s} recipe={spec.config.get('recipe', name):9s} model={spec.run.model} "
                f"dataset={spec.run.dataset}"
            )
        return 0
    if args.rl_action == "train":
        from softthink.rl.train import train

        overrides = parse_overrides(args.overrides)
        result = train(args.recipe, args.model, args.dataset, args.output, resume=not args.no_resume, **overrides)
        print(f"trained {result.label} ({result.recipe}) to step {result.global_step}: {result.output_dir}")
        if result.law is not None:
            law = result.law
            print(f"entropy law R = -a exp(H) + b: a={law.a:.4g} b={law.b:.4g} R^2={law.r2:.3f} (n={law.n})")
        return 0
    from softthink.rl.train import dry_run

    names = args.recipe or available_recipes()
    root = args.output or tempfile.mkdtemp(prefix="softthink-rl-dry-run-")
    for name in names:
        result = dry_run(name, f"{root}/{name}")
        print(f"ok  {name:32s} recipe={result.recipe:9s} steps={result.global_step}")
    return 0
