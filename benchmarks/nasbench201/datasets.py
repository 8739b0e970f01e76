"""Data for training NAS-Bench-201 cells: MNIST, Fashion-MNIST or CIFAR-10 in memory, optionally subsampled and
resized once.

`prepare_data` is the one entry point used by both `training_scripts/nasbench201_train.py` and the table
generator, so both see exactly the same examples. The validation split is a seeded share of the training set;
`data_fraction` then keeps a seeded share of the training and validation splits (the test split is kept whole);
`n_train`, `n_valid`, `n_test`, when given, keep a seeded subset of that many examples of a split; `image_size`
resizes all images once, on the in-memory tensors (area interpolation, i.e. average pooling, when shrinking;
bilinear when growing).

CIFAR-10 is read from `<dataset_path>/cifar-10-batches-py` (the python pickle batches that torchvision downloads)
with pickle and numpy; torchvision is imported only to download missing files, under a file lock.
"""
from __future__ import annotations

import os
import pickle
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from benchmarks.download import DataMissing, find_or_download
from benchmarks.training import DataSplits, split_validation

from .dataspec import DataSpec, check_spec

NUM_CLASSES = 10
CIFAR_FOLDER = "cifar-10-batches-py"
CIFAR_TRAIN_FILES = tuple(f"data_batch_{i}" for i in range(1, 6))
CIFAR_TEST_FILE = "test_batch"
CIFAR_LOCK_FILE = ".cifar10-download.lock"
# NAS-Bench-201's CIFAR normalization
CIFAR_MEAN = tuple(v / 255 for v in (125.3, 123.0, 113.9))
CIFAR_STD = tuple(v / 255 for v in (63.0, 62.1, 66.7))


# ---------------------------------------------------------------- CIFAR-10

def cifar_missing_message(dataset_path: str | os.PathLike) -> str:
    """One sentence naming the folder, the expected files and the `--dataset_path` flag."""
    folder = Path(dataset_path) / CIFAR_FOLDER
    return (f"CIFAR-10 data not found in {str(dataset_path)!r} and the download failed: put "
            f"{', '.join(CIFAR_TRAIN_FILES)} and {CIFAR_TEST_FILE} (the python version of CIFAR-10) under "
            f"{str(folder)!r}, or point --dataset_path at a folder that holds {CIFAR_FOLDER}/ with these files.")


def _cifar_files(dataset_path: str | os.PathLike) -> list[Path] | None:
    folder = Path(dataset_path) / CIFAR_FOLDER
    files = [folder / name for name in (*CIFAR_TRAIN_FILES, CIFAR_TEST_FILE)]
    return files if all(f.is_file() for f in files) else None


def _torchvision_download_cifar(dataset_path: str) -> None:
    import torchvision
    torchvision.datasets.CIFAR10(dataset_path, train=True, download=True)


def _read_cifar_batch(path: Path) -> tuple[np.ndarray, np.ndarray]:
    with open(path, "rb") as f:
        batch = pickle.load(f, encoding="latin1")
    images = np.asarray(batch["data"], dtype=np.uint8).reshape(-1, 3, 32, 32)
    labels = np.asarray(batch.get("labels", batch.get("fine_labels")), dtype=np.int64)
    if len(images) != len(labels):
        raise ValueError(f"{path} holds {len(images)} images but {len(labels)} labels.")
    return images, labels


def _normalize_cifar(images: np.ndarray) -> torch.Tensor:
    x = torch.from_numpy(images.astype(np.float32)).div_(255.0)
    mean = torch.tensor(CIFAR_MEAN).view(1, 3, 1, 1)
    std = torch.tensor(CIFAR_STD).view(1, 3, 1, 1)
    return (x - mean) / std


def load_cifar10(dataset_path: str | os.PathLike, valid_fraction: float = 0.1, seed: int = 0) -> DataSplits:
    """Normalized (N, 3, 32, 32) CIFAR-10 tensors; validation is a seeded share of the 50,000 training images."""
    files = find_or_download(dataset_path, CIFAR_LOCK_FILE, _cifar_files, _torchvision_download_cifar,
                             cifar_missing_message(dataset_path))
    try:
        parts = [_read_cifar_batch(path) for path in files[:-1]]
        test_images, test_labels = _read_cifar_batch(files[-1])
    except (OSError, pickle.UnpicklingError, KeyError, ValueError, EOFError) as err:
        raise DataMissing(f"CIFAR-10 files under {str(Path(dataset_path) / CIFAR_FOLDER)!r} cannot be read "
                          f"({err}); remove them so that they are downloaded again, or replace them.") from None
    images = np.concatenate([p[0] for p in parts])
    labels = np.concatenate([p[1] for p in parts])
    valid_idx, train_idx = split_validation(len(labels), valid_fraction, seed)
    return DataSplits(
        x_train=_normalize_cifar(images[train_idx]), y_train=torch.from_numpy(labels[train_idx]),
        x_valid=_normalize_cifar(images[valid_idx]), y_valid=torch.from_numpy(labels[valid_idx]),
        x_test=_normalize_cifar(test_images), y_test=torch.from_numpy(test_labels),
    )


# ---------------------------------------------------------------- subsampling and resizing

def subsample(splits: DataSplits, fraction: float, seed: int = 0) -> DataSplits:
    """Keep a seeded random share `fraction` of the training and validation examples (at least one each)."""
    if fraction >= 1.0:
        return splits
    rng = np.random.RandomState(seed + 1)  # another stream than the validation split's

    def keep(x: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        n = len(y)
        k = min(max(1, round(n * fraction)), n)
        idx = torch.from_numpy(np.sort(rng.permutation(n)[:k]))
        return x[idx].contiguous(), y[idx].contiguous()

    x_train, y_train = keep(splits.x_train, splits.y_train)
    x_valid, y_valid = keep(splits.x_valid, splits.y_valid)
    return DataSplits(x_train, y_train, x_valid, y_valid, splits.x_test, splits.y_test)


def keep_counts(splits: DataSplits, n_train: int | None, n_valid: int | None, n_test: int | None,
                seed: int = 0) -> DataSplits:
    """A seeded subset of `n_*` examples of each split (a split with fewer examples, or None, is kept whole)."""
    rng = np.random.RandomState(seed + 2)  # another stream than the split's and data_fraction's
    parts = []
    for x, y, n in ((splits.x_train, splits.y_train, n_train), (splits.x_valid, splits.y_valid, n_valid),
                    (splits.x_test, splits.y_test, n_test)):
        order = rng.permutation(len(y))
        if n is not None and n < len(y):
            idx = torch.from_numpy(np.sort(order[:n]))
            x, y = x[idx].contiguous(), y[idx].contiguous()
        parts += [x, y]
    return DataSplits(*parts)


def resize_images(x: torch.Tensor, size: int) -> torch.Tensor:
    """Images (N, C, H, W) resized to (N, C, size, size): average pooling ("area") when shrinking, else bilinear."""
    if x.shape[-2:] == (size, size):
        return x
    mode = "area" if size <= min(x.shape[-2:]) else "bilinear"
    kwargs = {} if mode == "area" else {"align_corners": False}
    out = []
    for start in range(0, len(x), 4096):  # bounded temporary memory
        out.append(F.interpolate(x[start:start + 4096], size=(size, size), mode=mode, **kwargs))
    return torch.cat(out).contiguous() if out else x.new_zeros((0, x.shape[1], size, size))


def resize(splits: DataSplits, size: int | None) -> DataSplits:
    """All three splits resized to size x size (unchanged when `size` is None)."""
    if size is None:
        return splits
    return DataSplits(resize_images(splits.x_train, size), splits.y_train, resize_images(splits.x_valid, size),
                      splits.y_valid, resize_images(splits.x_test, size), splits.y_test)


def prepare_data(spec: DataSpec) -> DataSplits:
    """The splits described by `spec`; raises ValueError (bad spec) or DataMissing (files absent)."""
    check_spec(spec)
    if spec.dataset in ("mnist", "fashion_mnist"):
        from benchmarks.mnist.data import FASHION_MNIST, MNIST, load_mnist
        splits = load_mnist(spec.dataset_path, spec.valid_fraction, spec.split_seed,
                            FASHION_MNIST if spec.dataset == "fashion_mnist" else MNIST)
    else:
        splits = load_cifar10(spec.dataset_path, spec.valid_fraction, spec.split_seed)
    splits = subsample(splits, spec.data_fraction, spec.split_seed)
    if (spec.n_train, spec.n_valid, spec.n_test) != (None, None, None):
        splits = keep_counts(splits, spec.n_train, spec.n_valid, spec.n_test, spec.split_seed)
    return resize(splits, spec.image_size)


def split_sizes(splits: DataSplits) -> dict[str, object]:
    """Counts and image shape of the splits, for provenance."""
    return {"n_train": len(splits.y_train), "n_valid": len(splits.y_valid), "n_test": len(splits.y_test),
            "image_shape": list(splits.x_train.shape[1:])}


# ---------------------------------------------------------------- augmentation

def crop_flip(x: torch.Tensor, padding: int = 4) -> torch.Tensor:
    """NAS-Bench-201's CIFAR augmentation on a batch: random crop after zero padding, random horizontal flip.

    Draws from torch's global generator (seeded by the run, saved in checkpoints).
    """
    n, c, h, w = x.shape
    padded = F.pad(x, (padding, padding, padding, padding))
    oy = torch.randint(0, 2 * padding + 1, (n,))
    ox = torch.randint(0, 2 * padding + 1, (n,))
    flip = torch.rand(n) < 0.5
    rows = (oy[:, None] + torch.arange(h)[None, :]).to(x.device)  # (n, h)
    cols = torch.arange(w)[None, :].expand(n, w)
    cols = torch.where(flip[:, None], cols.flip(1), cols)
    cols = (ox[:, None] + cols).to(x.device)  # (n, w)
    batch = torch.arange(n, device=x.device)[:, None, None, None]
    chan = torch.arange(c, device=x.device)[None, :, None, None]
    return padded[batch, chan, rows[:, None, :, None], cols[:, None, None, :]]
