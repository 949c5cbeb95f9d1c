"""Entropy dynamics of an RL run: one JSONL row per optimizer step, and the entropy-performance law fit.

Each row holds ``step``, ``reward`` and ``accuracy`` (of the rollouts this step trained on), ``fresh_rollouts``
(True on the step that generated them; trl reuses one generation batch for ``steps_per_generation /
gradient_accumulation_steps`` optimizer steps), the mean entropy (nats) of ``entropy_all`` completion tokens,
``entropy_forking`` (top ``forking_quantile`` of the step's tokens), ``entropy_execution`` (the rest),
``frac_above`` (fraction above ``entropy_log_threshold``, 0.672 nats by default), ``frac_reward_zero_std``
(prompt groups whose rewards were all equal, hence no gradient), recipe counters, ``cov_logp_adv`` (Cov(log pi, A)
over the valid tokens), ``entropy_p10`` ... ``entropy_p99`` (entropy percentiles, nats), and token counts
``tokens_valid``, ``tokens_selected`` (forking: trained; Clip-Cov: detached), ``tokens_clipped`` (PPO-clipped;
under GPPO these keep a gradient) and ``tokens_penalised`` (KL-Cov), each per micro-batch (the mean over the step's
micro-batches, as trl averages its logs). ``entropy_adv_bonus`` is the entropy advantage's mean added term.

`fit_entropy_law` fits R = -a * exp(H) + b (Cui et al., 2025) by least squares; it is linear in (a, b). The law
predicts the reward ceiling -a + b, reached when the entropy is exhausted (H = 0); its 95% CI is a percentile
bootstrap over the (H, R) points (resampled with replacement, refit each time, seeded).
"""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
from transformers import TrainerCallback

from softthink.errors import SoftthinkDataError

_FROM_LOGS = {
    "reward": "reward",
    "accuracy": "accuracy",
    "entropy_all": "entropy/all",
    "entropy_forking": "entropy/forking",
    "entropy_execution": "entropy/execution",
    "frac_above": "entropy/frac_above",
    "forking_threshold": "entropy/forking_threshold",
    "loss": "loss",
    "completion_length": "completions/mean_length",
    "frac_reward_zero_std": "frac_reward_zero_std",
    "clip_cov_detached_fraction": "clip_cov/detached_fraction",
    "kl_cov_penalised_fraction": "kl_cov/penalised_fraction",
    "kl_cov_penalty": "kl_cov/penalty",
    "cov_logp_adv": "rl/cov_logp_adv",
    "tokens_valid": "tokens/valid",
    "tokens_selected": "tokens/selected",
    "tokens_clipped": "tokens/clipped",
    "tokens_penalised": "tokens/penalised",
    "entropy_p10": "entropy/p10",
    "entropy_p50": "entropy/p50",
    "entropy_p90": "entropy/p90",
    "entropy_p99": "entropy/p99",
    "entropy_adv_bonus": "entropy_adv/bonus",
    "soft_step_share": "soft/step_share",
    "mixture_width": "soft/mixture_width",
    "mixture_kept": "soft/mixture_kept",
}
DYNAMICS_FIELDS = ("step", "fresh_rollouts", *_FROM_LOGS)
"""Keys of every dynamics row (recipe counters are None for the recipes that do not have them)."""

_CARRIED = (
    "reward",
    "accuracy",
    "completion_length",
    "frac_reward_zero_std",
    "soft_step_share",
    "mixture_width",
    "mixture_kept",
)  # logged by trl only on steps that generate


class EntropyDynamicsCallback(TrainerCallback):
    """Appends one row per logged training step to ``path`` (JSONL). Needs ``logging_steps=1`` for every step.

    On resume, rows after the checkpoint's step are dropped first, so the file has one row per step.
    """

    def __init__(self, path: str | Path):
        self.path = Path(path)
        self._last_rollout: dict[str, float | None] = {}

    def on_train_begin(self, args, state, control, **kwargs):
        if not state.is_world_process_zero:
            return
        rows = [r for r in read_dynamics(self.path) if r["step"] <= state.global_step] if self.path.exists() else []
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with self.path.open("w") as f:
            for row in rows:
                f.write(json.dumps(row) + "\n")
        self._last_rollout = {k: rows[-1].get(k) for k in _CARRIED} if rows else {}

    def on_log(self, args, state, control, logs=None, **kwargs):
        if not state.is_world_process_zero or not logs or "entropy/all" not in logs:
            return  # evaluation logs and the end-of-training summary carry no dynamics
        fresh = "reward" in logs
        row = {"step": state.global_step, "fresh_rollouts": fresh}
        for key, log_key in _FROM_LOGS.items():
            row[key] = _clean(logs.get(log_key))
        if fresh:
            self._last_rollout = {k: row[k] for k in _CARRIED}
        else:
            row.update(self._last_rollout)
        with self.path.open("a") as f:
            f.write(json.dumps(row) + "\n")


def _clean(value):
    if value is None:
        return None
    value = float(value)
    return None if math.isnan(value) else value


def read_dynamics(path: str | Path) -> list[dict]:
    """The rows of a dynamics JSONL file, in step order."""
    path = Path(path)
    if not path.exists():
        raise SoftthinkDataError(
            f"no dynamics log at {path}; it is written by a softthink RL run (softthink rl train ...)."
        )
    rows = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    return sorted(rows, key=lambda r: r["step"])


@dataclass(frozen=True)
class EntropyLaw:
    """Fit of R = -a * exp(H) + b: coefficients, coefficient of determination and number of points.

    ``ceiling`` = -a + b, the predicted reward at H = 0 (all entropy spent); ``ceiling_ci_low`` /
    ``ceiling_ci_high``: its percentile-bootstrap 95% CI (NaN when not computed or too few valid resamples).
    """

    a: float
    b: float
    r2: float
    n: int
    ceiling: float = float("nan")
    ceiling_ci_low: float = float("nan")
    ceiling_ci_high: float = float("nan")

    def predict(self, entropy):
        return -self.a * np.exp(np.asarray(entropy, dtype=float)) + self.b

    def to_dict(self) -> dict:
        return asdict(self)


def fit_entropy_law(entropy, reward, *, n_boot: int = 2000, seed: int = 0) -> EntropyLaw:
    """Least-squares fit of ``reward = -a * exp(entropy) + b``; R^2 = 1 - SS_res / SS_tot.

    Needs at least 3 points with varying entropy. R^2 is NaN when the rewards do not vary (nothing to explain).
    The ceiling -a + b gets a 95% percentile-bootstrap CI from ``n_boot`` resamples of the points (``seed``);
    resamples whose entropies are all equal cannot be fitted and are skipped. ``n_boot=0`` skips the bootstrap.
    """
    if not isinstance(n_boot, int) or n_boot < 0:
        raise SoftthinkDataError(f"n_boot must be an int >= 0, got {n_boot!r}; 0 skips the ceiling's bootstrap CI.")
    h = np.asarray(entropy, dtype=float)
    r = np.asarray(reward, dtype=float)
    if h.shape != r.shape or h.ndim != 1:
        raise SoftthinkDataError(f"entropy and reward must be 1-D and equally long, got {h.shape} and {r.shape}.")
    keep = np.isfinite(h) & np.isfinite(r)
    h, r = h[keep], r[keep]
    if h.size < 3:
        raise SoftthinkDataError(f"the entropy law needs at least 3 (entropy, reward) points, got {h.size}.")
    x = -np.exp(h)
    if np.ptp(x) == 0:
        raise SoftthinkDataError("all entropies are equal: R = -a exp(H) + b cannot separate a from b.")
    a, b = _least_squares(x, r)
    residual = r - (a * x + b)
    ss_tot = float(((r - r.mean()) ** 2).sum())
    r2 = 1.0 - float((residual**2).sum()) / ss_tot if ss_tot > 0 else float("nan")
    low, high = _ceiling_interval(x, r, n_boot, seed)
    return EntropyLaw(
        a=float(a), b=float(b), r2=r2, n=int(h.size), ceiling=float(b - a), ceiling_ci_low=low, ceiling_ci_high=high
    )


def _least_squares(x: np.ndarray, r: np.ndarray) -> tuple[float, float]:
    design = np.stack([x, np.ones_like(x)], axis=1)
    (a, b), *_ = np.linalg.lstsq(design, r, rcond=None)
    return float(a), float(b)


def _ceiling_interval(x: np.ndarray, r: np.ndarray, n_boot: int, seed: int) -> tuple[float, float]:
    """2.5th and 97.5th percentiles of -a + b refitted on ``n_boot`` resamples (NaN if under 100 are valid)."""
    rng = np.random.default_rng(seed)
    ceilings = []
    for _ in range(n_boot):
        idx = rng.integers(0, x.size, size=x.size)
        if np.ptp(x[idx]) > 0:
            a, b = _least_squares(x[idx], r[idx])
            ceilings.append(b - a)
    if len(ceilings) < min(100, n_boot) or not ceilings:
        return float("nan"), float("nan")
    return float(np.quantile(ceilings, 0.025)), float(np.quantile(ceilings, 0.975))


def law_points(rows: list[dict], bin_size: int = 1) -> tuple[list[float], list[float]]:
    """(entropy, reward) pairs for the law: the steps that generated fresh rollouts (on-policy entropy).

    ``bin_size > 1`` averages consecutive groups of that many rollout steps (a trailing partial group is dropped),
    trading points for less sampling noise in each reward.
    """
    pairs = [
        (r["entropy_all"], r["reward"])
        for r in rows
        if r.get("fresh_rollouts") and r.get("entropy_all") is not None and r.get("reward") is not None
    ]
    if bin_size > 1:
        pairs = [tuple(np.mean(pairs[i : i + bin_size], axis=0)) for i in range(0, len(pairs) - bin_size + 1, bin_size)]
    return [float(p[0]) for p in pairs], [float(p[1]) for p in pairs]


def fit_dynamics(rows: list[dict], bin_size: int = 1) -> EntropyLaw:
    """`fit_entropy_law` on a run's dynamics rows (see `law_points`)."""
    return fit_entropy_law(*law_points(rows, bin_size))
