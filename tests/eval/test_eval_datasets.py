"""Benchmark loading: built-ins with normalised gold answers, data-dir resolution, YAML benchmarks, bad input."""

from __future__ import annotations

import json

import pytest

from softthink.errors import SoftthinkConfigError, SoftthinkDataError
from softthink.eval import datasets as ds
from softthink.eval import load_benchmark


@pytest.mark.parametrize(
    "name, n, first_id, first_answer",
    [
        ("gsm8k", 1319, "0", "18"),
        ("math500", 500, "test/precalculus/807.json", "\\left( 3, \\frac{\\pi}{2} \\right)"),
        ("aime24", 30, "60", "204"),
        ("aime25", 30, "2025-I-1", "70"),
        ("amc23", 40, "0", "27"),
    ],
)
def test_builtin_benchmarks_load_with_normalised_gold(data_dir, name, n, first_id, first_answer):
    problems = load_benchmark(name, data_dir=data_dir)
    assert len(problems) == n
    assert (problems[0].id, problems[0].answer) == (first_id, first_answer)
    assert problems[0]["question"] == problems[0].question and problems[0].question.strip()
    assert len({p.id for p in problems}) == n


def test_gsm8k_gold_strips_thousands_separators(data_dir):
    problems = load_benchmark("gsm8k", data_dir=data_dir)
    with_comma = [p for p in problems if "," in p.meta["answer"].rsplit("####", 1)[1]]
    assert with_comma and all(
        "," not in p.answer and p.answer.lstrip("-").replace(".", "").isdigit() for p in with_comma
    )


def test_aime24_zero_padding_removed(data_dir):
    padded = [p for p in load_benchmark("aime24", data_dir=data_dir) if str(p.meta["answer"]).startswith("0")]
    assert padded and all(not p.answer.startswith("0") for p in padded)


def test_gsm8k_train_split(data_dir):
    assert len(load_benchmark("gsm8k", data_dir=data_dir, split="train")) == 7473


def test_env_var_beats_default_and_argument_beats_env(tmp_path, monkeypatch, data_dir):
    (tmp_path / "amc23.jsonl").write_text(json.dumps({"id": 7, "question": "q?", "answer": 3.5}) + "\n")
    monkeypatch.setenv(ds.DATA_DIR_ENV, str(tmp_path))
    assert [(p.id, p.answer) for p in load_benchmark("amc23")] == [("7", "3.5")]
    assert len(load_benchmark("amc23", data_dir=data_dir)) == 40


def test_explicit_dir_missing_file_is_an_error_naming_it(tmp_path):
    with pytest.raises(SoftthinkDataError, match=r"gsm8k_test\.jsonl not found .*data_dir argument"):
        load_benchmark("gsm8k", data_dir=tmp_path)


def test_hub_unreachable_error_says_what_to_do(monkeypatch, tmp_path):
    import datasets

    def offline(*args, **kwargs):
        raise ConnectionError("no network")

    monkeypatch.setattr(datasets, "load_dataset", offline)
    monkeypatch.delenv(ds.DATA_DIR_ENV, raising=False)
    with pytest.raises(SoftthinkDataError) as info:
        load_benchmark("math500")
    message = str(info.value)
    assert "HuggingFaceH4/MATH-500" in message and "math500.jsonl" in message
    assert "--data-dir" in message and ds.DATA_DIR_ENV in message


def test_hub_rows_are_used_when_no_local_file(monkeypatch, tmp_path):
    import datasets

    calls = []

    def fake(path, name=None, split=None):
        calls.append((path, name, split))
        return [{"question": "2+2?", "answer": "so #### 4"}]

    monkeypatch.setattr(datasets, "load_dataset", fake)
    monkeypatch.delenv(ds.DATA_DIR_ENV, raising=False)
    assert [p.answer for p in load_benchmark("gsm8k")] == ["4"]
    assert calls == [("openai/gsm8k", "main", "test")]


# -- YAML benchmarks ----------------------------------------------------------------------------------------------


def _write(tmp_path, rows, **spec):
    (tmp_path / "b.jsonl").write_text("".join((r if isinstance(r, str) else json.dumps(r)) + "\n" for r in rows))
    spec = {"name": "mine", "path": "b.jsonl", "question_field": "prompt", "answer_field": "target", **spec}
    (tmp_path / "b.yaml").write_text("\n".join(f"{k}: {json.dumps(v)}" for k, v in spec.items()) + "\n")
    return tmp_path / "b.yaml"


def test_yaml_benchmark_without_code(tmp_path):
    path = _write(
        tmp_path,
        [
            {"key": "a", "prompt": "1+1?", "target": "2", "extra": 1},
            {"key": "b", "prompt": "half?", "target": "\\frac12"},
        ],
        id_field="key",
    )
    problems = load_benchmark(path)
    assert [(p.id, p.question, p.answer) for p in problems] == [("a", "1+1?", "2"), ("b", "half?", "\\frac12")]
    assert problems[0].meta["extra"] == 1


def test_yaml_benchmark_ids_default_to_line_index(tmp_path):
    path = _write(tmp_path, [{"prompt": "x", "target": "1"}, {"prompt": "y", "target": "2"}])
    assert [p.id for p in load_benchmark(path)] == ["0", "1"]


@pytest.mark.parametrize(
    "rows, spec, pattern",
    [
        (['{"prompt": "x", "target": "1"}', '{"prompt": "y", '], {}, r"b\.jsonl:2: invalid JSON"),
        (
            [{"prompt": "x", "target": "1"}, {"question": "y", "target": "2"}],
            {},
            r"b\.jsonl:2: record has no question field \['prompt'\]",
        ),
        ([{"prompt": "x"}], {}, r"b\.jsonl:1: record has no answer field 'target'"),
        ([{"prompt": "x", "target": "1"}], {"id_field": "uid"}, r"b\.jsonl:1: record has no id field 'uid'"),
        (
            [{"prompt": "x", "target": "1", "k": 1}, {"prompt": "y", "target": "1", "k": 1}],
            {"id_field": "k"},
            r"b\.jsonl:2: duplicate id '1' \(first seen on line 1\)",
        ),
        (
            [{"prompt": "x", "target": "twelve"}],
            {"answer_format": "aime"},
            r"b\.jsonl:1: field 'target' = 'twelve' is not a valid 'aime' answer",
        ),
        ([{"prompt": "", "target": "1"}], {}, r"b\.jsonl:1: field 'prompt' must be a non-empty string"),
        (["[1, 2]"], {}, r"b\.jsonl:1: expected a JSON object"),
        ([], {}, r"no records"),
    ],
)
def test_bad_data_errors_name_file_line_field(tmp_path, rows, spec, pattern):
    path = _write(tmp_path, rows, **spec)
    with pytest.raises(SoftthinkDataError, match=pattern):
        load_benchmark(path)


def test_bad_yaml_spec(tmp_path):
    (tmp_path / "x.yaml").write_text("name: x\npath: x.jsonl\nquestion_field: q\nanswer_feild: a\n")
    with pytest.raises(
        SoftthinkConfigError,
        match=r"unknown benchmark key\(s\) 'answer_feild' \(did you mean 'answer_field'\?\).*x\.yaml",
    ):
        load_benchmark(tmp_path / "x.yaml")
    (tmp_path / "y.yaml").write_text("name: y\npath: y.jsonl\nquestion_field: q\nanswer_format: roman\n")
    with pytest.raises(SoftthinkConfigError, match="unknown answer_format 'roman'"):
        load_benchmark(tmp_path / "y.yaml")
    with pytest.raises(SoftthinkDataError, match="does not exist"):
        load_benchmark(tmp_path / "missing.yaml")


def test_unknown_benchmark_suggests_close_names():
    with pytest.raises(SoftthinkConfigError, match=r"unknown benchmark 'gsm8'.*Did you mean 'gsm8k'"):
        load_benchmark("gsm8")


def test_register_benchmark_decorator(monkeypatch):
    monkeypatch.setattr(ds, "BENCHMARKS", dict(ds.BENCHMARKS))

    @ds.register_benchmark("toy", "two toy problems")
    def _toy(data_dir=None, split=None):
        return [ds.Problem("a", "1+1", "2"), ds.Problem("b", "2+2", "4")]

    assert [p.answer for p in load_benchmark("toy")] == ["2", "4"]
    with pytest.raises(SoftthinkConfigError, match="already registered"):
        ds.register_benchmark("toy")(_toy)


def test_testbed_benchmark_loads_tasks():
    problems = load_benchmark("testbed", n=5, seed=0)
    assert len(problems) == 5 and all(p.id and p.question and p.answer for p in problems)


def test_testbed_benchmark_missing_module_is_a_clear_error(monkeypatch):
    import sys

    monkeypatch.setitem(sys.modules, "softthink.testbed.tasks", None)
    with pytest.raises(SoftthinkDataError, match="softthink.testbed.tasks.load_problems"):
        load_benchmark("testbed")


def test_no_data_dir_default_outside_argument_and_env(monkeypatch):
    """Without --data-dir/data_dir and $SOFTTHINK_DATA_DIR the library looks nowhere local (not ../shared)."""
    monkeypatch.delenv(ds.DATA_DIR_ENV, raising=False)
    assert ds.resolve_data_dir() == (None, "none")
    assert not hasattr(ds, "DEFAULT_SHARED_DATA")


def test_no_local_file_and_no_hub_source_names_both_ways(monkeypatch, tmp_path):
    monkeypatch.delenv(ds.DATA_DIR_ENV, raising=False)
    spec = ds.BenchmarkSpec("local_only", file="local_only.jsonl")
    with pytest.raises(SoftthinkDataError) as info:
        ds.load_from_spec(spec)
    message = str(info.value)
    assert "local_only.jsonl" in message and "no data dir is set" in message
    assert "--data-dir DIR (data_dir=DIR)" in message and f"{ds.DATA_DIR_ENV}=DIR" in message


def test_env_var_dir_missing_file_is_an_error_not_a_download(monkeypatch, tmp_path):
    import datasets

    monkeypatch.setattr(datasets, "load_dataset", lambda *a, **k: pytest.fail("must not download"))
    monkeypatch.setenv(ds.DATA_DIR_ENV, str(tmp_path))
    with pytest.raises(SoftthinkDataError, match=rf"math500.jsonl not found \(data dir from \${ds.DATA_DIR_ENV}\)"):
        load_benchmark("math500")
