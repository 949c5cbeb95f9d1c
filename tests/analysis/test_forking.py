"""Forking masks and corpus statistics on constructed entropy distributions."""

from __future__ import annotations

import numpy as np
import pytest

from softthink.analysis import entropy_stats, forking_mask, forking_masks, forking_threshold
from softthink.errors import SoftthinkConfigError, SoftthinkInputError


@pytest.mark.parametrize("n, quantile, expected", [(10, 0.2, 2), (100, 0.2, 20), (7, 0.5, 4), (3, 0.1, 0)])
def test_quantile_mask_selects_exact_count_of_highest(n, quantile, expected):
    values = np.random.default_rng(n).random(n)
    mask = forking_mask(values, quantile=quantile)
    assert mask.sum() == expected
    if expected:
        assert values[mask].min() >= values[~mask].max()


def test_quantile_mask_count_is_exact_with_ties():
    mask = forking_mask(np.array([0.5] * 10), quantile=0.2)
    assert mask.tolist() == [True, True] + [False] * 8  # ties go to the earlier positions


def test_threshold_mask_is_strictly_above():
    values = np.array([0.1, 0.672, 0.673, 2.0])
    assert forking_mask(values, threshold=0.672).tolist() == [False, False, True, True]


def test_forking_threshold_is_the_80th_percentile():
    values = np.arange(101, dtype=float)
    assert forking_threshold(values) == pytest.approx(80.0)
    assert forking_threshold(values, quantile=0.1) == pytest.approx(90.0)


def test_masks_are_pooled_over_records(make_record):
    low, high = make_record([0.0] * 8), make_record([1.0, 2.0])
    masks = forking_masks([low, high], quantile=0.2)
    assert [m.tolist() for m in masks] == [[False] * 8, [True, True]]  # top 20% of 10 pooled tokens


@pytest.mark.parametrize(
    "kwargs",
    [
        {"quantile": 0.0},
        {"quantile": 1.0},
        {"quantile": 0.2, "threshold": 1.0},
        {"threshold": -1.0},
        {"threshold": float("nan")},
    ],
)
def test_bad_selection_is_rejected(kwargs):
    with pytest.raises(SoftthinkConfigError):
        forking_mask(np.ones(5), **kwargs)


def test_stats_on_constructed_distribution(make_record):
    # 60 near-deterministic tokens, 20 middling, 20 high: the top 20% hold 20 * 3.0 of 20 * 1.0 + 20 * 3.0 nats.
    entropies = [0.001] * 60 + [1.0] * 20 + [3.0] * 20
    tokens = ["x"] * 60 + [" the"] * 20 + [" Wait"] * 15 + ["\n"] * 5
    stats = entropy_stats([make_record(entropies[:50], tokens[:50]), make_record(entropies[50:], tokens[50:])])
    total = 60 * 0.001 + 20 * 1.0 + 20 * 3.0
    assert stats.n_tokens == 100 and stats.n_texts == 2
    assert stats.share_below_low == pytest.approx(0.6)
    assert stats.mean == pytest.approx(total / 100)
    assert stats.p80 == pytest.approx(np.percentile(entropies, 80)) == stats.percentiles[80]
    assert stats.percentiles[50] == pytest.approx(0.001)
    assert stats.n_forking == 20
    assert stats.top_mass_share == pytest.approx(60.0 / total) == stats.forking_mass_share
    assert stats.forking_words == [("Wait", 15), ("\u23ce", 5)]  # spaces stripped, newline made visible
    assert stats.execution_words == [("x", 60), ("the", 20)]
    table = stats.format_table()
    assert "Wait" in table and "60.0%" in table


def test_stats_with_threshold(make_record):
    stats = entropy_stats(make_record([0.0, 0.5, 1.0, 2.0]), threshold=0.6)
    assert stats.quantile is None and stats.forking_threshold == 0.6
    assert stats.n_forking == 2 and stats.forking_mass_share == pytest.approx(3.0 / 3.5)
    assert stats.to_dict()["percentiles"]["80"] == pytest.approx(np.percentile([0, 0.5, 1, 2], 80))


def test_stats_of_nothing_is_an_error(make_record):
    with pytest.raises(SoftthinkInputError, match="no tokens"):
        entropy_stats([make_record([])])


def test_pooled_entropies_rejects_records_mixed_with_numbers(make_record):
    from softthink.analysis.records import pooled_entropies

    record = make_record([0.5, 1.0])
    assert pooled_entropies([record, record]).tolist() == [0.5, 1.0, 0.5, 1.0]
    with pytest.raises(SoftthinkInputError, match="got float at index 1"):  # was AttributeError: 'float'.array
        pooled_entropies([record, 0.5])
