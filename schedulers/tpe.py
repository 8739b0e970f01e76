"""Syne Tune's TPE: a KDE searcher fitted on the final result of every trial; every trial runs to the largest budget."""
from typing import Any

from syne_tune.optimizer.baselines import TPE

from schedulers.bohb import kde_min_points
from schedulers.budget import Budget


def arguments(config_space: dict[str, Any], budget: Budget) -> dict[str, Any]:
    """The KDE's smallest number of points, by the same rule as BOHB's."""
    return {"num_min_data_points": kde_min_points(config_space)}


def build(config_space: dict[str, Any], metric: str, mode: str, budget: Budget, seed: int) -> TPE:
    """Tree-structured Parzen estimator (Bergstra et al.), single fidelity."""
    return TPE(config_space, metric=metric, do_minimize=mode == "min", random_seed=seed,
               **arguments(config_space, budget))
