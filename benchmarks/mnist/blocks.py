"""Efficient convolution blocks for the MNIST convnet: depthwise-separable 3x3 convolutions and squeeze-and-excitation.

`ConvBlock` says how one conv layer is built: a standard 3x3 convolution (in*out*9 + out parameters) or a
depthwise-separable one (a 3x3 depthwise convolution without bias, then a 1x1 pointwise one: in*9 + in*out + out), and
optionally a squeeze-and-excitation block after the activation (two 1x1 convolutions through
max(1, channels // reduction) hidden units: 2*channels*hidden + hidden + channels).
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

KERNEL_SIZE = 3


@dataclass(frozen=True)
class ConvBlock:
    """One conv layer's build: `separable` swaps the 3x3 convolution; `se_reduction` (None: no SE) adds SE."""

    separable: bool = False
    se_reduction: int | None = None

    def __post_init__(self) -> None:
        if self.se_reduction is not None and self.se_reduction < 1:
            raise ValueError(f"se_reduction must be at least 1 (or None for no SE block), got {self.se_reduction}.")


class SeparableConv2d(nn.Sequential):
    """Depthwise 3x3 convolution (one filter per input channel) followed by a 1x1 pointwise convolution.

    The depthwise convolution has no bias: with nothing between the two, it would add only a constant that the
    pointwise bias already covers.
    """

    def __init__(self, in_channels: int, out_channels: int) -> None:
        super().__init__(
            nn.Conv2d(in_channels, in_channels, KERNEL_SIZE, padding=KERNEL_SIZE // 2, groups=in_channels,
                      bias=False),
            nn.Conv2d(in_channels, out_channels, kernel_size=1),
        )


class SqueezeExcitation(nn.Module):
    """Rescale each channel by a gate in (0, 1) computed from the channels' global means (Hu et al., 2018)."""

    def __init__(self, channels: int, reduction: int) -> None:
        super().__init__()
        if channels < 1 or reduction < 1:
            raise ValueError(f"channels and reduction must be at least 1, got {channels} and {reduction}.")
        hidden = max(1, channels // reduction)
        self.squeeze = nn.Conv2d(channels, hidden, kernel_size=1)
        self.excite = nn.Conv2d(hidden, channels, kernel_size=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        gate = x.mean(dim=(2, 3), keepdim=True)
        gate = torch.sigmoid(self.excite(torch.relu(self.squeeze(gate))))
        return x * gate


def conv_layer(in_channels: int, out_channels: int, block: ConvBlock) -> list[nn.Module]:
    """The modules of one same-padded conv layer before pooling: convolution, ReLU and, optionally, SE."""
    if block.separable:
        conv: nn.Module = SeparableConv2d(in_channels, out_channels)
    else:
        conv = nn.Conv2d(in_channels, out_channels, kernel_size=KERNEL_SIZE, padding=KERNEL_SIZE // 2)
    layers = [conv, nn.ReLU()]
    if block.se_reduction is not None:
        layers.append(SqueezeExcitation(out_channels, block.se_reduction))
    return layers


__all__ = ["ConvBlock", "SeparableConv2d", "SqueezeExcitation", "conv_layer", "KERNEL_SIZE"]
