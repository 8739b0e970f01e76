"""Is a benchmark's dataset there before any trial starts? The launcher asks once (``check_data``), so that missing
data is one sentence naming the launcher's own ``--dataset-path`` flag, not a failure of every trial.

Presence is checked without importing torch (the launcher never needs it); only when the files are absent is the
benchmark's own downloader run, once, under the same lock the training scripts use, so the trials then find them.
"""
from __future__ import annotations

from pathlib import Path

from benchmarks.download import DataMissing
from benchmarks.registry import REPO_ROOT, Benchmark

# The training scripts' own --dataset_path default.
DEFAULT_DATASET_PATH = REPO_ROOT / "data"
IDX_FILES = ("train-images-idx3-ubyte", "train-labels-idx1-ubyte", "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte")
CIFAR_FOLDER = "cifar-10-batches-py"
CIFAR_FILES = tuple(f"data_batch_{i}" for i in range(1, 6)) + ("test_batch",)
# torchvision's folder names, and the system folders the scripts also look in (Debian's dataset-fashion-mnist).
IDX_SYSTEM_FOLDERS = {"MNIST": (), "FashionMNIST": ("/usr/share/datasets/fashion-mnist",)}
# Which data each registered benchmark reads (nasbench201_train: by its --dataset).
BENCHMARK_DATA = {"mnist_convnet": "MNIST", "mnist_convnet_efficient": "MNIST", "fashion_mnist_mlp": "FashionMNIST"}
NB201_TRAIN_DATA = {"mnist": "MNIST", "fashion_mnist": "FashionMNIST", "cifar10": "CIFAR10"}


def needed_data(benchmark: Benchmark) -> str | None:
    """The dataset a benchmark's trials read (MNIST, FashionMNIST, CIFAR10), or None (a table, your own script)."""
    if benchmark.name == "nasbench201_train":
        return NB201_TRAIN_DATA.get(str(benchmark.dataset))
    return BENCHMARK_DATA.get(benchmark.name)


def _idx_present(folder: Path, name: str) -> bool:
    """The scripts' rule (``benchmarks.mnist.data``): the four IDX files, plain or .gz, in torchvision's folder,
    directly in ``folder``, or in a system folder."""
    for where in (folder / name / "raw", folder, *map(Path, IDX_SYSTEM_FOLDERS[name])):
        if all((where / f).is_file() or (where / f"{f}.gz").is_file() for f in IDX_FILES):
            return True
    return False


def present(data: str, folder: Path) -> bool:
    """Whether ``data`` is under ``folder`` as the training scripts look for it."""
    if data == "CIFAR10":
        return all((folder / CIFAR_FOLDER / name).is_file() for name in CIFAR_FILES)
    return _idx_present(folder, data)


def _download(data: str, folder: Path):
    """The scripts' own find-or-download (imports torch; raises ``DataMissing`` when it cannot)."""
    if data == "CIFAR10":
        from benchmarks.nasbench201 import datasets

        datasets.find_or_download(folder, datasets.CIFAR_LOCK_FILE, datasets._cifar_files,
                                  datasets._torchvision_download_cifar, "CIFAR-10 download failed")
        return
    from benchmarks.mnist import data as idx

    dataset = idx.MNIST if data == "MNIST" else idx.FASHION_MNIST
    idx.find_or_download(folder, dataset.lock_file, idx._finder(dataset), idx._downloader(dataset),
                         f"{data} download failed")


def missing_message(data: str, folder: Path, flag: str = "--dataset-path") -> str:
    """One sentence: what is missing where, and how to point ``flag`` at it."""
    if data == "CIFAR10":
        where, files = folder / CIFAR_FOLDER, CIFAR_FILES
        holds = f"{CIFAR_FOLDER}/"
    else:
        where, files = folder / data / "raw", IDX_FILES
        holds = f"{data}/raw/"
    return (f"{data} data not found in '{folder}' and the download failed: put {', '.join(files[:-1])} and "
            f"{files[-1]} under '{where}', or point {flag} at a folder that holds {holds} with these files.")


def check_data(benchmark: Benchmark, dataset_path: str | None, flag: str = "--dataset-path"):
    """Make sure the benchmark's data is there (downloading it where the scripts would); raises ``DataMissing``
    with one sentence naming ``flag`` when it is not and cannot be."""
    data = needed_data(benchmark)
    if data is None:
        return
    folder = Path(dataset_path) if dataset_path is not None else DEFAULT_DATASET_PATH
    if present(data, folder):
        return
    try:
        _download(data, folder)
    except Exception:  # no internet, no torchvision, a read-only folder: all the same to the user
        raise DataMissing(missing_message(data, folder, flag)) from None
    if not present(data, folder):
        raise DataMissing(missing_message(data, folder, flag))
