"""Saving figures: one place for the resolution of every PNG softthink writes."""

from __future__ import annotations

from pathlib import Path

from matplotlib.figure import Figure

FIGURE_DPI = 90
"""Dots per inch of saved figures: sharp on screen, small enough to commit next to results."""


def save_figure(fig: Figure, path: str | Path, *, dpi: int = FIGURE_DPI) -> Path:
    """Write ``fig`` to ``path`` (format from the suffix) at ``dpi`` and return the path."""
    path = Path(path)
    fig.savefig(path, dpi=dpi)
    return path
