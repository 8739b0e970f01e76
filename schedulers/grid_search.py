"""Grid search: every combination of a few values per hyperparameter, each run once to the largest budget.

The grid: a categorical or ordinal hyperparameter takes all its values; an integer or float ``grid_points`` values
evenly spaced in ConfigSpace's [0, 1] coordinate, so log-spaced where the hyperparameter is log-scaled (an integer
range with fewer values takes them all; rounding never repeats a value). With conditions (``configspace``) only the
valid combinations are kept, once each (combinations that differ only in inactive values are one point), and
forbidden ones are dropped. Points the benchmark cannot evaluate (``accepts``) are skipped, and of equivalent
points (``config_key``) only the first is run. Points are visited in a seeded shuffled order (``shuffled``) or in
the order of the combinations (``ordered``: the first hyperparameter in ConfigSpace's order varies slowest). When
every point has run, the scheduler says how many there were and answers None: the run ends when the running
trials finish.
"""
import logging
import sys
from collections.abc import Callable, Hashable
from typing import Any

import numpy as np
from syne_tune.backend.trial_status import Trial
from syne_tune.optimizer.scheduler import TrialSuggestion

from schedulers.budget import Budget
from schedulers.search_space import SearchSpace
from schedulers.single_metric import SingleMetricScheduler

logger = logging.getLogger(__name__)
GRID_ORDERS = ("shuffled", "ordered")
# Larger grids are refused before they are listed.
MAX_GRID_POINTS = 1_000_000


class GridError(ValueError):
    """A grid that cannot be built as asked."""


def grid_values(space: SearchSpace, points: int) -> list[np.ndarray]:
    """Per hyperparameter (ConfigSpace order), the vector values of its grid."""
    import ConfigSpace as CS

    values = []
    for hp in space.hps:
        if isinstance(hp, (CS.CategoricalHyperparameter, CS.OrdinalHyperparameter)):
            size = len(hp.choices) if isinstance(hp, CS.CategoricalHyperparameter) else len(hp.sequence)
            values.append(np.arange(size, dtype=float))
        elif isinstance(hp, CS.Constant):
            values.append(np.array([float(hp.to_vector(hp.value))]))
        else:
            spots = np.linspace(0.0, 1.0, points) if points > 1 else np.array([0.5])
            if isinstance(hp, CS.UniformIntegerHyperparameter):  # round to integers, each once, in order
                spots = np.unique(np.asarray(hp.to_vector(np.unique(hp.to_value(spots))), dtype=float))
            values.append(spots)
    return values


def grid_size(space: SearchSpace, points: int) -> int:
    """How many combinations the grid has before conditions."""
    return int(np.prod([len(v) for v in grid_values(space, points)], dtype=object))


class GridSearch(SingleMetricScheduler):
    """Runs every point of the grid once, to the largest budget, then answers None."""

    def __init__(self, config_space: dict[str, Any], metric: str, mode: str, budget: Budget, seed: int, *,
                 config_key: Callable[[dict[str, Any]], Hashable] | None = None,
                 accepts: Callable[[dict[str, Any]], bool] | None = None, configspace: Any = None,
                 grid_points: int = 5, grid_order: str = "shuffled"):
        super().__init__(metric, mode, seed)
        if grid_points < 1:
            raise GridError(f"--grid-points {grid_points} is not accepted: give at least 1.")
        if grid_order not in GRID_ORDERS:
            raise GridError(f"--grid-order {grid_order} is not accepted: choose one of {', '.join(GRID_ORDERS)}.")
        self.grid_points, self.grid_order = grid_points, grid_order
        space = SearchSpace(config_space, configspace)
        size = grid_size(space, grid_points)
        if size > MAX_GRID_POINTS:
            raise GridError(f"--grid-points {grid_points} gives {size:,} combinations, more than "
                            f"{MAX_GRID_POINTS:,}: give fewer grid points.")
        vectors = space.grid(grid_values(space, grid_points))
        if grid_order == "shuffled":
            vectors = vectors[np.random.default_rng(seed).permutation(len(vectors))]
        key = config_key if config_key is not None else space.key
        self.points: list[dict[str, Any]] = []
        seen: set[Hashable] = set()
        for vector in vectors:
            config = space.decode(vector)
            if accepts is not None and not accepts(config):
                continue
            k = key(config)
            if k not in seen:
                seen.add(k)
                self.points.append(config)
        self.combinations = len(vectors)
        self._next = 0
        self._said = False
        logger.info("Grid search: %d points (%d valid combinations of %d)", len(self.points), len(vectors), size)

    def suggest(self) -> TrialSuggestion | None:
        if self._next == len(self.points):
            self._say_done()
            return None
        config = self.points[self._next]
        self._next += 1
        return TrialSuggestion.start_suggestion(dict(config))

    def _say_done(self):
        if self._said:
            return
        self._said = True
        message = (f"Grid exhausted: all {len(self.points)} grid points have been started ({self.combinations} valid "
                   f"combinations of {self.grid_points} values per numeric hyperparameter; equivalent points and "
                   "points the benchmark cannot evaluate are left out). The run ends when the running trials finish.")
        logger.warning(message)
        print(message, file=sys.stderr)

    def on_trial_add(self, trial: Trial):
        pass

    def settings(self) -> dict[str, Any]:
        return {"grid_points": self.grid_points, "grid_order": self.grid_order, "points": len(self.points)}


def arguments(config_space: dict[str, Any], budget: Budget, grid_points: int = 5,
              grid_order: str = "shuffled") -> dict[str, Any]:
    """Points per numeric hyperparameter, the order, and the grid's combinations before conditions."""
    return {"grid_points": grid_points, "grid_order": grid_order,
            "combinations": grid_size(SearchSpace(config_space), grid_points)}


def build(config_space: dict[str, Any], metric: str, mode: str, budget: Budget, seed: int, *,
          config_key: Callable[[dict[str, Any]], Hashable] | None = None,
          accepts: Callable[[dict[str, Any]], bool] | None = None, configspace: Any = None,
          grid_points: int = 5, grid_order: str = "shuffled") -> GridSearch:
    """Grid search over the whole grid, each point run to the largest budget."""
    return GridSearch(config_space, metric, mode, budget, seed, config_key=config_key, accepts=accepts,
                      configspace=configspace, grid_points=grid_points, grid_order=grid_order)
