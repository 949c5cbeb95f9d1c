"""A resumed run equals an uninterrupted one, record by record: partly written batches (simulated cuts and a real
SIGKILL mid-write) are decoded again whole, with the batch's prompts, order and seed."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from softthink.eval import Suite, run
from softthink.eval.datasets import Problem
from softthink.eval.runner import derive_seed, items_to_decode, plan_batches
from tests.eval.fakes import FakeGenerate, run_with_fake

REPO = Path(__file__).resolve().parents[2]
TIMING_FIELDS = {"wall_time"}  # measured, so never equal between two runs


def assert_same_records(resumed, clean) -> None:
    """Every record of ``resumed`` equals ``clean``'s of the same key in every field but the timing, and the keys
    are the same: nothing lost, nothing twice, nothing different."""

    def by_key(records):
        return {(r["mode"], r["problem_id"], r["sample_index"]): r for r in records}

    got, want = by_key(resumed), by_key(clean)
    assert len(got) == len(resumed) and sorted(got) == sorted(want)
    for key, record in got.items():
        assert set(record) == set(want[key]), key
        for field in set(record) - TIMING_FIELDS:
            assert record[field] == want[key][field], (key, field, record[field], want[key][field])


def _cut_shard(out: Path, keep_lines: int, partial_chars: int = 30) -> Path:
    """Leave ``keep_lines`` whole records and the start of the next one in the (single) shard: a kill mid-write."""
    shard = next(out.glob("cells/*/records.rank0.jsonl"))
    lines = shard.read_text().splitlines(keepends=True)
    shard.write_text("".join(lines[:keep_lines]) + lines[keep_lines][:partial_chars])
    return shard


def test_items_to_decode():
    problems = [Problem(str(i), "q", "1") for i in range(3)]
    first, second = plan_batches(problems, samples=2, batch_size=4)
    seed = derive_seed(0, *first[0].key)
    assert items_to_decode(first, first, {}, set(), 0, False) == first
    partial = {first[0].key: {"sample_seed": seed}, first[1].key: {"sample_seed": seed}}
    cut = set(partial)  # in an unmerged shard: an interrupted run wrote them
    assert items_to_decode(first, first[2:], partial, cut, 0, False) == first  # redo it whole
    assert items_to_decode(first, first[2:], partial, cut, 0, True) == first  # seed_per_sample too (padding)
    assert items_to_decode(first, first[2:], partial, set(), 0, False) == first[2:]  # merged: a finished run's
    other_plan = {first[0].key: {"sample_seed": seed + 1}}  # written by a batch of another plan
    assert items_to_decode(first, first[1:], other_plan, {first[0].key}, 0, False) == first[1:]
    assert items_to_decode(second, second, {}, set(), 0, False) == second


def test_partly_written_batch_is_redone_whole_and_equals_an_uninterrupted_run(suite_dict, tok, fake_load, tmp_path):
    """The fake writes its row in the batch into the text: a sample decoded in another batch composition differs
    (the old resume decoded the 3 missing samples of a 4-sample batch alone)."""
    clean = run_with_fake(
        suite_dict(decode=["discrete"], output_dir=str(tmp_path / "clean")), FakeGenerate(tok), fake_load
    )
    with pytest.raises(KeyboardInterrupt):
        run_with_fake(suite_dict(decode=["discrete"]), FakeGenerate(tok, fail_after=2), fake_load)
    _cut_shard(Path(suite_dict()["output_dir"]), keep_lines=5)  # batch 2 of 3: 1 of its 4 records whole, 1 cut
    resumed = FakeGenerate(tok)
    with pytest.warns(RuntimeWarning, match="partial last record"):
        res = run_with_fake(suite_dict(decode=["discrete"]), resumed, fake_load)
    assert [len(c["prompts"]) for c in resumed.calls] == [4, 4]  # batch 2 whole, then batch 3
    assert res.errors == [] and res.cells[0].resumed == 5 and res.cells[0].generated == 7
    assert_same_records(res.records, clean.records)
    merged = [json.loads(line) for line in (res.cells[0].dir / "records.jsonl").read_text().splitlines()]
    assert_same_records(merged, clean.records)


def test_more_samples_decode_only_the_new_ones(suite_dict, tok, fake_load):
    """Records of a finished run (merged) with another plan (samples raised 2 -> 3): each new batch decodes only
    its new samples, 1 + 1 + 2 + 1 + 1 of the 5 batches of 4, 4, 4, 4, 2."""
    run_with_fake(suite_dict(decode=["discrete"]), FakeGenerate(tok), fake_load)
    more = FakeGenerate(tok)
    res = run_with_fake(suite_dict(decode=["discrete"], samples=3), more, fake_load)
    assert len(res.records) == 18 and res.errors == []
    assert [len(c["prompts"]) for c in more.calls] == [1, 1, 2, 1, 1]


@pytest.fixture(scope="module")
def testbed():
    import softthink

    return softthink.load_model("testbed", device="cpu")


@pytest.mark.slow  # about 10 s per case on a free core (grading and two runs)
@pytest.mark.parametrize("preset,seed_per_sample", [("discrete", False), ("soft", False), ("discrete", True)])
def test_resume_equals_uninterrupted_with_the_testbed_model(tmp_path, testbed, preset, seed_per_sample):
    """The real decoder, sampling (the presets' defaults): batch 1 of 2 cut after 1 of its 3 samples. Before,
    the 2 missing samples were decoded alone: other texts without seed_per_sample, other float32 entropies
    (another padding) with it."""

    def suite(name):
        return {
            "name": "resume",
            "models": [{"label": "testbed", "path": "testbed"}],
            "decode": [preset],
            "benchmarks": [{"name": "testbed", "limit": 2}],
            "samples": 2,
            "batch_size": 3,
            "seed_per_sample": seed_per_sample,
            "decode_overrides": {"max_new_tokens": 24},
            "output_dir": str(tmp_path / name),
        }

    load = lambda path: testbed  # noqa: E731
    clean = run(Suite.from_dict(suite("clean")), load_model_fn=load, progress=False, write_report=False)
    cell = clean.cells[0].dir
    lines = (cell / "records.jsonl").read_text().splitlines(keepends=True)
    (cell / "records.jsonl").unlink()
    (cell / "records.rank0.jsonl").write_text("".join(lines[:1]) + lines[1][:40])  # as a kill mid-write leaves it
    with pytest.warns(RuntimeWarning, match="partial last record"):
        resumed = run(Suite.from_dict(suite("clean")), load_model_fn=load, progress=False, write_report=False)
    assert resumed.errors == [] and resumed.cells[0].resumed == 1 and resumed.cells[0].generated == 3
    assert_same_records(resumed.records, clean.records)
    assert len({r["output_text"] for r in clean.records}) > 1  # sampled texts, not one repeated string


CHILD = r"""
import json, os, sys, time
from pathlib import Path

from softthink.eval import Suite, run
from softthink.eval.store import CellStore
from softthink.testbed.tiny import build_tiny_tokenizer
from tests.eval.fakes import FakeGenerate, run_with_fake

suite, marker = Suite.from_dict(json.loads(sys.argv[1])), Path(sys.argv[2])
original, appends = CellStore.append, []

def slow_disk_append(self, rank, records):
    # batch 2 reaches the disk in pieces, like a large write: 2 records, then part of the 3rd, then the kill
    appends.append(len(records))
    if len(appends) < 2:
        return original(self, rank, records)
    lines = [json.dumps(r, ensure_ascii=False) + "\n" for r in records]
    with self.shard_path(rank).open("a", encoding="utf-8") as handle:
        handle.write("".join(lines[:2]) + lines[2][:25])
        handle.flush()
        os.fsync(handle.fileno())
    marker.write_text("mid-write")
    time.sleep(300)

CellStore.append = slow_disk_append
tok = build_tiny_tokenizer()
run(suite, generate_fn=FakeGenerate(tok), load_model_fn=lambda p: (object(), tok), num_processes=1,
    process_index=0, progress=False)
"""


def test_sigkill_mid_write_then_resume_equals_an_uninterrupted_run(suite_dict, tok, fake_load, tmp_path):
    """A real SIGKILL of a run whose batch was half on disk; the resumed run also takes over the dead run's lock."""
    clean = run_with_fake(
        suite_dict(decode=["discrete"], output_dir=str(tmp_path / "clean")), FakeGenerate(tok), fake_load
    )
    data, marker = suite_dict(decode=["discrete"]), tmp_path / "marker"
    env = {**os.environ, "PYTHONPATH": str(REPO), "OMP_NUM_THREADS": "1"}
    child = subprocess.Popen(
        [sys.executable, "-c", CHILD, json.dumps(data), str(marker)], cwd=REPO, env=env, stderr=subprocess.PIPE
    )
    try:
        deadline = time.monotonic() + 240
        while not marker.exists():
            assert child.poll() is None, child.stderr.read().decode() if child.stderr else ""
            assert time.monotonic() < deadline, "the child never reached its second batch"
            time.sleep(0.2)
    finally:
        child.send_signal(signal.SIGKILL)
        child.wait()
    assert child.returncode == -signal.SIGKILL
    out = Path(data["output_dir"])
    shard = next(out.glob("cells/*/records.rank0.jsonl")).read_text()
    assert shard.count("\n") == 4 + 2 and not shard.endswith("\n")  # batch 1, 2 records of batch 2, a cut one
    assert (out / "run.lock").exists()  # left behind by the killed run
    resumed = FakeGenerate(tok)
    with pytest.warns(RuntimeWarning) as warned:
        res = run_with_fake(data, resumed, fake_load)
    messages = [str(w.message) for w in warned]
    assert any("partial last record" in m for m in messages)
    assert any(f"taking over the lock of a run that ended without releasing it (pid {child.pid}" in m for m in messages)
    assert [len(c["prompts"]) for c in resumed.calls] == [4, 4]
    assert res.errors == []
    assert_same_records(res.records, clean.records)
    assert not (out / "run.lock").exists()
