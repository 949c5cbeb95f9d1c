"""Training problems for RL as a `datasets.Dataset` in trl's conversational format.

Each row: ``prompt`` = ``[{"role": "user", "content": prompt_template with {question} replaced}]``, ``answer`` (the
gold final answer the reward grades against) and ``id``. Problems are loaded by the eval harness
(`softthink.eval.load_benchmark`), so RL and evaluation read the same data the same way. A source is:

- a registered benchmark name: ``testbed`` (the generated testbed tasks, options ``n``/``seed``), ``gsm8k``,
  ``math500``, ... (JSONL files found through ``$SOFTTHINK_DATA_DIR``, else the Hugging Face Hub);
- a benchmark YAML file (a JSONL file with its own field names, see `softthink.eval.datasets.BenchmarkSpec`);
- a ``.jsonl`` file with a ``question`` (or ``problem``) and an ``answer`` field, and optionally ``id`` (or
  ``unique_id``); the answer is taken as written.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from softthink.errors import SoftthinkConfigError, SoftthinkDataError, SoftthinkInputError, unknown_name_message
from softthink.eval.datasets import BENCHMARKS, BenchmarkSpec, Problem, load_benchmark, load_from_spec

NAMED_DATASETS = ("testbed", "gsm8k")
"""The sources the shipped recipes use; every registered benchmark name works."""

_NO_ANSWER = (
    "{where} has no gold 'answer'. RL needs an answer for every problem to compute the reward; drop "
    "unanswered problems or fill the field."
)


def jsonl_spec(path: str | Path) -> BenchmarkSpec:
    """The harness spec of an RL ``.jsonl`` file: question in ``question`` or ``problem``, gold in ``answer``
    (as written), ids from the row (``id``/``unique_id``, see `_normalise`) or the line position."""
    path = Path(path)
    return BenchmarkSpec(
        path.stem,
        path=str(path),
        question_field=("question", "problem"),
        answer_field="answer",
        answer_format="plain",
        description=f"RL problems from {path}",
        source=str(path),
    )


def load_problems(source: str, *, split: str = "train", n: int | None = None, seed: int = 0) -> list[dict]:
    """The first ``n`` problems (all when None) of ``source`` (a benchmark name, benchmark YAML or ``.jsonl``
    file) as dicts with ``id``, ``question`` and ``answer``. ``seed`` is the testbed generator's seed."""
    if source == "testbed":
        problems = load_benchmark("testbed", split=split, n=n, seed=seed)
    elif source.endswith(".jsonl"):
        problems = _load_jsonl(source)
    elif source in BENCHMARKS or source.endswith((".yaml", ".yml")):
        problems = load_benchmark(source, split=split)
    else:
        raise SoftthinkConfigError(
            unknown_name_message("RL dataset", source, [*BENCHMARKS, "<file>.jsonl", "<benchmark>.yaml"]),
            param="dataset",
            value=source,
        )
    problems = problems[:n] if n is not None else problems
    return [_normalise(problem, i, source) for i, problem in enumerate(problems)]


def _load_jsonl(source: str) -> list[Problem]:
    spec = jsonl_spec(source)
    if not Path(source).is_file():
        raise SoftthinkDataError(f"dataset file {source} does not exist.")
    try:
        problems = load_from_spec(spec)
    except SoftthinkDataError as err:  # a row without the field: say what RL needs it for
        if f"no answer field {spec.answer_field!r}" in str(err):
            raise SoftthinkDataError(_NO_ANSWER.format(where=f"{source}: a problem ({err})")) from err
        raise
    for problem in problems:
        if problem.meta.get(spec.answer_field) is None:  # JSON null: the harness would read it as "None"
            raise SoftthinkDataError(_NO_ANSWER.format(where=f"{source}: problem {problem.id!r}"))
    return problems


def _normalise(problem: Problem, index: int, source: str) -> dict:
    """``id``, ``question`` and ``answer`` of a harness problem. The id is the row's own ``id``/``unique_id`` when
    it has one, else ``<file stem>-<index>`` for a ``.jsonl`` file and the benchmark's id otherwise."""
    fallback = f"{Path(source).stem}-{index}" if source.endswith(".jsonl") else problem.id
    pid = problem.meta.get("id") or problem.meta.get("unique_id") or fallback
    if not problem.answer.strip():
        raise SoftthinkDataError(_NO_ANSWER.format(where=f"{source}: problem {pid!r}"))
    return {"id": str(pid), "question": problem.question, "answer": problem.answer}


def check_chat_template(tokenizer: Any, model_name: str = "the model") -> None:
    """Raise `SoftthinkInputError` if the tokenizer cannot render chat prompts."""
    if not getattr(tokenizer, "chat_template", None):
        raise SoftthinkInputError(
            f"the tokenizer of {model_name} has no chat template. RL prompts are chats rendered with the "
            "tokenizer's template (trl's conversational format). Use an instruct/chat model, or set "
            "tokenizer.chat_template (e.g. copy it from the instruct variant) and save the tokenizer."
        )


def build_dataset(problems: list[dict], prompt_template: str = "{question}"):
    """A `datasets.Dataset` with columns ``prompt`` (one user message), ``answer`` and ``id``."""
    from datasets import Dataset

    if not problems:
        raise SoftthinkDataError("no training problems: the dataset is empty.")
    if "{question}" not in prompt_template:
        raise SoftthinkConfigError(
            f"prompt_template {prompt_template!r} must contain '{{question}}'.",
            param="prompt_template",
            value=prompt_template,
        )
    rows = [
        {
            "prompt": [{"role": "user", "content": prompt_template.replace("{question}", p["question"])}],
            "answer": p["answer"],
            "id": p["id"],
        }
        for p in problems
    ]
    return Dataset.from_list(rows)
