"""Train the testbed reasoning model from scratch on a CPU: ``python -m softthink.testbed.train``.

Reads top to bottom like nanoGPT's ``train.py``: defaults, overrides, setup, one loop. Every batch is a pure
function of ``(seed, step)`` (fresh problems from the train split), so an interrupted run resumes exactly:
rerun the same command and it continues from ``train_state.pt`` in the output directory. The loss covers the
completion only: ``chat_template(question, add_generation_prompt=True) + solution + eos``, prompt masked.

Writes to ``--out`` (default: the shipped checkpoint ``softthink/testbed/checkpoint/``): ``model.safetensors``,
``config.json``, ``generation_config.json``, the tokenizer files, ``train_config.json`` (the resolved config)
and ``training_log.json``. ``train_state.pt`` (weights + optimizer, for resuming) is deleted once training ends.

Soft-input curriculum (`softthink.testbed.curriculum`; off by default, and then training is exactly the plain
loop above): at a share of the thinking positions the gold input embedding is replaced by a concept token, the
model's own filtered next-token distribution from a first no-grad teacher-forced pass, mixed with the gold token.
Its fields (all validated):

- ``init_from``: warm start from a checkpoint directory, or ``"testbed"`` for the shipped model (the architecture
  fields must match it); None = fresh initialisation.
- ``soft_fraction`` in [0, 1]: the share of thinking positions that take a concept token (0 = curriculum off).
- ``soft_ramp_steps`` >= 0: ramp that share linearly up from ~0 over the first this many steps.
- ``soft_gold_weight`` in [0, 1]: the gold token's weight in each concept token (>= 0.5 keeps it the heaviest).
- ``soft_filters``: the decode preset whose thinking filters (temperature, top-k, top-p, min-p, ``max_topk``)
  shape the mixture, so that training feeds what that preset's soft decoding feeds (default ``"soft"``).

Which positions are replaced is drawn from a generator seeded by ``(seed, step, micro-batch)``, so a curriculum
run resumes exactly too.

Examples::

    python -m softthink.testbed.train                          # the shipped model: 700 steps, ~17 CPU-minutes
    python -m softthink.testbed.train --out runs/tb --minutes 5  # stop after 5 minutes; rerun to resume
    python -m softthink.testbed.train --out runs/tb --set max_steps=200 --set hidden_size=128
    python -m softthink.testbed.train --out runs/tb-soft --set init_from=testbed --set soft_fraction=0.5 \\
        --set soft_ramp_steps=100 --set max_steps=300 --set learning_rate=5e-4 --set warmup_steps=20
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
from safetensors.torch import load_file
from tqdm import tqdm
from transformers import LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerBase

from softthink.config_io import dataclass_fields, parse_set
from softthink.errors import SoftthinkConfigError
from softthink.testbed.curriculum import MixtureFilters, curriculum_fraction, draw_soft_inputs, inputs_embeds
from softthink.testbed.default import CHECKPOINT_DIR, TESTBED_MODELS, default_model_path
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
    # soft-input curriculum (see the module docstring); soft_fraction 0 = off
    init_from: str | None = None  # warm start: a checkpoint directory or "testbed"
    soft_fraction: float = 0.0
    soft_ramp_steps: int = 0
    soft_gold_weight: float = 0.5
    soft_filters: str = "soft"  # decode preset whose thinking filters shape the mixture

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
        for name in ("soft_fraction", "soft_gold_weight"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0.0 <= value <= 1.0:
                raise SoftthinkConfigError(
                    f"train.{name} must be a number in [0, 1], got {value!r}.", param=name, value=value
                )
        if self.soft_ramp_steps < 0:
            raise SoftthinkConfigError(
                f"train.soft_ramp_steps must be >= 0 (0 = no ramp), got {self.soft_ramp_steps}.",
                param="soft_ramp_steps",
                value=self.soft_ramp_steps,
            )
        if self.soft_fraction > 0:
            MixtureFilters.from_preset(self.soft_filters)  # an unknown preset fails here, not mid-run
        if self.init_from is not None:
            init_checkpoint(self.init_from)


def init_checkpoint(name: str) -> Path:
    """The directory ``init_from`` names: a shipped model (``"testbed"``, ``"testbed-soft"``) or a checkpoint
    directory."""
    path = default_model_path(name) if name in TESTBED_MODELS else Path(name).expanduser()
    if not (path / "model.safetensors").is_file():
        raise SoftthinkConfigError(
            f"train.init_from: {path} has no model.safetensors; pass 'testbed' or a directory written by "
            "`python -m softthink.testbed.train`.",
            param="init_from",
            value=name,
        )
    return path


def warm_start(model: LlamaForCausalLM, name: str) -> None:
    """Load the weights of checkpoint ``name`` into ``model``; a different architecture is an error."""
    path = init_checkpoint(name)
    try:
        model.load_state_dict(load_file(str(path / "model.safetensors")))
    except RuntimeError as err:
        raise SoftthinkConfigError(
            f"train.init_from: the weights in {path} do not fit the configured model ({err}). Set the model "
            f"fields (hidden_size, num_hidden_layers, ...) to those of {path / 'train_config.json'}.",
            param="init_from",
            value=name,
        ) from err


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


class SoftCurriculum:
    """The soft-input curriculum of a run: which positions take concept tokens at each step, and the forward."""

    def __init__(self, cfg: TrainConfig, tokenizer: PreTrainedTokenizerBase):
        self.cfg = cfg
        self.filters = MixtureFilters.from_preset(cfg.soft_filters)
        self.think_end_id = tokenizer.get_vocab()["</think>"]

    def forward(self, model: LlamaForCausalLM, batch: dict[str, torch.Tensor], step: int, index: int):
        """``(output, replaced positions)`` of micro-batch ``index`` of ``step``; a pure function of the weights,
        ``(cfg.seed, step, index)`` and the batch."""
        generator = torch.Generator().manual_seed((self.cfg.seed * 1_000_003 + step) * 64 + index)
        soft = draw_soft_inputs(
            model,
            batch,
            fraction=curriculum_fraction(self.cfg.soft_fraction, self.cfg.soft_ramp_steps, step),
            filters=self.filters,
            gold_weight=self.cfg.soft_gold_weight,
            think_end_id=self.think_end_id,
            generator=generator,
        )
        embeds = inputs_embeds(model, batch["input_ids"], soft)
        out = model(inputs_embeds=embeds, attention_mask=batch["attention_mask"], labels=batch["labels"])
        return out, len(soft.rows)


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
    elif cfg.init_from is not None:
        warm_start(model, cfg.init_from)
        print(f"warm start from {init_checkpoint(cfg.init_from)}")
    curriculum = SoftCurriculum(cfg, tokenizer) if cfg.soft_fraction > 0 else None
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
        loss, soft_positions = 0.0, 0
        for index, batch in enumerate(batches):  # mean over all target tokens of the step, whatever the split
            if curriculum is None:
                out = model(**batch)
            else:
                out, replaced = curriculum.forward(model, batch, step, index)
                soft_positions += replaced
            part = out.loss * int((batch["labels"] != -100).sum()) / num_targets
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
                | ({"soft_positions": soft_positions} if curriculum is not None else {})
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
        epilog="examples:" + __doc__.split("Examples::")[1],
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
