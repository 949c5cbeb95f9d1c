"""Entropy-law fit, dynamics JSONL bookkeeping and the plots."""

from __future__ import annotations

import json
from types import SimpleNamespace

import numpy as np
import pytest

from softthink.errors import SoftthinkDataError
from softthink.rl.dynamics import EntropyDynamicsCallback, fit_dynamics, fit_entropy_law, law_points, read_dynamics


def test_law_fit_recovers_known_coefficients():
    rng = np.random.default_rng(0)
    h = rng.uniform(0.1, 1.5, size=60)
    r = -0.3 * np.exp(h) + 1.2
    law = fit_entropy_law(h, r)
    assert law.a == pytest.approx(0.3, abs=1e-9) and law.b == pytest.approx(1.2, abs=1e-9)
    assert law.r2 == pytest.approx(1.0) and law.n == 60
    noisy = fit_entropy_law(h, r + rng.normal(0, 0.02, size=h.size))
    assert noisy.a == pytest.approx(0.3, abs=0.03) and noisy.b == pytest.approx(1.2, abs=0.08)
    assert 0.8 < noisy.r2 < 1.0
    assert noisy.predict([0.0]) == pytest.approx(-noisy.a + noisy.b)


def test_law_fit_rejects_unfittable_input():
    with pytest.raises(SoftthinkDataError, match="at least 3"):
        fit_entropy_law([0.1, 0.2], [0.5, 0.4])
    with pytest.raises(SoftthinkDataError, match="all entropies are equal"):
        fit_entropy_law([0.5, 0.5, 0.5], [0.1, 0.2, 0.3])
    with pytest.raises(SoftthinkDataError, match="equally long"):
        fit_entropy_law([0.1, 0.2, 0.3], [0.5])
    assert np.isnan(fit_entropy_law([0.1, 0.2, 0.3], [0.5, 0.5, 0.5]).r2)  # nothing to explain


def _log(step, entropy, reward=None):
    logs = {
        "entropy/all": entropy,
        "entropy/forking": entropy * 2,
        "entropy/execution": entropy / 2,
        "entropy/frac_above": 0.1,
        "loss": 0.0,
    }
    if reward is not None:
        logs.update(reward=reward, accuracy=reward, **{"completions/mean_length": 10.0})
    return logs


def test_callback_writes_rows_carries_rollout_reward_and_truncates_on_resume(tmp_path):
    path = tmp_path / "dynamics.jsonl"
    cb = EntropyDynamicsCallback(path)
    state = SimpleNamespace(global_step=0, is_world_process_zero=True)
    cb.on_train_begin(None, state, None)
    for step, (h, r) in enumerate([(1.0, 0.2), (0.9, None), (0.8, 0.4), (0.7, None)], start=1):
        state.global_step = step
        cb.on_log(None, state, None, logs=_log(step, h, r))
    cb.on_log(None, state, None, logs={"train_runtime": 1.0})  # summary log: ignored
    rows = read_dynamics(path)
    assert [r["step"] for r in rows] == [1, 2, 3, 4]
    assert [r["fresh_rollouts"] for r in rows] == [True, False, True, False]
    assert [r["reward"] for r in rows] == [0.2, 0.2, 0.4, 0.4]
    assert rows[0]["entropy_forking"] == 2.0 and rows[0]["kl_cov_penalty"] is None
    # resume from a checkpoint at step 2: later rows go, the carried reward comes back
    resumed = EntropyDynamicsCallback(path)
    state.global_step = 2
    resumed.on_train_begin(None, state, None)
    state.global_step = 3
    resumed.on_log(None, state, None, logs=_log(3, 0.5))
    rows = read_dynamics(path)
    assert [r["step"] for r in rows] == [1, 2, 3] and rows[-1]["reward"] == 0.2


def test_fit_dynamics_uses_fresh_rollout_steps_only(tmp_path):
    rows = [
        {"step": i, "fresh_rollouts": i % 2 == 1, "entropy_all": h, "reward": -0.5 * np.exp(h) + 1.0}
        for i, h in enumerate([0.2, 9.0, 0.4, 9.0, 0.6, 9.0, 0.8], start=1)
    ]
    for row in rows:
        if not row["fresh_rollouts"]:
            row["reward"] = 123.0  # would wreck the fit if used
    law = fit_dynamics(rows)
    assert law.n == 4 and law.a == pytest.approx(0.5) and law.b == pytest.approx(1.0)
    h, r = law_points(rows, bin_size=2)  # rollout steps 1,3 | 5,7
    assert h == pytest.approx([0.3, 0.7]) and r == pytest.approx(
        [np.mean([-0.5 * np.exp(x) + 1 for x in p]) for p in ((0.2, 0.4), (0.6, 0.8))]
    )


def test_plot_dynamics_writes_a_png(tmp_path):
    from matplotlib.figure import Figure

    from softthink.rl.plots import plot_dynamics

    rows = [
        {
            "step": i,
            "fresh_rollouts": True,
            "entropy_all": h,
            "reward": 1 - 0.2 * np.exp(h),
            "entropy_forking": 2 * h,
            "entropy_execution": h / 2,
            "frac_above": 0.2,
        }
        for i, h in enumerate(np.linspace(1.0, 0.3, 8), start=1)
    ]
    fig = plot_dynamics({"forking": rows, "full": rows})
    assert isinstance(fig, Figure) and len(fig.axes) == 4
    out = tmp_path / "fig.png"
    fig.savefig(out, dpi=110)
    assert out.stat().st_size > 10_000
    assert out.read_bytes()[:4] == b"\x89PNG"


def test_read_dynamics_missing_file_is_a_clear_error(tmp_path):
    with pytest.raises(SoftthinkDataError, match="no dynamics log"):
        read_dynamics(tmp_path / "nope.jsonl")
    (tmp_path / "d.jsonl").write_text(json.dumps({"step": 2}) + "\n" + json.dumps({"step": 1}) + "\n")
    assert [r["step"] for r in read_dynamics(tmp_path / "d.jsonl")] == [1, 2]


def test_rolling_mean_is_the_trailing_window_mean():
    from softthink.rl.plots import rolling_mean

    values = [1.0, 3.0, 5.0, 7.0, 9.0]
    assert rolling_mean(values, 2) == [1.0, 2.0, 4.0, 6.0, 8.0]
    assert rolling_mean(values, 10) == [1.0, 2.0, 3.0, 4.0, 5.0]
    assert rolling_mean(values, 1) == values
