"""The tuned hyperparameters as ConfigSpace vectors: sampling, conditions, encoding and decoding, in numpy.

A ``SearchSpace`` holds a ConfigSpace ``ConfigurationSpace`` (built from a Syne Tune config space, or given with
its conditions and forbidden clauses) and the fixed entries that every configuration carries (``epochs``, data
paths). Vectors are ConfigSpace's, one column per hyperparameter in ConfigSpace's order: a categorical value is its
index (0..k-1), an ordinal its index, a float or integer its position in [0, 1] (on a log scale where the
hyperparameter is log-scaled); an inactive hyperparameter is NaN. Configurations are plain dicts of Python values
holding only the active hyperparameters, so every configuration made here satisfies the conditions.
"""
import itertools
from collections.abc import Hashable, Mapping
from typing import Any

import numpy as np

# Finite spaces up to this many configurations (before conditions) can be listed whole.
ENUMERATION_LIMIT = 200_000


class SpaceError(ValueError):
    """A config space that the synchronous schedulers cannot model."""


def _native(value: Any) -> Any:
    """A numpy scalar as the Python value that a script flag and a CSV cell expect."""
    return value.item() if isinstance(value, np.generic) else value


def to_configspace(config_space: Mapping[str, Any]) -> "Any":
    """A ConfigSpace space (no conditions) for the Syne Tune domains of ``config_space``; constants are left out."""
    import ConfigSpace as CS
    from syne_tune import config_space as st

    space = CS.ConfigurationSpace()
    for name, domain in config_space.items():
        if not isinstance(domain, st.Domain):
            continue
        if isinstance(domain, st.Categorical):  # Ordinal is a Categorical too
            values = list(domain.categories)
            hp = CS.OrdinalHyperparameter(name, values) if isinstance(domain, st.Ordinal) else \
                CS.CategoricalHyperparameter(name, values)
        elif isinstance(domain, st.FiniteRange):
            hp = CS.OrdinalHyperparameter(name, list(domain.values))
        elif isinstance(domain, (st.Float, st.Integer)) and (st.is_uniform_space(domain) or st.is_log_space(domain)) \
                and not isinstance(domain.get_sampler(), st.Quantized):
            kind = CS.UniformFloatHyperparameter if isinstance(domain, st.Float) else CS.UniformIntegerHyperparameter
            hp = kind(name, domain.lower, domain.upper, log=st.is_log_space(domain))
        else:
            raise SpaceError(f"Hyperparameter '{name}' ({domain}) is not accepted by this scheduler: use uniform or "
                             "log-uniform floats and integers, choices, ordinals or finite ranges.")
        space.add(hp)
    return space


class SearchSpace:
    """ConfigSpace vectors for a config space; ``configspace`` (optional) adds conditions and forbidden clauses.

    ``config_space`` is the Syne Tune space the scheduler was built for: its domains are the tuned
    hyperparameters, its other entries fixed values added to every configuration. ``configspace``, where given,
    must hold the same hyperparameters (its constants are fixed values too).
    """

    def __init__(self, config_space: Mapping[str, Any], configspace: Any = None):
        import ConfigSpace as CS
        from syne_tune import config_space as st

        tuned = [name for name, domain in config_space.items() if isinstance(domain, st.Domain)]
        self.constants = {name: value for name, value in config_space.items() if name not in tuned}
        self.cs = to_configspace(config_space) if configspace is None else configspace
        self.hps = list(self.cs.values())
        self.names = [hp.name for hp in self.hps]
        modelled = [hp.name for hp in self.hps if not isinstance(hp, CS.Constant)]
        if configspace is not None and sorted(modelled) != sorted(tuned):
            raise SpaceError(f"The ConfigSpace space holds {sorted(modelled)}, not the tuned hyperparameters "
                             f"{sorted(tuned)}: give one with the same names.")
        self.dim = len(self.hps)
        # Model columns: every hyperparameter that is not a constant, in ConfigSpace's order.
        self.model_columns = np.array([i for i, hp in enumerate(self.hps) if not isinstance(hp, CS.Constant)], int)
        self._categorical = np.array([isinstance(hp, CS.CategoricalHyperparameter) for hp in self.hps])
        self._ordinal = np.array([isinstance(hp, CS.OrdinalHyperparameter) for hp in self.hps])
        self._integer = np.array([isinstance(hp, CS.UniformIntegerHyperparameter) for hp in self.hps])
        self._sizes = np.array([len(hp.choices) if c else len(hp.sequence) if o else 0
                                for hp, c, o in zip(self.hps, self._categorical, self._ordinal)], int)
        # Conditional hyperparameters in ConfigSpace's order, which puts parents before children.
        self._conditional = [(self.names.index(name), list(self.cs.parent_conditions_of[name]))
                             for name in self.names if name in self.cs.conditional_hyperparameters]
        self._forbidden = list(self.cs.forbidden_clauses)
        self._constant_vector = {i: float(hp.to_vector(hp.value)) for i, hp in enumerate(self.hps)
                                 if isinstance(hp, CS.Constant)}
        # The values of categorical and ordinal hyperparameters by index (decoding them is a list lookup).
        self._values = [[_native(v) for v in (hp.choices if c else hp.sequence)] if c or o else None
                        for hp, c, o in zip(self.hps, self._categorical, self._ordinal)]

    # Model coding (HpBandSter's): categorical columns keep their index; ordinals are scaled to [0, 1] so that
    # they are modelled as the integers HpBandSter asks them to be.
    @property
    def levels(self) -> np.ndarray:
        """Per model column: the number of categories of a categorical hyperparameter, 0 for a continuous one."""
        return np.where(self._categorical, self._sizes, 0)[self.model_columns]

    def to_model(self, vectors: np.ndarray) -> np.ndarray:
        """Model coordinates of ConfigSpace vectors (rows)."""
        out = np.array(vectors, dtype=float)[:, self.model_columns]
        scale = np.maximum(self._sizes - 1, 1)[self.model_columns]
        ordinal = self._ordinal[self.model_columns]
        out[:, ordinal] /= scale[ordinal]
        return out

    def from_model(self, points: np.ndarray) -> np.ndarray:
        """ConfigSpace vectors (legal values, conditions applied) for model coordinates (rows)."""
        points = np.atleast_2d(points)
        vectors = np.empty((len(points), self.dim))
        for i, value in self._constant_vector.items():
            vectors[:, i] = value
        vectors[:, self.model_columns] = points
        for i, hp in enumerate(self.hps):
            if self._categorical[i]:
                vectors[:, i] = np.clip(np.rint(vectors[:, i]), 0, self._sizes[i] - 1)
            elif self._ordinal[i]:
                vectors[:, i] = np.clip(np.rint(vectors[:, i] * (self._sizes[i] - 1)), 0, self._sizes[i] - 1)
            elif i not in self._constant_vector:
                column = np.clip(vectors[:, i], 0.0, 1.0)
                finite = ~np.isnan(column)
                if self._integer[i] and finite.any():  # an integer's vector must be a grid point: round via its value
                    column[finite] = hp.to_vector(hp.to_value(column[finite]))
                vectors[:, i] = column
        return self.apply_conditions(vectors)

    def apply_conditions(self, vectors: np.ndarray) -> np.ndarray:
        """``vectors`` (rows) with every hyperparameter whose conditions fail set to NaN (inactive)."""
        vectors = np.array(vectors, dtype=float)
        columns = vectors.T  # ConfigSpace's conditions read hyperparameters as rows
        # ConfigSpace's rule (its sampler's and its validity check's): a condition on an inactive (NaN) parent is
        # evaluated on NaN, so it fails except a "not equal" one.
        for child, conditions in self._conditional:
            active = np.ones(len(vectors), dtype=bool)
            for condition in conditions:
                active &= np.asarray(condition.satisfied_by_vector_array(columns), dtype=bool)
            columns[child, ~active] = np.nan
        return vectors

    def forbidden(self, vectors: np.ndarray) -> np.ndarray:
        """Which rows a forbidden clause of the space rules out."""
        mask = np.zeros(len(vectors), dtype=bool)
        for clause in self._forbidden:
            mask |= np.asarray(clause.is_forbidden_vector_array(np.asarray(vectors, dtype=float).T), dtype=bool)
        return mask

    def sample(self, n: int, random_state: np.random.RandomState) -> np.ndarray:
        """``n`` vectors drawn from the space's prior (ConfigSpace's), conditions applied, forbidden ones redrawn."""
        rows: list[np.ndarray] = []
        while sum(len(r) for r in rows) < n:
            vectors = np.empty((n, self.dim))
            for i, hp in enumerate(self.hps):
                vectors[:, i] = hp.sample_vector(size=n, seed=random_state)
            vectors = self.apply_conditions(vectors)
            rows.append(vectors[~self.forbidden(vectors)])
        return np.concatenate(rows)[:n]

    def decode(self, vector: np.ndarray) -> dict[str, Any]:
        """The configuration of a vector: its active hyperparameters' values, then the fixed entries."""
        config = {}
        for name, hp, values, v in zip(self.names, self.hps, self._values, vector.tolist()):
            if v == v:  # not NaN: active
                config[name] = values[int(v)] if values is not None else _native(hp.to_value(v))
        return {**config, **self.constants}

    def encode(self, config: Mapping[str, Any]) -> np.ndarray:
        """The vector of a configuration; hyperparameters it lacks (inactive ones) are NaN."""
        vector = np.full(self.dim, np.nan)
        for i, hp in enumerate(self.hps):
            if hp.name in config:
                vector[i] = float(hp.to_vector(config[hp.name]))
            elif i in self._constant_vector:
                vector[i] = self._constant_vector[i]
        return self.apply_conditions(vector[None])[0]

    def key(self, config: Mapping[str, Any]) -> Hashable:
        """Equal for equal configurations: the active hyperparameters' values, in ConfigSpace's order."""
        return tuple((name, config[name]) for name in self.names if name in config)

    def size(self) -> int | None:
        """How many value combinations the hyperparameters have (before conditions); None if one is a float."""
        counts = []
        for i, hp in enumerate(self.hps):
            if self._categorical[i] or self._ordinal[i]:
                counts.append(int(self._sizes[i]))
            elif self._integer[i]:
                counts.append(int(hp.upper) - int(hp.lower) + 1)
            elif i in self._constant_vector:
                counts.append(1)
            else:
                return None
        return int(np.prod(counts, dtype=object))

    def grid(self, values_per_hp: list[np.ndarray]) -> np.ndarray:
        """Every combination of the given vector values per hyperparameter, conditions applied, forbidden ones and
        duplicates (combinations differing only in inactive values) removed, in the order of the combinations."""
        vectors = np.array(list(itertools.product(*values_per_hp)), dtype=float).reshape(-1, self.dim)
        vectors = self.apply_conditions(vectors)
        vectors = vectors[~self.forbidden(vectors)]
        _, first = np.unique(np.nan_to_num(vectors, nan=-1.0), axis=0, return_index=True)
        return vectors[np.sort(first)]

    def enumerate(self) -> np.ndarray | None:
        """Every configuration of a finite space as vectors, or None where it is infinite or too large to list."""
        size = self.size()
        if size is None or size > ENUMERATION_LIMIT:
            return None
        values = []
        for i, hp in enumerate(self.hps):
            if self._categorical[i] or self._ordinal[i]:
                values.append(np.arange(self._sizes[i], dtype=float))
            elif self._integer[i]:
                values.append(np.asarray(hp.to_vector(np.arange(int(hp.lower), int(hp.upper) + 1)), dtype=float))
            else:
                values.append(np.array([self._constant_vector[i]]))
        return self.grid(values)
