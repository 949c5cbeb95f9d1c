"""The record schema: current records pass through, old-schema records (``batch_seed``) are upgraded when read."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.eval.fakes import FakeGenerate
from softthink.errors import SoftthinkDataError
from softthink.eval import Suite, run
from softthink.eval.results import RECORD_SCHEMA_VERSION, upgrade_record
from softthink.eval.runner import derive_seed
from softthink.eval.store import CellStore, read_jsonl

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
    assert new == {"problem_id": "0", "sample_index": 1, "sample_seed": 970217196, "correct": True,
                   "record_schema": RECORD_SCHEMA_VERSION}
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
    first = run(Suite.from_dict(suite), generate_fn=FakeGenerate(tok), load_model_fn=fake_load, num_processes=1,
                process_index=0, progress=False)
    path = first.cells[0].dir / "records.jsonl"
    path.write_text("".join(json.dumps(_old_schema(r)) + "\n" for r in read_jsonl(path)))
    again = FakeGenerate(tok)
    res = run(Suite.from_dict(suite), generate_fn=again, load_model_fn=fake_load, num_processes=1, process_index=0,
              progress=False)
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
