"""The Fashion-MNIST MLP's config space: the ranges of Syne Tune's tutorial, epochs being the budget."""
from __future__ import annotations

from typing import Any

from syne_tune.config_space import lograndint, loguniform, uniform

N_UNITS_RANGE = (4, 1024)
BATCH_SIZE_RANGE = (8, 128)
DROPOUT_RANGE = (0.0, 0.99)
LEARNING_RATE_RANGE = (1e-6, 1.0)
WEIGHT_DECAY_RANGE = (1e-8, 1.0)
MAX_EPOCHS = 81  # the tutorial's budget: 3 ** 4 epochs, so that every Hyperband rung (eta 3) is a whole epoch

# A reasonable starting point inside the ranges (the tutorial has none): the script's flag defaults.
DEFAULT_CONFIG: dict[str, Any] = {
    "n_units_1": 256,
    "n_units_2": 128,
    "batch_size": 64,
    "dropout_1": 0.2,
    "dropout_2": 0.2,
    "learning_rate": 1e-3,
    "weight_decay": 1e-5,
}


def config_space() -> dict[str, Any]:
    """Syne Tune config space of the tuned hyperparameters (no fixed entries such as `epochs`)."""
    return {
        "n_units_1": lograndint(*N_UNITS_RANGE),
        "n_units_2": lograndint(*N_UNITS_RANGE),
        "batch_size": lograndint(*BATCH_SIZE_RANGE),
        "dropout_1": uniform(*DROPOUT_RANGE),
        "dropout_2": uniform(*DROPOUT_RANGE),
        "learning_rate": loguniform(*LEARNING_RATE_RANGE),
        "weight_decay": loguniform(*WEIGHT_DECAY_RANGE),
    }
