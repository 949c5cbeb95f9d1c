"""Base-vs-other comparison: deltas split by forking vs execution positions (defined under the base model)."""

from __future__ import annotations

import numpy as np
import pytest

from softthink.analysis import compare_entropies, compare_models
from softthink.errors import SoftthinkInputError
from softthink.testbed.tiny import build_tiny_model, build_tiny_tokenizer


def test_change_only_at_forking_positions(make_record):
    base = [make_record([0.0, 0.1, 2.0, 0.1, 0.0]), make_record([3.0, 0.0, 0.2, 0.1, 0.0])]
    # the two high-entropy tokens (top 20% of 10) lose entropy, nothing else moves
    other = [make_record([0.0, 0.1, 1.0, 0.1, 0.0]), make_record([1.5, 0.0, 0.2, 0.1, 0.0])]
    cmp = compare_entropies(base, other, names=("base", "rl"))
    assert [m.tolist() for m in cmp.forking] == [[False, False, True, False, False], [True, False, False, False, False]]
    assert np.concatenate(cmp.deltas).tolist() == pytest.approx([0, 0, -1.0, 0, 0, -1.5, 0, 0, 0, 0])
    assert cmp.n_tokens == 10 and cmp.n_forking == 2 and cmp.forking_token_share == pytest.approx(0.2)
    assert cmp.mean_delta_forking == pytest.approx(-1.25) and cmp.mean_abs_delta_forking == pytest.approx(1.25)
    assert cmp.mean_delta_execution == 0 and cmp.mean_abs_delta_execution == 0
    assert cmp.forking_share_of_change == pytest.approx(1.0)
    assert cmp.forking_overlap == pytest.approx(1.0)
    assert "100.0%" in cmp.format_table() and cmp.summary()["names"] == ["base", "rl"]


def test_change_split_in_proportion(make_record):
    base = [make_record([0.0, 0.0, 0.0, 5.0])]
    other = [make_record([1.0, 0.0, 0.0, 4.0])]  # |delta| 1 at an execution position, 1 at the forking one
    cmp = compare_entropies(base, other, quantile=0.25)
    assert cmp.forking_share_of_change == pytest.approx(0.5)
    assert cmp.mean_abs_delta_execution == pytest.approx(1 / 3)
    assert cmp.forking_overlap == pytest.approx(1.0)
    cmp = compare_entropies(base, other, threshold=4.5)  # under the other model nothing is above 4.5
    assert cmp.n_forking == 1 and cmp.forking_overlap == 0.0


def test_misaligned_records_are_rejected(make_record):
    with pytest.raises(SoftthinkInputError, match="same texts"):
        compare_entropies([make_record([1.0])], [])
    other = make_record([1.0, 2.0])
    other.token_ids = [5, 6]
    with pytest.raises(SoftthinkInputError, match="tokenised differently"):
        compare_entropies([make_record([1.0, 2.0])], [other])


def test_compare_models_on_tiny_models(texts):
    tok = build_tiny_tokenizer()
    a, b = build_tiny_model("llama", seed=0), build_tiny_model("llama", seed=1)
    same = compare_models(a, a, tok, texts, progress=False)
    assert same.mean_abs_delta_forking == 0 and same.forking_overlap == 1.0
    cmp = compare_models(a, b, tok, texts, progress=False)
    assert cmp.n_tokens == sum(len(t) for t in texts)
    total = sum(np.abs(d).sum() for d in cmp.deltas)
    at_fork = sum(np.abs(d[m]).sum() for d, m in zip(cmp.deltas, cmp.forking))
    assert cmp.forking_share_of_change == pytest.approx(at_fork / total)
