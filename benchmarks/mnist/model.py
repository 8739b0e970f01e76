"""The MNIST convnet: 1 to 3 conv blocks, dropout and one linear layer to 10 log-probabilities."""
from __future__ import annotations

from torch import nn

IMAGE_SIZE = 28
N_CLASSES = 10


def build_convnet(n_conv_layers: int, n_filters: list[int], dropout: float) -> nn.Module:
    """Per layer a 3x3 same-padded Conv2d, ReLU and 2x2 MaxPool; then dropout, flatten, Linear(10), log_softmax."""
    if n_conv_layers not in (1, 2, 3):
        raise ValueError(f"n_conv_layers must be 1, 2 or 3, got {n_conv_layers}.")
    if len(n_filters) < n_conv_layers:
        raise ValueError(f"n_filters needs {n_conv_layers} entries, got {list(n_filters)}.")
    if not 0.0 <= dropout < 1.0:
        raise ValueError(f"dropout must lie in [0, 1), got {dropout}.")
    layers: list[nn.Module] = []
    in_channels, size = 1, IMAGE_SIZE
    for width in n_filters[:n_conv_layers]:
        if width < 1:
            raise ValueError(f"every filter count must be at least 1, got {width}.")
        layers += [nn.Conv2d(in_channels, width, kernel_size=3, padding=1), nn.ReLU(), nn.MaxPool2d(2)]
        in_channels, size = width, size // 2
    layers += [nn.Dropout(dropout), nn.Flatten(), nn.Linear(in_channels * size * size, N_CLASSES),
               nn.LogSoftmax(dim=1)]
    return nn.Sequential(*layers)


def count_parameters(model: nn.Module) -> int:
    """Number of trainable parameters."""
    return sum(p.numel() for p in model.parameters() if p.requires_grad)


__all__ = ["build_convnet", "count_parameters", "IMAGE_SIZE", "N_CLASSES"]
