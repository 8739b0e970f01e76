"""Training code shared by the training scripts: seeding, in-memory batching, evaluation, checkpoints, epoch loop.

Data are tensors held in memory (`DataSplits`); an epoch draws a permutation from a `torch.Generator` seeded from
the run's seed and the epoch, so a resumed run shuffles exactly as an uninterrupted one. Checkpoints follow Syne
Tune's convention: the backend passes `--st_checkpoint_dir PATH`, the script saves after every epoch and resumes
from it, continuing the epoch count. Models may return logits or log-probabilities: `F.cross_entropy` of
log-probabilities equals their negative log-likelihood.
"""
from __future__ import annotations

import os
import random
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, fields
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

CHECKPOINT_FILE = "checkpoint.pt"
EVAL_BATCH_SIZE = 1024

BatchTransform = Callable[[torch.Tensor], torch.Tensor]
LRScheduler = Any  # anything with step(), state_dict() and load_state_dict(), e.g. torch.optim.lr_scheduler.*


class CheckpointError(RuntimeError):
    """A checkpoint exists but cannot be loaded into this model (e.g. it was written for another config)."""


@dataclass
class DataSplits:
    """Train, validation and test tensors held in memory: inputs float (N, C, H, W), labels int64 (N,)."""

    x_train: torch.Tensor
    y_train: torch.Tensor
    x_valid: torch.Tensor
    y_valid: torch.Tensor
    x_test: torch.Tensor
    y_test: torch.Tensor

    def to(self, device: torch.device | str) -> "DataSplits":
        """Copy of the splits on `device` (no copy when they are already there)."""
        return DataSplits(**{f.name: getattr(self, f.name).to(device) for f in fields(self)})


def seed_everything(seed: int) -> None:
    """Seed torch, numpy and Python's `random`."""
    torch.manual_seed(seed)
    np.random.seed(seed % 2**32)
    random.seed(seed)


def choose_device(name: str = "auto") -> torch.device:
    """`auto` picks CUDA when available, else the CPU; `cuda` without a GPU raises ValueError."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name == "cuda" and not torch.cuda.is_available():
        raise ValueError("--device cuda was requested but CUDA is not available here; use --device cpu or auto.")
    if name not in ("cpu", "cuda"):
        raise ValueError(f"unknown device {name!r}; accepted: auto, cpu, cuda.")
    return torch.device(name)


def epoch_generator(seed: int, epoch: int) -> torch.Generator:
    """CPU generator for the shuffling of `epoch` (1-based), a function of seed and epoch only."""
    generator = torch.Generator()
    generator.manual_seed((seed * 1_000_003 + epoch) % 2**63)
    return generator


def batches(n: int, batch_size: int, generator: torch.Generator | None = None) -> Iterator[torch.Tensor]:
    """Index tensors of consecutive batches over `n` examples, shuffled when a generator is given."""
    order = torch.randperm(n, generator=generator) if generator is not None else torch.arange(n)
    for start in range(0, n, batch_size):
        yield order[start:start + batch_size]


def train_one_epoch(model: nn.Module, optimizer: torch.optim.Optimizer, x: torch.Tensor, y: torch.Tensor,
                    batch_size: int, generator: torch.Generator, device: torch.device,
                    batch_transform: BatchTransform | None = None) -> tuple[float, float]:
    """One pass over (x, y) in shuffled batches; returns the mean training loss and error rate of the batches."""
    model.train()
    total = torch.zeros((), device=device)
    wrong = torch.zeros((), device=device, dtype=torch.long)
    for idx in batches(len(y), batch_size, generator):
        xb = x[idx.to(x.device)].to(device, non_blocking=True)
        yb = y[idx.to(y.device)].to(device, non_blocking=True)
        if batch_transform is not None:
            xb = batch_transform(xb)
        optimizer.zero_grad(set_to_none=True)
        out = model(xb)
        loss = F.cross_entropy(out, yb)
        loss.backward()
        optimizer.step()
        total += loss.detach() * len(idx)
        wrong += (out.detach().argmax(dim=1) != yb).sum()
    n = max(len(y), 1)
    return float(total) / n, float(wrong) / n


@torch.no_grad()
def evaluate(model: nn.Module, x: torch.Tensor, y: torch.Tensor, batch_size: int,
             device: torch.device) -> tuple[float, float]:
    """Mean loss and error rate (fraction misclassified) of `model` on (x, y)."""
    model.eval()
    loss = torch.zeros((), device=device)
    wrong = torch.zeros((), device=device, dtype=torch.long)
    for idx in batches(len(y), batch_size):
        xb = x[idx.to(x.device)].to(device, non_blocking=True)
        yb = y[idx.to(y.device)].to(device, non_blocking=True)
        out = model(xb)
        loss += F.cross_entropy(out, yb, reduction="sum")
        wrong += (out.argmax(dim=1) != yb).sum()
    n = max(len(y), 1)
    return float(loss) / n, float(wrong) / n


def _rng_state() -> dict[str, Any]:
    """RNG states of torch, numpy and Python, in types that `torch.load(weights_only=True)` accepts."""
    name, keys, pos, has_gauss, cached = np.random.get_state()
    state: dict[str, Any] = {
        "torch": torch.get_rng_state(),
        "numpy": (name, torch.from_numpy(keys.astype(np.int64)), int(pos), int(has_gauss), float(cached)),
        "python": random.getstate(),
    }
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def _set_rng_state(state: dict[str, Any]) -> None:
    torch.set_rng_state(state["torch"])
    name, keys, pos, has_gauss, cached = state["numpy"]
    np.random.set_state((name, keys.numpy().astype(np.uint32), pos, has_gauss, cached))
    random.setstate(state["python"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def save_checkpoint(directory: str | os.PathLike, model: nn.Module, optimizer: torch.optim.Optimizer, epoch: int,
                    extra: dict[str, Any] | None = None, lr_scheduler: LRScheduler | None = None) -> str:
    """Atomically write model, optimizer, LR scheduler, epoch, RNG states and `extra` to `directory`; returns path."""
    os.makedirs(directory, exist_ok=True)
    state = {
        "epoch": int(epoch),
        "model": model.state_dict(),
        "optimizer": optimizer.state_dict(),
        "lr_scheduler": lr_scheduler.state_dict() if lr_scheduler is not None else None,
        "rng": _rng_state(),
        "extra": dict(extra or {}),
    }
    path = os.path.join(directory, CHECKPOINT_FILE)
    fd, tmp = tempfile.mkstemp(prefix=CHECKPOINT_FILE + ".", suffix=".tmp", dir=directory)
    try:
        with os.fdopen(fd, "wb") as f:
            torch.save(state, f)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.remove(tmp)
        raise
    return path


def load_checkpoint(directory: str | os.PathLike | None, model: nn.Module, optimizer: torch.optim.Optimizer,
                    lr_scheduler: LRScheduler | None = None) -> tuple[int, dict[str, Any]]:
    """Restore the states saved by `save_checkpoint`; returns (epoch, extra), or (0, {}) when there is none."""
    if directory is None:
        return 0, {}
    path = os.path.join(directory, CHECKPOINT_FILE)
    if not os.path.isfile(path):
        return 0, {}
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
        model.load_state_dict(state["model"])
        optimizer.load_state_dict(state["optimizer"])
        if lr_scheduler is not None and state.get("lr_scheduler") is not None:
            lr_scheduler.load_state_dict(state["lr_scheduler"])
        _set_rng_state(state["rng"])
    except Exception as err:
        raise CheckpointError(f"cannot resume from checkpoint {path} ({type(err).__name__}); it was probably "
                              "written for another configuration, so remove it or use another --st_checkpoint_dir.")
    return int(state["epoch"]), dict(state.get("extra") or {})


def fit(model: nn.Module, optimizer: torch.optim.Optimizer, splits: DataSplits, *, epochs: int, batch_size: int,
        seed: int, device: torch.device, report: Callable[..., None], checkpoint_dir: str | None = None,
        lr_scheduler: LRScheduler | None = None, report_test: bool = False,
        batch_transform: BatchTransform | None = None, channels_last: bool = False) -> list[dict[str, Any]]:
    """Train up to epoch `epochs`, resuming from `checkpoint_dir`; reports and returns one dict per epoch run.

    Each report has `epoch` (1-based), `train_loss`, `valid_loss`, `valid_error` and `elapsed_time` (seconds of
    training and evaluation so far, carried over across resumes); the last one also has `test_loss` and
    `test_error` when `report_test`. `lr_scheduler.step()` is called once per epoch; its state is checkpointed.
    `channels_last` stores 4-d weights as NHWC, which speeds up small convnets on the CPU by about a fifth.
    """
    model.to(device)
    if channels_last:
        model.to(memory_format=torch.channels_last)
    start_epoch, extra = load_checkpoint(checkpoint_dir, model, optimizer, lr_scheduler)
    if start_epoch >= epochs:
        print(f"checkpoint in {checkpoint_dir} is at epoch {start_epoch} >= --epochs {epochs}; nothing to train.",
              file=sys.stderr)
        return []
    data = splits.to(device)
    eval_batch_size = max(batch_size, EVAL_BATCH_SIZE)
    elapsed_before = float(extra.get("elapsed", 0.0))
    start = time.perf_counter()
    results = []
    for epoch in range(start_epoch + 1, epochs + 1):
        train_loss, _ = train_one_epoch(model, optimizer, data.x_train, data.y_train, batch_size,
                                        epoch_generator(seed, epoch), device, batch_transform)
        if lr_scheduler is not None:
            lr_scheduler.step()
        valid_loss, valid_error = evaluate(model, data.x_valid, data.y_valid, eval_batch_size, device)
        metrics: dict[str, Any] = {"epoch": epoch, "train_loss": train_loss, "valid_loss": valid_loss,
                                   "valid_error": valid_error}
        if report_test and epoch == epochs:
            metrics["test_loss"], metrics["test_error"] = evaluate(model, data.x_test, data.y_test,
                                                                   eval_batch_size, device)
        elapsed = elapsed_before + time.perf_counter() - start
        metrics["elapsed_time"] = elapsed
        if checkpoint_dir is not None:
            save_checkpoint(checkpoint_dir, model, optimizer, epoch, {"elapsed": elapsed}, lr_scheduler)
        report(**metrics)
        results.append(metrics)
    return results
