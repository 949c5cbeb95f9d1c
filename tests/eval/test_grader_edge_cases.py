"""The grader agrees with the hand labels of `eval/grader_cases/edge_cases.jsonl` at least as often as the figure
committed in `eval/results/grader_edge_cases.md`."""

from __future__ import annotations

import importlib.util
import re
import sys
from functools import cache
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
REPORT = ROOT / "eval" / "results" / "grader_edge_cases.md"


@cache
def _script():
    spec = importlib.util.spec_from_file_location("grader_edge_cases", ROOT / "experiments" / "grader_edge_cases.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


@cache
def _scored(holdout: bool = False):
    script = _script()
    return script.score(script.load_cases(script.HOLDOUT if holdout else script.CASES))


def _committed_agreement(label: str = "Agreement") -> tuple[int, int]:
    match = re.search(rf"\*\*{label}: (\d+) / (\d+) = ", REPORT.read_text(encoding="utf-8"))
    assert match, f"{REPORT} has no '**{label}: a / n = ...' line; rerun experiments/grader_edge_cases.py --out"
    return int(match.group(1)), int(match.group(2))


def test_case_set_is_large_labelled_and_mixed():
    cases = _script().load_cases()
    real = [c for c in cases if not c["source"].startswith("synthetic:")]
    assert len(cases) >= 150 and len(real) >= 50
    assert 0.3 < sum(c["label"] for c in cases) / len(cases) < 0.7
    formats = {c["source"] for c in cases} - {c["source"] for c in real}
    for needed in ("units", "percent", "thousands", "latex", "interval", "tuple", "multibox", "truncated"):
        assert f"synthetic:{needed}" in formats


def test_agreement_stays_at_the_committed_figure():
    scored = _scored()
    agree, total = _committed_agreement()
    assert len(scored) == total, "the case set changed: rerun experiments/grader_edge_cases.py --out ..."
    disagreements = [s.case["id"] for s in scored if not s.agrees]
    assert sum(s.agrees for s in scored) >= agree, f"disagreements now: {disagreements}"
    assert agree / total >= 0.97


def test_holdout_agreement_stays_at_the_committed_figure():
    scored = _scored(holdout=True)
    agree, total = _committed_agreement("Hold-out agreement")
    assert len(scored) == total >= 40
    assert sum(s.agrees for s in scored) >= agree, [s.case["id"] for s in scored if not s.agrees]


def test_every_disagreement_in_the_report_has_a_comment():
    for s in _scored() + _scored(holdout=True):
        if not s.agrees:
            assert s.case["id"] in _script().COMMENTS, f"{s.case['id']}: add a comment to COMMENTS"


@pytest.mark.parametrize(
    "bad", ['{"id": "x"}', '{"id": "x", "source": "s", "gold": "1", "output": "1", "label": 1, "note": ""}']
)
def test_malformed_cases_are_rejected_with_the_line(tmp_path, bad):
    path = tmp_path / "cases.jsonl"
    path.write_text(bad + "\n", encoding="utf-8")
    with pytest.raises(ValueError, match=r"cases.jsonl:1"):
        _script().load_cases(path)
