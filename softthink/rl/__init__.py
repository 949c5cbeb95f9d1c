"""Forking-token RL for reasoning LMs, on trl's GRPOTrainer.

Recipes (``configs/rl/``): ``full`` (all tokens), ``forking`` (top-20 % entropy tokens), ``clip_cov`` and
``kl_cov`` (covariance-based entropy protection). Entry points: `train`, `dry_run`, `load_recipe`; the trainer
`SofthinkGRPOTrainer` and its config `SofthinkGRPOConfig` for use from Python; `fit_entropy_law` for
R = -a exp(H) + b.
"""
from softthink.rl.config import RECIPE_NAMES, SofthinkGRPOConfig
from softthink.rl.dynamics import EntropyDynamicsCallback, EntropyLaw, fit_entropy_law, read_dynamics
from softthink.rl.recipes import available_recipes, load_recipe
from softthink.rl.rewards import CorrectnessReward
from softthink.rl.train import TrainResult, dry_run, train
from softthink.rl.trainer import SofthinkGRPOTrainer

__all__ = [
    "RECIPE_NAMES", "SofthinkGRPOConfig", "SofthinkGRPOTrainer", "CorrectnessReward", "EntropyDynamicsCallback",
    "EntropyLaw", "fit_entropy_law", "read_dynamics", "available_recipes", "load_recipe", "train", "dry_run",
    "TrainResult",
]
