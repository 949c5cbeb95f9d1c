"""Multiple-choice and short-answer benchmarks from local JSONL: GPQA-Diamond and MMLU-Pro layouts, a user's MCQ
YAML, and a suite that grades them with the benchmark's answer format."""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import pytest

from softthink.errors import SoftthinkDataError
from softthink.eval import Suite, load_benchmark, run
from tests.eval.fakes import FakeGenerate

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "mcq"


def test_gpqa_diamond_layout_shuffles_options_stably():
    problems = load_benchmark("gpqa_diamond", data_dir=FIXTURES)
    assert [p.id for p in problems] == ["rec1", "rec2", "rec3"]
    assert [p.answer for p in problems] == ["D", "B", "A"]  # pinned: the shuffle depends only on the record id
    for p, correct in zip(problems, ["Nitrogen", "Newton", "Mitochondrion"]):
        choices = p.meta["choices"]
        assert sorted(choices) == sorted(set(choices)) and len(choices) == 4
        assert choices["ABCD".index(p.answer)] == correct
        assert f"({p.answer}) {correct}" in p.question
    again = load_benchmark("gpqa_diamond", data_dir=FIXTURES)
    assert [(p.answer, p.meta["choices"]) for p in again] == [(p.answer, p.meta["choices"]) for p in problems]
    assert problems[0].meta["High-level domain"] == "Chemistry"


def test_mmlu_pro_layout_has_ten_letters():
    problems = load_benchmark("mmlu_pro", data_dir=FIXTURES)
    assert [(p.id, p.answer) for p in problems] == [("70", "B"), ("71", "C"), ("72", "B")]
    assert problems[0].question.endswith("(J) 60") and len(problems[0].meta["choices"]) == 10
    assert problems[1].meta["category"] == "physics"


def test_user_mcq_yaml_and_bad_records(tmp_path):
    problems = load_benchmark(FIXTURES / "capitals_mcq.yaml")
    assert [p.answer for p in problems] == ["A", "C", "D", "B"]
    assert problems[0].question == "What is the capital of France?\n\n(A) Paris\n(B) London\n(C) Berlin\n(D) Madrid"
    shutil.copy(FIXTURES / "capitals_mcq.yaml", tmp_path / "bad.yaml")
    (tmp_path / "capitals_mcq.jsonl").write_text(
        json.dumps({"id": "x", "question": "?", "choices": ["a", "b"], "answer": "D"}) + "\n"
    )
    with pytest.raises(SoftthinkDataError, match="gold answer 'D' but only 2 options"):
        load_benchmark(tmp_path / "bad.yaml")
    (tmp_path / "capitals_mcq.jsonl").write_text(
        json.dumps({"id": "x", "question": "?", "choices": "a,b", "answer": "A"}) + "\n"
    )
    with pytest.raises(SoftthinkDataError, match="'choices' must be a list of 2-10"):
        load_benchmark(tmp_path / "bad.yaml")


class ChoiceFake(FakeGenerate):
    """Answers each capital question with its correct option: by letter in 'discrete', by option text in 'soft',
    and says "the answer is A" first (then corrects itself) to check that the last statement wins."""

    def __call__(self, model, prompts, tokenizer=None, config=None, seeds=None):
        gens = super().__call__(model, ["compute 1+1"] * len(prompts), tokenizer, config, seeds)
        capitals = {"France": "Paris", "Germany": "Berlin", "Spain": "Madrid", "United Kingdom": "London"}
        for gen, prompt in zip(gens, prompts):
            text = prompt if isinstance(prompt, str) else prompt[-1]["content"]
            country = re.search(r"capital of (?:the )?([A-Z][\w ]+)\?", text).group(1)
            letter = re.search(rf"\(([A-D])\) {capitals[country]}", text).group(1)
            final = f"The answer is ({letter})." if config.mode == "discrete" else f"The answer is {capitals[country]}."
            gen.text = gen.answer_text = "A train of thought: the answer is A? No.\n" + final
        return gens


def test_suite_grades_mcq_benchmark_with_its_answer_format(tmp_path, tok, fake_load):
    suite = Suite.from_dict(
        {
            "name": "mcq",
            "models": [{"label": "m", "path": "fake"}],
            "decode": ["discrete", "soft"],
            "benchmarks": [str(FIXTURES / "capitals_mcq.yaml")],
            "samples": 1,
            "batch_size": 4,
            "decode_overrides": {"max_new_tokens": 16},
            "output_dir": str(tmp_path / "out"),
        }
    )
    res = run(suite, generate_fn=ChoiceFake(tok), load_model_fn=fake_load, progress=False)
    assert res.errors == []
    by_mode = {m: [r for r in res.records if r["mode"] == m] for m in ("discrete", "soft")}
    assert all(r["correct"] and r["rule"] == "answer_is" for r in by_mode["discrete"])
    assert all(r["correct"] and r["rule"] == "option_text" for r in by_mode["soft"])
    assert all(r["choices"] == ["Paris", "London", "Berlin", "Madrid"] for r in res.records)
    assert {r["extracted"] for r in by_mode["soft"]} == {"A", "B", "C", "D"}


def test_short_answer_benchmark_exact_match(tmp_path, tok, fake_load):
    problems = load_benchmark(FIXTURES / "short_answer.yaml")
    assert [p.answer for p in problems] == ["Mars", "William Shakespeare|Shakespeare"]
    from softthink.eval.grading import GraderConfig, grade

    grader = GraderConfig(answer_format="exact_match")
    assert grade("It is red.\nThe answer is shakespeare.", problems[1].answer, grader).correct
    assert not grade("The answer is Jupiter", problems[0].answer, grader).correct
