"""A suite model entry with ``tp_plan``: validated, passed to `load_model`, and its cells decoded whole by every
process (tensor parallel) instead of split among them (data parallel)."""

from __future__ import annotations

import pytest

from softthink.errors import SoftthinkConfigError
from softthink.eval import Suite, run
from softthink.eval.runner import Runner
from tests.eval.fakes import FakeGenerate


def _decoded(suite_dict, models, tok, fake_load, rank):
    """The prompts process ``rank`` of 2 decodes (alone in its own output folder, as at the start of a run)."""
    fake = FakeGenerate(tok)
    out = suite_dict()["output_dir"] + f"-{rank}-{models[0].get('tp_plan', 'dp')}"
    suite = Suite.from_dict(suite_dict(decode=["discrete"], models=models, output_dir=out))
    run(suite, generate_fn=fake, load_model_fn=fake_load, num_processes=2, process_index=rank, progress=False)
    return sorted(repr(p) for call in fake.calls for p in call["prompts"])


def test_tp_model_cells_are_decoded_whole_by_every_process(suite_dict, tok, fake_load):
    plain, sharded = [{"label": "m", "path": "fake-model"}], [{"label": "m", "path": "fake-model", "tp_plan": "auto"}]
    dp = [_decoded(suite_dict, plain, tok, fake_load, rank) for rank in (0, 1)]
    tp = [_decoded(suite_dict, sharded, tok, fake_load, rank) for rank in (0, 1)]
    # data parallel: the two processes share the 12 samples (6 problems x 2); tensor parallel: each decodes all 12
    assert len(dp[0]) + len(dp[1]) == 12 and dp[0] != dp[1]
    assert tp[0] == tp[1] == sorted(dp[0] + dp[1])


def test_tp_plan_reaches_load_model(suite_dict, monkeypatch):
    seen = {}

    def fake_load_model(path, **kwargs):
        seen.update(kwargs, path=path)
        raise RuntimeError("stop here")

    monkeypatch.setattr("softthink.eval.runner.load_model", fake_load_model)
    suite = Suite.from_dict(suite_dict(models=[{"label": "m", "path": "some/dir", "tp_plan": "auto"}]))
    runner = Runner(suite, num_processes=1, process_index=0, progress=False)
    results = runner.run()
    assert seen == {"path": "some/dir", "tp_plan": "auto"}  # no device: each shard goes to its local device
    assert all("stop here" in r.error for r in results)


def test_bad_tp_plan_is_a_config_error(suite_dict):
    with pytest.raises(SoftthinkConfigError, match=r"models\[0\].tp_plan must be one of \['auto'\]"):
        Suite.from_dict(suite_dict(models=[{"label": "m", "path": "x", "tp_plan": "rowwise"}]))
