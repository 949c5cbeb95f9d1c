"""Forking-token RL for reasoning LMs, on trl's GRPOTrainer.

Recipes (``configs/rl/``): ``full`` (all tokens), ``forking`` (top-20 % entropy tokens), ``clip_cov`` and
``kl_cov`` (covariance-based entropy protection). Entry points: `train`, `dry_run`, `load_recipe`; the trainer
`SoftthinkGRPOTrainer` and its config `SoftthinkGRPOConfig` for use from Python; `fit_entropy_law` for
R = -a exp(H) + b.
"""

from softthink.extras import require

require("trl", extra="rl", feature="softthink.rl (GRPO training)")

from softthink.deprecation import renamed_attributes
from softthink.rl.config import RECIPE_NAMES, SoftthinkGRPOConfig
from softthink.rl.dynamics import EntropyDynamicsCallback, EntropyLaw, fit_entropy_law, read_dynamics
from softthink.rl.recipes import available_recipes, load_recipe
from softthink.rl.rewards import CorrectnessReward
from softthink.rl.train import TrainResult, dry_run, train
from softthink.rl.trainer import SoftthinkGRPOTrainer

__all__ = [
    "RECIPE_NAMES",
    "SoftthinkGRPOConfig",
    "SoftthinkGRPOTrainer",
    "CorrectnessReward",
    "EntropyDynamicsCallback",
    "EntropyLaw",
    "fit_entropy_law",
    "read_dynamics",
    "available_recipes",
    "load_recipe",
    "train",
    "dry_run",
    "TrainResult",
]

__getattr__ = renamed_attributes(
    __name__, {"SofthinkGRPOConfig": "SoftthinkGRPOConfig", "SofthinkGRPOTrainer": "SoftthinkGRPOTrainer"}
)  # pre-0.2 names
