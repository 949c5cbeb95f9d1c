"""Figures of RL runs: reward and entropy per step, and the entropy-performance law.

Data in, ``matplotlib.figure.Figure`` out: no pyplot state, no backend choice, no files (``fig.savefig(path)``).
"""

from __future__ import annotations

import matplotlib
import numpy as np
from matplotlib.figure import Figure

from softthink.rl.dynamics import EntropyLaw, fit_dynamics, law_points


def _series(rows: list[dict], key: str) -> tuple[list[int], list[float]]:
    pairs = [(r["step"], r[key]) for r in rows if r.get(key) is not None]
    return [p[0] for p in pairs], [p[1] for p in pairs]


def rolling_mean(values: list[float], window: int) -> list[float]:
    """Trailing mean over the last ``window`` values (fewer at the start)."""
    csum = np.concatenate([[0.0], np.cumsum(values, dtype=float)])
    idx = np.arange(1, len(values) + 1)
    start = np.maximum(idx - window, 0)
    return list((csum[idx] - csum[start]) / (idx - start))


def _plot_smoothed(ax, steps: list[int], values: list[float], colour, label: str, linestyle="-") -> None:
    """Raw per-step values faintly, their trailing mean over ~10% of the run boldly (when the run is long)."""
    window = max(1, len(values) // 10)
    if window < 3:
        ax.plot(steps, values, color=colour, linestyle=linestyle, label=label)
        return
    ax.plot(steps, values, color=colour, linestyle=linestyle, alpha=0.25, linewidth=0.8)
    ax.plot(
        steps,
        rolling_mean(values, window),
        color=colour,
        linestyle=linestyle,
        linewidth=1.8,
        label=f"{label} ({window}-step mean)",
    )


def plot_dynamics(runs: dict[str, list[dict]], laws: dict[str, EntropyLaw] | None = None) -> Figure:
    """One figure for one or more runs (label -> dynamics rows): reward, entropy of forking vs execution tokens,
    fraction of tokens above the threshold, and reward against entropy with the fitted R = -a exp(H) + b (``laws``
    by label; fitted here for a run with >= 3 points that has none)."""
    laws = dict(laws or {})
    fig = Figure(figsize=(11, 8))
    axes = fig.subplots(2, 2)
    ax_reward, ax_entropy, ax_frac, ax_law = axes.flat
    colours = matplotlib.rcParams["axes.prop_cycle"].by_key()["color"]
    for i, (label, rows) in enumerate(runs.items()):
        c = colours[i % len(colours)]
        _plot_smoothed(ax_reward, *_series(rows, "reward"), c, label)
        _plot_smoothed(ax_entropy, *_series(rows, "entropy_forking"), c, f"{label} forking")
        _plot_smoothed(ax_entropy, *_series(rows, "entropy_execution"), c, f"{label} execution", linestyle="--")
        _plot_smoothed(ax_frac, *_series(rows, "frac_above"), c, label)
        h, r = law_points(rows)
        ax_law.scatter(h, r, s=10, color=c, alpha=0.6, label=label)
        law = laws.get(label)
        if law is None and len(h) >= 3:
            try:
                law = laws[label] = fit_dynamics(rows)
            except ValueError:
                law = None
        if law is not None and h:
            grid = np.linspace(min(h), max(h), 50)
            ax_law.plot(
                grid, law.predict(grid), color=c, label=f"{label}: a={law.a:.3g}, b={law.b:.3g}, R²={law.r2:.2f}"
            )
    ax_reward.set(title="reward (accuracy) per step", xlabel="step", ylabel="mean reward")
    ax_entropy.set(title="mean token entropy: forking (top ρ) vs execution", xlabel="step", ylabel="nats")
    ax_frac.set(
        title="fraction of tokens above entropy_log_threshold (default 0.672 nats)", xlabel="step", ylabel="fraction"
    )
    ax_law.set(title="R = -a·exp(H) + b", xlabel="mean entropy H (nats)", ylabel="reward R")
    for ax in axes.flat:
        if ax.has_data():
            ax.legend(fontsize=7)
    fig.tight_layout()
    return fig
