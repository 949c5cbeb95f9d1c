"""Metrics: pass@k against brute-force enumeration, maj@k, CIs, McNemar, paired bootstrap, cell summaries."""

from __future__ import annotations

import itertools
import math

import pytest

from softthink.eval.aggregate import (
    bootstrap_interval,
    majority_vote,
    mcnemar_exact,
    paired_comparison,
    pass_at_k,
    summarize,
    wilson_interval,
)


def brute_force_pass_at_k(outcomes: list[bool], k: int) -> float:
    """Probability that a uniformly random k-subset of the samples holds a correct one, by enumeration."""
    subsets = list(itertools.combinations(range(len(outcomes)), k))
    return sum(any(outcomes[i] for i in s) for s in subsets) / len(subsets)


@pytest.mark.parametrize("n", [1, 2, 5, 8])
def test_pass_at_k_matches_enumeration(n):
    for c in range(n + 1):
        outcomes = [True] * c + [False] * (n - c)
        for k in range(1, n + 1):
            assert pass_at_k(n, c, k) == pytest.approx(brute_force_pass_at_k(outcomes, k), abs=1e-12)


def test_pass_at_k_rejects_bad_arguments():
    with pytest.raises(ValueError):
        pass_at_k(4, 5, 1)
    with pytest.raises(ValueError):
        pass_at_k(4, 1, 5)


def _rec(pid, idx, correct, extracted, seed=0, **extra):
    base = {
        "problem_id": pid,
        "sample_index": idx,
        "seed": seed,
        "correct": correct,
        "extracted": extracted,
        "think_tokens": 10,
        "answer_tokens": 2,
        "total_tokens": 12,
        "soft_fraction": 0.5,
        "think_end_reason": "think_marker",
        "entropy": {"mean": 1.0},
        "rule": "boxed",
        "stop_reason": "eos",
        "wall_time": 0.5,
    }
    base.update(extra)
    return base


def test_majority_vote():
    samples = [
        _rec("p", 0, False, "3"),
        _rec("p", 1, True, "4"),
        _rec("p", 2, True, "4.0"),
        _rec("p", 3, False, "3"),
        _rec("p", 4, False, "3"),
    ]
    assert majority_vote(samples, 3) is True  # "4" and "4.0" vote together
    assert majority_vote(samples, 5) is False  # 3 x "3"
    assert majority_vote(samples, 1) is False
    tie = [_rec("p", 0, True, "1"), _rec("p", 1, False, "2")]
    assert majority_vote(tie, 2) is True  # ties go to the first seen
    assert majority_vote([_rec("p", 0, False, None)], 1) is False


def test_wilson_interval_known_values():
    low, high = wilson_interval(5, 10)
    assert low == pytest.approx(0.2366, abs=1e-4) and high == pytest.approx(0.7634, abs=1e-4)
    assert wilson_interval(0, 10)[0] == 0.0 and wilson_interval(10, 10)[1] == pytest.approx(1.0)
    assert all(math.isnan(x) for x in wilson_interval(0, 0))


def test_bootstrap_interval_covers_the_mean():
    values = [0, 1] * 50
    low, high = bootstrap_interval(values)
    assert low < 0.5 < high and high - low < 0.3


def test_mcnemar_exact():
    assert mcnemar_exact(0, 0) == 1.0
    assert mcnemar_exact(5, 5) == 1.0
    # b=0, c=6: two-sided exact p = 2 * 0.5**6
    assert mcnemar_exact(0, 6) == pytest.approx(2 / 64)
    assert mcnemar_exact(2, 8) == pytest.approx(2 * sum(math.comb(10, i) for i in range(3)) / 1024)


def test_paired_comparison_single_sample():
    a = [_rec(f"p{i}", 0, i < 5, "1") for i in range(20)]
    b = [_rec(f"p{i}", 0, i < 12, "1") for i in range(20)]
    out = paired_comparison(a, b)
    assert out["n_problems"] == 20 and out["diff"] == pytest.approx(7 / 20)
    assert (out["a_only"], out["b_only"]) == (0, 7) and out["mcnemar_p"] == pytest.approx(2 / 128)
    assert 0 < out["diff_ci_low"] <= out["diff"] <= out["diff_ci_high"]
    assert out["bootstrap_p"] < 0.05


def test_paired_comparison_uses_shared_problems_only_and_no_difference():
    a = [_rec(f"p{i}", 0, True, "1") for i in range(5)]
    b = [_rec(f"p{i}", 0, True, "1") for i in range(3)]
    out = paired_comparison(a, b)
    assert out["n_problems"] == 3 and out["diff"] == 0 and out["bootstrap_p"] == 1.0 and out["mcnemar_p"] == 1.0


def test_summarize_cell():
    records = [
        _rec("a", 0, True, "1", think_end_reason="cold_stop"),
        _rec("a", 1, False, "2"),
        _rec("b", 0, False, None, total_tokens=20, rule=None),
        _rec("b", 1, False, "5"),
    ]
    s = summarize(records, pass_k=(1, 2))
    assert s["n_problems"] == 2 and s["samples_per_problem"] == 2 and s["accuracy"] == 0.25
    assert s["pass@2"] == pytest.approx(0.5) and s["maj@2"] == pytest.approx(0.5)  # "a": tie -> first ("1")
    assert s["ci_method"] == "bootstrap over problems"
    assert s["mean_total_tokens"] == pytest.approx(14) and s["mean_total_tokens_correct"] == 12
    assert s["cold_stop_rate"] == 0.25 and s["no_answer_rate"] == 0.25
    assert s["rules"] == {"boxed": 3, "None": 1}
    assert s["tokens_per_s"] == pytest.approx(56 / 2.0)


def test_summarize_single_sample_uses_wilson():
    s = summarize([_rec(f"p{i}", 0, i % 2 == 0, "1") for i in range(10)])
    assert s["ci_method"] == "wilson" and (s["ci_low"], s["ci_high"]) == pytest.approx(wilson_interval(5, 10))
    assert summarize([]) == {"n_problems": 0, "n_samples": 0}


def test_wilson_interval_edges_are_exact():
    low, high = wilson_interval(0, 50)
    assert low == 0.0 and 0 < high < 0.1
    low, high = wilson_interval(50, 50)
    assert high == 1.0 and low == pytest.approx(1 - wilson_interval(0, 50)[1])
    generic = wilson_interval(1, 50)
    assert 0 < generic[0] < 0.02 < generic[1]
