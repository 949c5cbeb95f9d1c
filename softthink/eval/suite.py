"""`Suite`: one evaluation grid (models x decode configs x benchmarks x seeds) read from YAML and validated.

A suite YAML may say ``include: base.yaml`` (relative to itself) to start from another suite and change only some
keys (mappings merge key by key, lists and scalars replace). Overrides such as ``--set samples=4`` or
``--set benchmarks.0.limit=10`` apply last. Every resolved suite is written beside its results (`Suite.to_dict`).

Example::

    name: smollm2_gsm8k50
    models:
      - label: smollm2-135m-instruct
        path: "${SOFTTHINK_MODEL_CACHE:-~/.cache/softthink-models}/SmolLM2-135M-Instruct.Q4_1.gguf"
    decode: [discrete, soft, gated]          # presets of configs/decode; or {label, preset, overrides}
    benchmarks: [{name: gsm8k, limit: 50}]   # built-in names or benchmark YAML paths
    samples: 1                               # samples per problem, the same in every cell
    seeds: [0]
    decode_overrides: {max_new_tokens: 320}  # applied to every decode config
"""

from __future__ import annotations

import os
import re
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

from softthink.config_io import check_field_types, check_keys, check_types, dataclass_fields, parse_set, read_config
from softthink.errors import SoftthinkConfigError, unknown_name_message
from softthink.eval.published import parse_published

_ENV_RE = re.compile(r"\$\{(\w+)(?::-([^}]*))?\}")


def expand_path(text: str) -> str:
    """``${VAR}`` / ``${VAR:-default}`` expansion, then ``~``; an unset variable without default is an error."""

    def sub(match: re.Match) -> str:
        name, default = match.group(1), match.group(2)
        if name in os.environ and os.environ[name]:
            return os.environ[name]
        if default is not None:
            return default
        raise SoftthinkConfigError(
            f"environment variable {name} is not set (used in {text!r}). Set it or write ${{{name}:-default}}.",
            param=name,
            value=text,
        )

    return os.path.expanduser(_ENV_RE.sub(sub, text))


@dataclass(frozen=True)
class ModelSpec:
    """A model/policy of the grid: ``path`` (anything `softthink.load_model` takes) and a ``label`` for tables."""

    label: str
    path: str
    hint: str | None = None
    """Shown when the model fails to load, e.g. how to fetch it."""
    tp_plan: str | None = None
    """``"auto"``: load the model tensor-parallel over the processes of a ``torchrun`` launch (`load_model`'s
    ``tp_plan``, docs/scale.md); every process then decodes all of its cells' batches, not a share of them."""

    @property
    def resolved_path(self) -> str:
        return expand_path(self.path)


@dataclass(frozen=True)
class DecodeSpec:
    """A decode config of the grid: a preset (name in configs/decode or YAML path) plus overrides."""

    label: str
    preset: str
    overrides: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class BenchmarkRef:
    """A benchmark of the grid with its subset (``limit``/``ids``), loader options and prompt/grader overrides."""

    name: str
    label: str
    split: str | None = None
    limit: int | None = None
    ids: tuple[str, ...] | None = None
    options: dict[str, Any] = field(default_factory=dict)
    prompt: dict[str, Any] = field(default_factory=dict)
    grader: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Cell:
    """One point of the grid."""

    model: ModelSpec
    decode: DecodeSpec
    benchmark: BenchmarkRef
    seed: int

    @property
    def key(self) -> tuple[str, str, str, int]:
        return (self.model.label, self.decode.label, self.benchmark.label, self.seed)

    def __str__(self) -> str:
        return f"{self.model.label} / {self.decode.label} / {self.benchmark.label} / seed {self.seed}"


@dataclass
class Suite:
    """A validated evaluation grid. Build with `Suite.from_yaml` / `Suite.from_dict`; see the module docstring."""

    name: str
    models: list[ModelSpec]
    decode: list[DecodeSpec]
    benchmarks: list[BenchmarkRef]
    seeds: list[int] = field(default_factory=lambda: [0])
    samples: int = 1
    """Samples per problem, identical in every cell (the fairness rule of the harness)."""
    batch_size: int = 8
    """Prompts per `softthink.generate` call. 1 makes each sample independent of the rest of the run."""
    seed_per_sample: bool = False
    """Decode every sample with its own seed (`softthink.generate(seeds=...)`), derived from (cell seed, problem,
    sample index): samples no longer depend on the batch size or on batch neighbours, and a resumed run redoes a
    sample exactly. False (the default, and the setting of the committed results) seeds one RNG per batch."""
    continuous_batching: bool = True
    """With ``seed_per_sample``: decode up to `softthink.eval.runner.REFILL_BATCHES` planned batches per
    `softthink.generate` call with ``batch_size`` slots (``max_batch_size``), a finished row's slot refilled at
    once from the rest, so the batch stays full while long traces finish. The samples are the same as with fixed
    batches (each is a function of its own seed). Without ``seed_per_sample`` batches stay fixed: their one RNG
    stream per batch is what a resumed run must replay."""
    resume_other_code: bool = False
    """Let a resumed run add samples to a cell whose records on disk were written by other softthink code (another
    version or commit, or records from before records named their code). False (the default): such a cell fails
    with an error naming the code on disk and the ways out, since its records would mix two versions' behaviour."""
    limit: int | None = None
    """First N problems of every benchmark (a benchmark's own ``limit`` wins)."""
    ids: list[str] | None = None
    decode_overrides: dict[str, Any] = field(default_factory=dict)
    prompt: dict[str, Any] = field(default_factory=dict)
    grader: dict[str, Any] = field(default_factory=dict)
    data_dir: str | None = None
    output_dir: str | None = None
    """Default ``eval/results/<name>`` (relative to the current directory)."""
    pass_k: list[int] | None = None
    """k values for pass@k and maj@k; None = 1 and the powers of two up to ``samples``."""
    baseline: str | None = None
    """Decode label that other modes are compared against; None = the first decode config."""
    description: str = ""
    published: list[Any] = field(default_factory=list)
    """Published figures this suite reproduces, shown beside the run's (`softthink.eval.published`)."""
    source: str | None = None

    def __post_init__(self) -> None:
        where = f" ({self.source})" if self.source else ""

        def fail(param: str, rule: str, value: Any, remedy: str = "") -> None:
            raise SoftthinkConfigError(
                f"suite.{param} {rule}, got {value!r}{where}. {remedy}".rstrip(), param=param, value=value
            )

        if self.ids is not None:
            self.ids = _ids(self.ids, "suite.ids", where)
        check_field_types(self, what="suite", where=where)
        if not isinstance(self.name, str) or not re.fullmatch(r"[\w.-]+", self.name):
            fail("name", "must be a non-empty name of letters, digits, '_', '-', '.'", self.name)
        for key in ("models", "decode", "benchmarks", "seeds"):
            if not getattr(self, key):
                fail(key, "must list at least one entry", getattr(self, key))
        for key, items in (("models", self.models), ("decode", self.decode), ("benchmarks", self.benchmarks)):
            labels = [item.label for item in items]
            dupes = sorted({label for label in labels if labels.count(label) > 1})
            if dupes:
                fail(key, "labels must be unique", dupes, "Give each entry its own 'label'.")
        if any(isinstance(s, bool) or not isinstance(s, int) for s in self.seeds):
            fail("seeds", "must be a list of ints", self.seeds)
        if len(set(self.seeds)) != len(self.seeds):
            fail("seeds", "must not repeat", self.seeds)
        for key in ("seed_per_sample", "continuous_batching", "resume_other_code"):
            if not isinstance(getattr(self, key), bool):
                fail(key, "must be true or false", getattr(self, key))
        for key in ("samples", "batch_size"):
            value = getattr(self, key)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                fail(key, "must be an int >= 1", value)
        if self.limit is not None and (
            isinstance(self.limit, bool) or not isinstance(self.limit, int) or self.limit < 1
        ):
            fail("limit", "must be an int >= 1 or null", self.limit, "Use null for all problems.")
        if self.pass_k is None:
            self.pass_k = [1] + [2**i for i in range(1, 12) if 2**i <= self.samples]
        if any(not isinstance(k, int) or not 1 <= k <= self.samples for k in self.pass_k):
            fail(
                "pass_k",
                f"must hold ints in [1, samples={self.samples}]",
                self.pass_k,
                "pass@k needs at least k samples per problem; raise samples or lower k.",
            )
        labels = [d.label for d in self.decode]
        if self.baseline is not None and self.baseline not in labels:
            fail("baseline", f"must be one of the decode labels {labels}", self.baseline)
        for key in ("decode_overrides", "prompt", "grader"):
            _string_keys(getattr(self, key), f"suite.{key}", where)
        self.published = parse_published(
            self.published,
            models=[m.label for m in self.models],
            modes=labels,
            benchmarks=[b.label for b in self.benchmarks],
            ks=self.report_pass_k,
            where=where,
        )

    @property
    def resolved_pass_k(self) -> list[int]:
        """The k values of pass@k and maj@k: ``pass_k``, which ``__post_init__`` fills in when it is None."""
        assert self.pass_k is not None, "Suite.__post_init__ resolves pass_k"
        return self.pass_k

    @property
    def report_pass_k(self) -> list[int]:
        """The k values of the report's pass@k / maj@k columns: seeds pool into more samples per problem, so
        each k of ``pass_k`` also appears multiplied by the number of seeds."""
        return sorted({k * m for k in self.resolved_pass_k for m in (1, len(self.seeds))})

    # -- construction ------------------------------------------------------------------------------------------
    @classmethod
    def from_yaml(cls, path: str | Path, overrides: dict[str, Any] | None = None) -> Suite:
        """Read a suite YAML (following ``include:``), apply dotted ``overrides``, validate."""
        data = read_suite_yaml(Path(path))
        apply_overrides(data, overrides or {}, source=str(path))
        return cls.from_dict(data, source=str(path))

    @classmethod
    def from_dict(cls, data: dict[str, Any], source: str | None = None) -> Suite:
        data = dict(data)
        data.pop("include", None)
        where = f" ({source})" if source else ""
        check_keys(sorted(data, key=str), SUITE_KEYS, what="suite key", source=source, all_at_once=True)
        if "name" not in data:
            raise SoftthinkConfigError(f"suite needs a 'name'{where}.", param="name")
        data["models"] = [_model(m, i, where) for i, m in enumerate(_as_list(data.get("models"), "models", where))]
        data["decode"] = [_decode(d, i, where) for i, d in enumerate(_as_list(data.get("decode"), "decode", where))]
        data["benchmarks"] = [
            _benchmark(b, i, where) for i, b in enumerate(_as_list(data.get("benchmarks"), "benchmarks", where))
        ]
        for key in ("decode_overrides", "prompt", "grader"):
            if data.get(key) is None:
                data.pop(key, None)
        return cls(**data, source=source)

    def to_dict(self) -> dict[str, Any]:
        """The resolved suite as plain data (written beside the results)."""
        out = asdict(self)
        for bench in out["benchmarks"]:
            if bench["ids"] is not None:
                bench["ids"] = list(bench["ids"])
        return out

    # -- the grid ----------------------------------------------------------------------------------------------
    def cells(self) -> list[Cell]:
        """All grid points, model-major (so each model is loaded once)."""
        return [Cell(m, d, b, s) for m in self.models for b in self.benchmarks for d in self.decode for s in self.seeds]

    @property
    def baseline_label(self) -> str:
        return self.baseline or self.decode[0].label

    def resolved_output_dir(self) -> Path:
        return Path(expand_path(self.output_dir)) if self.output_dir else Path("eval") / "results" / self.name


SUITE_KEYS = tuple(f.name for f in fields(Suite) if f.name != "source") + ("include",)
"""The keys a suite YAML may hold: the `Suite` fields (``source`` is set by the reader) and ``include``."""


def _check_tp_plan(value: Any, index: int, where: str) -> None:
    from softthink.models import TP_PLANS

    if value is not None and value not in TP_PLANS:
        raise SoftthinkConfigError(
            f"suite.models[{index}].tp_plan must be one of {list(TP_PLANS)} or null, got {value!r}{where}.",
            param=f"models[{index}].tp_plan",
            value=value,
        )


def _as_list(value: Any, key: str, where: str) -> list:
    if value is None:
        raise SoftthinkConfigError(f"suite needs '{key}'{where}.", param=key)
    return value if isinstance(value, list) else [value]


def _entry(entry: Any, section: str, index: int, where: str, required: str, cls: type) -> dict[str, Any]:
    """One ``models`` / ``decode`` / ``benchmarks`` entry as a checked mapping: a string is ``{required: it}``;
    keys must be fields of ``cls`` (an unknown key is named, with suggestions) and values of their field's type.
    Empty optional mappings (``options:`` with nothing after it) read as absent."""
    what = f"suite.{section}[{index}]"
    allowed = [name for name in dataclass_fields(cls)]
    if isinstance(entry, str):
        entry = {required: entry}
    if not isinstance(entry, dict) or required not in entry:
        raise SoftthinkConfigError(
            f"{what} must be a string or a mapping with {required!r} and optional "
            f"{', '.join(repr(k) for k in allowed if k != required)}, got {entry!r}{where}.",
            param=f"{section}[{index}]",
            value=entry,
        )
    unknown = [str(key) for key in entry if key not in allowed]
    if unknown:
        raise SoftthinkConfigError(
            f"{what}: {unknown_name_message(section.rstrip('s') + ' entry key', unknown, allowed)}{where}",
            param=f"{section}[{index}].{unknown[0]}",
            value=entry,
        )
    entry = {key: value for key, value in entry.items() if value is not None or key == required}
    schema = dataclass_fields(cls)
    check_types(entry, schema, what=what, where=where, skip=("ids",))
    for key in ("overrides", "options", "prompt", "grader"):
        if key in entry:
            _string_keys(entry[key], f"{what}.{key}", where)
    return entry


def _string_keys(mapping: Any, what: str, where: str) -> None:
    """A mapping of option names (they become keyword arguments): YAML may read a key as a number or null."""
    if not isinstance(mapping, dict):
        raise SoftthinkConfigError(
            f"{what} must be a mapping, got {mapping!r}{where}.", param=what.removeprefix("suite."), value=mapping
        )
    bad = [key for key in mapping if not isinstance(key, str)]
    if bad:
        raise SoftthinkConfigError(
            f"{what} keys must be option names, got {bad[0]!r} ({type(bad[0]).__name__}){where}.",
            param=what.removeprefix("suite."),
            value=mapping,
        )


def _model(entry: Any, index: int, where: str) -> ModelSpec:
    values = _entry(entry, "models", index, where, "path", ModelSpec)
    _check_tp_plan(values.get("tp_plan"), index, where)
    return ModelSpec(
        label=values.get("label") or Path(values["path"]).stem or values["path"], **_without(values, "label")
    )


def _decode(entry: Any, index: int, where: str) -> DecodeSpec:
    values = _entry(entry, "decode", index, where, "preset", DecodeSpec)
    return DecodeSpec(label=values.get("label") or Path(values["preset"]).stem, **_without(values, "label"))


def _benchmark(entry: Any, index: int, where: str) -> BenchmarkRef:
    values = _entry(entry, "benchmarks", index, where, "name", BenchmarkRef)
    limit = values.get("limit")
    if limit is not None and limit < 1:
        raise SoftthinkConfigError(
            f"suite.benchmarks[{index}].limit must be an int >= 1 or null, got {limit!r}{where}.",
            param=f"benchmarks[{index}].limit",
            value=limit,
        )
    if "ids" in values:
        values["ids"] = tuple(_ids(values["ids"], f"suite.benchmarks[{index}].ids", where))
    for key in ("options", "prompt", "grader"):
        if key in values:
            values[key] = dict(values[key])
    return BenchmarkRef(label=values.get("label") or Path(values["name"]).stem, **_without(values, "label"))


def _without(values: dict[str, Any], key: str) -> dict[str, Any]:
    return {k: v for k, v in values.items() if k != key}


def _ids(value: Any, what: str, where: str) -> list[str]:
    """Problem ids: a list of strings or integers (ids read as numbers by YAML), as strings."""
    if not isinstance(value, list) or not all(isinstance(i, (str, int)) and not isinstance(i, bool) for i in value):
        raise SoftthinkConfigError(
            f"{what} must be a list of problem ids (strings or integers), got {value!r}{where}.",
            param=what.removeprefix("suite."),
            value=value,
        )
    return [str(i) for i in value]


# ----------------------------------------------------------------------------------------------------------------
# YAML with include, --set, and dotted overrides


def read_suite_yaml(path: Path) -> dict[str, Any]:
    """The suite mapping of ``path`` with its ``include:`` chain merged (`softthink.config_io.read_config`)."""
    return read_config(path, what="suite", hint="Committed suites live in eval/suites/.")


def parse_suite_set(pairs: list[str] | None) -> dict[str, Any]:
    """``--set`` strings -> suite overrides, typed like the `Suite` fields: ``samples=4``, dotted
    ``benchmarks.0.limit=10``, and ``decode_overrides.KEY=VALUE`` typed like the `DecodeConfig` field."""
    from softthink.decoding.config import DecodeConfig

    schema = {name: kind for name, kind in dataclass_fields(Suite).items() if name != "source"}
    return parse_set(
        pairs, schema, what="suite key", dotted=True, nested={"decode_overrides": dataclass_fields(DecodeConfig)}
    )


def limit_overrides(path: str | Path, overrides: dict[str, Any], limit: int) -> dict[str, Any]:
    """The overrides of ``eval --limit N``: at most N problems of every benchmark of the suite at ``path`` (after
    ``overrides``). The suite key ``limit`` only fills in for benchmarks without their own ``limit``; the flag is a
    cap: it sets the suite's ``limit`` and lowers each benchmark's own ``limit`` above N to N
    (``benchmarks.I.limit``), and never raises one."""
    out: dict[str, Any] = {"limit": limit}
    if isinstance(limit, bool) or not isinstance(limit, int) or limit < 1:
        return out  # the suite's own check names the bad value
    data = read_suite_yaml(Path(path))
    apply_overrides(data, overrides, source=str(path))
    entries = data.get("benchmarks")
    prefixes = [f"benchmarks.{i}." for i in range(len(entries))] if isinstance(entries, list) else ["benchmarks."]
    for prefix, entry in zip(prefixes, entries if isinstance(entries, list) else [entries]):
        own = entry.get("limit") if isinstance(entry, dict) else None
        if isinstance(own, int) and not isinstance(own, bool) and own > limit:
            out[prefix + "limit"] = limit
    return out


_STRING_ENTRY_KEY = {"models": "path", "decode": "preset", "benchmarks": "name"}


def apply_overrides(data: dict[str, Any], overrides: dict[str, Any], source: str | None = None) -> None:
    """Set dotted keys in place: ``samples``, ``decode_overrides.max_new_tokens``, ``benchmarks.0.limit``."""
    where = f" (suite {source})" if source else ""
    for dotted, value in overrides.items():
        parts = dotted.split(".")
        check_keys([parts[0]], SUITE_KEYS, what="suite key", source=f"override {dotted!r}{where}")
        container: Any = data
        for depth, part in enumerate(parts[:-1]):
            child = _get(container, part, dotted)
            if child is None:
                child = {}
            if isinstance(child, str) and depth == 1 and parts[0] in _STRING_ENTRY_KEY:
                child = {_STRING_ENTRY_KEY[parts[0]]: child}  # "gsm8k" -> {"name": "gsm8k"}, then set a key
            if not isinstance(child, (dict, list)):
                raise SoftthinkConfigError(
                    f"override {dotted!r}: {'.'.join(parts[: depth + 1])} is {child!r}, not a mapping or list{where}.",
                    param=dotted,
                    value=value,
                )
            _put(container, part, child, dotted)
            container = child
        _put(container, parts[-1], value, dotted)


def _index(container: list, part: str, dotted: str) -> int:
    if not part.isdigit() or int(part) >= len(container):
        raise SoftthinkConfigError(
            f"override {dotted!r}: {part!r} is not an index of a list of {len(container)}.", param=dotted
        )
    return int(part)


def _get(container: Any, part: str, dotted: str) -> Any:
    return container[_index(container, part, dotted)] if isinstance(container, list) else container.get(part)


def _put(container: Any, part: str, value: Any, dotted: str) -> None:
    if isinstance(container, list):
        container[_index(container, part, dotted)] = value
    else:
        container[part] = value
