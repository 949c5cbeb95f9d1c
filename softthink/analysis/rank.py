"""Effective rank of hidden states along a trace (arXiv 2509.23808), its first and second differences, per layer.

For a matrix ``X`` of hidden states (one row per token), centred on its row mean, with singular values
``s_1 >= s_2 >= ...``: ``p_i = s_i / sum_j s_j`` and ``ER(X) = exp(-sum_i p_i log p_i)``, between 1 (all rows on
one line through their mean) and ``min(n - 1, d)``. Along a trace of T response tokens, ``ER_t`` is the ER of the
hidden states of tokens ``0..t`` (``window=None``, cumulative: how much of the space the reasoning so far spans,
as in the paper's effective-rank trajectory) or of the last ``window`` tokens ending at ``t`` (local). The
"velocity" is the first difference ``ER_t - ER_{t-1}`` and the "acceleration" the second difference. ``ER_t`` is
NaN while fewer than 2 rows are available (a centred single row is 0).

Memory: hidden states are computed ``chunk_size`` positions at a time through the KV cache (all layers exist for
one chunk only), and only the chosen layer's rows are used: the cumulative ER streams them into a ``d x d``
scatter matrix (float64, independent of the trace length), the windowed ER keeps the last ``window`` rows.
Layers follow Hugging Face's ``output_hidden_states`` numbering: 0 = the embeddings, i = the output of block i,
-1 = the last (after the final norm).
"""

from __future__ import annotations

from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
from transformers import DynamicCache

from softthink.errors import SoftthinkConfigError, SoftthinkInputError
from softthink.hf_compat import cache_kwarg_name, forward_parameters

RELATIVE_TOLERANCE = 1e-6
"""Singular values below this fraction of the largest are treated as 0 (rounding noise of the streamed scatter)."""


def _entropy_rank(singular: torch.Tensor) -> float:
    singular = singular.double().clamp(min=0)
    if singular.numel() == 0 or singular.max() <= 0:
        return float("nan")
    singular = singular[singular > RELATIVE_TOLERANCE * singular.max()]
    p = singular / singular.sum()
    return float(torch.exp(-(p * p.log()).sum()))


def effective_rank(hidden: torch.Tensor | np.ndarray) -> float:
    """ER of the rows of ``hidden`` ``[n, d]``, centred on their mean; NaN for fewer than 2 distinct rows."""
    x = torch.as_tensor(np.asarray(hidden) if not isinstance(hidden, torch.Tensor) else hidden).double()
    if x.dim() != 2:
        raise SoftthinkInputError(f"effective_rank needs a 2-D [tokens, hidden] matrix, got shape {tuple(x.shape)}.")
    if x.shape[0] < 2:
        return float("nan")
    return _entropy_rank(torch.linalg.svdvals(x - x.mean(0, keepdim=True)))


class _Cumulative:
    """Running ER of all rows seen so far, from a shifted scatter matrix (no rows kept)."""

    def __init__(self) -> None:
        self.n = 0
        self.shift: torch.Tensor | None = None
        self.total = torch.zeros(0, dtype=torch.float64)
        self.scatter = torch.zeros(0, 0, dtype=torch.float64)

    def add(self, row: torch.Tensor) -> float:
        row = row.double()
        if self.shift is None:
            self.shift = row.clone()  # shifting by a constant row leaves the centred matrix unchanged
            self.total = torch.zeros_like(row)
            self.scatter = torch.zeros(row.numel(), row.numel(), dtype=torch.float64, device=row.device)
        y = row - self.shift
        self.n += 1
        self.total += y
        self.scatter += torch.outer(y, y)
        if self.n < 2:
            return float("nan")
        centred = self.scatter - torch.outer(self.total, self.total) / self.n
        return _entropy_rank(torch.linalg.eigvalsh(centred).clamp(min=0).sqrt())


class _Windowed:
    def __init__(self, window: int) -> None:
        self.rows: deque = deque(maxlen=window)

    def add(self, row: torch.Tensor) -> float:
        self.rows.append(row.double())
        return effective_rank(torch.stack(list(self.rows)))


@dataclass
class RankTrace:
    """Effective rank along one trace.

    Attributes:
        effective_rank: ``ER_t`` per response token (NaN where undefined, see the module docstring).
        velocity: first difference, ``velocity[t] = ER_t - ER_{t-1}`` (NaN at t = 0).
        acceleration: second difference (NaN at t < 2).
        layer: the hidden-state layer (as given; negative counts from the end).
        window: None for the cumulative ER, else the window length.
        token_ids: the response tokens.
    """

    effective_rank: np.ndarray
    layer: int
    window: int | None
    token_ids: list[int] = field(default_factory=list)

    @property
    def velocity(self) -> np.ndarray:
        return (
            np.concatenate([[np.nan], np.diff(self.effective_rank)])
            if self.effective_rank.size
            else self.effective_rank
        )

    @property
    def acceleration(self) -> np.ndarray:
        return np.concatenate([[np.nan], np.diff(self.velocity)]) if self.effective_rank.size else self.effective_rank

    def summary(self) -> dict[str, float]:
        """Final ER and the mean ER, velocity and acceleration over the defined values."""

        def mean(x):
            x = x[np.isfinite(x)]
            return float(x.mean()) if x.size else float("nan")

        er = self.effective_rank
        return {
            "final": float(er[-1]) if er.size else float("nan"),
            "mean": mean(er),
            "mean_velocity": mean(self.velocity),
            "mean_acceleration": mean(self.acceleration),
        }


def check_window(window: int | None) -> None:
    if window is not None and (isinstance(window, bool) or not isinstance(window, int) or window < 2):
        raise SoftthinkConfigError(
            f"window must be None (cumulative ER) or an int >= 2, got {window!r}: the ER of "
            "fewer than 2 centred rows is undefined.",
            param="window",
            value=window,
        )


def effective_rank_curve(
    hidden: torch.Tensor, *, window: int | None = None, layer: int = -1, token_ids: Sequence[int] = ()
) -> RankTrace:
    """`RankTrace` of the rows of ``hidden`` ``[T, d]`` (already extracted hidden states), streamed row by row."""
    check_window(window)
    acc = _Cumulative() if window is None else _Windowed(window)
    values = [acc.add(row) for row in hidden]
    return RankTrace(np.asarray(values, dtype=float), layer=layer, window=window, token_ids=list(token_ids))


def num_layers(model) -> int:
    """Number of transformer blocks (``config.num_hidden_layers`` or ``n_layer``)."""
    config = getattr(model, "config", None)
    config = getattr(config, "get_text_config", lambda: config)()
    for name in ("num_hidden_layers", "n_layer", "num_layers"):
        if isinstance(getattr(config, name, None), int):
            return getattr(config, name)
    raise SoftthinkInputError(
        f"cannot tell how many layers {type(model).__name__} has (no num_hidden_layers in its config)."
    )


def check_layer(model, layer: int) -> int:
    """``layer`` as an index into ``output_hidden_states`` (0..L), or a `SoftthinkConfigError` naming it."""
    n = num_layers(model)
    if isinstance(layer, bool) or not isinstance(layer, int) or not -(n + 1) <= layer <= n:
        raise SoftthinkConfigError(
            f"layer must be an int in [{-(n + 1)}, {n}] for this model ({n} blocks; 0 = the "
            f"embeddings, {n} or -1 = the last), got {layer!r}.",
            param="layer",
            value=layer,
        )
    return layer % (n + 1)


def hidden_state_rank(
    model,
    token_ids: Sequence[int],
    *,
    start: int = 0,
    layer: int = -1,
    window: int | None = None,
    chunk_size: int = 256,
) -> RankTrace:
    """`RankTrace` of the hidden states at positions ``start..`` of ``token_ids`` (teacher-forced).

    ``token_ids``: prompt + response; ``start``: the response's first position (the prompt's rows are computed
    but not counted). For a soft-thinking generation this re-reads the visible tokens, not the concept
    embeddings the decoder fed, so soft steps' hidden states differ from the decode's.
    """
    check_window(window)
    index = check_layer(model, layer)
    if chunk_size < 1:
        raise SoftthinkConfigError(f"chunk_size must be >= 1, got {chunk_size}.", param="chunk_size", value=chunk_size)
    ids = [int(t) for t in token_ids]
    if not 0 <= start < len(ids):
        raise SoftthinkInputError(f"start={start} must index a token of the {len(ids)}-token trace.")
    device = model.get_input_embeddings().weight.device
    acc = _Cumulative() if window is None else _Windowed(window)
    values: list[float] = []
    cache = DynamicCache(config=model.config)  # filled in place by each chunk's forward
    cache_name = cache_kwarg_name(forward_parameters(model))
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            for lo in range(0, len(ids), chunk_size):
                chunk = torch.tensor([ids[lo : lo + chunk_size]], device=device)
                out = model(input_ids=chunk, **{cache_name: cache}, use_cache=True, output_hidden_states=True)
                rows = out.hidden_states[index][0]
                values += [acc.add(row) for pos, row in enumerate(rows, lo) if pos >= start]
                del out
    finally:
        model.train(was_training)
    return RankTrace(np.asarray(values, dtype=float), layer=layer, window=window, token_ids=ids[start:])


def generation_rank(
    model, generation: Any, *, layer: int = -1, window: int | None = None, chunk_size: int = 256
) -> RankTrace:
    """`hidden_state_rank` of a `softthink.Generation`'s response (its prompt is the context)."""
    prompt = list(generation.prompt_token_ids)
    return hidden_state_rank(
        model, prompt + list(generation.token_ids), start=len(prompt), layer=layer, window=window, chunk_size=chunk_size
    )


def compare_rank(
    models: dict[str, Any],
    token_ids: Sequence[int],
    *,
    start: int = 0,
    layer: int = -1,
    window: int | None = None,
    chunk_size: int = 256,
) -> dict[str, RankTrace]:
    """The same trace under several models (e.g. ``{"base": base, "policy": policy}``), one `RankTrace` each."""
    if not models:
        raise SoftthinkConfigError(
            "models is empty: give e.g. {'base': base_model, 'policy': policy_model}.", param="models", value=models
        )
    return {
        name: hidden_state_rank(m, token_ids, start=start, layer=layer, window=window, chunk_size=chunk_size)
        for name, m in models.items()
    }


def rank_entropy_figure(ranks: RankTrace | dict[str, RankTrace], entropies=None, *, title: str = ""):
    """A matplotlib Figure: token entropy (``entropies``, a `TokenEntropies` or a list of floats aligned with the
    response; optional) on top, the effective rank of each trace below, and its velocity at the bottom.
    Never sets a backend."""
    from matplotlib.figure import Figure

    ranks = {"": ranks} if isinstance(ranks, RankTrace) else dict(ranks)
    rows = 3 if entropies is not None else 2
    fig = Figure(figsize=(9, 2.2 * rows))
    axes = fig.subplots(rows, 1, sharex=True)
    if entropies is not None:
        values = np.asarray(getattr(entropies, "entropies", entropies), dtype=float)
        axes[0].plot(np.arange(values.size), values, lw=0.8, color="#555555")
        axes[0].set_ylabel("entropy (nats)")
    for name, trace in ranks.items():
        x = np.arange(trace.effective_rank.size)
        axes[-2].plot(x, trace.effective_rank, lw=1.2, label=name or None)
        axes[-1].plot(x, trace.velocity, lw=0.8, label=name or None)
    kind = next(iter(ranks.values()))
    axes[-2].set_ylabel("effective rank" + ("" if kind.window is None else f" (window {kind.window})"))
    axes[-1].set_ylabel("ER velocity")
    axes[-1].set_xlabel("response token")
    if any(ranks):
        axes[-2].legend(fontsize=8)
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    return fig
