"""Truncation filters and noise on hand-built distributions (no model)."""

import pytest
import torch

from softthink.decoding.processors import dirichlet_weights, gumbel_softmax_weights, truncate_sorted

P = torch.tensor([[0.05, 0.40, 0.10, 0.25, 0.20]])  # sorted ids: 1, 3, 4, 2, 0


def test_no_filter_keeps_everything_sorted():
    ids, w = truncate_sorted(P)
    assert ids.tolist() == [[1, 3, 4, 2, 0]]
    torch.testing.assert_close(w, torch.tensor([[0.40, 0.25, 0.20, 0.10, 0.05]]))


@pytest.mark.parametrize("top_k, expected_ids", [(1, [1]), (2, [1, 3]), (3, [1, 3, 4])])
def test_top_k(top_k, expected_ids):
    ids, w = truncate_sorted(P, top_k=top_k)
    kept = [i for i, x in zip(ids[0].tolist(), w[0].tolist()) if x > 0]
    assert kept == expected_ids
    torch.testing.assert_close(w.sum(-1), torch.ones(1))


def test_top_p_is_measured_after_top_k_renormalisation():
    # Top-3 renormalised: 0.4/0.85=0.47, 0.25/0.85=0.29, 0.2/0.85=0.24. top_p=0.7: mass before 3rd = 0.76 >= 0.7,
    # so only two survive. Without renormalisation (mass before 3rd = 0.65 < 0.7) three would.
    ids, w = truncate_sorted(P, top_k=3, top_p=0.7)
    assert (w[0] > 0).sum().item() == 2
    torch.testing.assert_close(w[0, :2], torch.tensor([0.40, 0.25]) / 0.65)


def test_min_p_is_relative_to_top1():
    ids, w = truncate_sorted(P, min_p=0.5)  # keep p >= 0.2
    assert [i for i, x in zip(ids[0].tolist(), w[0].tolist()) if x > 0] == [1, 3, 4]


def test_max_keep_then_renormalise():
    ids, w = truncate_sorted(P, max_keep=2)
    assert ids.tolist() == [[1, 3]]
    torch.testing.assert_close(w, torch.tensor([[0.40, 0.25]]) / 0.65)


def test_order_top_k_top_p_min_p_max_keep_combined():
    ids, w = truncate_sorted(P, top_k=4, top_p=0.95, min_p=0.3, max_keep=3)
    # top-4 mass 0.95 -> renorm 0.421, 0.263, 0.211, 0.105; top_p 0.95 keeps all 4 (mass before 4th 0.895);
    # min_p 0.3 * 0.421 = 0.126 drops the 4th; max_keep 3 -> 3 tokens.
    assert [i for i, x in zip(ids[0].tolist(), w[0].tolist()) if x > 0] == [1, 3, 4]
    torch.testing.assert_close(w[0], torch.tensor([0.40, 0.25, 0.20]) / 0.85)


def test_top1_always_kept_and_input_untouched():
    probs = torch.tensor([[0.2, 0.2, 0.2, 0.2, 0.2]])
    before = probs.clone()
    ids, w = truncate_sorted(probs, top_p=0.01, min_p=0.99)
    assert (w > 0).sum().item() >= 1
    assert torch.equal(probs, before)


def test_batch_rows_are_independent():
    probs = torch.cat([P, torch.tensor([[0.9, 0.025, 0.025, 0.025, 0.025]])])
    ids, w = truncate_sorted(probs, top_p=0.8)
    ids0, w0 = truncate_sorted(P, top_p=0.8)
    torch.testing.assert_close(w[0], w0[0])
    assert (w[1] > 0).sum().item() == 1


def test_gumbel_and_dirichlet_keep_support_and_normalise():
    ids, w = truncate_sorted(P, max_keep=4, min_p=0.4)  # drops the 4th (0.10 < 0.16)
    for noisy in (gumbel_softmax_weights(w, tau=0.5), dirichlet_weights(w, alpha=2.0)):
        assert torch.all(noisy[w == 0] == 0)
        torch.testing.assert_close(noisy.sum(-1), torch.ones(1))
        assert not torch.allclose(noisy, w)


def test_noise_is_reproducible_under_a_seed():
    _, w = truncate_sorted(P)
    torch.manual_seed(3)
    a = dirichlet_weights(w, 1.0), gumbel_softmax_weights(w, 1.0)
    torch.manual_seed(3)
    b = dirichlet_weights(w, 1.0), gumbel_softmax_weights(w, 1.0)
    assert all(torch.equal(x, y) for x, y in zip(a, b))


def test_gumbel_low_temperature_approaches_one_hot_and_dirichlet_high_alpha_approaches_mean():
    _, w = truncate_sorted(P)
    torch.manual_seed(0)
    g = gumbel_softmax_weights(w.repeat(200, 1), tau=0.01)
    assert (g.max(-1).values > 0.99).float().mean() > 0.95
    d = dirichlet_weights(w.repeat(2000, 1), alpha=1e4)
    torch.testing.assert_close(d.mean(0), w[0], atol=2e-3, rtol=0)


def test_step_input_filters_once_and_serves_capped_requests_from_the_wider_pass(monkeypatch):
    from softthink.decoding.rules import base

    torch.manual_seed(0)
    probs = torch.softmax(torch.randn(4, 50, dtype=torch.float64) * 3, -1)
    chain = dict(top_k=30, top_p=0.9, min_p=0.01)
    calls = []
    monkeypatch.setattr(base, "truncate_sorted", lambda *a, **k: calls.append(k) or truncate_sorted(*a, **k))
    inputs = base.StepInput(probs.log(), probs, torch.zeros(4))
    wide = inputs.truncated(**chain)
    for cap in (1, 3, 10, 40):
        ids, weights = inputs.truncated(**chain, max_keep=cap)
        expected_ids, expected_weights = truncate_sorted(probs, **chain, max_keep=cap)
        width = expected_ids.shape[1]
        assert torch.equal(ids[:, :width], expected_ids)
        torch.testing.assert_close(weights[:, :width], expected_weights, rtol=0, atol=1e-12)
        assert (weights[:, width:] == 0).all()  # a cap wider than the chain's width keeps the chain's width
    assert inputs.truncated(**chain) == wide and len(calls) == 1  # one filtering pass for all of them
    inputs.truncated(**{**chain, "top_p": 0.5})  # another chain is its own pass
    assert len(calls) == 2
