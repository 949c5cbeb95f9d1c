"""Train a policy with a named recipe: `train()` (resumable), and `dry_run()` for checking a recipe on a tiny model.

Output directory layout::

    OUTPUT/                     final policy in Hugging Face format (config, weights, tokenizer): load it with
                                softthink.load_model(OUTPUT) or AutoModelForCausalLM.from_pretrained(OUTPUT)
    OUTPUT/checkpoint-N/        trainer checkpoints (weights + optimizer + RNG); a rerun resumes from the last one
    OUTPUT/dynamics.jsonl       one row per step (see softthink.rl.dynamics)
    OUTPUT/law.json             fit of R = -a exp(H) + b over the run, when it has >= 3 rollout steps
    OUTPUT/dynamics.png         reward / entropy plots
    OUTPUT/softthink_rl.json    label, recipe, resolved config, model, dataset, and ``provenance`` (git commit,
                                library versions, platform, time; `softthink.provenance.write_provenance`)
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from softthink.errors import SoftthinkConfigError, SoftthinkDataError
from softthink.figures import save_figure
from softthink.provenance import write_provenance
from softthink.rl.data import build_dataset, check_chat_template, load_problems
from softthink.rl.dynamics import EntropyDynamicsCallback, EntropyLaw, fit_dynamics, read_dynamics
from softthink.rl.plots import plot_dynamics
from softthink.rl.recipes import Recipe, load_recipe

DRY_RUN_OVERRIDES: dict[str, Any] = {
    "max_steps": 1,
    "per_device_train_batch_size": 4,
    "gradient_accumulation_steps": 1,
    "steps_per_generation": 1,
    "generation_batch_size": None,
    "num_generations": 2,
    "max_completion_length": 8,
    "bf16": False,
    "fp16": False,
    "activation_checkpointing": False,
    "use_vllm": False,
    "model_init_kwargs": None,
    "save_strategy": "no",
    "logging_steps": 1,
    "report_to": "none",
    "num_problems": 4,
}
"""What a dry run changes in a recipe: sizes only. The objective (recipe, fractions, loss type, clipping) stays."""

RL_PACKAGES = ("trl", "datasets")
"""Versions an RL run's provenance lists beyond `softthink.provenance.DEFAULT_PACKAGES`."""


@dataclass
class TrainResult:
    """Where a run wrote its policy, how far it got, and its entropy-law fit (None if too few steps)."""

    output_dir: Path
    label: str
    recipe: str
    global_step: int
    resumed_from: str | None
    law: EntropyLaw | None

    @property
    def dynamics_path(self) -> Path:
        return self.output_dir / "dynamics.jsonl"


def load_policy(model: str):
    """(model or Hub id / path for trl, tokenizer) for a recipe's ``model`` key.

    'tiny:<arch>' builds a random tiny model, 'testbed' is the softthink testbed checkpoint, a ``.gguf`` file is
    loaded by `softthink.load_model` and copied into a trainable float model; anything else is a Hugging Face
    directory or Hub id that trl loads itself (with ``model_init_kwargs``).
    """
    if model.startswith("tiny:"):
        from softthink.testbed.tiny import TINY_ARCHITECTURES, build_tiny_model, build_tiny_tokenizer

        arch = model.split(":", 1)[1]
        if arch not in TINY_ARCHITECTURES:
            from softthink.errors import unknown_name_message

            raise SoftthinkConfigError(
                unknown_name_message("tiny architecture", arch, TINY_ARCHITECTURES), param="model", value=model
            )
        return build_tiny_model(arch), build_tiny_tokenizer()
    if model.endswith(".gguf"):
        import softthink

        quantized, tokenizer = softthink.load_model(model, device="cpu")
        return _trainable_copy(quantized), tokenizer
    from softthink.models import check_causal_lm_config, load_tokenizer, resolve_source

    # The checks of softthink.load_model, before trl loads the weights; a shipped testbed name resolves to its folder.
    source, kwargs = resolve_source(model)
    check_causal_lm_config(source, kwargs, model)
    return source, load_tokenizer(model)


def _trainable_copy(model):
    """A plain float copy of a model transformers loaded from GGUF: the Trainer refuses models marked quantized
    (even dequantized ones), and they cannot be saved; the copy trains and saves as a normal HF model."""
    import copy

    from transformers import AutoModelForCausalLM

    config = copy.deepcopy(model.config)
    if hasattr(config, "quantization_config"):
        del config.quantization_config
    fresh = AutoModelForCausalLM.from_config(config, dtype=model.dtype)
    fresh.load_state_dict(model.state_dict(), strict=True)
    fresh.generation_config = copy.deepcopy(model.generation_config)
    return fresh


def train(
    recipe: str | Path,
    model_path: str | None = None,
    dataset: str | None = None,
    output_dir: str | Path | None = None,
    *,
    reward=None,
    callbacks: list | None = None,
    resume: bool = True,
    progress: bool = True,
    **overrides: Any,
) -> TrainResult:
    """Train with ``recipe`` (a name in configs/rl/ or a YAML path) and save an HF checkpoint in ``output_dir``.

    ``model_path`` / ``dataset`` override the recipe's ``model`` / ``dataset``; ``overrides`` are recipe keys
    (`SoftthinkGRPOConfig` fields or run keys such as ``num_problems``). When ``output_dir`` already has trainer
    checkpoints and ``resume`` is true, training continues from the last one. ``reward`` replaces the default
    correctness reward (a trl reward function).
    """
    spec = load_recipe(recipe, overrides)
    if model_path is not None:
        spec.run = dataclasses.replace(spec.run, model=str(model_path))
    if dataset is not None:
        spec.run = dataclasses.replace(spec.run, dataset=str(dataset))
    for key in ("model", "dataset"):
        if not getattr(spec.run, key):
            raise SoftthinkConfigError(f"recipe {spec.name!r} names no {key}; pass {key} (CLI: --{key}).", param=key)
    if output_dir is None:
        raise SoftthinkConfigError(
            "output_dir is required: where to write checkpoints and the trained policy.", param="output_dir"
        )
    output_dir = Path(output_dir)
    return _run(spec, output_dir, reward=reward, callbacks=callbacks, resume=resume, progress=progress)


def dry_run(recipe: str | Path, output_dir: str | Path, **overrides: Any) -> TrainResult:
    """Validate ``recipe`` as written (its config must construct), then train one step on a tiny random model of
    the recipe's ``dry_run_arch`` with `DRY_RUN_OVERRIDES` (same objective, tiny sizes)."""
    import torch

    spec = load_recipe(recipe, overrides)
    if not torch.cuda.is_available():  # bf16 / GPU settings only construct on a CPU when told it is one
        spec.config.setdefault("use_cpu", True)
    _make_config(spec, Path(output_dir) / "validate")  # the real recipe's config, as written
    tiny = load_recipe(recipe, {**overrides, **DRY_RUN_OVERRIDES})
    tiny.run = dataclasses.replace(tiny.run, model=f"tiny:{spec.run.dry_run_arch}")
    if not tiny.run.dataset:
        raise SoftthinkConfigError(f"recipe {spec.name!r} names no dataset.", param="dataset")
    return _run(tiny, Path(output_dir), reward=None, callbacks=None, resume=False, progress=False)


def _make_config(spec: Recipe, output_dir: Path):
    from softthink.rl.soft_config import ALL_RECIPE_NAMES, check_soft_keys, config_class

    config = dict(spec.config)
    if "recipe" not in config:
        if spec.name not in ALL_RECIPE_NAMES:
            raise SoftthinkConfigError(
                f"recipe file {spec.path} must set 'recipe:' to one of {', '.join(ALL_RECIPE_NAMES)}.", param="recipe"
            )
        config["recipe"] = spec.name
    check_soft_keys(config, source=f"recipe {spec.name!r} ({spec.path})")
    try:
        return config_class(config["recipe"])(output_dir=str(output_dir), **config)
    except SoftthinkConfigError as err:
        raise SoftthinkConfigError(
            f"recipe {spec.name!r} ({spec.path}): {err}", param=err.param, value=err.value
        ) from err
    except (ValueError, TypeError) as err:  # trl / transformers validation
        raise SoftthinkConfigError(f"recipe {spec.name!r} ({spec.path}): {err}") from err


def _run(spec: Recipe, output_dir: Path, *, reward, callbacks, resume: bool, progress: bool) -> TrainResult:
    from transformers.trainer_utils import get_last_checkpoint

    from softthink.rl.rewards import CorrectnessReward
    from softthink.rl.soft_trainer import trainer_class

    args = _make_config(spec, output_dir)
    if args.logging_steps != 1:
        raise SoftthinkConfigError(
            f"logging_steps={args.logging_steps}: the entropy-dynamics log needs a row per step; set logging_steps: 1.",
            param="logging_steps",
            value=args.logging_steps,
        )
    args.disable_tqdm = not progress
    model, tokenizer = load_policy(spec.run.model)
    check_chat_template(tokenizer, spec.run.model)
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token  # batching needs a pad id; padded positions are masked anyway
    problems = load_problems(
        spec.run.dataset, split=spec.run.dataset_split, n=spec.run.num_problems, seed=args.data_seed or 0
    )
    train_dataset = build_dataset(problems, spec.run.prompt_template)

    output_dir.mkdir(parents=True, exist_ok=True)
    last = get_last_checkpoint(str(output_dir)) if resume and output_dir.exists() else None
    trainer = trainer_class(args.recipe)(
        model=model,
        reward_funcs=[reward or CorrectnessReward()],
        args=args,
        train_dataset=train_dataset,
        processing_class=tokenizer,
        callbacks=[EntropyDynamicsCallback(output_dir / "dynamics.jsonl"), *(callbacks or [])],
    )
    trainer.train(resume_from_checkpoint=last)
    trainer.save_model(str(output_dir))
    tokenizer.save_pretrained(str(output_dir))

    law = _fit_and_plot(output_dir, spec.label)
    _write_provenance(output_dir, spec, args, problems, trainer.state.global_step, last, law)
    return TrainResult(
        output_dir=output_dir,
        label=spec.label,
        recipe=args.recipe,
        global_step=trainer.state.global_step,
        resumed_from=last,
        law=law,
    )


def _fit_and_plot(output_dir: Path, label: str) -> EntropyLaw | None:
    rows = read_dynamics(output_dir / "dynamics.jsonl")
    try:
        law = fit_dynamics(rows)
    except SoftthinkDataError:
        law = None  # fewer than 3 rollout steps (a dry run): nothing to fit
    if law is not None:
        (output_dir / "law.json").write_text(json.dumps(law.to_dict(), indent=2) + "\n")
    save_figure(plot_dynamics({label: rows}, laws={label: law} if law else None), output_dir / "dynamics.png")
    return law


def _write_provenance(
    output_dir: Path,
    spec: Recipe,
    args,
    problems: list[dict],
    step: int,
    resumed_from: str | None,
    law: EntropyLaw | None,
) -> None:
    record = {
        "label": spec.label,
        "recipe": args.recipe,
        "recipe_file": str(spec.path),
        "run": spec.run.to_dict(),
        "config": {k: v for k, v in args.to_dict().items() if _jsonable(v)},
        "num_problems": len(problems),
        "global_step": step,
        "resumed_from": resumed_from,
        "law": law.to_dict() if law else None,
    }
    write_provenance(output_dir / "softthink_rl.json", record, packages=RL_PACKAGES)


def _jsonable(value: Any) -> bool:
    try:
        json.dumps(value)
        return True
    except (TypeError, ValueError):
        return False
