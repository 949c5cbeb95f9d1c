"""One soft RL step vs one discrete GRPO step at equal completions and lengths (a benchmark, not a test).

Each recipe trains ``--steps`` optimiser steps on the embedded testbed model; one step = one rollout of
``--completions`` completions (``--group`` per prompt) + the scoring and loss forward/backward (trl's
``step_time``). Every completion is exactly ``--length`` tokens: the tokenizer's and the model's end-of-sequence id
are set to ``<unk>``, which the testbed model never emits, so both rollouts run to the length cap. The first step
(warm-up) is dropped; the script prints the median of the others per recipe (wall clock, trl's ``step_time``, and
this process's CPU time, which a shared machine disturbs less) and the ratios to ``full``
(plain GRPO with trl's ``model.generate``). With ``--rounds R`` the recipes run R times in turn (full, soft_grpo,
soft_gaussian, full, ...), each round gives its own ratios, and the script prints their medians: interleaving keeps
a noisy machine's slow minutes from landing on one recipe only. Target: soft / discrete <= 1.3.

    OMP_NUM_THREADS=1 python benchmarks/rl_step_speed.py                     # soft_grpo, soft_gaussian vs full
    OMP_NUM_THREADS=1 python benchmarks/rl_step_speed.py --length 64 --steps 3
    OMP_NUM_THREADS=1 python benchmarks/rl_step_speed.py --rounds 3         # interleaved, median of 3 rounds
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

from transformers import TrainerCallback


class StepTimes(TrainerCallback):
    """Per optimiser step: trl's wall-clock ``step_time`` and this process's CPU time (robust on a shared machine)."""

    def __init__(self):
        self.times: list[float] = []
        self.cpu: list[float] = []

    def on_step_begin(self, args, state, control, **kwargs):
        self._cpu = time.process_time()

    def on_step_end(self, args, state, control, **kwargs):
        self.cpu.append(time.process_time() - self._cpu)

    def on_log(self, args, state, control, logs=None, **kwargs):
        if logs and "step_time" in logs:
            self.times.append(float(logs["step_time"]))


def never_ending_testbed(directory: Path) -> str:
    """A copy of the testbed checkpoint whose EOS is ``<unk>`` (never generated): every completion hits the cap."""
    import softthink

    model, tokenizer = softthink.load_model("testbed", device="cpu")
    unk = tokenizer.convert_tokens_to_ids("<unk>")
    tokenizer.eos_token = "<unk>"
    model.config.eos_token_id = unk
    model.generation_config.eos_token_id = unk
    model.save_pretrained(directory)
    tokenizer.save_pretrained(directory)
    return str(directory)


def time_recipe(recipe: str, model: str, args, out: Path) -> StepTimes:
    from softthink.rl import train
    from softthink.rl.rewards import CorrectnessReward

    timer = StepTimes()
    extra = {"gaussian_sigma": 0.01} if recipe == "soft_gaussian" else {}
    train(
        recipe,
        model,
        "testbed",
        out,
        reward=CorrectnessReward(),
        callbacks=[timer],
        progress=False,
        resume=False,
        max_steps=args.steps,
        per_device_train_batch_size=args.completions,
        gradient_accumulation_steps=1,
        steps_per_generation=1,
        num_generations=args.group,
        max_completion_length=args.length,
        num_problems=args.completions // args.group * args.steps,
        save_strategy="no",
        **extra,
    )
    return timer


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--recipes", nargs="+", default=["soft_grpo", "soft_gaussian"])
    parser.add_argument("--completions", type=int, default=8)
    parser.add_argument("--group", type=int, default=8)
    parser.add_argument("--length", type=int, default=128)
    parser.add_argument("--steps", type=int, default=4)
    parser.add_argument("--rounds", type=int, default=1, help="interleaved rounds of all recipes (median ratios)")
    args = parser.parse_args()
    root = Path(tempfile.mkdtemp(prefix="softthink-rl-speed-"))
    model = never_ending_testbed(root / "model")
    print(f"testbed model, {args.completions} completions ({args.group} per prompt) x {args.length} tokens per step")
    ratios: dict[str, dict[str, list[float]]] = {r: {"wall": [], "cpu": []} for r in args.recipes}
    for round_index in range(args.rounds):
        wall, cpu = {}, {}
        for recipe in ["full", *args.recipes]:
            start = time.perf_counter()
            timer = time_recipe(recipe, model, args, root / f"{recipe}-{round_index}")
            wall[recipe] = statistics.median(timer.times[1:] or timer.times)
            cpu[recipe] = statistics.median(timer.cpu[1:] or timer.cpu)
            print(
                f"round {round_index + 1}: {recipe:14s} step wall {wall[recipe]:7.3f} s, CPU {cpu[recipe]:7.3f} s "
                f"(medians of steps 2..{len(timer.cpu)}; run {time.perf_counter() - start:.1f} s)"
            )
        for recipe in args.recipes:
            ratios[recipe]["wall"].append(wall[recipe] / wall["full"])
            ratios[recipe]["cpu"].append(cpu[recipe] / cpu["full"])
            print(
                f"round {round_index + 1}: ratio {recipe} / full: wall {ratios[recipe]['wall'][-1]:.2f}, "
                f"CPU {ratios[recipe]['cpu'][-1]:.2f}"
            )
    for recipe in args.recipes:
        print(
            f"ratio {recipe} / full (median of {args.rounds} round(s)): wall "
            f"{statistics.median(ratios[recipe]['wall']):.2f}, CPU {statistics.median(ratios[recipe]['cpu']):.2f}"
            "  (target <= 1.3)"
        )


if __name__ == "__main__":
    main()
