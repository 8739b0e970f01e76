"""The five NAS-Bench-201 operations, all keeping the shape (N, C, H, W) of their input.

As in the official implementation: convolutions are ReLU-Conv-BN with "same" padding and no conv bias; pooling is
a 3x3 average with stride 1 and padding 1 that does not count the padding; `skip_connect` is the identity; `none`
outputs zeros of the input's shape. With `groups` G > 1 the channels hold G independent networks side by side
(grouped convolutions; BatchNorm and pooling are per channel anyway), which trains G seeds for little more than the
price of one on a CPU, where networks this small are bound by per-operation overhead.
"""
from __future__ import annotations

import torch
from torch import nn

from .encoding import OPS, ArchitectureError

__all__ = ["OPS", "ReLUConvBN", "Zero", "make_op", "CategoricalOp"]


class ReLUConvBN(nn.Sequential):
    """ReLU, Conv2d (no bias), BatchNorm2d; `c_in`/`c_out` count the channels of all `groups` together."""

    def __init__(self, c_in: int, c_out: int, kernel_size: int, stride: int = 1, padding: int = 0,
                 groups: int = 1) -> None:
        super().__init__(
            nn.ReLU(inplace=False),
            nn.Conv2d(c_in, c_out, kernel_size, stride=stride, padding=padding, bias=False, groups=groups),
            nn.BatchNorm2d(c_out),
        )


class Zero(nn.Module):
    """The `none` operation: zeros shaped like the input."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.zeros_like(x)


def make_op(op_name: str, channels: int, groups: int = 1) -> nn.Module:
    """A fresh module for operation `op_name` on `channels` channels (of all `groups` together)."""
    if op_name == "none":
        return Zero()
    if op_name == "skip_connect":
        return nn.Identity()
    if op_name == "nor_conv_1x1":
        return ReLUConvBN(channels, channels, 1, padding=0, groups=groups)
    if op_name == "nor_conv_3x3":
        return ReLUConvBN(channels, channels, 3, padding=1, groups=groups)
    if op_name == "avg_pool_3x3":
        return nn.AvgPool2d(3, stride=1, padding=1, count_include_pad=False)
    raise ArchitectureError(f"Unknown operation {op_name!r}; accepted operations are {', '.join(OPS)}.")


class CategoricalOp(nn.Module):
    """The operation chosen for one edge of a cell; `op_name` says which, `op` holds the module."""

    def __init__(self, op_name: str, channels: int, groups: int = 1) -> None:
        super().__init__()
        self.op_name = op_name
        self.channels = int(channels)
        self.op = make_op(op_name, self.channels, groups)

    @property
    def is_zero(self) -> bool:
        """Whether this edge contributes nothing (`none`)."""
        return self.op_name == "none"

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.op(x)

    def extra_repr(self) -> str:
        return f"{self.op_name}, C={self.channels}"
