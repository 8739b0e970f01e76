"""Syne Tune's asynchronous Hyperband (successive halving over several brackets), recording each trial's bracket.

Registered as ``asha``; ``hyperband`` is the synchronous algorithm (``schedulers.hyperband_sync``). A trial's bracket
is drawn when it starts, with Syne Tune's distribution (bracket k with probability proportional to e^(its number
of rungs): 0.665, 0.245, 0.090 for epochs 1..9 and eta 3); bracket k has rungs at min * eta^(k + j) below max.
Syne Tune may start a configuration already started (nothing checks), and a trial the benchmark cannot evaluate is
redrawn (``AcceptedOnly``).
"""
from collections.abc import Callable, Hashable
from typing import Any

from syne_tune.backend.trial_status import Trial
from syne_tune.optimizer.scheduler import TrialScheduler
from syne_tune.optimizer.schedulers.asha import AsynchronousSuccessiveHalving

from schedulers.accepted_only import accepted_only
from schedulers.budget import Budget


class Hyperband(AsynchronousSuccessiveHalving):
    """Asynchronous Hyperband whose bookkeeping (the bracket of every trial) is written to ``trials.csv``."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self._trial_brackets: dict[int, int] = {}

    def on_trial_add(self, trial: Trial):
        super().on_trial_add(trial)
        self._trial_brackets[trial.trial_id] = self.brackets.index(self.trial_info[trial.trial_id])

    def trial_bookkeeping(self, trial_id: int) -> dict[str, Any]:
        """The trial's bracket (0 has the most rungs)."""
        return {"bracket": self._trial_brackets.get(trial_id)}


def arguments(config_space: dict[str, Any], budget: Budget) -> dict[str, Any]:
    """Rungs at min * eta^k within each of Li et al.'s brackets."""
    return {"grace_period": budget.min_resource, "max_t": budget.max_resource, "reduction_factor": budget.eta,
            "brackets": budget.brackets}


def build(config_space: dict[str, Any], metric: str, mode: str, budget: Budget, seed: int, *,
          config_key: Callable[[dict[str, Any]], Hashable] | None = None,
          accepts: Callable[[dict[str, Any]], bool] | None = None, configspace: Any = None) -> TrialScheduler:
    """Asynchronous Hyperband drawing configurations at random."""
    return accepted_only(Hyperband(config_space=config_space, metric=metric, do_minimize=mode == "min",
                                   time_attr=budget.resource_attr, searcher="random_search", random_seed=seed,
                                   **arguments(config_space, budget)), accepts)
