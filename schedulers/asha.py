"""Asynchronous successive halving (Li et al., 2020) in Hyperband's brackets, Syne Tune's rules, a cost per decision
that does not grow with the run.

Registered as ``asha``; ``hyperband`` is the synchronous algorithm (``schedulers.hyperband_sync``). It decides as
Syne Tune's ``AsynchronousSuccessiveHalving`` with ``brackets`` set to Li et al.'s count (``tests/test_asha.py``
checks the decisions against it on the same reports):

- a trial's bracket is drawn when it starts, bracket k with probability proportional to e^(its number of rungs)
  (0.665, 0.245, 0.090 for epochs 1..9 and eta 3); bracket k has rungs at min * eta^(k + j) up to the largest budget;
- a trial reaching a rung continues if it is the first there, or if the share of the values recorded at that rung
  (itself included) strictly better than its own is at most 1 / eta; otherwise it stops; a trial at the largest
  budget stops;
- a trial's last result (``on_trial_complete``) is recorded at its rung as well.

Syne Tune ranks against the rung's whole list on every report (a sort of everything recorded there, so a run's cost
grows with the square of its length: 5 of the 8 s of a 3,000-trial simulated run); here each rung keeps its values
sorted, and a decision is one binary search. A NaN value ranks last. Configurations are drawn at random from the
space's prior (conditions applied where the benchmark gives a conditional space), only those the benchmark accepts;
as in Syne Tune, a configuration may come up again.
"""
import bisect
import math
from collections.abc import Callable, Hashable
from typing import Any

import numpy as np
from syne_tune.backend.trial_status import Trial
from syne_tune.optimizer.scheduler import SchedulerDecision, TrialScheduler, TrialSuggestion

from schedulers.budget import Budget
from schedulers.fresh_sampler import FreshSampler
from schedulers.search_space import SearchSpace
from schedulers.seen import SeenConfigurations
from schedulers.single_metric import SingleMetricScheduler


class Rung:
    """The values recorded at one budget, sorted, and the trials they came from."""

    def __init__(self, level: float):
        self.level = level
        self.values: list[float] = []
        self.trials: set[int] = set()

    def record(self, trial_id: int, value: float, eta: float) -> bool:
        """Record a trial's value; whether it may go on (Syne Tune's rank rule)."""
        better = bisect.bisect_left(self.values, value)
        goes_on = not self.values or better / (len(self.values) + 1) <= 1 / eta
        bisect.insort(self.values, value)
        self.trials.add(trial_id)
        return goes_on


class Bracket:
    """Rungs at ``min * eta^(index + j)`` for j = 0, 1, ... up to ``max`` (Syne Tune's count), highest first."""

    def __init__(self, index: int, min_resource: int, max_resource: int, eta: float):
        self.index, self.eta = index, eta
        count = int(np.log(max_resource / min_resource) / np.log(eta) - index + 1)
        self.rungs = [Rung(min_resource * eta ** (j + index)) for j in reversed(range(count))]

    def on_result(self, trial_id: int, resource: float, value: float) -> bool:
        """Record a result at the highest rung it reached and has not been recorded at; whether the trial goes on."""
        for rung in self.rungs:
            if resource >= rung.level and trial_id not in rung.trials:
                return rung.record(trial_id, value, self.eta)
        return True


class AsynchronousHyperband(SingleMetricScheduler):
    """Asynchronous successive halving over several brackets, drawing configurations at random."""

    def __init__(self, config_space: dict[str, Any], metric: str, mode: str, budget: Budget, seed: int, *,
                 accepts: Callable[[dict[str, Any]], bool] | None = None, configspace: Any = None):
        super().__init__(metric, mode, seed)
        self.resource_attr = budget.resource_attr
        self.sign = 1.0 if mode == "min" else -1.0
        self.max_resource = budget.max_resource
        self.brackets = [Bracket(k, budget.min_resource, budget.max_resource, budget.eta)
                         for k in range(budget.brackets)]
        sizes = np.array([len(b.rungs) for b in self.brackets])
        weights = np.exp(sizes - sizes.max())
        self.bracket_probabilities = weights / weights.sum()
        self._cumulative = np.cumsum(self.bracket_probabilities).tolist()
        self.rng = np.random.default_rng(seed)
        space = SearchSpace(config_space, configspace)
        # Nothing is ever marked started: configurations may repeat, as in Syne Tune's.
        self.sampler = FreshSampler(space, SeenConfigurations(space.key), self.rng, accepts)
        self._trial_bracket: dict[int, Bracket] = {}

    def suggest(self) -> TrialSuggestion | None:
        found = self.sampler.random()
        return None if found is None else TrialSuggestion.start_suggestion(dict(found[0]))

    def on_trial_add(self, trial: Trial):
        # (what ``rng.choice(p=...)`` draws, without its checks of p on every call)
        index = min(bisect.bisect_right(self._cumulative, self.rng.random()), len(self.brackets) - 1)
        self._trial_bracket[trial.trial_id] = self.brackets[index]

    def _value(self, result: dict[str, Any]) -> float:
        value = self.sign * float(result[self.metric])
        return math.inf if math.isnan(value) else value

    def on_trial_result(self, trial: Trial, result: dict[str, Any]) -> str:
        resource = result[self.resource_attr]
        if resource >= self.max_resource:
            return SchedulerDecision.STOP
        goes_on = self._trial_bracket[trial.trial_id].on_result(trial.trial_id, resource, self._value(result))
        return SchedulerDecision.CONTINUE if goes_on else SchedulerDecision.STOP

    def on_trial_complete(self, trial: Trial, result: dict[str, Any]):
        bracket = self._trial_bracket.get(trial.trial_id)
        if bracket is not None:
            bracket.on_result(trial.trial_id, result[self.resource_attr], self._value(result))

    def trial_bookkeeping(self, trial_id: int) -> dict[str, Any]:
        """The trial's bracket (0 has the most rungs)."""
        bracket = self._trial_bracket.get(trial_id)
        return {"bracket": None if bracket is None else bracket.index}

    def settings(self) -> dict[str, Any]:
        return {"rungs": [[r.level for r in reversed(b.rungs)] for b in self.brackets],
                "bracket_probabilities": self.bracket_probabilities.tolist()}


def arguments(config_space: dict[str, Any], budget: Budget) -> dict[str, Any]:
    """Rungs at min * eta^k within each of Li et al.'s brackets."""
    return {"grace_period": budget.min_resource, "max_t": budget.max_resource, "reduction_factor": budget.eta,
            "brackets": budget.brackets}


def build(config_space: dict[str, Any], metric: str, mode: str, budget: Budget, seed: int, *,
          config_key: Callable[[dict[str, Any]], Hashable] | None = None,
          accepts: Callable[[dict[str, Any]], bool] | None = None, configspace: Any = None) -> TrialScheduler:
    """Asynchronous Hyperband drawing configurations at random."""
    return AsynchronousHyperband(config_space, metric, mode, budget, seed, accepts=accepts, configspace=configspace)
