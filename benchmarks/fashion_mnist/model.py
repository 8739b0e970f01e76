"""The two-layer MLP of Syne Tune's tutorial: flatten, two hidden ReLU layers with dropout, a linear layer to logits."""
from __future__ import annotations

from torch import nn

N_INPUTS = 28 * 28
N_CLASSES = 10


def build_mlp(n_units_1: int, n_units_2: int, dropout_1: float, dropout_2: float) -> nn.Module:
    """Flatten, Linear(n_units_1), Dropout, ReLU, Linear(n_units_2), Dropout, ReLU, Linear(10); returns logits."""
    for name, value in (("n_units_1", n_units_1), ("n_units_2", n_units_2)):
        if value < 1:
            raise ValueError(f"{name} must be at least 1, got {value}.")
    for name, value in (("dropout_1", dropout_1), ("dropout_2", dropout_2)):
        if not 0.0 <= value < 1.0:
            raise ValueError(f"{name} must lie in [0, 1), got {value}.")
    # The tutorial's order (dropout before ReLU); the two commute, since dropout only scales by a positive factor.
    return nn.Sequential(
        nn.Flatten(),
        nn.Linear(N_INPUTS, n_units_1), nn.Dropout(dropout_1), nn.ReLU(),
        nn.Linear(n_units_1, n_units_2), nn.Dropout(dropout_2), nn.ReLU(),
        nn.Linear(n_units_2, N_CLASSES),
    )


__all__ = ["build_mlp", "N_INPUTS", "N_CLASSES"]
