"""Shared test fixtures: repository paths and small synthetic MNIST files in torchvision's layout."""
from __future__ import annotations

import os
import signal
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


def default_signals():
    """``preexec_fn`` for a launcher a test signals: SIGINT and SIGHUP as a terminal delivers them. A test runner
    started in the background or under nohup ignores them, and a child inherits an ignored signal (and Python then
    raises no KeyboardInterrupt for it)."""
    for signum in (signal.SIGINT, signal.SIGHUP):
        signal.signal(signum, signal.SIG_DFL)


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


# report keys that differ between two identical runs: timings and Syne Tune's own stamps
VOLATILE = ("elapsed_time", "epoch_time", "epoch_cpu_time", "st_worker_time", "st_worker_timestamp", "st_worker_iter")


def stable(metrics: list[dict]) -> list[dict]:
    """Report dicts without the keys that vary from run to run."""
    return [{k: v for k, v in m.items() if k not in VOLATILE} for m in metrics]


def reports(result) -> list[dict]:
    """The report lines of a finished script run, which must have succeeded."""
    assert result.returncode == 0, result.stderr
    return retrieve(result.stdout.splitlines())


# Launchers and simulated runs ------------------------------------------------------------------------------------

# A training script that costs no more than Syne Tune's import: a quadratic in x, better with more epochs.
QUICK_SCRIPT = '''
import argparse, time
from syne_tune import Reporter
parser = argparse.ArgumentParser()
parser.add_argument("--x", type=float)
parser.add_argument("--kind", type=str)
parser.add_argument("--epochs", type=int)
parser.add_argument("--sleep", type=float, default=0.01)
parser.add_argument("--st_checkpoint_dir")
args = parser.parse_args()
report = Reporter()
for epoch in range(1, args.epochs + 1):
    time.sleep(args.sleep)
    report(epoch=epoch, loss=(args.x - 0.3) ** 2 + 1.0 / epoch + (0.2 if args.kind == "b" else 0.0))
'''
NB201_TABLE_EPOCHS = 9


@pytest.fixture
def quick_script(tmp_path: Path) -> tuple[Path, Path]:
    """A fast training script reporting ``loss`` for 9 epochs, and its ConfigSpace JSON (x, kind, epochs = 9)."""
    import ConfigSpace as CS

    script = tmp_path / "quick.py"
    script.write_text(QUICK_SCRIPT)
    space = CS.ConfigurationSpace()
    space.add([CS.UniformFloatHyperparameter("x", 0, 1), CS.CategoricalHyperparameter("kind", ["a", "b"]),
               CS.Constant("epochs", 9)])
    space.to_json(tmp_path / "space.json")
    return script, tmp_path / "space.json"


def custom_flags(script: Path, space: Path, *more: str) -> list[str]:
    """Launcher flags that tune ``quick_script``."""
    return ["--training-script", str(script), "--config-space", str(space), "--metric", "loss", "--mode", "min",
            "--resource-attr", "epoch", "--max-resource", "9", *more]


def launch(scheduler: str | None, *flags: str, cwd: Path, timeout: float = 120) -> subprocess.CompletedProcess:
    """Run ``launchers/launch_<scheduler>.py`` (the wrapper users know), or ``launch.py`` with ``scheduler=None``."""
    script = REPO_ROOT / "launchers" / ("launch.py" if scheduler is None else f"launch_{scheduler}.py")
    return subprocess.run([sys.executable, str(script), *flags], cwd=cwd, capture_output=True, text=True,
                          timeout=timeout)


def read_results(folder: Path) -> tuple:
    """results.csv and trials.csv (pandas frames) and metadata.json (a dict) of a results folder."""
    import json

    import pandas as pd

    return (pd.read_csv(folder / "results.csv"), pd.read_csv(folder / "trials.csv"),
            json.loads((folder / "metadata.json").read_text()))


@pytest.fixture(scope="session")
def nb201_table_path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A NAS-Bench-201 table of 400 of the 15,625 cells with smooth synthetic learning curves."""
    return write_synthetic_nb201_table(tmp_path_factory.mktemp("table") / "synthetic.npz")


def write_synthetic_nb201_table(path: Path, epochs: int = NB201_TABLE_EPOCHS) -> Path:
    """Write ``nb201_table_path``'s table, with ``epochs`` epochs, to ``path``."""
    from benchmarks.nasbench201.encoding import NUM_ARCHS
    from benchmarks.nasbench201.table import NB201Table

    rng = np.random.default_rng(0)
    archs = np.sort(rng.choice(NUM_ARCHS, 400, replace=False))
    quality = rng.uniform(0.05, 0.9, size=(len(archs), 2, 1))
    valid_error = np.clip(quality + 0.5 / np.arange(1, epochs + 1)[None, None, :]
                          + rng.normal(0, 0.01, (len(archs), 2, epochs)), 0, 1)
    metrics = {"valid_error": valid_error, "valid_loss": 2 * valid_error, "train_loss": 1.5 * valid_error,
               "test_error": np.clip(valid_error + 0.01, 0, 1),
               "epoch_time": np.broadcast_to(rng.uniform(0.5, 1.0, (len(archs), 1, 1)), valid_error.shape)}
    metrics = {name: np.ascontiguousarray(values, dtype=np.float32) for name, values in metrics.items()}
    metrics["valid_error"][0, 1] = np.nan  # one seed missing: filled with the other seed
    NB201Table(archs, [0, 1], metrics, dataset="synthetic").save(path)
    return path


def simulate(cwd: Path, table: Path, scheduler: str, name: str, *flags: str):
    """A simulated run on ``table`` written to ``cwd/results/name``; returns (results, trials, metadata, run)."""
    run = launch(None, "--scheduler", scheduler, "--backend", "simulated", "--benchmark", "nasbench201",
                 "--dataset", str(table), "--experiment-name", name, *flags, cwd=cwd, timeout=300)
    assert run.returncode == 0, run.stderr
    return (*read_results(cwd / "results" / name), run)


@pytest.fixture
def launch_in_process(monkeypatch: pytest.MonkeyPatch):
    """``launch_in_process(*flags, cwd=...)`` runs ``launchers/launch.py`` in this process (no interpreter start),
    restoring the logging, signal handler and environment that a run sets; returns the exit code."""
    import logging
    import signal

    from launchers.cli import main

    root = logging.getLogger()
    handlers, level, sigterm = list(root.handlers), root.level, signal.getsignal(signal.SIGTERM)
    monkeypatch.delenv("SYNETUNE_FOLDER", raising=False)

    def run(*flags: str, cwd: Path) -> int:
        monkeypatch.chdir(cwd)
        return main(None, list(flags))

    yield run
    for handler in list(root.handlers):
        root.removeHandler(handler)
        if handler not in handlers:
            handler.close()
    for handler in handlers:
        root.addHandler(handler)
    root.setLevel(level)
    logging.captureWarnings(False)
    signal.signal(signal.SIGTERM, sigterm)


@pytest.fixture(scope="session")
def synthetic_fashion_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Folder holding synthetic Fashion-MNIST (600 train, 200 test images) as the four .gz IDX files directly in it,
    the layout of the original archives (and of ../shared/datasets/fashion-mnist); pass as --dataset_path."""
    import gzip
    import shutil

    root = tmp_path_factory.mktemp("synthetic_fashion")
    raw = write_mnist_idx(root / "staging", n_train=600, n_test=200, seed=1) / "MNIST" / "raw"
    for name in MNIST_FILES:
        (root / f"{name}.gz").write_bytes(gzip.compress((raw / name).read_bytes()))
    shutil.rmtree(root / "staging")
    return root
