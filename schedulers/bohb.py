"""BOHB: Hyperband brackets with Syne Tune's KDE searcher, recording whether each pick came from the model.

Syne Tune's ``KernelDensityEstimator`` does not say whether a suggestion was drawn at random (too little data, or the
``random_fraction`` of draws) or by optimising the KDE acquisition, so the classes here observe it.
"""
from functools import partial
from typing import Any, Callable

from syne_tune.backend.trial_status import Trial
from syne_tune.optimizer.schedulers.searchers.kde import KernelDensityEstimator
from syne_tune.optimizer.schedulers.searchers.last_value_multi_fidelity_searcher import (
    LastValueMultiFidelitySearcher,
)

from schedulers.hyperband import Hyperband


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


class BOHB(Hyperband):
    """Syne Tune's asynchronous BOHB, recording each trial's bracket and whether its config was a model pick."""

    def __init__(self, config_space: dict, random_seed: int, searcher_kwargs: dict[str, Any] | None = None, **kwargs):
        hyperparameters = [v for v in config_space.values() if hasattr(v, "sample")]
        # HpBandSter's rule (d + 1 points per KDE); Syne Tune's default of d never lets the KDE fit before ~60 results.
        searcher_kwargs = {"num_min_data_points": len(hyperparameters) + 1, **(searcher_kwargs or {})}
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
        return {**super().trial_bookkeeping(trial_id), "model_based": self._trial_picks.get(trial_id)}
