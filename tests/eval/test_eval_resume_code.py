"""Resuming never mixes code silently: records name the softthink code that wrote them, and a run that would add
samples to a cell holding records of other code fails that cell with a clear error (unless the suite says
``resume_other_code: true``). Reading a finished cell back needs no such check."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from softthink.errors import SoftthinkConfigError
from softthink.eval import Suite
from softthink.provenance import code_identity
from tests.eval.fakes import FakeGenerate, run_with_fake

OTHER = "softthink 0.0.1 @ 0123456789ab"


def _rewrite_code(out: Path, code: str | None) -> int:
    """Set (or with None, remove) the ``code`` of every record on disk; returns how many were rewritten."""
    count = 0
    for path in out.glob("cells/*/records*.jsonl"):
        rows = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
        for row in rows:
            if code is None:
                row.pop("code", None)
            else:
                row["code"] = code
        path.write_text("".join(json.dumps(r) + "\n" for r in rows))
        count += len(rows)
    return count


def test_records_name_the_code_that_wrote_them(suite_dict, tok, fake_load):
    res = run_with_fake(suite_dict(decode=["discrete"]), FakeGenerate(tok), fake_load)
    assert res.records and {r["code"] for r in res.records} == {code_identity()}
    assert code_identity().startswith("softthink ")


def test_adding_samples_to_records_of_other_code_fails_the_cell(suite_dict, tok, fake_load, tmp_path):
    run_with_fake(suite_dict(decode=["discrete"]), FakeGenerate(tok), fake_load)
    assert _rewrite_code(tmp_path / "out", OTHER) == 12  # 6 problems x 2 samples
    more = FakeGenerate(tok)
    res = run_with_fake(suite_dict(decode=["discrete"], samples=3), more, fake_load)
    assert more.calls == []  # nothing was decoded into the cell
    (error,) = res.errors
    assert "other softthink code (12 by 'softthink 0.0.1 @ 0123456789ab'" in error
    assert code_identity() in error and "resume_other_code: true" in error and "new output_dir" in error


def test_records_from_before_records_named_their_code_count_as_other_code(suite_dict, tok, fake_load, tmp_path):
    run_with_fake(suite_dict(decode=["discrete"]), FakeGenerate(tok), fake_load)
    _rewrite_code(tmp_path / "out", None)
    res = run_with_fake(suite_dict(decode=["discrete"], samples=3), FakeGenerate(tok), fake_load)
    (error,) = res.errors
    assert "12 by 'unrecorded'" in error


def test_resume_other_code_keeps_them_and_adds_the_missing_samples(suite_dict, tok, fake_load, tmp_path):
    run_with_fake(suite_dict(decode=["discrete"]), FakeGenerate(tok), fake_load)
    _rewrite_code(tmp_path / "out", OTHER)
    more = FakeGenerate(tok)
    res = run_with_fake(suite_dict(decode=["discrete"], samples=3, resume_other_code=True), more, fake_load)
    assert res.errors == [] and len(res.records) == 18
    codes = [r["code"] for r in res.records]
    assert codes.count(OTHER) == 12 and codes.count(code_identity()) == 6


def test_a_finished_cell_of_other_code_is_read_without_error(suite_dict, tok, fake_load, tmp_path):
    first = run_with_fake(suite_dict(decode=["discrete"]), FakeGenerate(tok), fake_load)
    _rewrite_code(tmp_path / "out", OTHER)
    again = FakeGenerate(tok)
    res = run_with_fake(suite_dict(decode=["discrete"]), again, fake_load)
    assert res.errors == [] and again.calls == [] and len(res.records) == len(first.records)


def test_resume_other_code_must_be_a_bool(suite_dict):
    with pytest.raises(SoftthinkConfigError, match="resume_other_code"):
        Suite.from_dict(suite_dict(resume_other_code="yes"))


def test_records_outside_the_plan_do_not_count(suite_dict, tok, fake_load, tmp_path):
    """Records of other code for samples this run does not include (a smaller ``samples``) mix into nothing."""
    run_with_fake(suite_dict(decode=["discrete"]), FakeGenerate(tok), fake_load)
    for path in (tmp_path / "out").glob("cells/*/records*.jsonl"):
        rows = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
        kept = [dict(row, code=OTHER) for row in rows if row["sample_index"] == 1]  # sample 0 is decoded again
        path.write_text("".join(json.dumps(r) + "\n" for r in kept))
    res = run_with_fake(suite_dict(decode=["discrete"], samples=1), FakeGenerate(tok), fake_load)
    assert res.errors == [] and len(res.records) == 6 and {r["sample_index"] for r in res.records} == {0}
