"""Entropy -> colour, shared by the HTML and PNG token views so that both show the same colours."""

from __future__ import annotations

from collections.abc import Sequence

import matplotlib
import numpy as np
from matplotlib.colors import Normalize, to_hex

DEFAULT_CMAP = "YlOrRd"
"""Pale yellow for near-deterministic tokens, dark red for the most uncertain ones."""


def default_vmax(values: Sequence[float] | np.ndarray) -> float:
    """Top of the colour scale: the 99th percentile of the shown entropies, so one outlier does not wash out the
    rest."""
    values = np.asarray(values, dtype=np.float64)
    return max(float(np.percentile(values, 99)), 1e-6) if values.size else 1.0


def entropy_norm(values: Sequence[float] | np.ndarray, vmax: float | None = None) -> Normalize:
    """Linear scale from 0 nats to ``vmax`` (default `default_vmax`), values above it clipped."""
    if vmax is not None and not vmax > 0:
        raise ValueError(f"vmax must be > 0 nats, got {vmax}. Leave it None to use the 99th percentile.")
    return Normalize(vmin=0.0, vmax=vmax if vmax is not None else default_vmax(values), clip=True)


def entropy_rgba(values: Sequence[float] | np.ndarray, norm: Normalize, cmap: str = DEFAULT_CMAP) -> np.ndarray:
    """RGBA rows ``[n, 4]`` for the entropies ``values`` on the scale ``norm``."""
    return matplotlib.colormaps[cmap](norm(np.asarray(values, dtype=np.float64)))


def text_color(rgba: Sequence[float]) -> str:
    """Black or white, whichever reads better on the background ``rgba`` (by relative luminance)."""
    r, g, b = rgba[:3]
    return "#000000" if 0.2126 * r + 0.7152 * g + 0.0722 * b > 0.45 else "#ffffff"


def hex_color(rgba: Sequence[float]) -> str:
    """``#rrggbb`` for an RGBA row."""
    return to_hex(rgba[:3])
