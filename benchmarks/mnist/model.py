"""The MNIST convnet: 1 to 3 conv blocks, dropout and one linear layer to 10 log-probabilities."""
from __future__ import annotations

from collections.abc import Sequence

from torch import nn

from benchmarks.mnist.blocks import ConvBlock, conv_layer

IMAGE_SIZE = 28
N_CLASSES = 10


def build_convnet(n_conv_layers: int, n_filters: list[int], dropout: float,
                  blocks: Sequence[ConvBlock] | None = None) -> nn.Module:
    """Per layer a 3x3 same-padded Conv2d, ReLU and 2x2 MaxPool; then dropout, flatten, Linear(10), log_softmax.

    `blocks` (one per layer; default all `ConvBlock()`) may make a layer's convolution depthwise-separable and add a
    squeeze-and-excitation block before its pooling. The default builds the same modules, in the same order, as
    before blocks existed, so a seed gives the same weights and checkpoints keep their keys.
    """
    if n_conv_layers not in (1, 2, 3):
        raise ValueError(f"n_conv_layers must be 1, 2 or 3, got {n_conv_layers}.")
    if len(n_filters) < n_conv_layers:
        raise ValueError(f"n_filters needs {n_conv_layers} entries, got {list(n_filters)}.")
    if blocks is None:
        blocks = [ConvBlock()] * n_conv_layers
    if len(blocks) < n_conv_layers:
        raise ValueError(f"blocks needs {n_conv_layers} entries, got {len(blocks)}.")
    if not 0.0 <= dropout < 1.0:
        raise ValueError(f"dropout must lie in [0, 1), got {dropout}.")
    layers: list[nn.Module] = []
    in_channels, size = 1, IMAGE_SIZE
    for width, block in zip(n_filters[:n_conv_layers], blocks):
        if width < 1:
            raise ValueError(f"every filter count must be at least 1, got {width}.")
        layers += [*conv_layer(in_channels, width, block), nn.MaxPool2d(2)]
        in_channels, size = width, size // 2
    layers += [nn.Dropout(dropout), nn.Flatten(), nn.Linear(in_channels * size * size, N_CLASSES),
               nn.LogSoftmax(dim=1)]
    return nn.Sequential(*layers)


__all__ = ["build_convnet", "ConvBlock", "IMAGE_SIZE", "N_CLASSES"]
