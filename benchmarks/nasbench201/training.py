"""Training one NAS-Bench-201 architecture epoch by epoch: the code shared by the train script and the table generator.

`train_architecture` seeds, builds the network, and trains it with NAS-Bench-201's recipe (SGD with Nesterov
momentum 0.9, weight decay 5e-4, cosine learning rate over `epochs` stepped once per epoch, cross-entropy), on
in-memory data from `datasets.prepare_data`, with one seed or several seeds side by side (`SeedGroupTrainer`). The
epoch loop, evaluation, checkpoints and reports are `benchmarks.training.run_epochs`, shared with the MNIST convnet.
"""
from __future__ import annotations

from collections.abc import Callable, Collection, Sequence
from dataclasses import asdict, dataclass, replace
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from benchmarks.training import EVAL_BATCH_SIZE, CheckpointError, DataSplits, count_parameters, epoch_generator, \
    run_epochs, seed_everything

from .encoding import Arch
from .model import build_model

NUM_CLASSES = 10

MOMENTUM = 0.9
WEIGHT_DECAY = 5e-4
NESTEROV = True

__all__ = ["TrainSpec", "check_train_spec", "make_optimizer", "make_lr_scheduler", "build_network", "count_flops",
           "SeedGroupTrainer", "train_architecture", "CheckpointError"]


@dataclass(frozen=True)
class TrainSpec:
    """Network size and training recipe; `seed` seeds initialization, shuffling and augmentation."""

    channels: int = 16
    cells_per_stage: int = 5
    epochs: int = 12
    batch_size: int = 256
    learning_rate: float = 0.1
    augment: bool = False
    seed: int = 0

    def as_dict(self) -> dict[str, Any]:
        """The fields plus the fixed optimizer settings, for provenance."""
        return {**asdict(self), "momentum": MOMENTUM, "weight_decay": WEIGHT_DECAY, "nesterov": NESTEROV,
                "lr_schedule": "cosine over epochs, stepped per epoch"}


def check_train_spec(spec: TrainSpec) -> None:
    """Raise ValueError with one sentence for a value that cannot be trained with."""
    for name in ("channels", "cells_per_stage", "epochs", "batch_size"):
        value = getattr(spec, name)
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ValueError(f"{name} {value!r} is not accepted; it must be an integer of at least 1.")
    if not spec.learning_rate > 0:
        raise ValueError(f"learning_rate {spec.learning_rate} is not accepted; it must be greater than 0.")


def make_optimizer(model: nn.Module, learning_rate: float) -> torch.optim.Optimizer:
    """NAS-Bench-201's optimizer: SGD, Nesterov momentum 0.9, weight decay 5e-4."""
    return torch.optim.SGD(model.parameters(), lr=learning_rate, momentum=MOMENTUM, weight_decay=WEIGHT_DECAY,
                           nesterov=NESTEROV)


def make_lr_scheduler(optimizer: torch.optim.Optimizer, epochs: int) -> torch.optim.lr_scheduler.LRScheduler:
    """Cosine annealing from the initial rate to 0 over `epochs`, stepped once per epoch."""
    return torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=epochs, eta_min=0.0)


def build_network(arch: Arch, spec: TrainSpec, in_channels: int, num_classes: int = NUM_CLASSES) -> nn.Module:
    """The seeded network of `arch` (seeds everything with `spec.seed` first)."""
    seed_everything(spec.seed)
    return build_model(arch, spec.channels, spec.cells_per_stage, num_classes, in_channels)


def count_flops(model: nn.Module, input_shape: tuple[int, ...]) -> int:
    """Multiply-accumulates of one forward pass on one input of shape (C, H, W), over Conv2d and Linear layers."""
    total = 0

    def conv_hook(module: nn.Conv2d, _inputs: tuple, output: torch.Tensor) -> None:
        nonlocal total
        kh, kw = module.kernel_size
        total += output.numel() * (module.in_channels // module.groups) * kh * kw

    def linear_hook(module: nn.Linear, _inputs: tuple, output: torch.Tensor) -> None:
        nonlocal total
        total += output.numel() * module.in_features

    handles = []
    for module in model.modules():
        if isinstance(module, nn.Conv2d):
            handles.append(module.register_forward_hook(conv_hook))
        elif isinstance(module, nn.Linear):
            handles.append(module.register_forward_hook(linear_hook))
    was_training = model.training
    model.eval()
    try:
        device = next(model.parameters()).device
        with torch.no_grad():
            model(torch.zeros((1, *input_shape), device=device))
    finally:
        for handle in handles:
            handle.remove()
        model.train(was_training)
    return total


class SeedGroupTrainer:
    """An `EpochTrainer` for one architecture trained with several seeds at once, as one grouped network.

    Each seed starts from the network `build_network` makes with that seed and draws its own batches (the
    permutation of `epoch_generator(seed, epoch)`), exactly as separate runs would; only floating-point rounding
    differs. On a CPU the group costs little more than one network (`model`). Metrics are lists, one per seed.
    """

    def __init__(self, arch: Arch, splits: DataSplits, spec: TrainSpec, seeds: Sequence[int],
                 device: torch.device) -> None:
        self.seeds, self.g, self.spec, self.device = tuple(seeds), len(seeds), spec, device
        in_channels = int(splits.x_train.shape[1])
        members = [build_network(arch, replace(spec, seed=s), in_channels) for s in self.seeds]
        self.info = {"params": count_parameters(members[0]),
                     "flops": count_flops(members[0], tuple(splits.x_train.shape[1:]))}
        if self.g == 1:
            self.model = members[0]
        else:
            self.model = build_model(arch, spec.channels, spec.cells_per_stage, NUM_CLASSES, in_channels, self.g)
            self.model.load_members(members)
        # Channels-last memory makes grouped convolutions on the CPU about a third faster. One network keeps the
        # default layout, which gives the numbers the MNIST-10k table was trained with.
        self.channels_last = device.type == "cpu" and self.g > 1
        if self.channels_last:
            self.model.to(memory_format=torch.channels_last)
        self.model.to(device)
        self.optimizer = make_optimizer(self.model, spec.learning_rate)
        self.lr_scheduler = make_lr_scheduler(self.optimizer, spec.epochs)
        self.data = splits.to(device)
        self.transform = _crop_flip if spec.augment else None
        self._eval_inputs: dict[str, torch.Tensor] = {}

    def _stack(self, x: torch.Tensor) -> torch.Tensor:
        """Group g's images in channels g*C...; channels-last memory, which the grouped convolutions want."""
        return x.contiguous(memory_format=torch.channels_last) if self.channels_last else x

    def train_epoch(self, epoch: int) -> dict[str, Any]:
        self.model.train()
        x, y = self.data.x_train, self.data.y_train
        orders = [torch.randperm(len(y), generator=epoch_generator(s, epoch)).to(self.device) for s in self.seeds]
        loss_sum = torch.zeros(self.g, device=self.device)
        wrong = torch.zeros(self.g, device=self.device)
        for begin in range(0, len(y), self.spec.batch_size):
            idx = [order[begin:begin + self.spec.batch_size] for order in orders]
            parts = [x[i] if self.transform is None else self.transform(x[i]) for i in idx]
            xb = self._stack(torch.cat(parts, dim=1))
            yb = torch.stack([y[i] for i in idx], dim=1)  # (B, G)
            self.optimizer.zero_grad(set_to_none=True)
            out = self.model(xb).view(len(yb), self.g, -1)
            if self.g == 1:  # the reduction the MNIST-10k table was trained with, for its exact numbers
                loss = F.cross_entropy(out[:, 0], yb[:, 0])
                batch_losses = loss.detach().view(1) * len(yb)
            else:
                losses = F.cross_entropy(out.reshape(-1, out.shape[-1]), yb.reshape(-1), reduction="none")
                loss = losses.view(len(yb), self.g).sum(dim=0)
                batch_losses = loss.detach()
                loss = loss.sum() / len(yb)  # the sum of the seeds' mean losses: the groups share no parameter
            loss.backward()
            self.optimizer.step()
            loss_sum += batch_losses
            wrong += (out.detach().argmax(dim=2) != yb).sum(dim=0)
        self.lr_scheduler.step()
        n = max(len(y), 1)
        return {"train_loss": (loss_sum / n).tolist(), "train_error": (wrong / n).tolist()}

    @torch.no_grad()
    def evaluate(self, split: str) -> tuple[list[float], list[float]]:
        """Per-seed mean loss and error rate on `split` (every network sees every image)."""
        self.model.eval()
        y = getattr(self.data, f"y_{split}")
        if split not in self._eval_inputs:
            self._eval_inputs[split] = self._stack(getattr(self.data, f"x_{split}").repeat(1, self.g, 1, 1))
        x = self._eval_inputs[split]
        loss = torch.zeros(self.g, device=self.device)
        wrong = torch.zeros(self.g, device=self.device)
        for begin in range(0, len(y), EVAL_BATCH_SIZE):
            yb = y[begin:begin + EVAL_BATCH_SIZE].unsqueeze(1).expand(-1, self.g)
            out = self.model(x[begin:begin + EVAL_BATCH_SIZE]).view(len(yb), self.g, -1)
            loss += F.cross_entropy(out.reshape(-1, out.shape[-1]), yb.reshape(-1),
                                    reduction="none").view(-1, self.g).sum(dim=0)
            wrong += (out.argmax(dim=2) != yb).sum(dim=0)
        n = max(len(y), 1)
        return (loss / n).tolist(), (wrong / n).tolist()

    def checkpointed(self) -> tuple[nn.Module, torch.optim.Optimizer, Any]:
        return self.model, self.optimizer, self.lr_scheduler


def train_architecture(arch: Arch, splits: DataSplits, spec: TrainSpec, *, seeds: Sequence[int] | None = None,
                       device: torch.device | str = "cpu", report: Callable[..., None] | None = None,
                       checkpoint_dir: str | None = None, test_epochs: Collection[int] | str = (),
                       start_info: dict[str, Any] | None = None) -> list[dict[str, Any]]:
    """Train `arch` from scratch (or from the checkpoint in `checkpoint_dir`) up to `spec.epochs`.

    With `seeds` (default: `spec.seed` alone) all seeds train side by side (`SeedGroupTrainer`), and the returned
    metrics are lists with one value per seed; the reports carry their mean. Returns and reports one dict per epoch
    run, with the keys of `benchmarks.training.run_epochs`; `test_epochs` is "all", "last" or a collection of
    epochs. `start_info`, when given, receives `params` and `flops` of one network.
    """
    check_train_spec(spec)
    if test_epochs == "all":
        test_set: Collection[int] = range(1, spec.epochs + 1)
    elif test_epochs == "last":
        test_set = (spec.epochs,)
    elif isinstance(test_epochs, str):
        raise ValueError(f"test_epochs {test_epochs!r} is not accepted; use 'all', 'last' or a list of epochs.")
    else:
        test_set = frozenset(int(e) for e in test_epochs)
    trainer = SeedGroupTrainer(arch, splits, spec, (spec.seed,) if seeds is None else seeds, torch.device(device))
    if start_info is not None:
        start_info.update(trainer.info)
    rows = run_epochs(trainer, spec.epochs, report=report, checkpoint_dir=checkpoint_dir, test_epochs=test_set)
    if seeds is None:  # one seed: plain numbers
        rows = [{k: v[0] if isinstance(v, list) else v for k, v in row.items()} for row in rows]
    return rows


def _crop_flip(x: torch.Tensor) -> torch.Tensor:
    from .datasets import crop_flip
    return crop_flip(x)
