"""Random search: configurations drawn uniformly at random (Syne Tune's sampler), each at most once per run (by the
benchmark's equivalence where it has one), every trial run to the largest budget."""
from collections.abc import Callable, Hashable
from typing import Any

from syne_tune.optimizer.baselines import RandomSearch
from syne_tune.optimizer.scheduler import TrialScheduler

from schedulers.accepted_only import accepted_only
from schedulers.budget import Budget


def arguments(config_space: dict[str, Any], budget: Budget) -> dict[str, Any]:
    """Random search has no settings of its own."""
    return {}


def build(config_space: dict[str, Any], metric: str, mode: str, budget: Budget, seed: int, *,
          config_key: Callable[[dict[str, Any]], Hashable] | None = None,
          accepts: Callable[[dict[str, Any]], bool] | None = None, configspace: Any = None) -> TrialScheduler:
    """Configurations drawn uniformly at random, never one already started."""
    return accepted_only(RandomSearch(config_space, metrics=[metric], do_minimize=mode == "min", random_seed=seed),
                         accepts, config_key, distinct=True)
