"""A NAS-Bench-201 table as a Syne Tune blackbox, for the simulated backend.

Every cell is answered from its official equivalence class (`answers.ClassAnswers`): all members of a class get the
same curves. A cell whose class the table has not measured has no answer (`answered` is False); the launcher then
samples only answered cells (see `is_answered`). `estimated` stays in the objectives (always 0 here: nothing is
estimated) so that results keep the column wherever a table could estimate.
"""
from __future__ import annotations

import warnings

import numpy as np
from syne_tune.blackbox_repository.blackbox import Blackbox
from syne_tune.config_space import randint

from .answers import ClassAnswers
from .encoding import HP_NAMES, config_to_index
from .space import config_space
from .table import NB201Table

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


class NB201Blackbox(Blackbox):
    """Objectives per epoch (`valid_error`, `valid_loss`, `train_loss`, `test_error`, cumulative `elapsed_time`).

    `table_seed`: `mean` answers with the mean over the table's seeds; an int with that seed's curves; `random`
    with the curves of a seed drawn per trial (the backend draws it and passes it as `seed`).
    """

    def __init__(self, table: NB201Table, table_seed: str | int = "mean"):
        super().__init__(configuration_space=config_space(), fidelity_space={"epoch": randint(1, table.n_epochs)},
                         objectives_names=list(OBJECTIVES))
        self.answers = ClassAnswers(table)
        self.table = table
        self.seeds = tuple(table.seeds)
        self.table_seed = parse_table_seed(table_seed, self.seeds)
        # (classes, seeds, epochs, objectives); a seed missing for a class takes the class's seed mean
        missing = np.full((len(self.answers.classes), len(self.seeds), table.n_epochs), np.nan)
        columns = [self.answers.array(m) if m in table.metrics else missing for m in TABULATED[:-1]]
        columns.append(np.cumsum(self.answers.array("epoch_time"), axis=2))
        values = np.stack(columns, axis=-1)
        with np.errstate(invalid="ignore"), warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)  # a metric the table lacks stays NaN
            seed_mean = np.nanmean(values, axis=1, keepdims=True)
        self._values = np.where(np.isnan(values), seed_mean, values)
        self._mean = self._values.mean(axis=1)

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
        return np.column_stack([curve, np.zeros(len(curve))])

    def _objective_function(self, configuration: dict, fidelity: dict | None = None,
                            seed: int | None = None) -> np.ndarray | dict:
        curve = self.curves(configuration, seed)
        if fidelity is None:
            return curve
        return dict(zip(self.objectives_names, curve[int(next(iter(fidelity.values()))) - 1]))
