"""Syne Tune's random search: every trial runs to the largest budget."""
from typing import Any

from syne_tune.optimizer.baselines import RandomSearch

from schedulers.budget import Budget


def arguments(config_space: dict[str, Any], budget: Budget) -> dict[str, Any]:
    """Random search has no settings of its own."""
    return {}


def build(config_space: dict[str, Any], metric: str, mode: str, budget: Budget, seed: int) -> RandomSearch:
    """Configurations drawn uniformly at random."""
    return RandomSearch(config_space, metrics=[metric], do_minimize=mode == "min", random_seed=seed)
