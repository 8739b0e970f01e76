"""MNIST held in memory as normalized tensors: train and validation from the training set, test from the test set.

Files follow torchvision's layout, `<dataset_path>/MNIST/raw/{train,t10k}-{images-idx3,labels-idx1}-ubyte` (or the
`.gz` versions), and are read directly with numpy. torchvision is imported only to download missing files.
"""
from __future__ import annotations

import gzip
import os
from pathlib import Path

import numpy as np
import torch

from benchmarks.download import find_or_download
from benchmarks.training import DataSplits

MEAN, STD = 0.1307, 0.3081
FILES = {
    "train_images": "train-images-idx3-ubyte",
    "train_labels": "train-labels-idx1-ubyte",
    "test_images": "t10k-images-idx3-ubyte",
    "test_labels": "t10k-labels-idx1-ubyte",
}
LOCK_FILE = ".mnist-download.lock"


def raw_folder(dataset_path: str | os.PathLike) -> Path:
    """Folder that holds the IDX files: `<dataset_path>/MNIST/raw`."""
    return Path(dataset_path) / "MNIST" / "raw"


def missing_message(dataset_path: str | os.PathLike) -> str:
    """One sentence naming the folder, the expected files and the `--dataset_path` flag."""
    names = list(FILES.values())
    return (f"MNIST data not found in {str(dataset_path)!r} and the download failed: put {', '.join(names[:-1])} "
            f"and {names[-1]} (or their .gz versions) under {str(raw_folder(dataset_path))!r}, or point "
            f"--dataset_path at a folder that holds MNIST/raw/ with these files.")


def _find(folder: Path, name: str) -> Path | None:
    for candidate in (folder / name, folder / f"{name}.gz"):
        if candidate.is_file():
            return candidate
    return None


def _find_all(dataset_path: str | os.PathLike) -> dict[str, Path] | None:
    found = {key: _find(raw_folder(dataset_path), name) for key, name in FILES.items()}
    return found if all(found.values()) else None  # type: ignore[return-value]


def read_idx(path: str | os.PathLike) -> np.ndarray:
    """Read an IDX file (uint8 data, optionally gzipped) into a numpy array of its shape."""
    opener = gzip.open if str(path).endswith(".gz") else open
    with opener(path, "rb") as f:
        raw = f.read()
    if len(raw) < 4 or raw[0] != 0 or raw[1] != 0 or raw[2] != 0x08:
        raise ValueError(f"{path} is not an IDX file of unsigned bytes.")
    ndim = raw[3]
    shape = tuple(int(d) for d in np.frombuffer(raw, dtype=">u4", count=ndim, offset=4))
    data = np.frombuffer(raw, dtype=np.uint8, offset=4 + 4 * ndim)
    if data.size != int(np.prod(shape)):
        raise ValueError(f"{path} holds {data.size} bytes of data but its header says {shape}.")
    return data.reshape(shape)


def _torchvision_download(dataset_path: str) -> None:
    import torchvision
    for train in (True, False):
        torchvision.datasets.MNIST(dataset_path, train=train, download=True)


def _normalize(images: np.ndarray) -> torch.Tensor:
    x = torch.from_numpy(images.astype(np.float32)).div_(255.0).sub_(MEAN).div_(STD)
    return x.unsqueeze(1)


def load_mnist(dataset_path: str | os.PathLike, valid_fraction: float = 0.1, seed: int = 0) -> DataSplits:
    """Normalized (N, 1, 28, 28) float tensors and int64 labels; validation is a seeded share of the training set."""
    if not 0.0 < valid_fraction < 1.0:
        raise ValueError(f"valid_fraction must lie in (0, 1), got {valid_fraction}.")
    found = find_or_download(dataset_path, LOCK_FILE, _find_all, _torchvision_download, missing_message(dataset_path))
    arrays = {key: read_idx(path) for key, path in found.items()}
    for split in ("train", "test"):
        n_images, n_labels = len(arrays[f"{split}_images"]), len(arrays[f"{split}_labels"])
        if n_images != n_labels:
            raise ValueError(f"MNIST {split} files in {raw_folder(dataset_path)} hold {n_images} images but "
                             f"{n_labels} labels.")
    n = len(arrays["train_labels"])
    n_valid = min(max(1, round(n * valid_fraction)), n - 1)
    order = np.random.RandomState(seed).permutation(n)
    valid_idx, train_idx = np.sort(order[:n_valid]), np.sort(order[n_valid:])
    x_all = _normalize(arrays["train_images"])
    y_all = torch.from_numpy(arrays["train_labels"].astype(np.int64))
    return DataSplits(
        x_train=x_all[torch.from_numpy(train_idx)], y_train=y_all[torch.from_numpy(train_idx)],
        x_valid=x_all[torch.from_numpy(valid_idx)], y_valid=y_all[torch.from_numpy(valid_idx)],
        x_test=_normalize(arrays["test_images"]),
        y_test=torch.from_numpy(arrays["test_labels"].astype(np.int64)),
    )
