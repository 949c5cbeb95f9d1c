"""Benchmarks: a decorator registry of loaders, and JSONL benchmarks described by YAML (no code change).

Every loader returns a list of `Problem` (``id``, ``question``, ``answer``; the gold answer normalised for its
benchmark). Built-in JSONL benchmarks are located in this order:

1. the ``data_dir`` argument (CLI ``--data-dir``),
2. the ``SOFTTHINK_DATA_DIR`` environment variable,
3. the Hugging Face Hub (``datasets.load_dataset``).

A data dir that is given but lacks the file is an error (never a silent download). When nothing works, the error
names the file looked for and both ways to point at a local copy (``--data-dir`` / ``data_dir=`` and the variable).
"""

from __future__ import annotations

import inspect
import json
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from softthink.config_io import check_field_types, check_keys, check_types, dataclass_fields
from softthink.errors import SoftthinkConfigError, SoftthinkDataError, unknown_name_message
from softthink.extras import require

DATA_DIR_ENV = "SOFTTHINK_DATA_DIR"


@dataclass(frozen=True)
class Problem:
    """One benchmark item. ``answer`` is the normalised gold answer; ``meta`` keeps the other source fields."""

    id: str
    question: str
    answer: str
    meta: dict[str, Any] = field(default_factory=dict, compare=False)

    def __getitem__(self, key: str) -> Any:  # problems also read like the dicts of other harnesses
        if key in ("id", "question", "answer"):
            return getattr(self, key)
        return self.meta[key]

    def to_dict(self) -> dict[str, Any]:
        return {"id": self.id, "question": self.question, "answer": self.answer, **self.meta}


# ----------------------------------------------------------------------------------------------------------------
# Gold-answer formats


def _gold_gsm8k(value: Any) -> str:
    text = str(value)
    if "####" not in text:
        raise ValueError("expected a GSM8K solution ending in '#### <number>'")
    return text.rsplit("####", 1)[1].strip().replace(",", "")


def _gold_aime(value: Any) -> str:
    text = str(value).strip()
    if not text.lstrip("-").isdigit():
        raise ValueError("expected an integer AIME answer such as '025' or 25")
    return str(int(text))


def _gold_amc(value: Any) -> str:
    number = float(value)
    return str(int(number)) if number.is_integer() else repr(number)


def _gold_plain(value: Any) -> str:
    text = str(value).strip()
    if not text:
        raise ValueError("empty answer")
    return text


def _gold_choice(value: Any) -> str:
    from softthink.eval.answer_formats import LETTERS, normalise_choice_gold

    if isinstance(value, int) and not isinstance(value, bool):  # a 0-based option index
        if not 0 <= value < len(LETTERS):
            raise ValueError(f"option index must be in 0..{len(LETTERS) - 1}")
        return LETTERS[value]
    return normalise_choice_gold(value)


ANSWER_FORMATS: dict[str, Callable[[Any], str]] = {
    "gsm8k": _gold_gsm8k,  # '... #### 1,234' -> '1234'
    "aime": _gold_aime,  # '025' -> '25'
    "amc": _gold_amc,  # 27.0 -> '27'
    "plain": _gold_plain,  # the string as is (MATH answers are LaTeX strings)
    "choice": _gold_choice,  # 'b', '(B)' or the 0-based index 1 -> 'B' (multiple choice)
}


def _gpqa_row(row: dict[str, Any], index: int) -> dict[str, Any]:
    """GPQA layout (Question, Correct Answer, Incorrect Answer 1-3) -> question, choices, letter answer. The options
    are shuffled with a seed derived from the record id, so the correct letter is the same on every load."""
    import random

    fields = ["Question", "Correct Answer", "Incorrect Answer 1", "Incorrect Answer 2", "Incorrect Answer 3"]
    missing = [f for f in fields if f not in row]
    if missing:
        raise SoftthinkDataError(f"record {index}: GPQA layout needs fields {missing} (fields: {sorted(row)}).")
    rid = str(row.get("Record ID", index))
    options = [str(row[f]).strip() for f in fields[1:]]
    order = list(range(4))
    random.Random(f"gpqa:{rid}").shuffle(order)
    from softthink.eval.answer_formats import LETTERS

    return {
        "id": rid,
        "question": str(row["Question"]).strip(),
        "choices": [options[i] for i in order],
        "answer": LETTERS[order.index(0)],
        **{k: v for k, v in row.items() if k not in fields},
    }


ROW_LAYOUTS: dict[str, Callable[[dict[str, Any], int], dict[str, Any]]] = {
    "plain": lambda row, index: row,  # fields as named by question_field / answer_field / choices_field
    "gpqa": _gpqa_row,
}


def with_options(question: str, choices: list[str]) -> str:
    """The question followed by its lettered options, one per line: ``(A) ...``."""
    from softthink.eval.answer_formats import LETTERS

    return question.rstrip() + "\n\n" + "\n".join(f"({LETTERS[i]}) {c}" for i, c in enumerate(choices))


# ----------------------------------------------------------------------------------------------------------------
# JSONL benchmarks described by data

_SPEC_KEYS = (
    "name",
    "file",
    "path",
    "question_field",
    "answer_field",
    "id_field",
    "answer_format",
    "hub",
    "prompt",
    "grader",
    "description",
    "split",
    "choices_field",
    "layout",
)


@dataclass(frozen=True)
class BenchmarkSpec:
    """How to read one JSONL benchmark: file, field names, gold format, optional Hub source and defaults.

    ``file`` is looked up in the data dir (built-ins); ``path`` is a direct path (YAML benchmarks; relative to the
    YAML file). ``question_field`` may list alternatives (the first present one is used). ``{split}`` in ``file``
    or ``hub.split`` is replaced by the requested split.
    """

    name: str
    file: str | None = None
    path: str | None = None
    question_field: tuple[str, ...] = ("question",)
    answer_field: str = "answer"
    id_field: str | None = None
    answer_format: str = "plain"
    hub: dict[str, Any] | None = None
    prompt: dict[str, Any] | None = None
    grader: dict[str, Any] | None = None
    description: str = ""
    split: str = "test"
    choices_field: str | None = None
    """Multiple choice: the field with the list of options (2-10); they are appended to the question as
    ``(A) ...`` lines and kept in ``meta["choices"]`` for the grader."""
    layout: str = "plain"
    """How raw records map to fields: ``"plain"`` or ``"gpqa"`` (see `ROW_LAYOUTS`)."""
    source: str = "built-in"

    def __post_init__(self) -> None:
        where = f" ({self.source})" if self.source != "built-in" else ""
        qf = self.question_field
        if isinstance(qf, str):
            qf = (qf,)
        if not isinstance(qf, (list, tuple)) or not qf or not all(isinstance(k, str) and k for k in qf):
            raise SoftthinkConfigError(
                f"benchmark.question_field must be a field name or a list of field names, got {qf!r}{where}.",
                param="question_field",
                value=qf,
            )
        object.__setattr__(self, "question_field", tuple(qf))
        check_field_types(self, what="benchmark", where=where, skip=("question_field",))
        if not self.file and not self.path:
            raise SoftthinkConfigError(
                f"benchmark {self.name!r}{where} needs 'path' (a JSONL file) or 'file'.", param="path", value=None
            )
        if self.layout not in ROW_LAYOUTS:
            raise SoftthinkConfigError(
                f"benchmark {self.name!r}{where}: " + unknown_name_message("layout", self.layout, ROW_LAYOUTS),
                param="layout",
                value=self.layout,
            )
        if self.answer_format not in ANSWER_FORMATS:
            raise SoftthinkConfigError(
                f"benchmark {self.name!r}{where}: "
                + unknown_name_message("answer_format", self.answer_format, ANSWER_FORMATS),
                param="answer_format",
                value=self.answer_format,
            )

    @classmethod
    def from_yaml(cls, path: str | Path) -> BenchmarkSpec:
        path = Path(path)
        if not path.is_file():
            raise SoftthinkDataError(f"benchmark YAML {path} does not exist.")
        try:
            data = yaml.safe_load(path.read_text())
        except yaml.YAMLError as err:
            raise SoftthinkDataError(f"{path}: invalid YAML: {err}") from err
        if not isinstance(data, dict):
            raise SoftthinkDataError(f"{path}: a benchmark YAML must be a mapping with at least 'name' and 'path'.")
        check_keys(data, _SPEC_KEYS, what="benchmark key", source=str(path), all_at_once=True)
        for key in ("name", "question_field"):
            if key not in data:
                raise SoftthinkConfigError(f"{path}: benchmark YAML needs {key!r}.", param=key, value=None)
        check_types(data, dataclass_fields(cls), what="benchmark", where=f" ({path})", skip=("question_field",))
        if data.get("path") and not Path(data["path"]).is_absolute():
            data["path"] = str((path.parent / data["path"]).resolve())
        return cls(**data, source=str(path))

    def to_dict(self) -> dict[str, Any]:
        out = {k: getattr(self, k) for k in _SPEC_KEYS}
        out["question_field"] = list(self.question_field)
        if self.layout == "plain":  # the default, left out so that cells hashed before layouts existed keep their hash
            del out["layout"]
        return {k: v for k, v in out.items() if v not in (None, "", {})}


def resolve_data_dir(data_dir: str | Path | None = None) -> tuple[Path | None, str]:
    """``(directory, how it was chosen)``: explicit argument > ``$SOFTTHINK_DATA_DIR``; ``(None, "none")`` when
    neither is set (then built-in benchmarks come from the Hub)."""
    if data_dir is not None:
        return Path(data_dir), "data_dir argument / --data-dir"
    if os.environ.get(DATA_DIR_ENV):
        return Path(os.environ[DATA_DIR_ENV]), f"${DATA_DIR_ENV}"
    return None, "none"


def _rows_from_jsonl(path: Path) -> list[tuple[int, dict[str, Any]]]:
    rows = []
    with path.open(encoding="utf-8") as handle:
        for lineno, line in enumerate(handle, 1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
            except json.JSONDecodeError as err:
                raise SoftthinkDataError(f"{path}:{lineno}: invalid JSON ({err.msg} at column {err.colno}).") from err
            if not isinstance(row, dict):
                raise SoftthinkDataError(f"{path}:{lineno}: expected a JSON object, got {type(row).__name__}.")
            rows.append((lineno, row))
    if not rows:
        raise SoftthinkDataError(f"{path}: no records (empty file).")
    return rows


def _rows_from_hub(spec: BenchmarkSpec, split: str, looked_for: str) -> list[tuple[int, dict[str, Any]]]:
    hub = dict(spec.hub or {})
    remedy = (
        f"Download the file, then pass --data-dir DIR (data_dir=DIR) or set {DATA_DIR_ENV}=DIR "
        f"(looked for {looked_for})."
    )
    if not hub:
        raise SoftthinkDataError(f"benchmark {spec.name!r}: data file not found and no Hub source known. {remedy}")
    hub_split = str(hub.get("split", "{split}")).format(split=split)
    datasets = require("datasets", extra="hub", feature=f"loading benchmark {spec.name!r} from the Hugging Face Hub")
    try:
        ds = datasets.load_dataset(hub["path"], hub.get("name"), split=hub_split)
    except Exception as err:  # offline, unknown dataset, auth: all end the same way for the user
        raise SoftthinkDataError(
            f"benchmark {spec.name!r}: could not load {hub['path']} ({hub_split}) from the "
            f"Hugging Face Hub: {type(err).__name__}: {err}. {remedy}"
        ) from err
    return [(i + 1, dict(row)) for i, row in enumerate(ds)]


def problems_from_rows(spec: BenchmarkSpec, rows: list[tuple[int, dict[str, Any]]], origin: str) -> list[Problem]:
    """Turn raw records into `Problem`s; every error names ``origin:line`` and the field."""
    to_gold = ANSWER_FORMATS[spec.answer_format]
    problems: list[Problem] = []
    seen: dict[str, int] = {}
    for index, (lineno, row) in enumerate(rows):
        where = f"{origin}:{lineno}"
        row = ROW_LAYOUTS[spec.layout](row, index)
        qkey = next((k for k in spec.question_field if k in row), None)
        if qkey is None:
            raise SoftthinkDataError(
                f"{where}: record has no question field {list(spec.question_field)} "
                f"(fields: {sorted(row)}). Set question_field in the benchmark spec."
            )
        if spec.answer_field not in row:
            raise SoftthinkDataError(
                f"{where}: record has no answer field {spec.answer_field!r} "
                f"(fields: {sorted(row)}). Set answer_field in the benchmark spec."
            )
        if spec.id_field is not None and spec.id_field not in row:
            raise SoftthinkDataError(f"{where}: record has no id field {spec.id_field!r} (fields: {sorted(row)}).")
        question = row[qkey]
        if not isinstance(question, str) or not question.strip():
            raise SoftthinkDataError(f"{where}: field {qkey!r} must be a non-empty string, got {question!r:.60}.")
        raw_gold = row[spec.answer_field]
        if raw_gold is None or (isinstance(raw_gold, str) and not raw_gold.strip()):
            raise SoftthinkDataError(
                f"{where}: field {spec.answer_field!r} is {'null' if raw_gold is None else 'empty'}; every record "
                "needs a gold answer (a null answer would be graded against the text 'None'). Fill it in, or remove "
                "the record."
            )
        try:
            gold = to_gold(raw_gold)
        except (ValueError, TypeError) as err:
            raise SoftthinkDataError(
                f"{where}: field {spec.answer_field!r} = {row[spec.answer_field]!r:.80} is not "
                f"a valid {spec.answer_format!r} answer: {err}."
            ) from err
        meta_extra = {}
        if spec.choices_field is not None:
            choices = row.get(spec.choices_field)
            if (
                not isinstance(choices, list)
                or not 2 <= len(choices) <= 10
                or not all(isinstance(c, str) and c.strip() for c in choices)
            ):
                raise SoftthinkDataError(
                    f"{where}: field {spec.choices_field!r} must be a list of 2-10 non-empty "
                    f"option strings, got {choices!r:.80}."
                )
            if ord(gold) - ord("A") >= len(choices):
                raise SoftthinkDataError(f"{where}: gold answer {gold!r} but only {len(choices)} options.")
            question, meta_extra = with_options(question, choices), {"choices": list(choices)}
        if spec.id_field is not None and (row[spec.id_field] is None or str(row[spec.id_field]).strip() == ""):
            raise SoftthinkDataError(f"{where}: id field {spec.id_field!r} is null or empty; give every record an id.")
        pid = str(row[spec.id_field]) if spec.id_field else str(index)
        if pid in seen:
            raise SoftthinkDataError(f"{where}: duplicate id {pid!r} (first seen on line {seen[pid]}).")
        seen[pid] = lineno
        meta = {**{k: v for k, v in row.items() if k not in (qkey, spec.id_field, spec.choices_field)}, **meta_extra}
        problems.append(Problem(id=pid, question=question, answer=gold, meta=meta))
    return problems


def load_from_spec(spec: BenchmarkSpec, data_dir: str | Path | None = None, split: str | None = None) -> list[Problem]:
    """Load a JSONL benchmark from its spec, following the data-dir resolution order."""
    split = split or spec.split
    if spec.path:
        path = Path(spec.path.format(split=split))
        if not path.is_file():
            raise SoftthinkDataError(f"benchmark {spec.name!r} ({spec.source}): data file {path} does not exist.")
        return problems_from_rows(spec, _rows_from_jsonl(path), str(path))
    assert spec.file, "BenchmarkSpec.__post_init__ requires 'file' when 'path' is not set"
    filename = spec.file.format(split=split)
    directory, how = resolve_data_dir(data_dir)
    if directory is not None:
        path = directory / filename
        if path.is_file():
            return problems_from_rows(spec, _rows_from_jsonl(path), str(path))
        raise SoftthinkDataError(
            f"benchmark {spec.name!r}: {path} not found (data dir from {how}). Put "
            f"{filename} there, or unset it to use the Hugging Face Hub."
        )
    looked_for = f"{filename}; no data dir is set"
    return problems_from_rows(spec, _rows_from_hub(spec, split, looked_for), f"hub:{(spec.hub or {}).get('path')}")


# ----------------------------------------------------------------------------------------------------------------
# Registry


@dataclass(frozen=True)
class BenchmarkEntry:
    """A registered benchmark: its loader plus the prompt/grader defaults a suite starts from."""

    name: str
    loader: Callable[..., list[Problem]]
    description: str = ""
    prompt: dict[str, Any] | None = None
    grader: dict[str, Any] | None = None
    spec: BenchmarkSpec | None = None

    def load(self, data_dir: str | Path | None = None, split: str | None = None, **options: Any) -> list[Problem]:
        """The problems; ``options`` must be keyword parameters of the loader, of their annotated types."""
        self.check_options(options)
        return self.loader(data_dir=data_dir, split=split, **options)

    def check_options(self, options: dict[str, Any]) -> None:
        """Raise `SoftthinkConfigError` for an option the loader does not take or of the wrong type."""
        params = inspect.signature(self.loader).parameters
        if any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values()):
            return
        taken = {n: p.annotation for n, p in params.items() if n not in ("data_dir", "split")}
        listing = f"Options of {self.name!r}: {', '.join(taken)}." if taken else f"{self.name!r} takes no options."
        check_keys(options, taken, what=f"option of benchmark {self.name!r}", listing=listing)
        check_types(options, taken, what=f"benchmark {self.name!r} option")


BENCHMARKS: dict[str, BenchmarkEntry] = {}


def register_benchmark(
    name: str,
    description: str = "",
    *,
    prompt: dict | None = None,
    grader: dict | None = None,
    spec: BenchmarkSpec | None = None,
):
    """Decorator: register ``loader(data_dir=None, split=None, **options) -> list[Problem]`` under ``name``."""

    def decorator(loader: Callable[..., list[Problem]]):
        if name in BENCHMARKS:
            raise SoftthinkConfigError(f"benchmark {name!r} is already registered.", param="name", value=name)
        BENCHMARKS[name] = BenchmarkEntry(name, loader, description, prompt, grader, spec)
        return loader

    return decorator


def _register_jsonl(spec: BenchmarkSpec) -> None:
    @register_benchmark(spec.name, spec.description, prompt=spec.prompt, grader=spec.grader, spec=spec)
    def _load(data_dir=None, split=None):
        return load_from_spec(spec, data_dir, split)


for _spec in (
    BenchmarkSpec(
        "gsm8k",
        file="gsm8k_{split}.jsonl",
        answer_format="gsm8k",
        hub={"path": "openai/gsm8k", "name": "main", "split": "{split}"},
        description="GSM8K grade-school math (test 1319, train 7473); gold = number after '####'.",
    ),
    BenchmarkSpec(
        "math500",
        file="math500.jsonl",
        question_field=("problem",),
        id_field="unique_id",
        hub={"path": "HuggingFaceH4/MATH-500", "split": "test"},
        description="MATH-500 (PRM800K split of MATH); gold = LaTeX answer string.",
    ),
    BenchmarkSpec(
        "aime24",
        file="aime24.jsonl",
        question_field=("problem",),
        id_field="id",
        answer_format="aime",
        hub={"path": "HuggingFaceH4/aime_2024", "split": "train"},
        description="AIME 2024 I+II (30); gold = integer, zero padding removed.",
    ),
    BenchmarkSpec(
        "aime25",
        file="aime25.jsonl",
        question_field=("problem",),
        id_field="id",
        answer_format="aime",
        hub={"path": "math-ai/aime25", "split": "test"},
        description="AIME 2025 I+II (30); gold = integer.",
    ),
    BenchmarkSpec(
        "gpqa_diamond",
        file="gpqa_diamond.jsonl",
        layout="gpqa",
        id_field="id",
        choices_field="choices",
        answer_format="choice",
        hub={"path": "Idavidrein/gpqa", "name": "gpqa_diamond", "split": "train"},
        grader={"answer_format": "multiple_choice"},
        description="GPQA-Diamond (198) in its release layout; options shuffled per record id, gold = letter.",
    ),
    BenchmarkSpec(
        "mmlu_pro",
        file="mmlu_pro_{split}.jsonl",
        id_field="question_id",
        choices_field="options",
        answer_format="choice",
        hub={"path": "TIGER-Lab/MMLU-Pro", "split": "{split}"},
        grader={"answer_format": "multiple_choice"},
        description="MMLU-Pro (test 12032) in its release layout: up to 10 options A-J, gold = letter.",
    ),
    BenchmarkSpec(
        "amc23",
        file="amc23.jsonl",
        question_field=("question", "problem"),
        id_field="id",
        answer_format="amc",
        hub={"path": "math-ai/amc23", "split": "test"},
        description="AMC 2023 (40); gold = float answer written as an integer when integral.",
    ),
):
    _register_jsonl(_spec)


@register_benchmark(
    "testbed",
    "Synthetic reasoning tasks of softthink.testbed.tasks (options: n, seed).",
    prompt={"style": "chat", "template": "{question}"},
)
def load_testbed(data_dir=None, split=None, n: int | None = None, seed: int = 0) -> list[Problem]:
    try:
        from softthink.testbed.tasks import load_problems
    except ImportError as err:
        raise SoftthinkDataError(
            "benchmark 'testbed' needs softthink.testbed.tasks.load_problems, which this "
            f"install does not provide ({err}). Update softthink or pick another benchmark."
        ) from err
    rows = load_problems(split=split or "test", n=n, seed=seed)
    spec = BenchmarkSpec("testbed", file="(generated)", id_field="id")
    return problems_from_rows(spec, list(enumerate(rows, 1)), "softthink.testbed.tasks")


def get_benchmark(name_or_yaml: str | Path) -> BenchmarkEntry:
    """The registered benchmark of that name, or an entry built from a benchmark YAML file."""
    text = str(name_or_yaml)
    if text.endswith((".yaml", ".yml")):
        spec = BenchmarkSpec.from_yaml(text)
        return BenchmarkEntry(
            spec.name,
            lambda data_dir=None, split=None: load_from_spec(spec, data_dir, split),
            spec.description,
            spec.prompt,
            spec.grader,
            spec,
        )
    if text not in BENCHMARKS:
        raise SoftthinkConfigError(
            unknown_name_message("benchmark", text, list(BENCHMARKS))
            + " A JSONL benchmark can also be given as a YAML file path.",
            param="benchmark",
            value=text,
        )
    return BENCHMARKS[text]


def load_benchmark(
    name_or_yaml: str | Path, data_dir: str | Path | None = None, split: str | None = None, **options: Any
) -> list[Problem]:
    """Problems (``id``, ``question``, ``answer``) of a built-in benchmark or of a benchmark YAML file.

    ``data_dir`` overrides where JSONL files are looked up (see the module docstring for the order).
    ``options`` go to the loader (e.g. ``n``/``seed`` for ``testbed``).
    """
    return get_benchmark(name_or_yaml).load(data_dir=data_dir, split=split, **options)
