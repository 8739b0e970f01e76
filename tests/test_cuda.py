"""Training on a GPU: the table's trainer and the training scripts with `--device cuda`.

Skipped where CUDA is absent (CI and the development machine); run them on a GPU machine with
`python -m pytest tests/test_cuda.py`. A checkpoint written on the GPU must resume there and on a CPU-only node.
"""
from __future__ import annotations

import math
import shutil
from dataclasses import replace

import pytest

import conftest
from conftest import REPO_ROOT, reports, stable

torch = pytest.importorskip("torch")
pytestmark = [pytest.mark.slow, pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device here")]

NB201_SCRIPT = REPO_ROOT / "training_scripts" / "nasbench201_train.py"
MNIST_SCRIPT = REPO_ROOT / "training_scripts" / "mnist_convnet.py"
ARCH = "|nor_conv_3x3~0|+|skip_connect~0|nor_conv_1x1~1|+|avg_pool_3x3~0|none~1|nor_conv_3x3~2|"
NB201_TINY = ["--arch", ARCH, "--dataset", "mnist", "--channels", "4", "--cells_per_stage", "1", "--image_size",
              "16", "--data_fraction", "0.5", "--batch_size", "32", "--learning_rate", "0.05", "--seed", "1"]
MNIST_TINY = ["--n_conv_layers", "2", "--n_filters_1", "6", "--n_filters_2", "8", "--batch_size", "32",
              "--dropout", "0.2", "--seed", "3"]


def _close(a: list[dict], b: list[dict], keys: tuple[str, ...], tol: float) -> None:
    for x, y in zip(a, b, strict=True):
        for key in keys:
            assert math.isclose(x[key], y[key], abs_tol=tol), (key, x[key], y[key])


def test_grouped_seeds_on_the_gpu_are_the_seeds_networks(synthetic_mnist_root) -> None:
    """Seeds side by side on the GPU start as each seed's own network, take the same first step, and learn.

    Whole runs are not compared across devices: on this tiny data the cells' batch norms amplify rounding within a
    few steps (on the CPU too, between a seed trained alone and in a group: 2.034 against 2.031 after one epoch)."""
    from benchmarks.nasbench201.datasets import DataSpec, prepare_data
    from benchmarks.nasbench201.training import SeedGroupTrainer, TrainSpec, train_architecture

    splits = prepare_data(DataSpec("mnist", str(synthetic_mnist_root), 0.1, 0.5, 12))
    one_batch = replace(splits, x_train=splits.x_train[:32], y_train=splits.y_train[:32])
    spec = TrainSpec(channels=4, cells_per_stage=1, epochs=2, batch_size=32, learning_rate=0.05)
    grouped = SeedGroupTrainer(ARCH, one_batch, spec, (0, 1), torch.device("cuda"))
    alone = [SeedGroupTrainer(ARCH, one_batch, replace(spec, seed=s), (s,), torch.device("cpu")) for s in (0, 1)]
    before = grouped.evaluate("valid")
    step = grouped.train_epoch(1)  # one batch: one SGD step
    after = grouped.evaluate("valid")
    for k, trainer in enumerate(alone):
        assert math.isclose(before[0][k], trainer.evaluate("valid")[0][0], abs_tol=1e-4)
        assert math.isclose(step["train_loss"][k], trainer.train_epoch(1)["train_loss"][0], abs_tol=1e-4)
        assert math.isclose(after[0][k], trainer.evaluate("valid")[0][0], abs_tol=1e-3)

    rows = train_architecture(ARCH, splits, spec, seeds=(0, 1), device="cuda", test_epochs="all")
    for k in (0, 1):
        assert rows[-1]["train_loss"][k] < rows[0]["train_loss"][k] < 2.5
        assert all(0.0 <= row[key][k] <= 1.0 for row in rows for key in ("valid_error", "test_error"))


def test_nasbench201_checkpoint_moves_from_gpu_to_cpu(synthetic_mnist_root, tmp_path) -> None:
    """A run stopped on the GPU resumes at the next epoch on the GPU and on a CPU, near the uninterrupted run."""
    from benchmarks.nasbench201.datasets import DataSpec, prepare_data
    from benchmarks.nasbench201.training import TrainSpec, train_architecture

    splits = prepare_data(DataSpec("mnist", str(synthetic_mnist_root), 0.1, 0.5, 12))
    spec = TrainSpec(channels=4, cells_per_stage=1, epochs=3, batch_size=32, learning_rate=0.05, seed=2)
    full = train_architecture(ARCH, splits, spec, device="cuda")

    def stop_after_second(**metrics):
        if metrics["epoch"] == 2:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        train_architecture(ARCH, splits, spec, device="cuda", report=stop_after_second,
                           checkpoint_dir=str(tmp_path / "ckpt"))
    for device in ("cuda", "cpu"):
        folder = tmp_path / f"resume-{device}"
        shutil.copytree(tmp_path / "ckpt", folder)
        resumed = train_architecture(ARCH, splits, spec, device=device, checkpoint_dir=str(folder))
        assert [m["epoch"] for m in resumed] == [3]
        if device == "cuda":  # deterministic kernels: exactly the uninterrupted run
            assert stable(resumed) == stable(full[2:])
        else:  # one epoch of the CPU's rounding
            _close(resumed, full[2:], ("train_loss", "valid_loss"), 0.05)


def test_nasbench201_script_trains_on_the_gpu(synthetic_mnist_root, tmp_path) -> None:
    ckpt = tmp_path / "ckpt"
    metrics = reports(conftest.run_script(NB201_SCRIPT, *NB201_TINY, "--dataset_path", str(synthetic_mnist_root),
                                          "--epochs", "2", "--device", "cuda", "--st_checkpoint_dir", str(ckpt),
                                          cwd=tmp_path))
    assert [m["epoch"] for m in metrics] == [1, 2] and (ckpt / "checkpoint.pt").is_file()
    assert all(0.0 <= m["valid_error"] <= 1.0 and math.isfinite(m["train_loss"]) for m in metrics)


def test_mnist_script_on_the_gpu_repeats_and_resumes(synthetic_mnist_root, tmp_path) -> None:
    """The same seed gives the same numbers on the GPU, and a resumed run continues the epoch count."""
    args = ["--dataset_path", str(synthetic_mnist_root), "--device", "cuda", *MNIST_TINY]
    ckpt = tmp_path / "ckpt"
    once = reports(conftest.run_script(MNIST_SCRIPT, *args, "--epochs", "2", "--st_checkpoint_dir", str(ckpt),
                                       cwd=tmp_path))
    again = reports(conftest.run_script(MNIST_SCRIPT, *args, "--epochs", "2", cwd=tmp_path))
    assert stable(again) == stable(once)
    assert once[-1]["valid_error"] < 0.9  # the synthetic data are learnable on the GPU too
    resumed = reports(conftest.run_script(MNIST_SCRIPT, *args, "--epochs", "3", "--st_checkpoint_dir", str(ckpt),
                                          cwd=tmp_path))
    full = reports(conftest.run_script(MNIST_SCRIPT, *args, "--epochs", "3", cwd=tmp_path))
    assert [m["epoch"] for m in resumed] == [3]
    assert stable(resumed) == stable(full[2:])
