"""Effective rank of hidden states: hand-computed cases, streaming = direct, layers of a tiny model, the plot."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from softthink.analysis.rank import (
    RankTrace,
    compare_rank,
    effective_rank,
    effective_rank_curve,
    generation_rank,
    hidden_state_rank,
    rank_entropy_figure,
)
from softthink.errors import SoftthinkConfigError
from tests.conftest import tiny


def test_rank_one_data_has_effective_rank_one():
    direction = torch.tensor([1.0, 2.0, -1.0, 0.5])
    x = torch.stack([c * direction + torch.tensor([3.0, 0, 0, 1]) for c in (0.0, 1.0, -2.0, 5.0)])
    assert effective_rank(x) == pytest.approx(1.0)


@pytest.mark.parametrize("n", [1, 2, 3, 6])
def test_orthogonal_equal_norm_directions_have_effective_rank_n(n):
    eye = torch.eye(8)[:n] * 2.5
    x = torch.cat([eye, -eye]) + 7.0  # +-e_i: centred rows span n orthogonal directions with equal norm
    assert effective_rank(x) == pytest.approx(float(n))


def test_two_unequal_directions_by_hand():
    x = torch.tensor([[3.0, 0.0], [-3.0, 0.0], [0.0, 1.0], [0.0, -1.0]])  # singular values 3 sqrt2 and sqrt2
    p = np.array([3.0, 1.0]) / 4
    assert effective_rank(x) == pytest.approx(math.exp(-(p * np.log(p)).sum()))
    assert math.isnan(effective_rank(x[:1])) and math.isnan(effective_rank(torch.ones(3, 2)))


def test_streamed_cumulative_and_windowed_curves_equal_direct_computation():
    torch.manual_seed(0)
    hidden = torch.randn(30, 12) * 5 + 40  # a large offset, as in real hidden states
    curve = effective_rank_curve(hidden)
    direct = [effective_rank(hidden[: t + 1]) for t in range(30)]
    assert math.isnan(curve.effective_rank[0])
    assert curve.effective_rank[1:] == pytest.approx(direct[1:], rel=1e-6)
    windowed = effective_rank_curve(hidden, window=5)
    assert windowed.effective_rank[4:] == pytest.approx([effective_rank(hidden[t - 4 : t + 1]) for t in range(4, 30)])
    assert np.allclose(curve.velocity[2:], np.diff(curve.effective_rank)[1:])
    assert np.allclose(curve.acceleration[3:], np.diff(curve.effective_rank, 2)[1:])
    assert np.isnan(curve.velocity[:2]).all() and np.isnan(curve.acceleration[:3]).all()
    assert curve.summary()["final"] == pytest.approx(direct[-1], rel=1e-6)


def test_model_trace_matches_full_forward_for_any_layer_and_chunking():
    model = tiny("llama", dtype=torch.float64)
    ids = list(range(5, 45))
    with torch.no_grad():
        full = model(input_ids=torch.tensor([ids]), output_hidden_states=True).hidden_states
    for layer in (0, 1, -1):
        ref = effective_rank_curve(full[layer][0, 10:])
        for chunk in (7, 64):
            ours = hidden_state_rank(model, ids, start=10, layer=layer, chunk_size=chunk)
            assert ours.token_ids == ids[10:]
            assert np.allclose(ours.effective_rank[1:], ref.effective_rank[1:], rtol=1e-6)
    windowed = hidden_state_rank(model, ids, start=10, window=4, chunk_size=9)
    assert np.allclose(windowed.effective_rank[3:], effective_rank_curve(full[-1][0, 10:], window=4).effective_rank[3:])


def test_base_vs_policy_and_generation_helpers(tiny_tokenizer):
    import softthink

    base, policy = tiny("llama", seed=0), tiny("llama", seed=1)
    gen = softthink.generate(
        base, "hello", tokenizer=tiny_tokenizer, mode="discrete", max_new_tokens=12, think_end=None
    )
    ranks = compare_rank(
        {"base": base, "policy": policy}, gen.prompt_token_ids + gen.token_ids, start=len(gen.prompt_token_ids)
    )
    assert set(ranks) == {"base", "policy"}
    assert np.allclose(ranks["base"].effective_rank[1:], generation_rank(base, gen).effective_rank[1:], equal_nan=True)
    assert not np.allclose(ranks["base"].effective_rank[1:], ranks["policy"].effective_rank[1:])


def test_bad_layer_window_and_inputs_name_the_field():
    model = tiny("llama")  # 2 blocks: layers -3..2
    for layer in (3, -4, 1.5):
        with pytest.raises(SoftthinkConfigError, match="layer must be an int") as err:
            hidden_state_rank(model, [5, 6, 7], layer=layer)
        assert err.value.param == "layer"
    for window in (1, 0, 2.0):
        with pytest.raises(SoftthinkConfigError, match="window") as err:
            effective_rank_curve(torch.ones(3, 2), window=window)
        assert err.value.param == "window"
    with pytest.raises(SoftthinkConfigError, match="models is empty"):
        compare_rank({}, [1, 2])


def test_rank_entropy_figure_has_entropy_rank_and_velocity_axes():
    import matplotlib

    backend = matplotlib.get_backend()
    trace = RankTrace(np.array([np.nan, 1.0, 1.5, 1.7]), layer=-1, window=None)
    fig = rank_entropy_figure({"base": trace, "policy": trace}, [0.1, 2.0, 0.3, 0.2], title="t")
    assert [ax.get_ylabel() for ax in fig.axes] == ["entropy (nats)", "effective rank", "ER velocity"]
    assert len(fig.axes[1].lines) == 2
    assert len(rank_entropy_figure(trace).axes) == 2
    assert matplotlib.get_backend() == backend
