"""The record schema: current records pass through, old-schema records (``batch_seed``) are upgraded when read."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from softthink.errors import SoftthinkDataError
from softthink.eval import Suite
from softthink.eval.results import RECORD_SCHEMA_VERSION, upgrade_record
from softthink.eval.runner import derive_seed, rebuild_report
from softthink.eval.store import CellStore, read_jsonl
from tests.eval.fakes import FakeGenerate, run_with_fake

REPO = Path(__file__).resolve().parents[2]
COMMITTED_CELLS = REPO / "eval" / "results" / "smollm2_gsm8k50" / "cells"


def _old_schema(record: dict) -> dict:
    """A record as schema 1 wrote it: no ``record_schema`` key, the seed under ``batch_seed``."""
    old = {k: v for k, v in record.items() if k not in ("record_schema", "sample_seed")}
    old["batch_seed"] = record["sample_seed"]
    return old


def test_current_record_passes_through_unchanged():
    record = {"record_schema": RECORD_SCHEMA_VERSION, "problem_id": "0", "sample_index": 0, "sample_seed": 7}
    assert upgrade_record(record) is record


def test_schema_1_record_is_upgraded():
    old = {"problem_id": "0", "sample_index": 1, "batch_seed": 970217196, "correct": True}
    new = upgrade_record(old)
    assert new == {
        "problem_id": "0",
        "sample_index": 1,
        "sample_seed": 970217196,
        "correct": True,
        "record_schema": RECORD_SCHEMA_VERSION,
    }
    assert "batch_seed" in old  # the input is not modified


def test_record_from_a_newer_schema_is_an_error():
    with pytest.raises(SoftthinkDataError, match="record_schema = 99.*Upgrade softthink"):
        upgrade_record({"record_schema": 99, "problem_id": "0", "sample_index": 0})


def test_committed_old_schema_records_read_in_the_current_schema():
    paths = sorted(COMMITTED_CELLS.glob("*/records.jsonl"))
    assert paths, f"no committed records under {COMMITTED_CELLS}"
    raw = read_jsonl(paths[0])
    assert "batch_seed" in raw[0] and "record_schema" not in raw[0]  # the committed file is schema 1
    cell_dir = paths[0].parent
    labels = cell_dir.name.split("__")[:-1]
    store = CellStore(COMMITTED_CELLS.parent, labels, json.loads((cell_dir / "config.json").read_text()))
    assert store.dir == cell_dir  # the cell hash is unchanged by the record schema bump: a rerun resumes there
    records = store.load()
    assert len(records) == len(raw)
    for old in raw:
        new = records[(old["problem_id"], old["sample_index"])]
        assert new["sample_seed"] == old["batch_seed"] and "batch_seed" not in new
        assert new["record_schema"] == RECORD_SCHEMA_VERSION


def test_resumed_run_over_old_schema_records_generates_nothing_and_upgrades(suite_dict, tok, fake_load):
    suite = suite_dict(decode=["discrete"])
    first = run_with_fake(suite, FakeGenerate(tok), fake_load)
    path = first.cells[0].dir / "records.jsonl"
    path.write_text("".join(json.dumps(_old_schema(r)) + "\n" for r in read_jsonl(path)))
    again = FakeGenerate(tok)
    res = run_with_fake(suite, again, fake_load)
    assert again.calls == [] and res.errors == [] and res.cells[0].hash == first.cells[0].hash
    assert len(res.records) == 6 * 2
    for record in res.records:
        assert record["sample_seed"] == derive_seed(0, *_first_of_batch(record)) and "batch_seed" not in record
    on_disk = read_jsonl(path)  # the merge wrote them back in the current schema
    assert all(r["record_schema"] == RECORD_SCHEMA_VERSION and "sample_seed" in r for r in on_disk)
    assert res.rows[0]["accuracy"] == first.rows[0]["accuracy"] == 1.0


def _first_of_batch(record: dict) -> tuple[str, int]:
    """The key of the first item of the record's batch in the fixture suite (2 samples per problem, batch 4)."""
    position = int(record["problem_id"][1:]) * 2 + record["sample_index"]
    first = position - position % 4
    return f"p{first // 2}", first % 2


# -- results from the records on disk (`softthink eval report`) ---------------------------------------------------


def test_report_from_disk_matches_the_run_without_generating(suite_dict, tok, fake_load):
    suite = Suite.from_dict(suite_dict())
    ran = run_with_fake(suite_dict(), FakeGenerate(tok), fake_load)
    (ran.output_dir / "report.md").unlink()
    path = ran.cells[0].dir / "records.jsonl"
    path.write_text("".join(json.dumps(_old_schema(r)) + "\n" for r in read_jsonl(path)))  # one cell in schema 1
    before = path.read_text()
    rebuilt = rebuild_report(suite)
    assert rebuilt.errors == [] and [c.hash for c in rebuilt.cells] == [c.hash for c in ran.cells]
    assert [r["accuracy"] for r in rebuilt.rows] == [r["accuracy"] for r in ran.rows] == [1.0, 0.0]
    assert rebuilt.comparisons[0]["diff"] == ran.comparisons[0]["diff"] == -1.0
    assert [(r["problem_id"], r["sample_index"]) for r in rebuilt.records] == [
        (r["problem_id"], r["sample_index"]) for r in ran.records
    ]
    assert all("sample_seed" in r and "batch_seed" not in r for r in rebuilt.records)
    assert "| m | discrete | arith | 6 x 2 | 100.0 [100.0, 100.0]" in (ran.output_dir / "report.md").read_text()
    assert path.read_text() == before  # a report changes no record file


def test_report_marks_missing_samples_incomplete(suite_dict, tok, fake_load):
    suite = Suite.from_dict(suite_dict(decode=["discrete"]))
    ran = run_with_fake(suite_dict(decode=["discrete"]), FakeGenerate(tok), fake_load)
    more = rebuild_report(suite, samples=3, write_report=False)  # a different plan over the same cell folder
    assert more.cells[0].hash == ran.cells[0].hash and len(more.records) == 12
    assert len(more.errors) == 1 and more.errors[0].endswith("incomplete: 12 of 18 samples on disk.")
    never_run = rebuild_report(suite, decode=["soft"], write_report=False)
    assert never_run.records == [] and never_run.errors[0].endswith("incomplete: 0 of 12 samples on disk.")


def test_cli_report_over_the_committed_old_schema_results(tmp_path, data_dir, capsys):
    """`softthink eval report` over eval/results/smollm2_gsm8k50 (records of schema 1): same cells, same numbers."""
    import shutil

    from softthink.cli.main import main

    committed = COMMITTED_CELLS.parent
    copy = tmp_path / "smollm2_gsm8k50"
    shutil.copytree(committed, copy)
    code = main(
        [
            "eval",
            "report",
            str(REPO / "eval" / "suites" / "smollm2_gsm8k50.yaml"),
            "--output-dir",
            str(copy),
            "--data-dir",
            str(data_dir),
        ]
    )
    assert code == 0, capsys.readouterr().err
    summary = json.loads((copy / "summary.json").read_text())
    expected = json.loads((committed / "summary.json").read_text())
    assert [c["hash"] for c in summary["cells"]] == [c["hash"] for c in expected["cells"]]
    assert [(r["mode"], r["accuracy"], r["n_samples"]) for r in summary["rows"]] == [
        (r["mode"], r["accuracy"], r["n_samples"]) for r in expected["rows"]
    ]
    assert "| smollm2-135m-instruct | soft | gsm8k | 50 x 1 |" in capsys.readouterr().out
