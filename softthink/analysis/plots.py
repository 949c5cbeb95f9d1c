"""Pictures of token entropy: data in, ``matplotlib.figure.Figure`` out, no I/O and no pyplot state.

Save with ``softthink.figures.save_figure(fig, "x.png")`` (or ``fig.savefig``). Every function takes records
(`TokenEntropies`) or an `EntropyComparison`; forking tokens are chosen as elsewhere (top 20% by default, or
``threshold``).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from matplotlib.cm import ScalarMappable
from matplotlib.figure import Figure
from matplotlib.patches import Rectangle

from softthink.analysis.colors import DEFAULT_CMAP, entropy_norm, entropy_rgba, text_color
from softthink.analysis.compare import EntropyComparison
from softthink.analysis.forking import forking_mask, forking_threshold, resolve_selection
from softthink.analysis.records import TokenEntropies, pooled_entropies

FORK_COLOR = "#d62728"
EXEC_COLOR = "#7f7f7f"


def _threshold(values: np.ndarray, quantile: float | None, threshold: float | None) -> tuple[float, str]:
    """The forking cut and a legend label for it."""
    quantile, threshold = resolve_selection(quantile, threshold)
    if threshold is not None:
        return threshold, f"threshold {threshold:.3f} nats"
    cut = forking_threshold(values, quantile)
    return cut, f"p{100 * (1 - quantile):.0f} = {cut:.3f} nats (top {quantile:.0%} = forking)"


def entropy_histogram(
    items: Sequence[TokenEntropies] | TokenEntropies,
    *,
    quantile: float | None = None,
    threshold: float | None = None,
    bins: int = 60,
    log_y: bool = True,
    title: str = "Token entropy",
) -> Figure:
    """Histogram of all tokens' entropies with the forking threshold (the 80th percentile by default) marked."""
    values = pooled_entropies(items)
    fig = Figure(figsize=(7, 4), layout="constrained")
    ax = fig.add_subplot()
    ax.hist(values, bins=bins, color="#4c72b0", log=log_y)
    cut, label = _threshold(values, quantile, threshold)
    ax.axvline(cut, color=FORK_COLOR, linestyle="--", label=label)
    ax.set(
        xlabel="entropy (nats)",
        ylabel="tokens" + (" (log scale)" if log_y else ""),
        title=f"{title}: {values.size} tokens, {(values < 0.01).mean():.0%} below 0.01 nats",
    )
    ax.legend()
    return fig


def entropy_along_sequence(
    item: TokenEntropies,
    *,
    quantile: float | None = None,
    threshold: float | None = None,
    annotate: int = 10,
    title: str | None = None,
) -> Figure:
    """Entropy at each position of one text; forking tokens in red, the ``annotate`` highest labelled.

    For generations, soft (concept) steps are shaded and the end of the thinking phase is marked.
    Pass ``threshold`` (e.g. a corpus-wide `forking_threshold`) to mark forking tokens on a corpus scale;
    the default quantile is taken over this text alone.
    """
    values = item.array()
    x = np.arange(values.size)
    fig = Figure(figsize=(max(7.0, min(20.0, values.size / 25)), 3.6), layout="constrained")
    ax = fig.add_subplot()
    ax.plot(x, values, color=EXEC_COLOR, linewidth=0.8, label="entropy")
    if values.size:
        cut, label = _threshold(values, quantile, threshold)
        fork = forking_mask(values, quantile=quantile, threshold=threshold)
        ax.scatter(x[fork], values[fork], s=14, color=FORK_COLOR, zorder=3, label=f"forking tokens ({fork.sum()})")
        ax.axhline(cut, color=FORK_COLOR, linestyle=":", linewidth=0.8, label=label)
        for i in np.argsort(-values, kind="stable")[:annotate]:
            if fork[i]:
                ax.annotate(
                    repr(item.tokens[i])[1:-1],
                    (x[i], values[i]),
                    textcoords="offset points",
                    xytext=(0, 4),
                    ha="center",
                    fontsize=7,
                    parse_math=False,
                )
    if item.soft is not None and any(item.soft):
        ax.fill_between(
            x,
            0,
            1,
            where=np.asarray(item.soft),
            transform=ax.get_xaxis_transform(),
            step="mid",
            color="#9ecae1",
            alpha=0.35,
            label="soft steps",
        )
    if item.thinking is not None and any(item.thinking) and not all(item.thinking):
        ax.axvline(
            int(np.flatnonzero(item.thinking).max()) + 0.5, color="black", linewidth=0.8, label="end of thinking"
        )
    ax.set(
        xlabel="token position",
        ylabel="entropy (nats)",
        title=title or f"Entropy along the sequence ({values.size} tokens)",
    )
    ax.set_xlim(-0.5, max(values.size - 0.5, 0.5))
    ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize=8)
    return fig


def comparison_scatter(comparison: EntropyComparison, *, max_points: int = 20000, seed: int = 0) -> Figure:
    """Each token's entropy under the base model (x) vs the other model (y); forking positions in red."""
    base = np.concatenate([b.array() for b in comparison.base])
    other = np.concatenate([o.array() for o in comparison.other])
    fork = np.concatenate(comparison.forking)
    if base.size > max_points:  # keep the picture light; the sample is reproducible
        keep = np.sort(np.random.default_rng(seed).choice(base.size, max_points, replace=False))
        base, other, fork = base[keep], other[keep], fork[keep]
    name_b, name_o = comparison.names
    fig = Figure(figsize=(5.5, 5.5), layout="constrained")
    ax = fig.add_subplot()
    ax.scatter(base[~fork], other[~fork], s=6, alpha=0.4, color=EXEC_COLOR, label="execution")
    ax.scatter(base[fork], other[fork], s=8, alpha=0.6, color=FORK_COLOR, label=f"forking (under {name_b})")
    top = float(max(base.max(initial=0), other.max(initial=0))) * 1.05 or 1.0
    ax.plot([0, top], [0, top], color="black", linewidth=0.8, linestyle="--", label="no change")
    ax.set(
        xlim=(0, top),
        ylim=(0, top),
        xlabel=f"entropy under {name_b} (nats)",
        ylabel=f"entropy under {name_o} (nats)",
        title=f"{name_o} vs {name_b}, per token",
    )
    ax.legend(loc="upper left", fontsize=8)
    return fig


def comparison_boxplot(comparison: EntropyComparison) -> Figure:
    """Left: entropy change at forking vs execution positions. Right: their shares of tokens and of all change."""
    d = np.concatenate(comparison.deltas)
    fork = np.concatenate(comparison.forking)
    fig = Figure(figsize=(9, 4), layout="constrained")
    ax, bx = fig.subplots(1, 2)
    ax.boxplot([d[fork], d[~fork]], tick_labels=["forking", "execution"], showfliers=False)
    ax.axhline(0, color="black", linewidth=0.6)
    ax.set(
        ylabel=f"entropy change {comparison.names[1]} - {comparison.names[0]} (nats)",
        title="Entropy change by position type",
    )
    shares = [comparison.forking_token_share, comparison.forking_share_of_change]
    bars = bx.bar(["share of tokens", "share of total |change|"], shares, color=[EXEC_COLOR, FORK_COLOR])
    bx.bar_label(bars, labels=[f"{s:.1%}" for s in shares])
    bx.set(ylim=(0, 1), title="Forking positions")
    return fig


def comparison_histogram(comparison: EntropyComparison, *, bins: int = 60) -> Figure:
    """Overlaid entropy histograms of the two models on the same tokens."""
    fig = Figure(figsize=(7, 4), layout="constrained")
    ax = fig.add_subplot()
    for records, name, color in (
        (comparison.base, comparison.names[0], "#4c72b0"),
        (comparison.other, comparison.names[1], "#dd8452"),
    ):
        ax.hist(pooled_entropies(records), bins=bins, histtype="step", linewidth=1.4, log=True, color=color, label=name)
    ax.set(xlabel="entropy (nats)", ylabel="tokens (log scale)", title="Token entropy, same tokens")
    ax.legend()
    return fig


def token_text_figure(
    item: TokenEntropies,
    *,
    vmax: float | None = None,
    cmap: str = DEFAULT_CMAP,
    width_chars: int = 100,
    fontsize: float = 10.0,
    max_tokens: int = 2000,
    title: str | None = None,
) -> Figure:
    """One text drawn in a monospace grid, each token on a background coloured by its entropy, with a colour bar.

    Newlines in tokens start a new line (shown as ⏎); long texts are cut at ``max_tokens`` (the title says so).
    """
    shown = min(len(item), max_tokens)
    norm = entropy_norm(item.entropies[:shown], vmax)
    colors = entropy_rgba(item.entropies[:shown], norm, cmap)
    cells, rows = _layout(item.tokens[:shown], width_chars)
    char_w, row_h = 0.6 * fontsize / 72, 1.7 * fontsize / 72  # inches; 0.6 em is the DejaVu Sans Mono advance
    text_h, bar_h, top_h = rows * row_h, 0.55, 0.45
    fig = Figure(figsize=(width_chars * char_w + 0.4, text_h + bar_h + top_h))
    height = fig.get_figheight()
    ax = fig.add_axes(
        (0.2 / fig.get_figwidth(), bar_h / height, width_chars * char_w / fig.get_figwidth(), text_h / height)
    )
    ax.set_xlim(0, width_chars)
    ax.set_ylim(rows, 0)
    ax.axis("off")
    for pos, row, col, piece in cells:
        ax.add_patch(Rectangle((col, row), len(piece), 1, facecolor=colors[pos], edgecolor="none"))
        ax.text(
            col,
            row + 0.5,
            piece,
            family="monospace",
            fontsize=fontsize,
            va="center",
            ha="left",
            color=text_color(colors[pos]),
            parse_math=False,
        )
    cax = fig.add_axes((0.25, 0.18 / height, 0.5, 0.12 / height))
    fig.colorbar(ScalarMappable(norm=norm, cmap=cmap), cax=cax, orientation="horizontal").set_label(
        "entropy (nats)", fontsize=8
    )
    cut = f" (first {shown} of {len(item)} tokens)" if shown < len(item) else f" ({len(item)} tokens)"
    fig.suptitle((title or "Token entropy") + cut, y=1 - 0.08 / height, va="top", fontsize=10)
    return fig


def _layout(tokens: Sequence[str], width: int) -> tuple[list[tuple[int, int, int, str]], int]:
    """Place tokens on a ``width``-column grid: (token index, row, column, piece) per drawn piece, and row count.

    A token that does not fit on the current line wraps; one longer than a line is split; "\\n" ends a line.
    """
    cells: list[tuple[int, int, int, str]] = []
    row = col = 0
    for pos, tok in enumerate(tokens):
        parts = tok.replace("\t", "    ").split("\n")
        for k, part in enumerate(parts):
            last = k == len(parts) - 1
            piece = part + ("" if last else "\u23ce")  # ⏎ shows the newline itself, in the token's colour
            if not piece:
                piece = "\u2205" if len(parts) == 1 else ""  # ∅ marks a token that decodes to nothing
            while piece:
                if col + len(piece) > width and col > 0:
                    row, col = row + 1, 0
                chunk, piece = piece[:width], piece[width:]
                cells.append((pos, row, col, chunk))
                col += len(chunk)
            if not last:
                row, col = row + 1, 0
    return cells, row + 1
