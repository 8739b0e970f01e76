"""A NAS-Bench-201 table as a blackbox, for the simulated backends.

The blackbox has the interface of Syne Tune's ``Blackbox`` (``configuration_space``, ``fidelity_space``,
``objectives_names``, ``fidelity_name()``, ``fidelity_values``, ``objective_function``), which both our engine and
Syne Tune's simulator read, without subclassing it: importing ``syne_tune.blackbox_repository`` brings in
scikit-learn and its surrogates, half a second and more at every simulated launch, for nothing the table needs.

Every cell is answered from its official equivalence class (`answers.ClassAnswers`): all members of a class get the
same curves. A cell whose class the table has not measured has no answer (`answered` is False); the launcher then
samples only answered cells (see `is_answered`). `estimated` stays in the objectives (always 0 here: nothing is
estimated) so that results keep the column wherever a table could estimate.
"""
from __future__ import annotations

import warnings

import numpy as np
from syne_tune.config_space import randint

from .answers import ClassAnswers
from .encoding import HP_NAMES, config_to_index, index_to_string
from .space import config_space
from .table import NB201Table, TableError

TABULATED = ("valid_error", "valid_loss", "train_loss", "test_error", "elapsed_time")
OBJECTIVES = (*TABULATED, "estimated")
TABLE_SEEDS = "mean, random or a seed of the table"


def parse_table_seed(value: str | int, seeds: tuple[int, ...]) -> str | int:
    """`mean`, `random` or one of `seeds`; ValueError in one sentence otherwise."""
    if value in ("mean", "random"):
        return value
    try:
        seed = int(value)
    except (TypeError, ValueError):
        seed = None
    if seed not in seeds:
        raise ValueError(f"--table-seed {value!r} is not accepted; give mean, random or one of the table's seeds "
                         f"({', '.join(map(str, seeds))}).")
    return seed


class NB201Blackbox:
    """Objectives per epoch (`valid_error`, `valid_loss`, `train_loss`, `test_error`, cumulative `elapsed_time`).

    `table_seed`: `mean` answers with the mean over the table's seeds; an int with that seed's curves; `random`
    with the curves of a seed drawn per trial (the backend draws it and passes it as `seed`). `answers`: the
    table's `ClassAnswers` where the caller has built them already.
    """

    def __init__(self, table: NB201Table, table_seed: str | int = "mean", answers: ClassAnswers | None = None):
        self.configuration_space = config_space()
        self.fidelity_space = {"epoch": randint(1, table.n_epochs)}
        self.objectives_names = list(OBJECTIVES)
        self.answers = answers if answers is not None else ClassAnswers(table)
        self.table = table
        self.seeds = tuple(table.seeds)
        self.table_seed = parse_table_seed(table_seed, self.seeds)
        # (classes, seeds, epochs, objectives); a seed missing for a class takes the class's seed mean
        missing = np.full((len(self.answers.classes), len(self.seeds), table.n_epochs), np.nan)
        columns = [self.answers.array(m) if m in table.metrics else missing for m in TABULATED[:-1]]
        elapsed = np.cumsum(self.answers.array("epoch_time"), axis=2)
        untimed = np.flatnonzero(~np.isfinite(elapsed).all(axis=(1, 2)))
        if len(untimed):  # simulated time could not go on past such a cell's first report
            raise TableError(
                f"The {table.dataset} table has no epoch times for {len(untimed)} of its {len(elapsed)} classes (e.g. "
                f"{index_to_string(int(self.answers.classes[untimed[0]]))}); the simulated backends need them to "
                "keep time: add `epoch_time` to those rows or leave them out of the table.")
        columns.append(elapsed)
        values = np.stack(columns, axis=-1)
        with np.errstate(invalid="ignore"), warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)  # a metric the table lacks stays NaN
            seed_mean = np.nanmean(values, axis=1, keepdims=True)
        values = np.where(np.isnan(values), seed_mean, values)
        # the `estimated` column (0: nothing here is estimated), appended once rather than on every answer
        self._values = np.concatenate([values, np.zeros((*values.shape[:-1], 1))], axis=-1)
        self._mean = self._values.mean(axis=1)

    def fidelity_name(self) -> str:
        return "epoch"

    @property
    def fidelity_values(self) -> np.ndarray:
        return np.arange(1, self.table.n_epochs + 1)

    def is_answered(self, configuration: dict) -> bool:
        """Whether the table measured the class of `configuration`."""
        return self.answers.answered(config_to_index({name: configuration[name] for name in HP_NAMES}))

    def curves(self, configuration: dict, seed: int | None = None) -> np.ndarray:
        """All objectives (columns in `OBJECTIVES` order) for every epoch (rows).

        `seed` (a seed of the table) overrides `table_seed`; without either, the mean over seeds.
        """
        index = config_to_index({name: configuration[name] for name in HP_NAMES})
        position = self.answers.position(index)
        if position is None:
            self.answers.curve(index, "valid_error")  # raises the clear "not measured" error
        if seed is None and isinstance(self.table_seed, int):
            seed = self.table_seed
        curve = self._mean[position] if seed is None else self._values[position, self.seeds.index(seed)]
        return curve.copy()  # the caller's to change

    def objective_function(self, configuration: dict, fidelity: dict | int | None = None,
                           seed: int | None = None) -> np.ndarray | dict:
        """The objectives at every epoch (rows), or as a dict at one epoch (``fidelity``: ``{"epoch": e}`` or e)."""
        curve = self.curves(configuration, seed)
        if fidelity is None:
            return curve
        epoch = next(iter(fidelity.values())) if isinstance(fidelity, dict) else fidelity
        return dict(zip(self.objectives_names, curve[int(epoch) - 1]))

    __call__ = objective_function
