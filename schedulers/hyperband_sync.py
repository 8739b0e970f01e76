"""Synchronous Hyperband (Li et al. 2018) as HpBandSter runs it, on Syne Tune's ``TrialScheduler`` interface.

Iteration i runs bracket i mod (s_max + 1) of ``HyperbandSchedule``: its configurations start at the bracket's
first budget; when every trial of a rung has reported that rung's budget, the best floor(n / eta) are promoted and
resume from their checkpoints (``TrialSuggestion.resume_suggestion`` with ``epochs`` raised to the next budget), so
a promoted trial trains only the epochs it lacks. A trial is paused (PAUSE) when it reports its rung's budget; at
the largest budget it ends by itself. Like HpBandSter, a free worker never waits for a rung to fill: it takes a
promotion or an unstarted configuration of the oldest open iteration, else the next iteration is opened. Every open
iteration that has nothing to start has a trial running, so at most as many iterations are open as there are
workers.

No configuration starts two trials in a run, so none is evaluated twice at a budget (``schedulers.seen``); draws
are restricted to what the benchmark ``accepts``. When no new configuration is left, the scheduler says so (log and
stderr) and answers None: Syne Tune's tuner then lets the running trials finish and ends the run. Syne Tune cannot
wait for work, so once None is answered rungs still waiting for results are not promoted (this also applies after
``stop_new_trials``, see ``schedulers.trial_limit``).

Randomness comes from one ``numpy.random.Generator`` seeded by ``seed``; no wall-clock time is read, so the same
seed and the same sequence of events give the same run on any backend.
"""
import logging
import math
import sys
from collections import deque
from collections.abc import Callable, Hashable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from syne_tune.backend.trial_status import Trial
from syne_tune.optimizer.scheduler import SchedulerDecision, TrialSuggestion

from schedulers.budget import Budget
from schedulers.fresh_sampler import FreshSampler
from schedulers.hyperband_schedule import Bracket, HyperbandSchedule
from schedulers.search_space import SearchSpace
from schedulers.seen import SeenConfigurations
from schedulers.single_metric import SingleMetricScheduler

logger = logging.getLogger(__name__)
EPOCHS_KEY = "epochs"


@dataclass(eq=False)
class _Trial:
    """One configuration in an iteration: where it stands at its current rung."""

    config: dict[str, Any]
    iteration: int
    bracket: int
    model_based: bool
    budget: int
    trial_id: int | None = None
    loss: float | None = None  # at ``budget``, once reported (inf for a failed trial)
    running: bool = True
    resumable: bool = False  # paused by us at a rung, so it can be promoted


@dataclass(eq=False)
class _Iteration:
    index: int
    bracket: Bracket
    to_start: int
    rung: int = 0
    members: list[_Trial] = field(default_factory=list)
    promotions: deque = field(default_factory=deque)

    @property
    def budget(self) -> int:
        return self.bracket.budgets[self.rung]

    def rung_complete(self) -> bool:
        return self.to_start == 0 and not self.promotions and all(t.loss is not None for t in self.members)


class SynchronousHyperband(SingleMetricScheduler):
    """Synchronous Hyperband drawing configurations at random (subclasses override ``_propose``/``_observe``)."""

    def __init__(self, config_space: dict[str, Any], metric: str, mode: str, budget: Budget, seed: int, *,
                 config_key: Callable[[dict[str, Any]], Hashable] | None = None,
                 accepts: Callable[[dict[str, Any]], bool] | None = None, configspace: Any = None,
                 bracket_sizes: str = "li", epochs_key: str = EPOCHS_KEY):
        super().__init__(metric, mode, seed)
        self.resource_attr = budget.resource_attr
        self.sign = 1.0 if mode == "min" else -1.0
        self.schedule = HyperbandSchedule(budget.min_resource, budget.max_resource, budget.eta, bracket_sizes)
        self.max_resource = budget.max_resource
        self.space = SearchSpace(config_space, configspace)
        # Where the space fixes the epochs flag, each trial gets its rung's budget there: it trains up to the rung
        # and stops by itself; a resumed trial gets the next rung's budget.
        self.epochs_key = epochs_key if isinstance(config_space.get(epochs_key), (int, float)) else None
        self.seen = SeenConfigurations(config_key if config_key is not None else self.space.key)
        self.rng = np.random.default_rng(seed)
        self.sampler = FreshSampler(self.space, self.seen, self.rng, accepts)
        self._iterations: list[_Iteration] = []  # open ones, oldest first
        self._next_iteration = 0
        self._trials: dict[int, _Trial] = {}
        self._pending: _Trial | None = None
        self._new_trials_allowed = True
        self._exhausted = False

    # What a worker runs next -------------------------------------------------------------------------------------

    def suggest(self) -> TrialSuggestion | None:
        for iteration in list(self._iterations):
            suggestion = self._work(iteration)
            if suggestion is not None:
                return suggestion
        # Every open iteration waits for running trials: open the next one (HpBandSter does the same).
        while self._new_trials_allowed and not self._exhausted:
            iteration = self._open_iteration()
            suggestion = self._work(iteration)
            if suggestion is not None:
                return suggestion
        return None

    def stop_new_trials(self):
        """Start no new trial from now on; promotions of the trials already started still run when asked for."""
        self._new_trials_allowed = False
        for iteration in list(self._iterations):
            self._close_first_rung(iteration)

    def _close_first_rung(self, iteration: _Iteration):
        """``iteration`` starts no more configurations: it goes on with those it has (or closes without any)."""
        iteration.to_start = 0
        if not iteration.members:
            self._iterations.remove(iteration)
        elif iteration.rung_complete():
            self._advance(iteration)

    def _open_iteration(self) -> _Iteration:
        bracket = self.schedule.bracket(self._next_iteration)
        iteration = _Iteration(self._next_iteration, bracket, to_start=bracket.sizes[0])
        self._next_iteration += 1
        self._iterations.append(iteration)
        return iteration

    def _work(self, iteration: _Iteration) -> TrialSuggestion | None:
        if iteration.promotions:
            trial = iteration.promotions.popleft()
            trial.budget, trial.running, trial.resumable = iteration.budget, True, False
            return TrialSuggestion.resume_suggestion(trial.trial_id, self._with_epochs(trial.config, trial.budget))
        if iteration.to_start == 0 or not self._new_trials_allowed:
            return None
        proposal = self._propose(iteration.budget)
        if proposal is None:
            self._space_exhausted(iteration)
            return self._work(iteration) if iteration.promotions else None
        config, key, model_based = proposal
        iteration.to_start -= 1
        trial = _Trial(config, iteration.index, iteration.bracket.index, model_based, iteration.budget)
        iteration.members.append(trial)
        self.seen.start(key)
        self._pending = trial
        return TrialSuggestion.start_suggestion(self._with_epochs(config, trial.budget))

    def _with_epochs(self, config: dict[str, Any], budget: int) -> dict[str, Any]:
        return {**config, self.epochs_key: budget} if self.epochs_key else dict(config)

    def _space_exhausted(self, iteration: _Iteration):
        """No new configuration for ``iteration``: it goes on with those it has; no further iteration opens."""
        if not self._exhausted:
            self._exhausted = True
            message = (f"Search space exhausted: {self.sampler.exhausted_reason}; {len(self._trials)} trials started "
                       f"({len(self.seen)} distinct configurations). The run ends when the running trials finish.")
            logger.warning(message)
            print(message, file=sys.stderr)
        self._close_first_rung(iteration)

    # Configurations: random here, model-based in BOHB ------------------------------------------------------------

    def _propose(self, budget: int) -> tuple[dict[str, Any], Hashable, bool] | None:
        """A configuration not started yet for ``budget``, its key, and whether a model picked it; None when none
        is left."""
        found = self.sampler.random()
        return None if found is None else (*found, False)

    def _observe(self, trial: _Trial):
        """A trial's result at its rung's budget (``trial.loss``, smaller is better)."""

    # Events from the tuner ---------------------------------------------------------------------------------------

    def on_trial_add(self, trial: Trial):
        if self._pending is not None:
            self._pending.trial_id = trial.trial_id
            self._trials[trial.trial_id] = self._pending
            self._pending = None

    def on_trial_result(self, trial: Trial, result: dict[str, Any]) -> str:
        ours = self._trials.get(trial.trial_id)
        if ours is None:
            return SchedulerDecision.CONTINUE
        if not ours.running:  # a report that arrived after the rung's (the pause is on its way)
            return SchedulerDecision.PAUSE if ours.resumable else SchedulerDecision.STOP
        epoch = result.get(self.resource_attr)
        if epoch is None or epoch < ours.budget:
            return SchedulerDecision.CONTINUE
        final = ours.budget >= self.max_resource
        self._finish_rung(ours, result.get(self.metric), resumable=not final)
        if final:
            # The script stops by itself at its epochs flag; where we do not set that flag, stop it.
            return SchedulerDecision.CONTINUE if self.epochs_key else SchedulerDecision.STOP
        return SchedulerDecision.PAUSE

    def on_trial_complete(self, trial: Trial, result: dict[str, Any]):
        ours = self._trials.get(trial.trial_id)
        if ours is not None and ours.running:  # ended before its rung's budget: its last result stands
            self._finish_rung(ours, result.get(self.metric), resumable=False)

    def on_trial_error(self, trial: Trial):
        ours = self._trials.get(trial.trial_id)
        if ours is None:
            return
        if ours.running:
            self._finish_rung(ours, None, resumable=False)
        ours.resumable = False

    def _finish_rung(self, trial: _Trial, value: Any, resumable: bool):
        loss = self.sign * float(value) if value is not None else math.inf
        trial.loss = loss if not math.isnan(loss) else math.inf
        trial.running, trial.resumable = False, resumable
        self._observe(trial)
        iteration = next(it for it in self._iterations if it.index == trial.iteration)
        if iteration.rung_complete():
            self._advance(iteration)

    def _advance(self, iteration: _Iteration):
        """Successive halving: promote the best of a complete rung (HpBandSter's rank rule), or close the iteration."""
        members, k = iteration.members, iteration.rung
        sizes = iteration.bracket.sizes
        promoted: list[_Trial] = []
        if k + 1 < len(sizes):
            eligible = sorted((t for t in members if t.resumable and math.isfinite(t.loss)), key=lambda t: t.loss)
            # a rung that could not be filled keeps the same fraction
            quota = sizes[k + 1] if len(members) == sizes[k] else max(1, len(members) * sizes[k + 1] // sizes[k])
            promoted = eligible[:quota]
        if not promoted:
            self._iterations.remove(iteration)
            return
        for trial in promoted:
            trial.loss = None
        iteration.rung += 1
        iteration.members = promoted
        iteration.promotions.extend(promoted)

    # Reporting ---------------------------------------------------------------------------------------------------

    def trial_bookkeeping(self, trial_id: int) -> dict[str, Any]:
        """The trial's iteration and bracket (0 has the most rungs)."""
        trial = self._trials.get(trial_id)
        if trial is None:
            return {}
        return {"iteration": trial.iteration, "bracket": trial.bracket}

    def settings(self) -> dict[str, Any]:
        return {"budgets": list(self.schedule.budgets), "s_max": self.schedule.s_max, "eta": self.schedule.eta,
                "bracket_sizes": self.schedule.rule}


def arguments(config_space: dict[str, Any], budget: Budget) -> dict[str, Any]:
    """The schedule: budgets, and per bracket the configurations at each rung."""
    schedule = HyperbandSchedule(budget.min_resource, budget.max_resource, budget.eta)
    return {"min_resource": budget.min_resource, "max_resource": budget.max_resource, "eta": budget.eta,
            "s_max": schedule.s_max, "budgets": list(schedule.budgets), "bracket_sizes": schedule.rule,
            "brackets": [list(schedule.bracket(i).sizes) for i in range(schedule.num_brackets)]}


def build(config_space: dict[str, Any], metric: str, mode: str, budget: Budget, seed: int, *,
          config_key: Callable[[dict[str, Any]], Hashable] | None = None,
          accepts: Callable[[dict[str, Any]], bool] | None = None, configspace: Any = None) -> SynchronousHyperband:
    """Synchronous Hyperband drawing configurations at random, each new at its budget."""
    return SynchronousHyperband(config_space, metric, mode, budget, seed, config_key=config_key, accepts=accepts,
                                configspace=configspace)
