"""Syne Tune's regularised evolution (Real et al.), the standard NAS-Bench-201 baseline; every trial runs to the end.

Population 10 and tournament sample 3, as in NAS-Bench-201's own runs (Syne Tune's default population of 100 would
draw the first 100 configurations at random, which is a whole run here).
"""
from typing import Any

from syne_tune.optimizer.baselines import REA

from schedulers.budget import Budget


def arguments(config_space: dict[str, Any], budget: Budget) -> dict[str, Any]:
    """Population and tournament sizes."""
    return {"population_size": 10, "sample_size": 3}


def build(config_space: dict[str, Any], metric: str, mode: str, budget: Budget, seed: int) -> REA:
    """Regularised evolution: mutate the best of a random sample of the population, drop the oldest member."""
    return REA(config_space, metric=metric, do_minimize=mode == "min", random_seed=seed,
               **arguments(config_space, budget))
