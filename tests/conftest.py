"""Shared test fixtures: repository paths and small synthetic MNIST files in torchvision's layout."""
from __future__ import annotations

import os
import struct
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from syne_tune.report import retrieve

REPO_ROOT = Path(__file__).resolve().parent.parent
REAL_MNIST10K = REPO_ROOT.parent / "shared" / "datasets" / "mnist10k"
MNIST_FILES = ["train-images-idx3-ubyte", "train-labels-idx1-ubyte",
               "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"]


def _write_idx(path: Path, array: np.ndarray) -> None:
    """Write a uint8 array as an IDX file (magic 0x0000 08 <ndim>, big-endian dimensions, raw bytes)."""
    header = bytes([0, 0, 0x08, array.ndim]) + struct.pack(f">{array.ndim}I", *array.shape)
    path.write_bytes(header + np.ascontiguousarray(array, dtype=np.uint8).tobytes())


def synthetic_images(labels: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """28x28 uint8 images where class k is a bright 8x8 square in its own cell of a 4x3 grid, jittered, plus noise."""
    n = len(labels)
    images = rng.integers(0, 40, size=(n, 28, 28)).astype(np.int32)
    shifts = rng.integers(-1, 2, size=(n, 2))
    for i, k in enumerate(labels):
        row = 1 + 9 * (int(k) // 4) + shifts[i, 0]
        col = 1 + 7 * (int(k) % 4) + shifts[i, 1]
        row, col = min(max(row, 0), 20), min(max(col, 0), 20)
        images[i, row:row + 8, col:col + 6] += 200
    return np.clip(images, 0, 255).astype(np.uint8)


def write_mnist_idx(root: str | Path, n_train: int = 600, n_test: int = 200, seed: int = 0) -> Path:
    """Write learnable synthetic MNIST IDX files (uncompressed) under `<root>/MNIST/raw/`; returns `root`."""
    root = Path(root)
    raw = root / "MNIST" / "raw"
    raw.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    for prefix, n in (("train", n_train), ("t10k", n_test)):
        labels = rng.integers(0, 10, size=n).astype(np.uint8)
        _write_idx(raw / f"{prefix}-images-idx3-ubyte", synthetic_images(labels, rng))
        _write_idx(raw / f"{prefix}-labels-idx1-ubyte", labels)
    return root


@pytest.fixture(scope="session")
def repo_root() -> Path:
    """The repository root."""
    return REPO_ROOT


@pytest.fixture(scope="session")
def synthetic_mnist_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Folder holding synthetic MNIST (600 train, 200 test images) in torchvision's layout; pass as --dataset_path."""
    return write_mnist_idx(tmp_path_factory.mktemp("synthetic_mnist"), n_train=600, n_test=200, seed=0)


@pytest.fixture(scope="session")
def real_mnist10k() -> Path:
    """The real MNIST-10k folder in ../shared; the test is skipped where it is absent."""
    if not all((REAL_MNIST10K / "MNIST" / "raw" / name).is_file() for name in MNIST_FILES):
        pytest.skip(f"real MNIST-10k data not found under {REAL_MNIST10K}/MNIST/raw")
    return REAL_MNIST10K


def run_script(script: Path, *args: str, cwd: Path, timeout: float = 180) -> subprocess.CompletedProcess:
    """Run a training script from ``cwd`` (not the repository root) with one thread, capturing its output."""
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    return subprocess.run([sys.executable, str(script), *args], cwd=cwd, env=env, capture_output=True, text=True,
                          timeout=timeout)


def reports(result) -> list[dict]:
    """The report lines of a finished script run, which must have succeeded."""
    assert result.returncode == 0, result.stderr
    return retrieve(result.stdout.splitlines())
