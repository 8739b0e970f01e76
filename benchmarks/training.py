"""Training code shared by the training scripts: seeding, in-memory batching, evaluation, checkpoints, the epoch loop.

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
from collections.abc import Callable, Collection, Iterator
from dataclasses import dataclass, fields
from typing import Any, Protocol

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
    """Seed torch, numpy and Python's `random`; where a GPU is present, make its kernels deterministic too."""
    if torch.cuda.is_available():
        _deterministic_cuda()
    torch.manual_seed(seed)
    np.random.seed(seed % 2**32)
    random.seed(seed)


def _deterministic_cuda() -> None:
    """Same seed, same numbers on a GPU as on a CPU: cuDNN's backward convolutions otherwise pick atomic-add
    kernels, and the same run gave other weights after one epoch (tests/test_cuda.py, on an H200). cuBLAS needs a
    fixed workspace, which only takes effect before its first use. An op with no deterministic kernel warns."""
    os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
    torch.backends.cudnn.deterministic = True
    torch.backends.cudnn.benchmark = False
    torch.use_deterministic_algorithms(True, warn_only=True)


def count_parameters(model: nn.Module) -> int:
    """The number of trainable parameters."""
    return sum(p.numel() for p in model.parameters() if p.requires_grad)


def split_validation(n: int, fraction: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Sorted (validation, training) indices of `n` examples: a seeded share `fraction` (at least one of each)."""
    if not 0.0 < fraction < 1.0:
        raise ValueError(f"valid_fraction must lie in (0, 1), got {fraction}.")
    n_valid = min(max(1, round(n * fraction)), n - 1)
    order = np.random.RandomState(seed).permutation(n)
    return np.sort(order[:n_valid]), np.sort(order[n_valid:])


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


class EpochTrainer(Protocol):
    """What `run_epochs` drives: one network (or one group of networks) with its optimizer and data.

    `train_epoch` trains one epoch (and steps the learning rate schedule) and returns `train_loss` and
    `train_error`; `evaluate` returns (loss, error) on the `valid` or `test` split. Values are floats, or lists with
    one value per network of a group. `checkpointed` are the model, optimizer and LR scheduler to save.
    """

    def train_epoch(self, epoch: int) -> dict[str, Any]: ...

    def evaluate(self, split: str) -> tuple[Any, Any]: ...

    def checkpointed(self) -> tuple[nn.Module, torch.optim.Optimizer, LRScheduler | None]: ...


class ModelTrainer:
    """An `EpochTrainer` for one network on in-memory data; an epoch's batches depend on seed and epoch only."""

    def __init__(self, model: nn.Module, optimizer: torch.optim.Optimizer, splits: DataSplits, *, batch_size: int,
                 seed: int, device: torch.device, lr_scheduler: LRScheduler | None = None,
                 batch_transform: BatchTransform | None = None) -> None:
        self.model, self.optimizer, self.lr_scheduler = model, optimizer, lr_scheduler
        self.data = splits.to(device)
        self.batch_size, self.seed, self.device = batch_size, seed, device
        self.batch_transform = batch_transform

    def train_epoch(self, epoch: int) -> dict[str, Any]:
        loss, error = train_one_epoch(self.model, self.optimizer, self.data.x_train, self.data.y_train,
                                      self.batch_size, epoch_generator(self.seed, epoch), self.device,
                                      self.batch_transform)
        if self.lr_scheduler is not None:
            self.lr_scheduler.step()
        return {"train_loss": loss, "train_error": error}

    def evaluate(self, split: str) -> tuple[float, float]:
        x, y = getattr(self.data, f"x_{split}"), getattr(self.data, f"y_{split}")
        return evaluate(self.model, x, y, max(self.batch_size, EVAL_BATCH_SIZE), self.device)

    def checkpointed(self) -> tuple[nn.Module, torch.optim.Optimizer, LRScheduler | None]:
        return self.model, self.optimizer, self.lr_scheduler


def _mean(value: Any) -> Any:
    return sum(value) / len(value) if isinstance(value, list) else value


def run_epochs(trainer: EpochTrainer, epochs: int, *, report: Callable[..., None] | None = None,
               checkpoint_dir: str | None = None, test_epochs: Collection[int] = ()) -> list[dict[str, Any]]:
    """The one epoch loop of every training script: train up to epoch `epochs`, resuming from `checkpoint_dir`.

    After each epoch it evaluates on the validation split (and on the test split in `test_epochs`), saves a
    checkpoint (model, optimizer, LR scheduler, RNG states, elapsed time) and reports `epoch` (1-based, continuing
    a resumed run's count), `train_loss`, `train_error`, `valid_loss`, `valid_error`, `epoch_time` (seconds of
    training and validation in this epoch), `elapsed_time` (their sum so far, carried across resumes), and
    `test_loss`, `test_error` in `test_epochs`. Group trainers' per-network lists are reported as their mean.
    Returns the epochs run, with the trainer's own values and `epoch_cpu_time` (this process's CPU seconds in the
    epoch: with one thread, the epoch's time on an otherwise idle core).
    """
    model, optimizer, lr_scheduler = trainer.checkpointed()
    start_epoch, extra = load_checkpoint(checkpoint_dir, model, optimizer, lr_scheduler)
    if start_epoch >= epochs:
        print(f"checkpoint in {checkpoint_dir} is at epoch {start_epoch} >= epochs {epochs}; nothing to train.",
              file=sys.stderr)
        return []
    elapsed = float(extra.get("elapsed", 0.0))
    rows: list[dict[str, Any]] = []
    for epoch in range(start_epoch + 1, epochs + 1):
        start, start_cpu = time.perf_counter(), time.process_time()
        row: dict[str, Any] = {"epoch": epoch, **trainer.train_epoch(epoch)}
        row["valid_loss"], row["valid_error"] = trainer.evaluate("valid")
        row["epoch_time"] = time.perf_counter() - start
        row["epoch_cpu_time"] = time.process_time() - start_cpu
        elapsed += row["epoch_time"]
        row["elapsed_time"] = elapsed
        if epoch in test_epochs:  # not timed: the test split is for reporting, not part of the training cost
            row["test_loss"], row["test_error"] = trainer.evaluate("test")
        if checkpoint_dir is not None:
            save_checkpoint(checkpoint_dir, model, optimizer, epoch, {"elapsed": elapsed}, lr_scheduler)
        if report is not None:
            report(**{key: _mean(value) for key, value in row.items() if key != "epoch_cpu_time"})
        rows.append(row)
    return rows
