"""Syne Tune's regularised evolution (Real et al.), the standard NAS-Bench-201 baseline; every trial runs to the end.

Population 10 and tournament sample 3, as in NAS-Bench-201's own runs (Syne Tune's default population of 100 would
draw the first 100 configurations at random, which is a whole run here).
"""
from collections.abc import Callable, Hashable
from typing import Any

from syne_tune.optimizer.baselines import REA
from syne_tune.optimizer.scheduler import TrialScheduler

from schedulers.accepted_only import accepted_only
from schedulers.budget import Budget


def arguments(config_space: dict[str, Any], budget: Budget) -> dict[str, Any]:
    """Population and tournament sizes."""
    return {"population_size": 10, "sample_size": 3}


def build(config_space: dict[str, Any], metric: str, mode: str, budget: Budget, seed: int, *,
          config_key: Callable[[dict[str, Any]], Hashable] | None = None,
          accepts: Callable[[dict[str, Any]], bool] | None = None, configspace: Any = None) -> TrialScheduler:
    """Regularised evolution: mutate the best of a random sample of the population, drop the oldest member."""
    return accepted_only(REA(config_space, metric=metric, do_minimize=mode == "min", random_seed=seed,
                             **arguments(config_space, budget)), accepts)
