"""Named RL recipes: YAML files in ``configs/rl/<name>.yaml``.

A recipe file holds flat keys. ``include: other.yaml`` (relative to the file) loads a base first, and the file's
own keys override it, so a variant lists only what it changes. Keys of `RUN_KEYS` describe the run (model,
dataset, prompt); every other key is a field of `SoftthinkGRPOConfig`. Files whose name starts with ``_`` are bases,
not recipes. Precedence: config defaults < base < recipe file < explicit overrides (``--set key=value``).
"""
from __future__ import annotations

import dataclasses
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from softthink.errors import SoftthinkConfigError, unknown_name_message
from softthink.resources import bundled_config_dir

RECIPE_DIR = Path(os.environ.get("SOFTTHINK_RL_RECIPES") or bundled_config_dir("rl"))
"""Where named recipes live: ``$SOFTTHINK_RL_RECIPES``, else the bundled configs/rl (source tree or installed
package)."""

RUN_KEYS = {
    "model": "model path or Hub id; 'testbed' = the softthink testbed checkpoint; 'tiny:<arch>' = random tiny model",
    "dataset": "'testbed', 'gsm8k' or a .jsonl path with question/answer fields",
    "dataset_split": "split of the named dataset (default 'train')",
    "num_problems": "number of problems to train on (default: all)",
    "prompt_template": "prompt text with the placeholder {question} (default '{question}'; other braces are literal)",
    "label": "name of the trained policy in evaluation tables (default: the recipe name)",
    "dry_run_arch": "tiny architecture that stands in for the model in a dry run (default 'llama')",
}


@dataclass
class Recipe:
    """A resolved recipe: its name, source file, run keys and `SoftthinkGRPOConfig` keyword arguments."""

    name: str
    path: Path | None
    run: dict[str, Any] = field(default_factory=dict)
    config: dict[str, Any] = field(default_factory=dict)

    @property
    def label(self) -> str:
        return str(self.run.get("label") or self.name)


def available_recipes(directory: Path | None = None) -> list[str]:
    """Names of the recipes in ``directory`` (default `RECIPE_DIR`), bases excluded."""
    directory = Path(directory or RECIPE_DIR)
    return sorted(p.stem for p in directory.glob("*.yaml") if not p.name.startswith("_"))


def config_fields() -> dict[str, dataclasses.Field]:
    from softthink.rl.config import SoftthinkGRPOConfig

    return {f.name: f for f in dataclasses.fields(SoftthinkGRPOConfig) if f.init}


def unknown_key_message(key: str, fields: dict) -> str:
    """"unknown recipe key" with close matches; the full list (~250 trl fields) would drown the hint."""
    import difflib

    close = difflib.get_close_matches(key, [*RUN_KEYS, *fields], n=3)
    hint = f" Did you mean {', '.join(repr(c) for c in close)}?" if close else ""
    return (f"unknown recipe key {key!r}.{hint} Valid keys: the run keys {', '.join(RUN_KEYS)}, and the fields of "
            "softthink.rl.SoftthinkGRPOConfig (trl GRPOConfig + recipe fields).")


def _read(path: Path, seen: tuple[Path, ...] = ()) -> dict[str, Any]:
    if path in seen:
        raise SoftthinkConfigError(f"recipe include cycle: {' -> '.join(str(p) for p in (*seen, path))}")
    try:
        data = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as err:
        raise SoftthinkConfigError(f"recipe file {path} is not valid YAML: {err}") from err
    if not isinstance(data, dict):
        raise SoftthinkConfigError(f"recipe file {path} must hold a mapping of keys to values, "
                                   f"got {type(data).__name__}.")
    base = data.pop("include", None)
    if base is None:
        return data
    base_path = (path.parent / base).resolve()
    if not base_path.exists():
        raise SoftthinkConfigError(f"recipe file {path} includes {base!r}, which does not exist at {base_path}.")
    return {**_read(base_path, (*seen, path)), **data}


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
        path = RECIPE_DIR / f"{text}.yaml"
        if text.startswith("_") or not path.exists():
            raise SoftthinkConfigError(unknown_name_message("RL recipe", text, available_recipes()),
                                       param="recipe", value=text)
        name = text
    values = _read(path.resolve())
    values.update(overrides or {})
    fields = config_fields()
    run, config = {}, {}
    for key, value in values.items():
        if key in RUN_KEYS:
            run[key] = value
        elif key in fields:
            config[key] = value
        else:
            where = f"recipe file {path}" if key not in (overrides or {}) else "overrides"
            raise SoftthinkConfigError(f"{where}: {unknown_key_message(key, fields)}", param=key, value=value)
    return Recipe(name=name, path=path, run=run, config=config)


def parse_overrides(items: list[str] | None) -> dict[str, Any]:
    """Parse ``key=value`` strings (``--set``); values are YAML scalars, coerced to the field's default type."""
    fields = config_fields()
    result: dict[str, Any] = {}
    for item in items or []:
        key, sep, raw = item.partition("=")
        key = key.strip()
        if not sep or not key:
            raise SoftthinkConfigError(f"override {item!r} must look like key=value, e.g. learning_rate=1e-5.")
        if key not in fields and key not in RUN_KEYS:
            raise SoftthinkConfigError(unknown_key_message(key, fields), param=key, value=raw)
        result[key] = _coerce(key, raw, fields.get(key))
    return result


def _kind(spec: dataclasses.Field | None) -> str | None:
    """'bool', 'int', 'float' or None, from the field's annotation (``"int | None"`` -> 'int')."""
    if spec is None:
        return None
    annotation = spec.type if isinstance(spec.type, str) else getattr(spec.type, "__name__", str(spec.type))
    head = annotation.split("|")[0].strip()
    return head if head in ("bool", "int", "float") else None


def _coerce(key: str, raw: str, spec: dataclasses.Field | None) -> Any:
    value = yaml.safe_load(raw) if raw.strip() else None
    kind = _kind(spec)
    if value is None or kind is None:
        return value
    if kind == "bool" and not isinstance(value, bool):
        raise SoftthinkConfigError(f"{key}={raw!r}: expected true or false.", param=key, value=raw)
    if kind == "float" and not isinstance(value, bool):
        try:
            return float(value)  # YAML reads '1e-5' as a string
        except (TypeError, ValueError):
            raise SoftthinkConfigError(f"{key}={raw!r}: expected a number.", param=key, value=raw) from None
    if kind == "int" and (isinstance(value, bool) or not isinstance(value, int)):
        raise SoftthinkConfigError(f"{key}={raw!r}: expected an integer.", param=key, value=raw)
    return value
