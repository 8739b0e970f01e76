"""Syne Tune's TPE: a KDE searcher fitted on the final result of every trial; every trial runs to the largest budget."""
from collections.abc import Callable, Hashable
from typing import Any

from syne_tune.optimizer.baselines import TPE
from syne_tune.optimizer.scheduler import TrialScheduler

from schedulers.accepted_only import accepted_only
from schedulers.async_bohb import kde_min_points
from schedulers.budget import Budget


def arguments(config_space: dict[str, Any], budget: Budget) -> dict[str, Any]:
    """The KDE's smallest number of points, by the same rule as BOHB's."""
    return {"num_min_data_points": kde_min_points(config_space)}


def build(config_space: dict[str, Any], metric: str, mode: str, budget: Budget, seed: int, *,
          config_key: Callable[[dict[str, Any]], Hashable] | None = None,
          accepts: Callable[[dict[str, Any]], bool] | None = None, configspace: Any = None) -> TrialScheduler:
    """Tree-structured Parzen estimator (Bergstra et al.), single fidelity."""
    return accepted_only(TPE(config_space, metric=metric, do_minimize=mode == "min", random_seed=seed,
                             **arguments(config_space, budget)), accepts)
