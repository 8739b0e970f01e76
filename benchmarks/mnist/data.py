"""MNIST and Fashion-MNIST held in memory as normalized tensors: train and validation from the training set, test
from the test set.

Both come as four IDX files, `{train,t10k}-{images-idx3,labels-idx1}-ubyte` (or the `.gz` versions), read directly
with numpy. They are looked for in torchvision's layout, `<dataset_path>/<MNIST|FashionMNIST>/raw/`, then directly in
`<dataset_path>` (the layout of the original archives), then in a system folder (Debian's `dataset-fashion-mnist`
package puts Fashion-MNIST in /usr/share/datasets/fashion-mnist). torchvision is imported only to download missing
files.
"""
from __future__ import annotations

import gzip
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from benchmarks.download import find_or_download
from benchmarks.training import DataSplits, split_validation

FILES = {
    "train_images": "train-images-idx3-ubyte",
    "train_labels": "train-labels-idx1-ubyte",
    "test_images": "t10k-images-idx3-ubyte",
    "test_labels": "t10k-labels-idx1-ubyte",
}


@dataclass(frozen=True)
class IdxDataset:
    """An MNIST-format dataset: torchvision's class and folder name, normalization, system folders to look in."""

    name: str
    mean: float
    std: float
    system_folders: tuple[str, ...] = ()

    @property
    def lock_file(self) -> str:
        return f".{self.name.lower()}-download.lock"


MNIST = IdxDataset("MNIST", 0.1307, 0.3081)
FASHION_MNIST = IdxDataset("FashionMNIST", 0.2860, 0.3530, ("/usr/share/datasets/fashion-mnist",))


def raw_folder(dataset_path: str | os.PathLike, dataset: IdxDataset = MNIST) -> Path:
    """torchvision's folder for the IDX files: `<dataset_path>/MNIST/raw` (or `FashionMNIST/raw`)."""
    return Path(dataset_path) / dataset.name / "raw"


def missing_message(dataset_path: str | os.PathLike, dataset: IdxDataset = MNIST) -> str:
    """One sentence naming the folder, the expected files and the `--dataset_path` flag."""
    names = list(FILES.values())
    return (f"{dataset.name} data not found in {str(dataset_path)!r} and the download failed: put "
            f"{', '.join(names[:-1])} and {names[-1]} (or their .gz versions) under "
            f"{str(raw_folder(dataset_path, dataset))!r}, or point --dataset_path at a folder that holds "
            f"{dataset.name}/raw/ with these files.")


def _find(folder: Path, name: str) -> Path | None:
    for candidate in (folder / name, folder / f"{name}.gz"):
        if candidate.is_file():
            return candidate
    return None


def _finder(dataset: IdxDataset):
    def find_all(dataset_path: str | os.PathLike) -> dict[str, Path] | None:
        for folder in (raw_folder(dataset_path, dataset), Path(dataset_path), *map(Path, dataset.system_folders)):
            found = {key: _find(folder, name) for key, name in FILES.items()}
            if all(found.values()):
                return found  # type: ignore[return-value]
        return None
    return find_all


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


def _downloader(dataset: IdxDataset):
    def download(dataset_path: str) -> None:
        import torchvision
        for train in (True, False):
            getattr(torchvision.datasets, dataset.name)(dataset_path, train=train, download=True)
    return download


def _normalize(images: np.ndarray, dataset: IdxDataset) -> torch.Tensor:
    x = torch.from_numpy(images.astype(np.float32)).div_(255.0).sub_(dataset.mean).div_(dataset.std)
    return x.unsqueeze(1)


def load_mnist(dataset_path: str | os.PathLike, valid_fraction: float = 0.1, seed: int = 0,
               dataset: IdxDataset = MNIST) -> DataSplits:
    """Normalized (N, 1, 28, 28) float tensors and int64 labels; validation is a seeded share of the training set."""
    found = find_or_download(dataset_path, dataset.lock_file, _finder(dataset), _downloader(dataset),
                             missing_message(dataset_path, dataset))
    arrays = {key: read_idx(path) for key, path in found.items()}
    for split in ("train", "test"):
        n_images, n_labels = len(arrays[f"{split}_images"]), len(arrays[f"{split}_labels"])
        if n_images != n_labels:
            raise ValueError(f"{dataset.name} {split} files in {found[split + '_images'].parent} hold {n_images} "
                             f"images but {n_labels} labels.")
    valid_idx, train_idx = split_validation(len(arrays["train_labels"]), valid_fraction, seed)
    x_all = _normalize(arrays["train_images"], dataset)
    y_all = torch.from_numpy(arrays["train_labels"].astype(np.int64))
    return DataSplits(
        x_train=x_all[torch.from_numpy(train_idx)], y_train=y_all[torch.from_numpy(train_idx)],
        x_valid=x_all[torch.from_numpy(valid_idx)], y_valid=y_all[torch.from_numpy(valid_idx)],
        x_test=_normalize(arrays["test_images"], dataset),
        y_test=torch.from_numpy(arrays["test_labels"].astype(np.int64)),
    )
