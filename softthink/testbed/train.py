"""Train the testbed reasoning model from scratch on a CPU: ``python -m softthink.testbed.train``.

Reads top to bottom like nanoGPT's ``train.py``: defaults, overrides, setup, one loop. Every batch is a pure
function of ``(seed, step)`` (fresh problems from the train split), so an interrupted run resumes exactly:
rerun the same command and it continues from ``train_state.pt`` in the output directory. The loss covers the
completion only: ``chat_template(question, add_generation_prompt=True) + solution + eos``, prompt masked.

Writes to ``--out`` (default: the shipped checkpoint ``softthink/testbed/checkpoint/``): ``model.safetensors``,
``config.json``, ``generation_config.json``, the tokenizer files, ``train_config.json`` (the resolved config)
and ``training_log.json``. ``train_state.pt`` (weights + optimizer, for resuming) is deleted once training ends.

Examples::

    python -m softthink.testbed.train                          # the shipped model: 700 steps, ~17 CPU-minutes
    python -m softthink.testbed.train --out runs/tb --minutes 5  # stop after 5 minutes; rerun to resume
    python -m softthink.testbed.train --out runs/tb --set max_steps=200 --set hidden_size=128
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import math
import time
from dataclasses import dataclass
from pathlib import Path

import torch
from tqdm import tqdm
from transformers import LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerBase

from softthink.config_io import dataclass_fields, parse_set
from softthink.errors import SoftthinkConfigError
from softthink.testbed.default import CHECKPOINT_DIR
from softthink.testbed.quality import greedy_accuracy
from softthink.testbed.tasks import DEFAULT_DIFFICULTY, make_dataset, resolve_difficulty
from softthink.testbed.tokenizer import build_tokenizer

STATE_FILE = "train_state.pt"


@dataclass
class TrainConfig:
    """Every setting of a training run; saved as ``train_config.json`` next to the model."""

    seed: int = 0
    difficulty: str = DEFAULT_DIFFICULTY  # a preset of softthink.testbed.tasks.DIFFICULTIES
    # model (LlamaConfig)
    hidden_size: int = 192
    intermediate_size: int = 512
    num_hidden_layers: int = 4
    num_attention_heads: int = 4
    max_position_embeddings: int = 384  # tokens; prompt + completion of the longest problem is ~250
    # optimisation
    max_steps: int = 700
    batch_size: int = 64  # sequences per step
    micro_batches: int = 2  # the batch is sorted by length and split, so short rows are not padded to long ones
    learning_rate: float = 2e-3
    min_learning_rate: float = 1e-4  # end of the cosine decay
    warmup_steps: int = 100
    weight_decay: float = 0.1
    grad_clip: float = 1.0
    # bookkeeping
    log_interval: int = 25  # steps between log records
    eval_interval: int = 250  # steps between validation losses
    save_interval: int = 200  # steps between resumable states
    final_eval_problems: int = 100  # val problems for the greedy accuracy printed at the end
    num_threads: int = 2  # torch CPU threads

    def __post_init__(self):
        for name in (
            "max_steps",
            "batch_size",
            "hidden_size",
            "num_hidden_layers",
            "num_attention_heads",
            "log_interval",
            "eval_interval",
            "save_interval",
            "num_threads",
        ):
            if getattr(self, name) < 1:
                raise SoftthinkConfigError(
                    f"train.{name} must be >= 1, got {getattr(self, name)}.", param=name, value=getattr(self, name)
                )
        if self.hidden_size % self.num_attention_heads:
            raise SoftthinkConfigError(
                f"train.hidden_size ({self.hidden_size}) must be divisible by num_attention_heads "
                f"({self.num_attention_heads}).",
                param="hidden_size",
                value=self.hidden_size,
            )
        if not 0 < self.min_learning_rate <= self.learning_rate:
            raise SoftthinkConfigError(
                f"train needs 0 < min_learning_rate <= learning_rate, got {self.min_learning_rate}, "
                f"{self.learning_rate}.",
                param="min_learning_rate",
                value=self.min_learning_rate,
            )
        resolve_difficulty(self.difficulty)


def build_model(cfg: TrainConfig, tokenizer: PreTrainedTokenizerBase) -> LlamaForCausalLM:
    """A freshly initialised Llama of the configured size, deterministic in ``cfg.seed``."""
    config = LlamaConfig(
        vocab_size=len(tokenizer),
        hidden_size=cfg.hidden_size,
        intermediate_size=cfg.intermediate_size,
        num_hidden_layers=cfg.num_hidden_layers,
        num_attention_heads=cfg.num_attention_heads,
        num_key_value_heads=cfg.num_attention_heads,
        max_position_embeddings=cfg.max_position_embeddings,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
        tie_word_embeddings=False,
    )
    torch.manual_seed(cfg.seed)
    model = LlamaForCausalLM(config)
    model.generation_config.pad_token_id = tokenizer.pad_token_id
    model.generation_config.eos_token_id = tokenizer.eos_token_id
    model.generation_config.bos_token_id = tokenizer.bos_token_id
    return model


def training_text(problem: dict, tokenizer: PreTrainedTokenizerBase) -> tuple[str, str]:
    """``(prompt, completion)``: the chat-templated question and ``solution + eos``."""
    prompt = tokenizer.apply_chat_template(
        [{"role": "user", "content": problem["question"]}], tokenize=False, add_generation_prompt=True
    )
    return prompt, problem["solution"] + tokenizer.eos_token


def make_batch(problems: list[dict], tokenizer: PreTrainedTokenizerBase) -> dict[str, torch.Tensor]:
    """Right-padded ``input_ids``/``attention_mask`` and ``labels`` that are -100 on prompt and padding."""
    rows = []
    for problem in problems:
        prompt, completion = training_text(problem, tokenizer)
        p = tokenizer(prompt, add_special_tokens=False)["input_ids"]
        c = tokenizer(completion, add_special_tokens=False)["input_ids"]
        rows.append((p + c, [-100] * len(p) + c))
    width = max(len(ids) for ids, _ in rows)
    pad = tokenizer.pad_token_id
    return {
        "input_ids": torch.tensor([ids + [pad] * (width - len(ids)) for ids, _ in rows]),
        "attention_mask": torch.tensor([[1] * len(ids) + [0] * (width - len(ids)) for ids, _ in rows]),
        "labels": torch.tensor([lab + [-100] * (width - len(lab)) for _, lab in rows]),
    }


def train_batches(cfg: TrainConfig, step: int, tokenizer: PreTrainedTokenizerBase) -> list[dict[str, torch.Tensor]]:
    """The micro-batches of ``step``: fresh train-split problems, a pure function of ``(cfg.seed, step)``."""
    problems = make_dataset("train", cfg.batch_size, seed=cfg.seed * 1_000_003 + step, difficulty=cfg.difficulty)
    problems.sort(key=lambda p: len(p["solution"]))
    size = math.ceil(len(problems) / cfg.micro_batches)
    return [make_batch(problems[i : i + size], tokenizer) for i in range(0, len(problems), size)]


def learning_rate(cfg: TrainConfig, step: int) -> float:
    """Linear warmup, then cosine decay to ``min_learning_rate`` at ``max_steps``."""
    if step < cfg.warmup_steps:
        return cfg.learning_rate * (step + 1) / cfg.warmup_steps
    progress = min(1.0, (step - cfg.warmup_steps) / max(1, cfg.max_steps - cfg.warmup_steps))
    return cfg.min_learning_rate + 0.5 * (1 + math.cos(math.pi * progress)) * (
        cfg.learning_rate - cfg.min_learning_rate
    )


@torch.no_grad()
def validation_loss(model: LlamaForCausalLM, batch: dict[str, torch.Tensor]) -> float:
    model.eval()
    loss = model(**batch).loss.item()
    model.train()
    return loss


def train(
    cfg: TrainConfig,
    out_dir: str | Path = CHECKPOINT_DIR,
    *,
    minutes: float | None = None,
    stop_after_steps: int | None = None,
    resume: bool = True,
    progress: bool = True,
) -> dict:
    """Train (or resume) into ``out_dir``; returns the training log.

    ``minutes`` caps this invocation's wall-clock time and ``stop_after_steps`` its number of steps; either way
    the run saves a resumable state and stops, and calling ``train`` again with the same config continues.
    """
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    torch.set_num_threads(cfg.num_threads)
    tokenizer = build_tokenizer()
    model = build_model(cfg, tokenizer)
    decay = [p for n, p in model.named_parameters() if p.dim() >= 2]
    no_decay = [p for n, p in model.named_parameters() if p.dim() < 2]
    optimizer = torch.optim.AdamW(
        [{"params": decay, "weight_decay": cfg.weight_decay}, {"params": no_decay, "weight_decay": 0.0}],
        lr=cfg.learning_rate,
        betas=(0.9, 0.95),
    )
    # elapsed_s is wall-clock time; cpu_s is this process's CPU time (on a shared machine, the fairer measure)
    log = {"config": dataclasses.asdict(cfg), "records": [], "evals": [], "elapsed_s": 0.0, "cpu_s": 0.0}
    step = 0
    state_path = out_dir / STATE_FILE
    if resume and state_path.exists():
        state = torch.load(state_path, weights_only=False)
        if state["config"] != dataclasses.asdict(cfg):
            raise SoftthinkConfigError(
                f"{state_path} was written with a different config; rerun with the same settings to resume, or "
                f"delete {state_path} (or pass --no-resume) to start over.",
                param="config",
                value=state["config"],
            )
        model.load_state_dict(state["model"])
        optimizer.load_state_dict(state["optimizer"])
        step, log = state["step"], state["log"]
        print(f"resuming from {state_path} at step {step}/{cfg.max_steps}")
    (out_dir / "train_config.json").write_text(json.dumps(dataclasses.asdict(cfg), indent=2) + "\n")
    num_params = sum(p.numel() for p in model.parameters())
    print(f"testbed model: {num_params / 1e6:.2f}M parameters, vocabulary {len(tokenizer)}, writing to {out_dir}")
    # a fixed validation batch, so the losses are comparable across steps
    val_batch = make_batch(make_dataset("val", 128, seed=cfg.seed, difficulty=cfg.difficulty), tokenizer)

    def save_state():
        torch.save(
            {
                "config": dataclasses.asdict(cfg),
                "model": model.state_dict(),
                "optimizer": optimizer.state_dict(),
                "step": step,
                "log": log,
            },
            state_path,
        )

    model.train()
    start, cpu_start, run_steps = time.time(), time.process_time(), 0
    elapsed_before, cpu_before = log["elapsed_s"], log["cpu_s"]

    def clocks():
        log["elapsed_s"] = round(elapsed_before + time.time() - start, 1)
        log["cpu_s"] = round(cpu_before + time.process_time() - cpu_start, 1)

    bar = tqdm(total=cfg.max_steps, initial=step, disable=not progress, desc="train", unit="step")
    while step < cfg.max_steps:
        if (minutes is not None and time.time() - start > 60 * minutes) or run_steps == stop_after_steps:
            clocks()
            save_state()
            bar.close()
            print(f"stopped at step {step}/{cfg.max_steps}; rerun the same command to resume")
            return log
        t0 = time.time()
        lr = learning_rate(cfg, step)
        for group in optimizer.param_groups:
            group["lr"] = lr
        batches = train_batches(cfg, step, tokenizer)
        num_targets = sum(int((b["labels"] != -100).sum()) for b in batches)
        loss = 0.0
        for batch in batches:  # mean over all target tokens of the step, whatever the split
            part = model(**batch).loss * int((batch["labels"] != -100).sum()) / num_targets
            part.backward()
            loss += part.detach()
        torch.nn.utils.clip_grad_norm_(model.parameters(), cfg.grad_clip)
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        step, run_steps = step + 1, run_steps + 1
        bar.update(1)
        bar.set_postfix(loss=f"{loss.item():.3f}", ms=f"{1000 * (time.time() - t0):.0f}")
        if step % cfg.log_interval == 0 or step == cfg.max_steps:
            clocks()
            log["records"].append(
                {
                    "step": step,
                    "loss": round(loss.item(), 4),
                    "lr": lr,
                    "ms_per_step": round(1000 * (time.time() - t0), 1),
                    "elapsed_s": log["elapsed_s"],
                    "cpu_s": log["cpu_s"],
                }
            )
        if step % cfg.eval_interval == 0 or step == cfg.max_steps:
            log["evals"].append({"step": step, "val_loss": round(validation_loss(model, val_batch), 4)})
            bar.write(f"step {step}: val loss {log['evals'][-1]['val_loss']:.4f}")
        if step % cfg.save_interval == 0 and step < cfg.max_steps:
            clocks()
            save_state()
    bar.close()
    clocks()
    log["num_parameters"] = num_params
    if cfg.final_eval_problems:
        model.eval()
        log["final_val_greedy_accuracy"] = greedy_accuracy(
            model, tokenizer, make_dataset("val", cfg.final_eval_problems, seed=cfg.seed, difficulty=cfg.difficulty)
        )
        print(f"greedy accuracy on {cfg.final_eval_problems} val problems: {log['final_val_greedy_accuracy']:.3f}")
    model.save_pretrained(out_dir)
    tokenizer.save_pretrained(out_dir)
    (out_dir / "training_log.json").write_text(json.dumps(log, indent=1) + "\n")
    state_path.unlink(missing_ok=True)
    print(
        f"done: {step} steps in {log['elapsed_s'] / 60:.1f} min wall clock, {log['cpu_s'] / 60:.1f} CPU-min; "
        f"model saved to {out_dir}"
    )
    return log


def parse_overrides(pairs: list[str]) -> dict:
    """``["key=value", ...]`` -> typed overrides for ``TrainConfig`` (`softthink.config_io.parse_set`); unknown
    keys are errors."""
    return parse_set(pairs, dataclass_fields(TrainConfig), what="TrainConfig field")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0],
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="\n".join(__doc__.split("\n")[-4:]),
    )
    parser.add_argument("--out", default=str(CHECKPOINT_DIR), help="output directory (default: %(default)s)")
    parser.add_argument(
        "--minutes", type=float, default=None, help="stop (resumably) after this many minutes of this invocation"
    )
    parser.add_argument("--seed", type=int, default=TrainConfig.seed, help="seed of weights and data")
    parser.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="override a TrainConfig field, e.g. --set max_steps=500 (repeatable)",
    )
    parser.add_argument("--no-resume", action="store_true", help="ignore a train_state.pt in --out")
    args = parser.parse_args(argv)
    try:
        cfg = TrainConfig(**{"seed": args.seed, **parse_overrides(args.set)})
    except SoftthinkConfigError as err:
        parser.exit(2, f"error: {err}\n")
    print(json.dumps(dataclasses.asdict(cfg)))
    train(cfg, args.out, minutes=args.minutes, resume=not args.no_resume)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
