"""Training problems for RL as a `datasets.Dataset` in trl's conversational format.

Each row: ``prompt`` = ``[{"role": "user", "content": prompt_template with {question} replaced}]``, ``answer`` (the
gold final answer the reward grades against) and ``id``. Sources: the testbed tasks, GSM8K (through the eval
harness's loader) or any JSONL file with ``question`` and ``answer`` fields.
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from softthink.errors import SoftthinkConfigError, SoftthinkDataError, SoftthinkInputError, unknown_name_message

NAMED_DATASETS = ("testbed", "gsm8k")


def load_problems(source: str, *, split: str = "train", n: int | None = None, seed: int = 0) -> list[dict]:
    """Problems as dicts with ``id``, ``question`` and ``answer`` from a named source or a JSONL path."""
    if source == "testbed":
        from softthink.testbed.tasks import load_problems as testbed_problems

        records = testbed_problems(split=split, n=n, seed=seed)
    elif source == "gsm8k":
        from softthink.eval import load_benchmark

        records = _as_list(load_benchmark("gsm8k", split=split))
        records = records[:n] if n is not None else records
    elif source.endswith(".jsonl"):
        path = Path(source)
        if not path.exists():
            raise SoftthinkDataError(f"dataset file {path} does not exist.")
        records = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
        records = records[:n] if n is not None else records
    else:
        raise SoftthinkConfigError(unknown_name_message("RL dataset", source, [*NAMED_DATASETS, "<file>.jsonl"]),
                                   param="dataset", value=source)
    return [_normalise(record, i, source) for i, record in enumerate(records)]


def _as_list(benchmark: Any) -> list:
    """Accept what the eval loader returns: a list of records or an object with ``.problems``."""
    if isinstance(benchmark, list):
        return benchmark
    for attribute in ("problems", "records", "items"):
        if hasattr(benchmark, attribute):
            value = getattr(benchmark, attribute)
            return list(value() if callable(value) else value)
    return list(benchmark)


def _field(record: Any, name: str) -> Any:
    return record.get(name) if isinstance(record, dict) else getattr(record, name, None)


def _normalise(record: Any, index: int, source: str) -> dict:
    question = _field(record, "question") or _field(record, "problem")
    answer = _field(record, "answer")
    pid = _field(record, "id") or _field(record, "unique_id") or f"{Path(source).stem}-{index}"
    if not question:
        raise SoftthinkDataError(f"{source}: problem {pid!r} has no 'question' (or 'problem') text.")
    if answer is None or str(answer).strip() == "":
        raise SoftthinkDataError(
            f"{source}: problem {pid!r} has no gold 'answer'. RL needs an answer for every problem to compute the "
            "reward; drop unanswered problems or fill the field.")
    return {"id": str(pid), "question": str(question), "answer": str(answer)}


def check_chat_template(tokenizer: Any, model_name: str = "the model") -> None:
    """Raise `SoftthinkInputError` if the tokenizer cannot render chat prompts."""
    if not getattr(tokenizer, "chat_template", None):
        raise SoftthinkInputError(
            f"the tokenizer of {model_name} has no chat template. RL prompts are chats rendered with the "
            "tokenizer's template (trl's conversational format). Use an instruct/chat model, or set "
            "tokenizer.chat_template (e.g. copy it from the instruct variant) and save the tokenizer.")


def build_dataset(problems: list[dict], prompt_template: str = "{question}"):
    """A `datasets.Dataset` with columns ``prompt`` (one user message), ``answer`` and ``id``."""
    from datasets import Dataset

    if not problems:
        raise SoftthinkDataError("no training problems: the dataset is empty.")
    if "{question}" not in prompt_template:
        raise SoftthinkConfigError(f"prompt_template {prompt_template!r} must contain '{{question}}'.",
                                   param="prompt_template", value=prompt_template)
    rows = [{"prompt": [{"role": "user", "content": prompt_template.replace("{question}", p["question"])}],
             "answer": p["answer"], "id": p["id"]} for p in problems]
    return Dataset.from_list(rows)
