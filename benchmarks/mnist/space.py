"""The MNIST convnet's config space, shared by tests, launchers and analysis.

`config_space()` is the flat Syne Tune space (every filter count always present; the training script ignores the
flags of layers that do not exist). `conditional_configspace()` is the ConfigSpace version, where `n_filters_2` is
active only when `n_conv_layers >= 2` and `n_filters_3` only when `n_conv_layers == 3`.
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Any

from syne_tune.config_space import choice, lograndint, loguniform, randint, uniform

if TYPE_CHECKING:  # pragma: no cover
    import ConfigSpace

LEARNING_RATE_RANGE = (1e-4, 1e-1)
N_CONV_LAYERS_RANGE = (1, 3)
N_FILTERS_RANGE = (4, 64)
BATCH_SIZES = [32, 64, 128, 256]
OPTIMIZERS = ["adam", "sgd"]
DROPOUT_RANGE = (0.0, 0.5)
FILTER_KEYS = ["n_filters_1", "n_filters_2", "n_filters_3"]

DEFAULT_CONFIG: dict[str, Any] = {
    "learning_rate": 1e-3,
    "n_conv_layers": 2,
    "n_filters_1": 16,
    "n_filters_2": 32,
    "n_filters_3": 32,
    "batch_size": 64,
    "optimizer": "adam",
    "dropout": 0.1,
}


def config_space() -> dict[str, Any]:
    """Flat Syne Tune config space of the tuned hyperparameters (no fixed entries such as `epochs`)."""
    return {
        "learning_rate": loguniform(*LEARNING_RATE_RANGE),
        "n_conv_layers": randint(*N_CONV_LAYERS_RANGE),
        **{key: lograndint(*N_FILTERS_RANGE) for key in FILTER_KEYS},
        "batch_size": choice(list(BATCH_SIZES)),
        "optimizer": choice(list(OPTIMIZERS)),
        "dropout": uniform(*DROPOUT_RANGE),
    }


def conditional_configspace(seed: int | None = None) -> "ConfigSpace.ConfigurationSpace":
    """ConfigSpace version of `config_space()` with the layer conditions; defaults are `DEFAULT_CONFIG`."""
    from ConfigSpace import (CategoricalHyperparameter, ConfigurationSpace, EqualsCondition, GreaterThanCondition,
                             UniformFloatHyperparameter, UniformIntegerHyperparameter)

    cs = ConfigurationSpace(seed=seed)
    n_layers = UniformIntegerHyperparameter("n_conv_layers", *N_CONV_LAYERS_RANGE,
                                            default_value=DEFAULT_CONFIG["n_conv_layers"])
    filters = [UniformIntegerHyperparameter(key, *N_FILTERS_RANGE, log=True, default_value=DEFAULT_CONFIG[key])
               for key in FILTER_KEYS]
    cs.add([
        UniformFloatHyperparameter("learning_rate", *LEARNING_RATE_RANGE, log=True,
                                   default_value=DEFAULT_CONFIG["learning_rate"]),
        n_layers,
        *filters,
        CategoricalHyperparameter("batch_size", list(BATCH_SIZES), default_value=DEFAULT_CONFIG["batch_size"]),
        CategoricalHyperparameter("optimizer", list(OPTIMIZERS), default_value=DEFAULT_CONFIG["optimizer"]),
        UniformFloatHyperparameter("dropout", *DROPOUT_RANGE, default_value=DEFAULT_CONFIG["dropout"]),
    ])
    cs.add([
        GreaterThanCondition(filters[1], n_layers, 1),
        EqualsCondition(filters[2], n_layers, 3),
    ])
    return cs


def active_filters(config: dict[str, Any]) -> list[int]:
    """Filter counts of the layers that exist in `config`; absent inactive entries fall back to the defaults."""
    n_layers = int(config.get("n_conv_layers", DEFAULT_CONFIG["n_conv_layers"]))
    return [int(config.get(key, DEFAULT_CONFIG[key])) for key in FILTER_KEYS[:n_layers]]
