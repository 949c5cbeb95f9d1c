"""Plots return Figures with the expected artists; nothing is written to disk."""

from __future__ import annotations

import numpy as np
import pytest
from matplotlib.collections import PathCollection
from matplotlib.figure import Figure
from matplotlib.patches import Rectangle

from softthink.analysis import (
    compare_entropies,
    comparison_boxplot,
    comparison_histogram,
    comparison_scatter,
    entropy_along_sequence,
    entropy_histogram,
    forking_threshold,
    token_text_figure,
)


@pytest.fixture
def records(make_record):
    rng = np.random.default_rng(0)
    return [make_record(rng.exponential(0.5, 40)), make_record(rng.exponential(0.5, 60))]


def test_histogram_marks_the_80th_percentile(records):
    fig = entropy_histogram(records, bins=30)
    ax = fig.axes[0]
    assert isinstance(fig, Figure)
    assert sum(isinstance(p, Rectangle) for p in ax.patches) == 30
    (line,) = ax.lines
    assert line.get_xdata()[0] == pytest.approx(forking_threshold(records))
    assert "p80" in ax.get_legend().get_texts()[0].get_text()


def test_sequence_plot_highlights_forking_tokens(make_record):
    rec = make_record(
        [0.1] * 8 + [2.0, 3.0],
        tokens=list("abcdefgh") + ["<x>", "$y$"],
        soft=[False] * 5 + [True] * 5,
        thinking=[True] * 6 + [False] * 4,
    )
    ax = entropy_along_sequence(rec).axes[0]
    (scatter,) = [c for c in ax.collections if isinstance(c, PathCollection)]
    assert scatter.get_offsets().tolist() == [[8, 2.0], [9, 3.0]]  # the top 20% of 10 tokens
    assert {t.get_text() for t in ax.texts} == {"<x>", "$y$"}  # labels, shown literally
    labels = [t.get_text() for t in ax.get_legend().get_texts()]
    assert "soft steps" in labels and "end of thinking" in labels


def test_comparison_plots(make_record):
    base = [make_record([0.0, 0.1, 2.0, 0.1, 0.0]), make_record([3.0, 0.0, 0.2, 0.1, 0.0])]
    other = [make_record([0.0, 0.1, 1.0, 0.1, 0.0]), make_record([1.5, 0.0, 0.2, 0.1, 0.0])]
    cmp = compare_entropies(base, other)
    ax = comparison_scatter(cmp).axes[0]
    execution, forking = [c for c in ax.collections if isinstance(c, PathCollection)]
    assert len(forking.get_offsets()) == 2 and len(execution.get_offsets()) == 8
    assert forking.get_offsets().tolist() == [[2.0, 1.0], [3.0, 1.5]]
    box, bars = comparison_boxplot(cmp).axes
    assert [t.get_text() for t in box.get_xticklabels()] == ["forking", "execution"]
    assert [p.get_height() for p in bars.patches] == pytest.approx([0.2, 1.0])
    hist = comparison_histogram(cmp).axes[0]
    assert [t.get_text() for t in hist.get_legend().get_texts()] == ["base", "other"]
    assert len(hist.patches) == 2  # one step outline per model


def test_token_text_figure_draws_one_box_per_token_piece(make_record):
    rec = make_record([0.0, 1.0, 2.0, 0.5], tokens=["Hello", " <world>", "\n", "$x$"])
    fig = token_text_figure(rec, width_chars=6)
    ax = fig.axes[0]
    texts = [t.get_text() for t in ax.texts]
    assert texts == ["Hello", " <worl", "d>", "\u23ce", "$x$"]  # wrapped and split at 6 columns; newline as ⏎
    assert len(ax.patches) == len(texts)
    assert len(fig.axes) == 2  # text + colour bar
    fig.canvas.draw()  # renders without mathtext errors for '$'
