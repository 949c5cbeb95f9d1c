"""Texts with every token coloured by its entropy, as one standalone HTML page (no scripts, no external files).

Hovering a token shows its position, string and entropy. Forking tokens are underlined; soft (concept) steps of
a generation get a dotted outline. Every token and text is HTML-escaped.
"""

from __future__ import annotations

import html as _html
from collections.abc import Sequence

import numpy as np

from softthink.analysis.colors import DEFAULT_CMAP, entropy_norm, entropy_rgba, hex_color, text_color
from softthink.analysis.forking import forking_masks
from softthink.analysis.records import TokenEntropies, as_records, pooled_entropies

_STYLE = """
body { font-family: system-ui, sans-serif; margin: 2em; color: #222; }
.text { font-family: ui-monospace, Menlo, Consolas, monospace; white-space: pre-wrap; line-height: 1.7;
        border: 1px solid #ddd; padding: 0.8em; border-radius: 4px; }
.prompt { color: #888; font-style: italic; white-space: pre-wrap; margin-bottom: 0.4em; }
.t { border-radius: 2px; }
.fork { text-decoration: underline; text-decoration-thickness: 2px; font-weight: bold; }
.soft { outline: 1px dotted #333; }
.legend { display: flex; align-items: center; gap: 0.6em; margin: 1em 0; font-size: 0.9em; }
.bar { width: 240px; height: 14px; border: 1px solid #aaa; }
h2 { font-size: 1em; margin-top: 1.6em; }
"""


def entropy_html(
    items: Sequence[TokenEntropies] | TokenEntropies,
    *,
    title: str = "Token entropy",
    vmax: float | None = None,
    cmap: str = DEFAULT_CMAP,
    mark_forking: bool = True,
    quantile: float | None = None,
    threshold: float | None = None,
    show_prompt: bool = True,
) -> str:
    """A standalone HTML page showing each record's tokens on a background coloured by entropy (nats).

    Args:
        items: one record or many (one section each).
        title: page title and heading.
        vmax: entropy at the top of the colour scale; default the 99th percentile over all shown tokens.
        cmap: a matplotlib colormap name.
        mark_forking: underline forking tokens, chosen over all records by ``quantile`` (default the top 20%)
            or ``threshold``.
        show_prompt: show each record's prompt (not scored) in grey above its tokens.
    """
    items = as_records(items)
    values = pooled_entropies(items)
    norm = entropy_norm(values, vmax)
    masks = (
        forking_masks(items, quantile=quantile, threshold=threshold)
        if mark_forking and values.size
        else [np.zeros(len(it), dtype=bool) for it in items]
    )
    sections = [_section(i, it, mask, norm, cmap, show_prompt) for i, (it, mask) in enumerate(zip(items, masks))]
    esc_title = _html.escape(title)
    return "\n".join(
        [
            "<!DOCTYPE html>",
            '<html lang="en"><head><meta charset="utf-8">',
            f"<title>{esc_title}</title>",
            f"<style>{_STYLE}</style></head><body>",
            f"<h1>{esc_title}</h1>",
            _legend(norm, cmap, mark_forking, quantile, threshold),
            *sections,
            "</body></html>",
            "",
        ]
    )


def _section(index: int, item: TokenEntropies, mask: np.ndarray, norm, cmap: str, show_prompt: bool) -> str:
    colors = entropy_rgba(item.entropies, norm, cmap)
    spans = []
    for pos, (tok, h) in enumerate(zip(item.tokens, item.entropies)):
        classes = ["t"] + (["fork"] if mask[pos] else []) + (["soft"] if item.soft and item.soft[pos] else [])
        tip = _html.escape(f"#{pos} {tok!r}  H = {h:.4f} nats", quote=True)
        style = f"background:{hex_color(colors[pos])};color:{text_color(colors[pos])}"
        spans.append(f'<span class="{" ".join(classes)}" style="{style}" title="{tip}">{_html.escape(tok)}</span>')
    mean = f"{float(np.mean(item.entropies)):.3f}" if len(item) else "n/a"
    head = (
        f"<h2>Text {index + 1}: {len(item)} tokens, mean entropy {mean} nats"
        f"{' (truncated)' if item.truncated else ''}</h2>"
    )
    prompt = f'<div class="prompt">{_html.escape(item.prompt)}</div>' if show_prompt and item.prompt else ""
    return f'{head}\n{prompt}<div class="text">{"".join(spans)}</div>'


def _legend(norm, cmap: str, mark_forking: bool, quantile: float | None, threshold: float | None) -> str:
    stops = entropy_rgba(np.linspace(norm.vmin, norm.vmax, 8), norm, cmap)
    gradient = ", ".join(hex_color(c) for c in stops)
    fork = ""
    if mark_forking:
        how = f"entropy &gt; {threshold:g} nats" if threshold is not None else f"top {quantile or 0.2:.0%} by entropy"
        fork = f'<span class="fork">underlined</span>: forking tokens ({how})'
    return (
        f'<div class="legend"><span>0 nats</span><span class="bar" style="background:linear-gradient(to right, '
        f'{gradient})"></span><span>&ge; {norm.vmax:.3g} nats</span>{fork}</div>'
    )
