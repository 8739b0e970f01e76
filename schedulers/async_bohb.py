"""Syne Tune's asynchronous BOHB: Hyperband brackets with a KDE searcher, recording whether a pick came from the model.

Registered as ``async_bohb``; ``bohb`` is the synchronous algorithm (``schedulers.bohb_sync``). Syne Tune's asynchronous
successive halving, brackets as ``asha``'s (which decides as Syne Tune's does, faster); one KDE on the last result of
every trial (all budgets, unfinished trials included); Syne Tune codes a categorical value as index / k, so its
categorical kernel hardly moves away from a good point, and nothing stops it from proposing a configuration already run
(../shared/FINDINGS.md).

Syne Tune's ``KernelDensityEstimator`` does not say whether a suggestion was drawn at random (too little data, or the
``random_fraction`` of draws) or by optimising the KDE acquisition, so the classes here observe it.
"""
from collections.abc import Callable, Hashable
from functools import partial
from typing import Any

from syne_tune.backend.trial_status import Trial
from syne_tune.optimizer.schedulers.searchers.kde import KernelDensityEstimator
from syne_tune.optimizer.schedulers.searchers.last_value_multi_fidelity_searcher import (
    LastValueMultiFidelitySearcher,
)

from syne_tune.optimizer.scheduler import TrialScheduler
from syne_tune.optimizer.schedulers.asha import AsynchronousSuccessiveHalving

from schedulers import asha
from schedulers.accepted_only import accepted_only
from schedulers.budget import Budget


def kde_min_points(config_space: dict[str, Any]) -> int:
    """Fewest good (and bad) points for a KDE: d + 1 for d hyperparameters (HpBandSter's rule).

    Syne Tune's default of d never lets a KDE fit before 15% of the results exceed d, about 60 results.
    """
    return sum(hasattr(domain, "sample") for domain in config_space.values()) + 1


class _ObservedKDE(KernelDensityEstimator):
    """KDE searcher that reports after each suggestion whether it came from the model."""

    def __init__(self, on_pick: Callable[[bool], None], **kwargs):
        super().__init__(**kwargs)
        self._on_pick = on_pick
        self._drew_random = False

    def _get_random_config(self):
        self._drew_random = True
        return super()._get_random_config()

    def suggest(self, **kwargs) -> dict[str, Any] | None:
        self._drew_random = False
        config = super().suggest(**kwargs)
        self._on_pick(not self._drew_random)
        return config


class PickRecordingSearcher(LastValueMultiFidelitySearcher):
    """Syne Tune's multi-fidelity KDE searcher; ``last_pick_model_based`` tells how the last config was chosen."""

    def __init__(self, config_space: dict, random_seed: int, searcher_kwargs: dict[str, Any]):
        super().__init__(config_space=config_space, random_seed=random_seed, searcher="kde",
                         searcher_kwargs=searcher_kwargs)
        self.searcher_cls = partial(_ObservedKDE, on_pick=self._record_pick)
        self.last_pick_model_based = False

    def _record_pick(self, model_based: bool):
        self.last_pick_model_based = model_based

    def suggest(self, **kwargs) -> dict[str, Any] | None:
        # Initial random draws never reach the KDE, so they stay "not model-based".
        self.last_pick_model_based = False
        return super().suggest(**kwargs)


class Hyperband(AsynchronousSuccessiveHalving):
    """Syne Tune's asynchronous Hyperband, recording the bracket of every trial."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self._trial_brackets: dict[int, int] = {}

    def on_trial_add(self, trial: Trial):
        super().on_trial_add(trial)
        self._trial_brackets[trial.trial_id] = self.brackets.index(self.trial_info[trial.trial_id])

    def trial_bookkeeping(self, trial_id: int) -> dict[str, Any]:
        """The trial's bracket (0 has the most rungs)."""
        return {"bracket": self._trial_brackets.get(trial_id)}


class BOHB(Hyperband):
    """Syne Tune's asynchronous BOHB, recording each trial's bracket and whether its config was a model pick."""

    def __init__(self, config_space: dict, random_seed: int, searcher_kwargs: dict[str, Any] | None = None, **kwargs):
        searcher_kwargs = {"num_min_data_points": kde_min_points(config_space), **(searcher_kwargs or {})}
        searcher = PickRecordingSearcher(config_space, random_seed=random_seed, searcher_kwargs=searcher_kwargs)
        super().__init__(config_space=config_space, searcher=searcher, random_seed=random_seed, **kwargs)
        self._pending_pick: bool | None = None
        self._trial_picks: dict[int, bool] = {}

    def suggest(self):
        suggestion = super().suggest()
        self._pending_pick = self.searcher.last_pick_model_based
        return suggestion

    def on_trial_add(self, trial: Trial):
        # The tuner adds the trial right after the suggestion it was started from.
        super().on_trial_add(trial)
        self._trial_picks[trial.trial_id] = bool(self._pending_pick)

    def trial_bookkeeping(self, trial_id: int) -> dict[str, Any]:
        """The trial's bracket, and whether its configuration came from the KDE (True) or was drawn at random."""
        return {**super().trial_bookkeeping(trial_id), "model_based": self._trial_picks.get(trial_id)}


def arguments(config_space: dict[str, Any], budget: Budget) -> dict[str, Any]:
    """Hyperband's brackets, and the KDE's smallest number of points."""
    return {**asha.arguments(config_space, budget), "num_min_data_points": kde_min_points(config_space)}


def build(config_space: dict[str, Any], metric: str, mode: str, budget: Budget, seed: int, *,
          config_key: Callable[[dict[str, Any]], Hashable] | None = None,
          accepts: Callable[[dict[str, Any]], bool] | None = None, configspace: Any = None) -> TrialScheduler:
    """Asynchronous BOHB."""
    kwargs = arguments(config_space, budget)
    searcher_kwargs = {"num_min_data_points": kwargs.pop("num_min_data_points")}
    return accepted_only(BOHB(config_space=config_space, metric=metric, do_minimize=mode == "min",
                              time_attr=budget.resource_attr, random_seed=seed, searcher_kwargs=searcher_kwargs,
                              **kwargs), accepts)
