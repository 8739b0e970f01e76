"""Training one NAS-Bench-201 architecture epoch by epoch: the code shared by the train script and the table generator.

`train_architecture` seeds, builds the network, and trains it with NAS-Bench-201's recipe (SGD with Nesterov
momentum 0.9, weight decay 5e-4, cosine learning rate over `epochs` stepped once per epoch, cross-entropy), on
in-memory data from `datasets.prepare_data`. After every epoch it evaluates on the validation split (and on the
test split in the epochs asked for), calls `report(**metrics)`, and, given a checkpoint folder, saves model,
optimizer, LR scheduler, RNG states and elapsed time there so that a restart continues with the next epoch and
gives the same numbers as an uninterrupted run.
"""
from __future__ import annotations

import sys
import time
from collections.abc import Callable, Collection
from dataclasses import asdict, dataclass
from typing import Any

import torch
from torch import nn

from benchmarks.training import CheckpointError, DataSplits, EVAL_BATCH_SIZE, epoch_generator, evaluate, \
    load_checkpoint, save_checkpoint, seed_everything, train_one_epoch

from .encoding import Arch
from .model import build_model, count_parameters

MOMENTUM = 0.9
WEIGHT_DECAY = 5e-4
NESTEROV = True

__all__ = ["TrainSpec", "check_train_spec", "make_optimizer", "make_lr_scheduler", "build_network", "count_flops",
           "train_architecture", "CheckpointError"]


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


def build_network(arch: Arch, spec: TrainSpec, in_channels: int, num_classes: int = 10) -> nn.Module:
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


def train_architecture(arch: Arch, splits: DataSplits, spec: TrainSpec, *, device: torch.device | str = "cpu",
                       report: Callable[..., None] | None = None, checkpoint_dir: str | None = None,
                       test_epochs: Collection[int] | str = (), start_info: dict[str, Any] | None = None
                       ) -> list[dict[str, Any]]:
    """Train `arch` from scratch (or from the checkpoint in `checkpoint_dir`) up to `spec.epochs`.

    Returns and reports one dict per epoch run: `epoch` (1-based), `train_loss`, `train_error` (over the
    training mini-batches), `valid_loss`, `valid_error`, `epoch_time` (seconds of training and validation in this
    epoch), `epoch_cpu_time` (this process's CPU time in it: with one thread, the epoch's time on an otherwise
    idle core), `elapsed_time` (the sum of `epoch_time` so far, carried over across resumes) and, in
    `test_epochs` ("all", "last" or a collection of epochs), `test_loss` and `test_error` (not timed).
    `start_info`, when given, receives `params`, `flops` and the epoch the run resumed from.
    """
    check_train_spec(spec)
    device = torch.device(device)
    if test_epochs == "all":
        test_set: Collection[int] = range(1, spec.epochs + 1)
    elif test_epochs == "last":
        test_set = (spec.epochs,)
    elif isinstance(test_epochs, str):
        raise ValueError(f"test_epochs {test_epochs!r} is not accepted; use 'all', 'last' or a list of epochs.")
    else:
        test_set = frozenset(int(e) for e in test_epochs)
    in_channels = int(splits.x_train.shape[1])
    model = build_network(arch, spec, in_channels)
    model.to(device)
    optimizer = make_optimizer(model, spec.learning_rate)
    lr_scheduler = make_lr_scheduler(optimizer, spec.epochs)
    if start_info is not None:
        start_info["params"] = count_parameters(model)
        start_info["flops"] = count_flops(model, tuple(splits.x_train.shape[1:]))
    start_epoch, extra = load_checkpoint(checkpoint_dir, model, optimizer, lr_scheduler)
    if start_info is not None:
        start_info["resumed_from"] = start_epoch
    if start_epoch >= spec.epochs:
        print(f"checkpoint in {checkpoint_dir} is at epoch {start_epoch} >= epochs {spec.epochs}; nothing to train.",
              file=sys.stderr)
        return []
    data = splits.to(device)
    transform = _crop_flip if spec.augment else None
    eval_batch_size = max(spec.batch_size, EVAL_BATCH_SIZE)
    elapsed = float(extra.get("elapsed", 0.0))
    results: list[dict[str, Any]] = []
    for epoch in range(start_epoch + 1, spec.epochs + 1):
        start, start_cpu = time.perf_counter(), time.process_time()
        train_loss, train_error = train_one_epoch(model, optimizer, data.x_train, data.y_train, spec.batch_size,
                                                  epoch_generator(spec.seed, epoch), device, transform)
        lr_scheduler.step()
        valid_loss, valid_error = evaluate(model, data.x_valid, data.y_valid, eval_batch_size, device)
        epoch_time = time.perf_counter() - start
        cpu_time = time.process_time() - start_cpu
        elapsed += epoch_time
        metrics: dict[str, Any] = {"epoch": epoch, "train_loss": train_loss, "train_error": train_error,
                                   "valid_loss": valid_loss, "valid_error": valid_error, "epoch_time": epoch_time,
                                   "epoch_cpu_time": cpu_time, "elapsed_time": elapsed}
        if epoch in test_set:
            metrics["test_loss"], metrics["test_error"] = evaluate(model, data.x_test, data.y_test,
                                                                   eval_batch_size, device)
        if checkpoint_dir is not None:
            save_checkpoint(checkpoint_dir, model, optimizer, epoch, {"elapsed": elapsed}, lr_scheduler)
        if report is not None:
            report(**metrics)
        results.append(metrics)
    return results


def _crop_flip(x: torch.Tensor) -> torch.Tensor:
    from .datasets import crop_flip
    return crop_flip(x)
