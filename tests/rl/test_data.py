"""RL problems come through the eval harness's loader: named benchmarks, benchmark YAMLs and plain JSONL files."""

from __future__ import annotations

import json

import pytest

from softthink.errors import SoftthinkConfigError, SoftthinkDataError
from softthink.eval import load_benchmark
from softthink.rl.data import load_problems


def _write(path, rows):
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def test_testbed_source_is_the_harness_testbed_benchmark():
    problems = load_problems("testbed", split="train", n=12, seed=3)
    harness = load_benchmark("testbed", split="train", n=12, seed=3)
    assert problems == [{"id": p.id, "question": p.question, "answer": p.answer} for p in harness]
    assert problems[0]["id"].startswith("train-3-") and problems[0]["answer"].lstrip("-").isdigit()


def test_jsonl_fields_ids_and_limit(tmp_path):
    path = _write(
        tmp_path / "mix.jsonl",
        [
            {"question": "1+1?", "answer": 2, "id": 7},
            {"problem": "2+2?", "answer": "4", "unique_id": "u/1"},
            {"question": "3+3?", "answer": " 6 "},
            {"question": "4+4?", "answer": "8"},
        ],
    )
    assert load_problems(str(path)) == [
        {"id": "7", "question": "1+1?", "answer": "2"},
        {"id": "u/1", "question": "2+2?", "answer": "4"},
        {"id": "mix-2", "question": "3+3?", "answer": "6"},
        {"id": "mix-3", "question": "4+4?", "answer": "8"},
    ]
    assert [p["id"] for p in load_problems(str(path), n=2)] == ["7", "u/1"]


def test_jsonl_errors_name_the_file_and_the_line(tmp_path):
    with pytest.raises(SoftthinkDataError, match=r"nulls.jsonl:1: field 'answer' is null"):
        load_problems(str(_write(tmp_path / "nulls.jsonl", [{"question": "1+1?", "answer": None}])))
    with pytest.raises(SoftthinkDataError, match=r"missing.jsonl:2: record has no answer field"):
        load_problems(str(_write(tmp_path / "missing.jsonl", [{"question": "a", "answer": "1"}, {"question": "b"}])))
    with pytest.raises(SoftthinkDataError, match=r"noq.jsonl:1: record has no question field"):
        load_problems(str(_write(tmp_path / "noq.jsonl", [{"text": "a", "answer": "1"}])))
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"question": "a", "answer": "1"}\n{not json\n')
    with pytest.raises(SoftthinkDataError, match=r"bad.jsonl:2: invalid JSON"):
        load_problems(str(bad))
    with pytest.raises(SoftthinkDataError, match="does not exist"):
        load_problems(str(tmp_path / "absent.jsonl"))


def test_benchmark_yaml_with_its_own_field_names(tmp_path):
    _write(tmp_path / "arith.jsonl", [{"uid": f"p{i}", "q": f"compute {i}+1", "gold": str(i + 1)} for i in range(3)])
    (tmp_path / "arith.yaml").write_text(
        "name: arith\npath: arith.jsonl\nquestion_field: q\nanswer_field: gold\nid_field: uid\n"
    )
    assert load_problems(str(tmp_path / "arith.yaml"), n=2) == [
        {"id": "p0", "question": "compute 0+1", "answer": "1"},
        {"id": "p1", "question": "compute 1+1", "answer": "2"},
    ]


def test_unknown_source_lists_the_registered_benchmarks():
    with pytest.raises(SoftthinkConfigError, match="unknown RL dataset 'gsm9k'.*gsm8k.*math500"):
        load_problems("gsm9k")


def test_gsm8k_from_the_data_dir_matches_the_harness(data_dir, monkeypatch):
    monkeypatch.setenv("SOFTTHINK_DATA_DIR", str(data_dir))
    problems = load_problems("gsm8k", split="test", n=5)
    harness = load_benchmark("gsm8k", split="test")[:5]
    assert problems == [{"id": p.id, "question": p.question, "answer": p.answer} for p in harness]
