"""Continuous batching in the runner: with ``seed_per_sample`` one `generate` call takes a window of planned batches
with ``batch_size`` slots, and its samples equal those of fixed batches."""

from __future__ import annotations

import pytest

from softthink.eval import Suite, run
from softthink.eval.runner import REFILL_BATCHES, generation_windows
from tests.eval.fakes import FakeGenerate, run_with_fake


def test_windows_group_the_planned_batches():
    todo = [([i], [i]) for i in range(2 * REFILL_BATCHES + 3)]
    assert [len(w) for w in generation_windows(todo, continuous=True)] == [REFILL_BATCHES, REFILL_BATCHES, 3]
    assert [len(w) for w in generation_windows(todo, continuous=False)] == [1] * len(todo)
    assert [pair for w in generation_windows(todo, continuous=True) for pair in w] == todo


def test_seed_per_sample_cells_decode_a_window_with_batch_size_slots(suite_dict, tok, fake_load):
    fake = FakeGenerate(tok)
    res = run_with_fake(suite_dict(decode=["discrete"], seed_per_sample=True, batch_size=2, samples=2), fake, fake_load)
    assert res.errors == [] and len(res.records) == 12
    # 12 samples = 6 planned batches of 2: one call (REFILL_BATCHES >= 6) holding all of them, 2 slots
    assert [(len(c["prompts"]), c["max_batch_size"]) for c in fake.calls] == [(12, 2)]
    assert len(fake.calls[0]["seeds"]) == 12 and len(set(fake.calls[0]["seeds"])) == 12


@pytest.mark.parametrize(
    "changes",
    [dict(seed_per_sample=False), dict(seed_per_sample=True, continuous_batching=False)],
    ids=["batch-seeds", "switched-off"],
)
def test_fixed_batches_without_seed_per_sample_or_when_switched_off(suite_dict, tok, fake_load, changes):
    fake = FakeGenerate(tok)
    res = run_with_fake(suite_dict(decode=["discrete"], batch_size=4, samples=2, **changes), fake, fake_load)
    assert res.errors == [] and len(res.records) == 12
    assert [(len(c["prompts"]), c["max_batch_size"]) for c in fake.calls] == [(4, None)] * 3


def test_continuous_batching_must_be_a_bool(suite_dict):
    from softthink.errors import SoftthinkConfigError

    with pytest.raises(SoftthinkConfigError, match="continuous_batching"):
        Suite.from_dict(suite_dict(continuous_batching="yes"))


@pytest.fixture(scope="module")
def testbed():
    import softthink

    return softthink.load_model("testbed", device="cpu")


@pytest.mark.parametrize("preset", ["discrete", "soft"])
def test_continuous_and_fixed_batches_give_the_same_samples_with_the_testbed_model(tmp_path, testbed, preset):
    """The real decoder, sampling: rows of different lengths leave and refill their slots, and every sample is the
    one fixed batches decode (same text and tokens; float32 entropies up to rounding of another padding)."""

    def suite(name, continuous):
        return {
            "name": "cb",
            "models": [{"label": "testbed", "path": "testbed"}],
            "decode": [preset],
            "benchmarks": [{"name": "testbed", "limit": 6}],
            "samples": 2,
            "batch_size": 3,
            "seed_per_sample": True,
            "continuous_batching": continuous,
            "decode_overrides": {"max_new_tokens": 64},
            "output_dir": str(tmp_path / name),
        }

    load = lambda path: testbed  # noqa: E731
    fixed = run(Suite.from_dict(suite("fixed", False)), load_model_fn=load, progress=False, write_report=False)
    cont = run(Suite.from_dict(suite("cont", True)), load_model_fn=load, progress=False, write_report=False)
    key = lambda r: (r["problem_id"], r["sample_index"])  # noqa: E731
    want = {key(r): r for r in fixed.records}
    got = {key(r): r for r in cont.records}
    assert sorted(got) == sorted(want) and len(got) == 12
    for k, record in got.items():
        for field in ("output_text", "total_tokens", "think_tokens", "correct", "sample_seed", "cell_hash"):
            assert record[field] == want[k][field], (k, field)
        assert record["entropy"]["mean"] == pytest.approx(want[k]["entropy"]["mean"], abs=1e-5)
    assert len({r["total_tokens"] for r in fixed.records}) > 1  # rows of different lengths: slots were refilled
