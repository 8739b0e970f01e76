"""The NAS-Bench-201 macro skeleton around a cell, as in the official `TinyNetwork`.

Stem (3x3 conv to C channels + BN); three stages of N cells on C, 2C and 4C channels, joined by residual blocks
of stride 2 that double the channels; then BN, ReLU, global average pooling and a linear classifier. The
benchmark uses C = 16, N = 5. Works for any input size of at least 4x4 (e.g. 3x32x32 CIFAR, 1x28x28 MNIST).

`groups` G > 1 builds G independent networks of one architecture side by side in the channels (grouped
convolutions, per-channel BatchNorm, a grouped 1x1 convolution as classifier): the input holds G images per example
(group g's batch in channels g*in_channels...), the output is (N, G, num_classes). `load_members` copies G
separately seeded networks into it, so training it equals training G seeds, each on its own batches.
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

    def __init__(self, c_in: int, c_out: int, groups: int = 1) -> None:
        super().__init__()
        self.conv_a = ReLUConvBN(c_in, c_out, 3, stride=2, padding=1, groups=groups)
        self.conv_b = ReLUConvBN(c_out, c_out, 3, stride=1, padding=1, groups=groups)
        self.downsample = nn.Sequential(
            nn.AvgPool2d(kernel_size=2, stride=2, padding=0, ceil_mode=True),
            nn.Conv2d(c_in, c_out, kernel_size=1, stride=1, padding=0, bias=False, groups=groups),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.downsample(x) + self.conv_b(self.conv_a(x))


class NB201Network(nn.Module):
    """The NAS-Bench-201 network for one architecture; `forward` returns logits (N, num_classes), or
    (N, groups, num_classes) for `groups` > 1."""

    def __init__(self, arch: Arch, channels: int = 16, cells_per_stage: int = 5, num_classes: int = 10,
                 in_channels: int = 3, groups: int = 1) -> None:
        super().__init__()
        for name, value in (("channels", channels), ("cells_per_stage", cells_per_stage),
                            ("num_classes", num_classes), ("in_channels", in_channels), ("groups", groups)):
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"{name}={value!r} is not accepted; it must be an integer of at least 1.")
        ops = to_ops(arch)
        self.ops = ops
        self.groups = g = groups
        self.num_classes = num_classes
        self.stem = nn.Sequential(nn.Conv2d(g * in_channels, g * channels, 3, padding=1, bias=False, groups=g),
                                  nn.BatchNorm2d(g * channels))
        layers: list[nn.Module] = []
        c = channels
        for stage in range(3):
            if stage > 0:
                layers.append(ResNetBasicBlock(g * c, g * 2 * c, g))
                c *= 2
            layers.extend(NB201Cell(ops, g * c, g) for _ in range(cells_per_stage))
        self.cells = nn.Sequential(*layers)
        self.lastact = nn.Sequential(nn.BatchNorm2d(g * c), nn.ReLU(inplace=True))
        self.global_pooling = nn.AdaptiveAvgPool2d(1)
        self.classifier = nn.Linear(c, num_classes) if g == 1 else nn.Conv2d(g * c, g * num_classes, 1, groups=g)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.global_pooling(self.lastact(self.cells(self.stem(x))))
        if self.groups == 1:
            return self.classifier(torch.flatten(x, 1))
        return self.classifier(x).view(len(x), self.groups, self.num_classes)

    @torch.no_grad()
    def load_members(self, members: list[nn.Module]) -> None:
        """Copy the parameters and buffers of `groups` ungrouped networks of the same shape into the groups."""
        if len(members) != self.groups:
            raise ValueError(f"{len(members)} networks given for {self.groups} groups.")
        states = [m.state_dict() for m in members]
        for name, tensor in self.state_dict().items():
            parts = [state[name] for state in states]
            if tensor.dim() == 0:  # BatchNorm's num_batches_tracked
                tensor.copy_(parts[0])
            else:
                tensor.copy_(torch.cat([p.reshape(-1, *tensor.shape[1:]) for p in parts]))


def build_model(arch: Arch, channels: int = 16, cells_per_stage: int = 5, num_classes: int = 10,
                in_channels: int = 3, groups: int = 1) -> nn.Module:
    """The NAS-Bench-201 network of `arch` (string, index or config dict)."""
    return NB201Network(arch, channels, cells_per_stage, num_classes, in_channels, groups)
