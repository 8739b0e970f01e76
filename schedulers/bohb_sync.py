"""Synchronous BOHB (Falkner et al. 2018): synchronous Hyperband whose new configurations come from KDE models.

HpBandSter's defaults: one pair of KDEs (good: the best 15% of the results, at least d + 1 points; bad: the rest,
at least d + 1 points, d = number of hyperparameters) per budget, fitted once a budget has enough results to give
both more than d points; new configurations are sampled from the largest budget with a model; a third of them, and
all before any model exists, are drawn at random. A model pick draws 64 points from the good KDE with continuous
bandwidths widened 3 times and keeps the one with the smallest bad/good density ratio; minimum bandwidth 1e-3.
Failed trials count as the worst results. Models are fitted on ConfigSpace vectors (``schedulers.search_space``):
categorical values as integers, inactive coordinates imputed as HpBandSter does, and every pick is a valid
configuration under the space's conditions. Models are refitted only when their budget has new results, and a
pick costs O(points x 64 x d): no step compares all points with each other.

The categorical kernel is kept informative (``categorical_cap``, see ``schedulers.kde``); ``categorical_cap=None``
is HpBandSter's kernel as it is (registered as ``bohb_uncapped``).

No configuration runs twice: candidates are taken best first among those not started yet that the benchmark
accepts; if none of 4 x 64 is, the pick is an unseen random configuration (not model-based).
"""
from collections.abc import Callable, Hashable
from typing import Any

import numpy as np

from schedulers import hyperband_sync
from schedulers.budget import Budget
from schedulers.hyperband_sync import SynchronousHyperband, _Trial
from schedulers.kde import KDE, impute_inactive

DEFAULTS = {"top_n_percent": 15, "num_samples": 64, "random_fraction": 1 / 3, "bandwidth_factor": 3.0,
            "min_bandwidth": 1e-3, "categorical_cap": 0.625}
# Batches of ``num_samples`` candidates drawn before a model pick gives way to a random one.
MODEL_ROUNDS = 4


class SynchronousBOHB(SynchronousHyperband):
    """Synchronous Hyperband with BOHB's per-budget KDE models; records whether each pick came from a model."""

    def __init__(self, config_space: dict[str, Any], metric: str, mode: str, budget: Budget, seed: int, *,
                 top_n_percent: int = 15, num_samples: int = 64, random_fraction: float = 1 / 3,
                 bandwidth_factor: float = 3.0, min_bandwidth: float = 1e-3, categorical_cap: float | None = 0.625,
                 min_points_in_model: int | None = None, **kwargs):
        super().__init__(config_space, metric, mode, budget, seed, **kwargs)
        self.top_n_percent, self.num_samples, self.random_fraction = top_n_percent, num_samples, random_fraction
        self.bandwidth_factor, self.min_bandwidth, self.categorical_cap = bandwidth_factor, min_bandwidth, \
            categorical_cap
        self.levels = self.space.levels
        d = len(self.levels)
        self.min_points = max(min_points_in_model or 0, d + 1)  # HpBandSter raises smaller values to d + 1
        self._points: dict[int, list[np.ndarray]] = {}
        self._losses: dict[int, list[float]] = {}
        self._models: dict[int, tuple[int, KDE, KDE]] = {}  # budget -> (points when fitted, good, bad)

    # Observations and models -------------------------------------------------------------------------------------

    def _observe(self, trial: _Trial):
        point = self.space.to_model(self.space.encode(trial.config)[None])[0]
        self._points.setdefault(trial.budget, []).append(point)
        self._losses.setdefault(trial.budget, []).append(trial.loss)

    def _split(self, n: int) -> tuple[int, int]:
        """HpBandSter's sizes of the good and bad sets for n results."""
        n_good = max(self.min_points, (self.top_n_percent * n) // 100)
        n_bad = max(self.min_points, ((100 - self.top_n_percent) * n) // 100)
        return n_good, n_bad

    def _has_model(self, n: int) -> bool:
        """Whether n results at a budget give HpBandSter a model: at least d + 1, and more than d in each set."""
        d = len(self.levels)
        n_good, n_bad = self._split(n)
        return n >= self.min_points and min(n_good, n) > d and min(n_bad, n - n_good) > d

    def model_budget(self) -> int | None:
        """The largest budget with a model, or None."""
        budgets = [b for b, losses in self._losses.items() if self._has_model(len(losses))]
        return max(budgets) if budgets else None

    def _model(self) -> tuple[KDE, KDE] | None:
        budget = self.model_budget()
        if budget is None:
            return None
        n = len(self._losses[budget])
        cached = self._models.get(budget)
        if cached is None or cached[0] != n:
            points, losses = np.array(self._points[budget]), np.array(self._losses[budget])
            n_good, n_bad = self._split(n)
            order = np.argsort(losses, kind="stable")
            good = impute_inactive(points[order[:n_good]], self.levels, self.rng)
            bad = impute_inactive(points[order[n_good:n_good + n_bad]], self.levels, self.rng)
            fit = {"levels": self.levels, "min_bandwidth": self.min_bandwidth, "categorical_cap": self.categorical_cap}
            cached = (n, KDE.fit(good, **fit), KDE.fit(bad, **fit))
            self._models[budget] = cached
        return cached[1], cached[2]

    # Picks -------------------------------------------------------------------------------------------------------

    def _propose(self, budget: int) -> tuple[dict[str, Any], Hashable, bool] | None:
        model = self._model()
        if model is None or self.rng.random() < self.random_fraction:
            return super()._propose(budget)
        good, bad = model
        for _ in range(MODEL_ROUNDS):
            points = good.sample(self.num_samples, self.rng, self.bandwidth_factor, self.min_bandwidth)
            ratio = np.maximum(bad.pdf(points), 1e-32) / np.maximum(good.pdf(points), 1e-32)
            vectors = self.space.from_model(points[np.argsort(ratio, kind="stable")])
            for vector in vectors[~self.space.forbidden(vectors)]:
                found = self.sampler.check(vector)
                if found is not None:
                    return (*found, True)
        return super()._propose(budget)

    def trial_bookkeeping(self, trial_id: int) -> dict[str, Any]:
        """The trial's iteration and bracket, and whether its configuration came from a KDE model."""
        trial = self._trials.get(trial_id)
        if trial is None:
            return {}
        return {**super().trial_bookkeeping(trial_id), "model_based": trial.model_based}

    def settings(self) -> dict[str, Any]:
        return {**super().settings(), "top_n_percent": self.top_n_percent, "num_samples": self.num_samples,
                "random_fraction": self.random_fraction, "bandwidth_factor": self.bandwidth_factor,
                "min_bandwidth": self.min_bandwidth, "categorical_cap": self.categorical_cap,
                "min_points_in_model": self.min_points}


def arguments(config_space: dict[str, Any], budget: Budget, categorical_cap: float | None = 0.625) -> dict[str, Any]:
    """The schedule, and BOHB's model settings."""
    from syne_tune.config_space import Domain

    d = sum(isinstance(domain, Domain) for domain in config_space.values())
    return {**hyperband_sync.arguments(config_space, budget), **DEFAULTS, "categorical_cap": categorical_cap,
            "min_points_in_model": d + 1}


def build(config_space: dict[str, Any], metric: str, mode: str, budget: Budget, seed: int, *,
          config_key: Callable[[dict[str, Any]], Hashable] | None = None,
          accepts: Callable[[dict[str, Any]], bool] | None = None, configspace: Any = None,
          categorical_cap: float | None = 0.625) -> SynchronousBOHB:
    """Synchronous BOHB with an informative categorical kernel."""
    return SynchronousBOHB(config_space, metric, mode, budget, seed, config_key=config_key, accepts=accepts,
                           configspace=configspace, categorical_cap=categorical_cap)
