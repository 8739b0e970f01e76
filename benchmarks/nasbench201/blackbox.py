"""A NAS-Bench-201 table as a Syne Tune blackbox, for the simulated backend.

Every one of the 15,625 configurations is answered: from its own row where the table holds it, else from the row of
its isomorphism class (same function, so same measurements), else, for classes the table never trained, by Syne
Tune's nearest-neighbour surrogate (``add_surrogate``) over the rows it has; such answers are marked estimated.
"""
from __future__ import annotations

import numpy as np
from syne_tune.blackbox_repository.blackbox import Blackbox
from syne_tune.config_space import randint

from .encoding import HP_NAMES, canonical_index, config_to_index, index_to_config
from .space import config_space
from .table import NB201Table

TABULATED = ("valid_error", "valid_loss", "train_loss", "elapsed_time")
# ``estimated`` is 1 where the surrogate answered (a class the table never trained), else 0.
OBJECTIVES = (*TABULATED, "estimated")


class NB201Blackbox(Blackbox):
    """Objectives per epoch (``valid_error``, ``valid_loss``, ``train_loss``, cumulative ``elapsed_time``)."""

    def __init__(self, table: NB201Table):
        super().__init__(configuration_space=config_space(), fidelity_space={"epoch": randint(1, table.n_epochs)},
                         objectives_names=list(OBJECTIVES))
        self.table = table
        self._rows = {int(arch): row for row, arch in enumerate(table.archs)}
        # (archs, seeds, epochs, objectives); seeds missing for an arch are filled with that arch's seed mean.
        columns = [table.array(name) for name in TABULATED[:-1]] + [np.cumsum(table.array("epoch_time"), axis=2)]
        values = np.stack(columns, axis=-1).astype(np.float64)
        seed_mean = np.nanmean(values, axis=1, keepdims=True) if values.shape[1] > 1 else values
        self._values = np.where(np.isnan(values), seed_mean, values)
        self._surrogate = None

    @property
    def fidelity_values(self) -> np.ndarray:
        return np.arange(1, self.table.n_epochs + 1)

    def resolve(self, configuration: dict) -> tuple[int | None, bool]:
        """Table row answering ``configuration`` (None if only the surrogate can) and whether it is estimated."""
        index = config_to_index({name: configuration[name] for name in HP_NAMES})
        for candidate in (index, canonical_index(index)):
            if candidate in self._rows:
                return self._rows[candidate], False
        return None, True

    def _objective_function(self, configuration: dict, fidelity: dict | None = None,
                            seed: int | None = None) -> np.ndarray | dict:
        curve = self.curves(configuration, seed)
        if fidelity is None:
            return curve
        return dict(zip(self.objectives_names, curve[int(next(iter(fidelity.values()))) - 1]))

    def curves(self, configuration: dict, seed: int | None = None) -> np.ndarray:
        """All objectives (columns, in ``OBJECTIVES`` order) for every epoch (rows); seed None = mean over seeds."""
        row, estimated = self.resolve(configuration)
        if estimated:
            curve = self._estimate(configuration)
        elif seed is None:
            curve = self._values[row].mean(axis=0)
        else:
            curve = self._values[row, seed % self._values.shape[1]]
        return np.column_stack([curve, np.full(len(curve), float(estimated))])

    def _estimate(self, configuration: dict) -> np.ndarray:
        if self._surrogate is None:
            self._surrogate = self._fit_surrogate()
        config = {name: configuration[name] for name in HP_NAMES}
        return np.asarray(self._surrogate.objective_function(config)).reshape(self.table.n_epochs, len(TABULATED))

    def _fit_surrogate(self) -> Blackbox:
        """Syne Tune's 1-nearest-neighbour surrogate over the trained rows (seed means), one-hot encoded ops."""
        import pandas as pd
        from sklearn.neighbors import KNeighborsRegressor
        from syne_tune.blackbox_repository import add_surrogate
        from syne_tune.blackbox_repository.blackbox_tabular import BlackboxTabular

        hyperparameters = pd.DataFrame([index_to_config(int(arch)) for arch in self.table.archs])
        evaluations = self._values.mean(axis=1, keepdims=True)  # (archs, 1 seed, epochs, objectives)
        tabular = BlackboxTabular(hyperparameters=hyperparameters, configuration_space=self.configuration_space,
                                  fidelity_space=self.fidelity_space, objectives_evaluations=evaluations,
                                  fidelity_values=self.fidelity_values, objectives_names=list(TABULATED))
        return add_surrogate(tabular, surrogate=KNeighborsRegressor(n_neighbors=1), predict_curves=True)
