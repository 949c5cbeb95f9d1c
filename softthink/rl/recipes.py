"""Named RL recipes: YAML files in ``configs/rl/<name>.yaml``.

A recipe file holds flat keys. ``include: other.yaml`` (relative to the file, or a list of files) loads bases
first, and the file's own keys override them (`softthink.config_io.read_config`), so a variant lists only what it
changes. Keys that are fields of `RunConfig` describe the run (model, dataset, prompt); every other key is a field
of `SoftthinkGRPOConfig`. Files whose name starts with ``_`` are bases, not recipes. Precedence: config defaults <
base < recipe file < explicit overrides (``--set key=value``).
"""

from __future__ import annotations

import dataclasses
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from softthink.config_io import check_field_types, check_keys, dataclass_fields, parse_set, read_config
from softthink.errors import SoftthinkConfigError, unknown_name_message
from softthink.resources import bundled_config_dir


def recipe_dir() -> Path:
    """Where named recipes live: ``$SOFTTHINK_RL_RECIPES`` (read at each call), else the bundled configs/rl (source
    tree or installed package)."""
    return Path(os.environ.get("SOFTTHINK_RL_RECIPES") or bundled_config_dir("rl"))


def _help(default: Any, text: str) -> Any:
    return field(default=default, metadata={"help": text})


@dataclass
class RunConfig:
    """What a recipe trains and on what: the run keys of a recipe file, validated. Every field has a default."""

    model: str | None = _help(
        None,
        "model path or Hub id; 'testbed' = the softthink testbed checkpoint; 'tiny:<arch>' = random tiny "
        "model; a .gguf file is dequantized into a trainable copy. None: must be passed to train()",
    )
    dataset: str | None = _help(
        None,
        "'testbed', a benchmark name (e.g. 'gsm8k'), a benchmark YAML, or a .jsonl path with "
        "question/answer fields. None: must be passed to train()",
    )
    dataset_split: str = _help("train", "split of the named dataset")
    num_problems: int | None = _help(None, "number of problems to train on; None = all")
    prompt_template: str = _help("{question}", "prompt text with the placeholder {question} (other braces are literal)")
    label: str | None = _help(None, "name of the trained policy in evaluation tables; None = the recipe name")
    dry_run_arch: str = _help("llama", "tiny architecture that stands in for the model in a dry run")

    def __post_init__(self) -> None:
        check_field_types(self, what="run")
        for name in ("model", "dataset", "label"):
            value = getattr(self, name)
            if value is not None and (not isinstance(value, str) or not value.strip()):
                self._fail(name, "must be a non-empty string or null", "Remove the key to leave it unset.")
        if not isinstance(self.dataset_split, str) or not self.dataset_split:
            self._fail("dataset_split", "must be a non-empty split name", "Use 'train'.")
        if self.num_problems is not None and (
            isinstance(self.num_problems, bool) or not isinstance(self.num_problems, int) or self.num_problems < 1
        ):
            self._fail("num_problems", "must be an int >= 1 or null", "Use null to train on every problem.")
        if not isinstance(self.prompt_template, str) or "{question}" not in self.prompt_template:
            self._fail(
                "prompt_template",
                "must contain the placeholder '{question}'",
                "Write e.g. '{question}\\nPlease reason step by step.'",
            )
        from softthink.testbed.tiny import TINY_ARCHITECTURES

        if self.dry_run_arch not in TINY_ARCHITECTURES:
            raise SoftthinkConfigError(
                "run.dry_run_arch: "
                + unknown_name_message("tiny architecture", str(self.dry_run_arch), TINY_ARCHITECTURES),
                param="dry_run_arch",
                value=self.dry_run_arch,
            )

    def _fail(self, name: str, rule: str, remedy: str) -> None:
        value = getattr(self, name)
        raise SoftthinkConfigError(f"run.{name} {rule}, got {value!r}. {remedy}", param=name, value=value)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


RUN_KEYS = tuple(f.name for f in dataclasses.fields(RunConfig))
"""The keys of a recipe that belong to `RunConfig` rather than to `SoftthinkGRPOConfig`."""


@dataclass
class Recipe:
    """A resolved recipe: its name, source file, `RunConfig` and `SoftthinkGRPOConfig` keyword arguments."""

    name: str
    path: Path | None
    run: RunConfig = field(default_factory=RunConfig)
    config: dict[str, Any] = field(default_factory=dict)

    @property
    def label(self) -> str:
        return self.run.label or self.name


def available_recipes(directory: Path | None = None) -> list[str]:
    """Names of the recipes in ``directory`` (default `recipe_dir()`), bases excluded."""
    directory = Path(directory or recipe_dir())
    return sorted(p.stem for p in directory.glob("*.yaml") if not p.name.startswith("_"))


def config_fields() -> dict[str, dataclasses.Field]:
    """The recipe keys that are config fields: `SoftthinkGRPOConfig`'s, and the soft recipes' (`SoftRLConfig`)."""
    from softthink.rl.soft_config import SoftRLConfig

    return {f.name: f for f in dataclasses.fields(SoftRLConfig) if f.init}


KEY_LISTING = (
    f"Valid keys: the run keys {', '.join(RUN_KEYS)}, and the fields of softthink.rl.SoftthinkGRPOConfig "
    "(trl GRPOConfig + recipe fields; soft recipes also softthink.rl.soft_config.SoftRLConfig's)."
)
"""Stands in for the full key list (~250 trl fields) in unknown-key messages."""


def load_recipe(name_or_path: str | Path, overrides: dict[str, Any] | None = None) -> Recipe:
    """Resolve a recipe by name (``configs/rl/<name>.yaml``) or path, apply ``overrides``, validate the keys.

    Unknown recipe names and unknown keys raise `SoftthinkConfigError` with "did you mean" suggestions.
    """
    text = str(name_or_path)
    if text.endswith((".yaml", ".yml")) or os.sep in text:
        path = Path(text)
        if not path.exists():
            raise SoftthinkConfigError(f"recipe file {path} does not exist.", param="recipe", value=text)
        name = path.stem
    else:
        path = recipe_dir() / f"{text}.yaml"
        if text.startswith("_") or not path.exists():
            raise SoftthinkConfigError(
                unknown_name_message("RL recipe", text, available_recipes()), param="recipe", value=text
            )
        name = text
    from_file = read_config(path.resolve(), what="recipe")
    fields = config_fields()
    allowed = [*RUN_KEYS, *fields]
    check_keys(from_file, allowed, what="recipe key", source=f"recipe file {path}", listing=KEY_LISTING)
    check_keys(overrides or {}, allowed, what="recipe key", source="overrides", listing=KEY_LISTING)
    values = {**from_file, **(overrides or {})}
    run = {k: v for k, v in values.items() if k in RUN_KEYS}
    try:
        run_config = RunConfig(**run)
    except SoftthinkConfigError as err:
        raise SoftthinkConfigError(f"recipe {name!r} ({path}): {err}", param=err.param, value=err.value) from None
    return Recipe(name=name, path=path, run=run_config, config={k: v for k, v in values.items() if k not in RUN_KEYS})


def parse_overrides(items: list[str] | None) -> dict[str, Any]:
    """Parse ``key=value`` strings (``--set``) into recipe keys, typed like their `RunConfig` /
    `SoftthinkGRPOConfig` fields (`softthink.config_io.parse_set`)."""
    schema = {**dataclass_fields(RunConfig), **{name: f.type for name, f in config_fields().items()}}
    return parse_set(items, schema, what="recipe key", listing=KEY_LISTING)
