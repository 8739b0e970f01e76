"""Answers for every NAS-Bench-201 cell from a table, through the cell's official equivalence class.

A table may hold any set of cells: one representative per class (the project's tables), all 15,625 cells (converted
official tables) or several members of a class. A cell is answered by the mean over the table rows of its class,
per seed and epoch, so every member of a class gets the same answer; a cell whose class has no row is not answered
(`answered` says so) rather than estimated from other classes: leave-one-out, a nearest-neighbour estimate was worse
than predicting the median on the MNIST-10k table.

Epoch times are the cost of an answer, not the answer: where a seed's time of an epoch is missing (converted tables
lack some), it is the mean of the class's other seeds at that epoch, else of the class's measured epochs, so that
time keeps going forward.
"""
from __future__ import annotations

import numpy as np

from .encoding import NUM_ARCHS, Arch, class_of, index_to_string, to_index
from .table import ArchitectureNotInTableError, NB201Table


class ClassAnswers:
    """Per-class curves of a table: `curve(arch, metric, seed)` for any cell of a class the table holds."""

    def __init__(self, table: NB201Table) -> None:
        self.table = table
        classes = np.array([class_of(int(a)) for a in table.archs], dtype=np.int64)
        self.classes, rows_class = np.unique(classes, return_inverse=True)
        self._position = {int(c): i for i, c in enumerate(self.classes)}
        self._metrics = {name: _mean_by_group(table.array(name), rows_class, len(self.classes))
                         for name in table.metrics}
        if "epoch_time" in self._metrics:
            self._metrics["epoch_time"] = _fill_times(self._metrics["epoch_time"])
        self._figures = {name: _mean_by_group(table.figure_array(name), rows_class, len(self.classes))
                         for name in table.arch_figures}
        self.seeds = table.seeds
        self.n_epochs = table.n_epochs
        self.metrics = table.metrics

    def position(self, arch: Arch) -> int | None:
        """The class position of `arch` in the per-class arrays, or None when the table holds none of its class."""
        return self._position.get(class_of(arch))

    def answered(self, arch: Arch) -> bool:
        return self.position(arch) is not None

    def answered_cells(self) -> np.ndarray:
        """Our indices of all cells the table answers."""
        return np.array([i for i in range(NUM_ARCHS) if class_of(i) in self._position], dtype=np.int64)

    def _require(self, arch: Arch) -> int:
        pos = self.position(arch)
        if pos is None:
            index = to_index(arch)
            raise ArchitectureNotInTableError(
                f"Architecture {index_to_string(index)} (index {index}) belongs to a class this "
                f"{self.table.dataset} table has not measured; it answers {len(self.classes)} of 6466 classes.")
        return pos

    def array(self, metric: str) -> np.ndarray:
        """(classes, seeds, epochs) per-class values of `metric`, rows in the order of `classes`."""
        if metric not in self._metrics:
            raise KeyError(f"Unknown metric {metric!r}; this table holds {', '.join(self._metrics)}.")
        return self._metrics[metric]

    def curve(self, arch: Arch, metric: str, seed: int | None = None) -> np.ndarray:
        """`metric` over epochs 1..n_epochs; seed None = the mean over the seeds (ignoring missing ones)."""
        block = self.array(metric)[self._require(arch)]
        if seed is None:
            return _nanmean(block)
        if seed not in self.seeds:
            raise KeyError(f"Unknown seed {seed!r}; this table holds seeds {', '.join(map(str, self.seeds))}.")
        return np.array(block[self.seeds.index(seed)])

    def figure(self, arch: Arch, name: str) -> float:
        """A per-class figure such as `params` (millions), the mean over the class's rows."""
        return float(self._figures[name][self._require(arch)])


def _mean_by_group(values: np.ndarray, groups: np.ndarray, n_groups: int) -> np.ndarray:
    """Mean over rows of the same group, ignoring NaN (NaN where a group has no value)."""
    values = np.asarray(values, dtype=np.float64)
    if n_groups == len(values):  # one row per class, already in class order (rows are sorted by index)
        order = np.argsort(groups, kind="stable")
        return values[order]
    finite = ~np.isnan(values)
    sums = np.zeros((n_groups, *values.shape[1:]))
    counts = np.zeros((n_groups, *values.shape[1:]))
    np.add.at(sums, groups, np.where(finite, values, 0.0))
    np.add.at(counts, groups, finite)
    with np.errstate(invalid="ignore", divide="ignore"):
        return sums / counts


def _fill_times(times: np.ndarray) -> np.ndarray:
    """(classes, seeds, epochs) times with each missing one the class's mean over the other seeds at that epoch, else
    over all its measured times; NaN only for a class with no time at all."""
    filled = np.where(np.isnan(times), _nanmean(times, axis=1, keepdims=True), times)
    overall = _nanmean(filled.reshape(len(times), -1), axis=1)[:, None, None]
    return np.where(np.isnan(filled), overall, filled)


def _nanmean(values: np.ndarray, axis: int = 0, keepdims: bool = False) -> np.ndarray:
    """Mean over ``axis`` ignoring NaN; NaN (without a warning) where all are NaN."""
    finite = ~np.isnan(values)
    count = finite.sum(axis=axis, keepdims=keepdims)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(finite, values, 0.0).sum(axis=axis, keepdims=keepdims) / count
