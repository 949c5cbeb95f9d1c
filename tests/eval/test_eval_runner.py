"""The grid runner with a fake generate: records, resume, config hashing, sharding, bad input."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from softthink.errors import SoftthinkConfigError
from softthink.eval import Suite, run
from softthink.eval.datasets import Problem
from softthink.eval.runner import derive_seed, plan_batches, select_problems, shard_batches
from tests.eval.fakes import FakeGenerate

RECORD_FIELDS = {
    "problem_id",
    "sample_index",
    "model",
    "mode",
    "benchmark",
    "seed",
    "prompt_hash",
    "output_text",
    "extracted",
    "rule",
    "correct",
    "think_tokens",
    "answer_tokens",
    "total_tokens",
    "stop_reason",
    "think_end_reason",
    "soft_fraction",
    "entropy",
    "wall_time",
    "cell_hash",
    "gold",
}


def _run(suite_dict, fake, fake_load, **kw):
    return run(
        Suite.from_dict(suite_dict),
        generate_fn=fake,
        load_model_fn=fake_load,
        num_processes=kw.pop("np", 1),
        process_index=kw.pop("rank", 0),
        progress=False,
        **kw,
    )


def _keys(records):
    return sorted((r["mode"], r["problem_id"], r["sample_index"]) for r in records)


def test_grid_records_and_report(suite_dict, tok, fake_load):
    fake = FakeGenerate(tok)
    res = _run(suite_dict(), fake, fake_load)
    assert res.errors == []
    assert len(res.records) == 2 * 6 * 2  # modes x problems x samples
    for record in res.records:
        assert RECORD_FIELDS <= set(record)
        assert record["correct"] is (record["mode"] == "discrete")
        assert record["rule"] == "boxed" and record["wall_time"] > 0
    for cell in res.cells:  # every cell: same problems, same number of samples
        assert sorted((r["problem_id"], r["sample_index"]) for r in cell.records) == sorted(
            (f"p{i}", s) for i in range(6) for s in range(2)
        )
    rows = {r["mode"]: r for r in res.rows}
    assert rows["discrete"]["accuracy"] == 1.0 and rows["soft"]["accuracy"] == 0.0
    assert rows["soft"]["cold_stop_rate"] == 0.5 and rows["discrete"]["soft_fraction"] == 0.0
    assert res.comparisons[0]["a"] == "discrete" and res.comparisons[0]["diff"] == -1.0
    out = res.output_dir
    for name in ("report.md", "results.csv", "summary.json", "suite.resolved.yaml", "accuracy_vs_tokens.png"):
        assert (out / name).is_file(), name
    assert "| m | discrete | arith | 6 x 2 | 100.0 [100.0, 100.0]" in (out / "report.md").read_text()
    # exact prompt text kept per hash
    cell_dir = res.cells[0].dir
    prompts = [json.loads(line) for line in (cell_dir / "prompts.jsonl").read_text().splitlines()]
    assert {p["prompt_hash"] for p in prompts} == {r["prompt_hash"] for r in res.cells[0].records}
    assert prompts[0]["prompt"].startswith("user: compute ")


def test_decoder_gets_harness_settings(suite_dict, tok, fake_load):
    fake = FakeGenerate(tok)
    _run(
        suite_dict(decode=[{"label": "d", "preset": "discrete", "overrides": {"top_p": 0.5}}], seeds=[3]),
        fake,
        fake_load,
    )
    cfg = fake.calls[0]["config"]
    assert (cfg.max_new_tokens, cfg.top_p, cfg.chat_template, cfg.think_end) == (16, 0.5, True, "</think>")
    assert [c["seed"] for c in fake.calls] == [derive_seed(3, *key) for key in (("p0", 0), ("p2", 0), ("p4", 0))]


def test_resume_after_interruption_loses_and_duplicates_nothing(suite_dict, tok, fake_load, tmp_path):
    clean = _run(suite_dict(output_dir=str(tmp_path / "clean")), FakeGenerate(tok), fake_load)
    interrupted = FakeGenerate(tok, fail_after=4)  # 3 batches per cell: dies in the 2nd cell
    with pytest.raises(KeyboardInterrupt):
        _run(suite_dict(), interrupted, fake_load)
    resumed = FakeGenerate(tok)
    res = _run(suite_dict(), resumed, fake_load)
    assert len(resumed.calls) == 6 - 4
    assert _keys(res.records) == _keys(clean.records) and len(set(_keys(res.records))) == len(res.records)
    by_key = {(r["mode"], r["problem_id"], r["sample_index"]): r["output_text"] for r in clean.records}
    assert all(by_key[(r["mode"], r["problem_id"], r["sample_index"])] == r["output_text"] for r in res.records)
    assert sum(c.resumed for c in res.cells) == 4 * 4
    # a third run has nothing left to do
    again = FakeGenerate(tok)
    assert len(_run(suite_dict(), again, fake_load).records) == 24 and again.calls == []


def test_partial_last_line_is_dropped_and_redone(suite_dict, tok, fake_load):
    with pytest.raises(KeyboardInterrupt):
        _run(suite_dict(decode=["discrete"]), FakeGenerate(tok, fail_after=1), fake_load)
    shard = next(Path(suite_dict()["output_dir"]).glob("cells/*/records.rank0.jsonl"))
    lines = shard.read_text().splitlines(keepends=True)
    shard.write_text("".join(lines[:-1]) + lines[-1][:30])  # the last record was cut mid-write
    with pytest.warns(RuntimeWarning, match="partial last record"):
        res = _run(suite_dict(decode=["discrete"]), FakeGenerate(tok), fake_load)
    assert len(res.records) == 12 and len({(r["problem_id"], r["sample_index"]) for r in res.records}) == 12


def test_changed_config_gets_a_new_folder_and_never_mixes(suite_dict, tok, fake_load):
    first = _run(suite_dict(decode=["soft"]), FakeGenerate(tok), fake_load)
    changed = FakeGenerate(tok)
    second = _run(
        suite_dict(decode=["soft"], decode_overrides={"max_new_tokens": 32, "think_end": "</think>"}),
        changed,
        fake_load,
    )
    assert first.cells[0].hash != second.cells[0].hash and first.cells[0].dir.exists()
    assert second.cells[0].resumed == 0 and len(changed.calls) == 3
    assert {r["cell_hash"] for r in second.records} == {second.cells[0].hash}
    # a changed prompt or grader is a changed config too; a larger limit or more samples is not
    prompt = _run(suite_dict(decode=["soft"], prompt={"template": "Q: {question}"}), FakeGenerate(tok), fake_load)
    assert prompt.cells[0].hash != first.cells[0].hash
    more = FakeGenerate(tok)
    bigger = _run(suite_dict(decode=["soft"], samples=3), more, fake_load)
    assert bigger.cells[0].hash == first.cells[0].hash and bigger.cells[0].resumed == 12
    assert len(bigger.records) == 18


def test_limit_and_ids_select_the_same_problems_in_every_cell(suite_dict, tok, fake_load):
    res = _run(suite_dict(limit=2), FakeGenerate(tok), fake_load)
    assert {r["problem_id"] for r in res.records} == {"p0", "p1"}
    res = _run(suite_dict(ids=["p5", "p3"]), FakeGenerate(tok), fake_load)
    assert {r["problem_id"] for r in res.records} == {"p3", "p5"}
    res = _run(suite_dict(ids=["p9"]), FakeGenerate(tok), fake_load)
    assert all("no problem id(s) ['p9']" in e for e in res.errors) and len(res.errors) == 2


def test_select_problems():
    problems = [Problem(str(i), "q", "1") for i in range(5)]
    assert [p.id for p in select_problems(problems, 2, None, "b")] == ["0", "1"]
    assert [p.id for p in select_problems(problems, 1, ["3", "1"], "b")] == ["3"]


# -- data parallel ---------------------------------------------------------------------------------------------------


def test_shard_batches_partition_the_plan():
    problems = [Problem(str(i), "q", "1") for i in range(7)]
    plan = plan_batches(problems, samples=3, batch_size=4)
    assert [len(b) for b in plan] == [4, 4, 4, 4, 4, 1]
    shards = [shard_batches(plan, 3, r) for r in range(3)]
    keys = [it.key for shard in shards for batch in shard for it in batch]
    assert sorted(keys) == sorted((str(i), s) for i in range(7) for s in range(3)) and len(set(keys)) == 21
    with pytest.raises(Exception, match="process_index"):
        shard_batches(plan, 2, 2)


def test_two_processes_write_shards_and_main_merges(suite_dict, tok, fake_load):
    rank1, rank0 = FakeGenerate(tok), FakeGenerate(tok)
    part = _run(suite_dict(), rank1, fake_load, np=2, rank=1)  # a non-main process writes no report
    assert not (part.output_dir / "report.md").exists()
    res = _run(suite_dict(), rank0, fake_load, np=2, rank=0)
    assert len(rank1.calls) == 2 and len(rank0.calls) == 4  # 3 batches per cell: ranks take 1 and 2
    assert {tuple(c["prompts"][0][0]["content"]) for c in rank1.calls}.isdisjoint(
        {tuple(c["prompts"][0][0]["content"]) for c in rank0.calls}
    )
    assert len(res.records) == 24 and len(set(_keys(res.records))) == 24 and res.errors == []
    for cell in res.cells:
        assert not list(cell.dir.glob("records.rank*.jsonl"))  # merged
        assert len((cell.dir / "records.jsonl").read_text().splitlines()) == 12


# -- bad input keeps the rest of the grid running ----------------------------------------------------------------------


def test_unknown_names_stop_the_run_before_any_cell_runs(suite_dict, tok, fake_load):
    """Every decode preset and benchmark name is checked first: a typo no longer lets the good cells run (and
    take their time) before it is reported; every bad name is listed at once."""
    fake = FakeGenerate(tok)
    with pytest.raises(SoftthinkConfigError) as err:
        _run(
            suite_dict(decode=["discrete", "sofft"], benchmarks=[suite_dict()["benchmarks"][0], "gsm8kk"]),
            fake,
            fake_load,
        )
    message = str(err.value)
    assert "2 name(s) of the suite do not resolve; nothing was run" in message
    assert "unknown decode preset 'sofft'. Did you mean 'soft'?" in message
    assert "unknown benchmark 'gsm8kk'. Did you mean 'gsm8k'?" in message
    assert fake.calls == [] and not (Path(suite_dict()["output_dir"]) / "cells").exists()


def test_model_that_fails_to_load_fails_its_cells_only(suite_dict, tok):
    def load(path):
        if path == "broken":
            raise OSError("no such model")
        return object(), tok

    data = suite_dict(
        models=[{"label": "bad", "path": "broken", "hint": "Fetch it first."}, {"label": "good", "path": "ok"}]
    )
    res = run(
        Suite.from_dict(data),
        generate_fn=FakeGenerate(tok),
        load_model_fn=load,
        num_processes=1,
        process_index=0,
        progress=False,
    )
    assert len(res.errors) == 2 and all(
        "'bad' (broken) failed to load: no such model Fetch it first." in e for e in res.errors
    )
    assert {r["model"] for r in res.records} == {"good"} and len(res.records) == 24


def test_bad_benchmark_file_fails_its_cells_only(suite_dict, tok, fake_load, tmp_path):
    (tmp_path / "bad.jsonl").write_text('{"q": "compute 1+2", "gold": "3"}\n{"q": "compute 2+2"}\n')
    (tmp_path / "bad.yaml").write_text("name: bad\npath: bad.jsonl\nquestion_field: q\nanswer_field: gold\n")
    data = suite_dict(benchmarks=[str(tmp_path / "bad.yaml"), suite_dict()["benchmarks"][0]])
    res = _run(data, FakeGenerate(tok), fake_load)
    assert len(res.errors) == 2 and all("bad.jsonl:2: record has no answer field 'gold'" in e for e in res.errors)
    assert {r["benchmark"] for r in res.records} == {"arith"}


def test_run_from_yaml_with_set_options(suite_dict, tok, fake_load, tmp_path):
    import yaml

    path = tmp_path / "suite.yaml"
    path.write_text(yaml.safe_dump(suite_dict()))
    res = run(
        path,
        generate_fn=FakeGenerate(tok),
        load_model_fn=fake_load,
        num_processes=1,
        process_index=0,
        progress=False,
        set_options=["samples=1", "benchmarks.0.limit=2"],
    )
    assert len(res.records) == 2 * 2 and res.suite.samples == 1
    assert (
        f"softthink eval run {path} --set samples=1 --set benchmarks.0.limit=2"
        in (res.output_dir / "report.md").read_text()
    )


def test_changed_grader_regrades_without_generating(suite_dict, tok, fake_load):
    first = _run(suite_dict(decode=["discrete"]), FakeGenerate(tok), fake_load)
    assert all(r["correct"] and r["rule"] == "boxed" for r in first.records)
    again = FakeGenerate(tok)
    strict = _run(suite_dict(decode=["discrete"], grader={"rules": ["answer_is"]}), again, fake_load)
    assert again.calls == [] and strict.cells[0].hash == first.cells[0].hash
    assert all(not r["correct"] and r["rule"] is None for r in strict.records)
    on_disk = [json.loads(line) for line in (strict.cells[0].dir / "records.jsonl").read_text().splitlines()]
    assert {r["grader"] for r in on_disk} == {strict.cells[0].grader.fingerprint()} != {first.records[0]["grader"]}


def test_report_with_all_wrong_single_samples(suite_dict, tok, fake_load):
    """One sample per problem: Wilson CIs, McNemar in the comparison, a plot even at 0% accuracy."""
    res = _run(suite_dict(samples=1), FakeGenerate(tok), fake_load)
    rows = {r["mode"]: r for r in res.rows}
    assert rows["soft"]["ci_method"] == "wilson" and rows["soft"]["ci_low"] == 0.0
    assert res.comparisons[0]["a_only"] == 6 and res.comparisons[0]["mcnemar_p"] == pytest.approx(2 / 64)
    assert (res.output_dir / "accuracy_vs_tokens.png").stat().st_size > 1000
    assert "6 / 0, p=0.031" in (res.output_dir / "report.md").read_text()


def test_seed_per_sample_makes_records_independent_of_batch_size(tmp_path):
    """With seed_per_sample, the real decoder gives every sample the same text whatever the batch size (the
    shipped testbed model in float64, sampled discrete and Dirichlet soft decoding)."""
    import torch

    import softthink

    model_and_tokenizer = softthink.load_model("testbed", device="cpu", dtype=torch.float64)
    texts = {}
    for batch_size in (1, 5):
        suite = Suite.from_dict(
            {
                "name": "per_sample",
                "models": [{"label": "testbed", "path": "testbed"}],
                "decode": ["discrete", {"label": "soft_dirichlet", "preset": "soft_dirichlet"}],
                "benchmarks": [{"name": "testbed", "limit": 4}],
                "samples": 2,
                "batch_size": batch_size,
                "seed_per_sample": True,
                "decode_overrides": {"max_new_tokens": 40},
                "output_dir": str(tmp_path / f"bs{batch_size}"),
            }
        )
        res = run(suite, load_model_fn=lambda path: model_and_tokenizer, progress=False)
        assert not res.errors
        records = [r for cell in res.cells for r in cell.records]
        assert len(records) == 2 * 4 * 2
        assert all(r["sample_seed"] == derive_seed(0, r["problem_id"], r["sample_index"]) for r in records)
        texts[batch_size] = {(r["mode"], r["problem_id"], r["sample_index"]): r["output_text"] for r in records}
    assert texts[1] == texts[5]
    # the two samples of a problem are different draws
    assert any(texts[1][(m, p, 0)] != texts[1][(m, p, 1)] for (m, p, _) in texts[1])


def test_seed_per_sample_is_part_of_the_cell_hash(suite_dict, tok, fake_load):
    plain = _run(suite_dict(decode=["discrete"]), FakeGenerate(tok), fake_load)
    per_sample = _run(suite_dict(decode=["discrete"], seed_per_sample=True), FakeGenerate(tok), fake_load)
    assert plain.cells[0].records[0]["cell_hash"] != per_sample.cells[0].records[0]["cell_hash"]
    with pytest.raises(SoftthinkConfigError, match="seed_per_sample must be true or false"):
        Suite.from_dict(suite_dict(seed_per_sample="yes"))


def test_generate_fn_returning_one_generation_for_a_batch_fails_its_cells_with_a_clear_error(
    suite_dict, tok, fake_load
):
    fake = FakeGenerate(tok)

    def single(*args, **kwargs):  # a generate_fn that forgets the batch: one Generation, not a list
        return fake(*args, **kwargs)[0]

    res = _run(suite_dict(), single, fake_load)
    assert res.errors and all("generate returned a Generation for a batch of" in e for e in res.errors)
    assert all("must return a list of generations" in e for e in res.errors)
    assert res.records == []
