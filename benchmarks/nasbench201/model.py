"""The NAS-Bench-201 macro skeleton around a cell, as in the official `TinyNetwork`.

Stem (3x3 conv to C channels + BN); three stages of N cells on C, 2C and 4C channels, joined by residual blocks
of stride 2 that double the channels; then BN, ReLU, global average pooling and a linear classifier. The
benchmark uses C = 16, N = 5. Works for any input size of at least 4x4 (e.g. 3x32x32 CIFAR, 1x28x28 MNIST).
"""
from __future__ import annotations

import torch
from torch import nn

from .cell import NB201Cell
from .encoding import Arch, to_ops
from .ops import ReLUConvBN


class ResNetBasicBlock(nn.Module):
    """The official reduction block: ReLU-Conv-BN (stride 2), ReLU-Conv-BN, plus an AvgPool2d(2) + 1x1 conv
    shortcut. The pooling uses `ceil_mode` so odd sizes match the conv; for even sizes it is the official one."""

    def __init__(self, c_in: int, c_out: int) -> None:
        super().__init__()
        self.conv_a = ReLUConvBN(c_in, c_out, 3, stride=2, padding=1)
        self.conv_b = ReLUConvBN(c_out, c_out, 3, stride=1, padding=1)
        self.downsample = nn.Sequential(
            nn.AvgPool2d(kernel_size=2, stride=2, padding=0, ceil_mode=True),
            nn.Conv2d(c_in, c_out, kernel_size=1, stride=1, padding=0, bias=False),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.downsample(x) + self.conv_b(self.conv_a(x))


class NB201Network(nn.Module):
    """The NAS-Bench-201 network for one architecture; `forward` returns logits (N, num_classes)."""

    def __init__(self, arch: Arch, channels: int = 16, cells_per_stage: int = 5, num_classes: int = 10,
                 in_channels: int = 3) -> None:
        super().__init__()
        for name, value in (("channels", channels), ("cells_per_stage", cells_per_stage),
                            ("num_classes", num_classes), ("in_channels", in_channels)):
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"{name}={value!r} is not accepted; it must be an integer of at least 1.")
        ops = to_ops(arch)
        self.ops = ops
        self.stem = nn.Sequential(nn.Conv2d(in_channels, channels, 3, padding=1, bias=False),
                                  nn.BatchNorm2d(channels))
        layers: list[nn.Module] = []
        c = channels
        for stage in range(3):
            if stage > 0:
                layers.append(ResNetBasicBlock(c, 2 * c))
                c *= 2
            layers.extend(NB201Cell(ops, c) for _ in range(cells_per_stage))
        self.cells = nn.Sequential(*layers)
        self.lastact = nn.Sequential(nn.BatchNorm2d(c), nn.ReLU(inplace=True))
        self.global_pooling = nn.AdaptiveAvgPool2d(1)
        self.classifier = nn.Linear(c, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.lastact(self.cells(self.stem(x)))
        return self.classifier(torch.flatten(self.global_pooling(x), 1))


def build_model(arch: Arch, channels: int = 16, cells_per_stage: int = 5, num_classes: int = 10,
                in_channels: int = 3) -> nn.Module:
    """The NAS-Bench-201 network of `arch` (string, index or config dict)."""
    return NB201Network(arch, channels, cells_per_stage, num_classes, in_channels)


def count_parameters(model: nn.Module) -> int:
    """The number of trainable parameters (the benchmark's `params` is this divided by 1e6)."""
    return sum(p.numel() for p in model.parameters() if p.requires_grad)
