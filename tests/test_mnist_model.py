"""Tests of the MNIST convnet, its config spaces, the IDX reader and the shared training helpers (in-process)."""
from __future__ import annotations

import gzip
import shutil
import subprocess
import sys

import pytest
import torch
from syne_tune.config_space import is_log_space

from benchmarks.download import DataMissing
from benchmarks.mnist.data import load_mnist, read_idx
from benchmarks.mnist.model import build_convnet
from benchmarks.mnist.space import (BATCH_SIZES, DEFAULT_CONFIG, FILTER_KEYS, OPTIMIZERS, active_filters,
                                    conditional_configspace, config_space)
from benchmarks.training import (CheckpointError, DataSplits, ModelTrainer, epoch_generator, evaluate,
                                 load_checkpoint, run_epochs, save_checkpoint, seed_everything, train_one_epoch)
from conftest import REPO_ROOT


@pytest.mark.parametrize("n_layers", [1, 2, 3])
def test_convnet_outputs_log_probabilities(n_layers: int) -> None:
    model = build_convnet(n_layers, [4, 8, 5], dropout=0.2).eval()
    out = model(torch.randn(7, 1, 28, 28))
    assert out.shape == (7, 10)
    assert torch.allclose(out.exp().sum(dim=1), torch.ones(7), atol=1e-5)
    assert (out <= 0).all()
    n_convs = sum(isinstance(m, torch.nn.Conv2d) for m in model.modules())
    assert n_convs == n_layers


def test_convnet_rejects_bad_arguments() -> None:
    with pytest.raises(ValueError, match="n_conv_layers"):
        build_convnet(4, [4, 4, 4, 4], 0.0)
    with pytest.raises(ValueError, match="n_filters"):
        build_convnet(3, [4, 4], 0.0)


def test_syne_tune_space_ranges() -> None:
    space = config_space()
    assert set(space) == set(DEFAULT_CONFIG)
    assert (space["learning_rate"].lower, space["learning_rate"].upper) == (1e-4, 1e-1)
    assert sorted(k for k, v in space.items() if is_log_space(v)) == sorted(["learning_rate", *FILTER_KEYS])
    assert (space["n_conv_layers"].lower, space["n_conv_layers"].upper) == (1, 3)
    for key in FILTER_KEYS:
        assert (space[key].lower, space[key].upper) == (4, 64)
    assert space["batch_size"].categories == BATCH_SIZES
    assert space["optimizer"].categories == OPTIMIZERS
    assert (space["dropout"].lower, space["dropout"].upper) == (0.0, 0.5)
    for _ in range(50):
        config = {k: v.sample() for k, v in space.items()}
        assert 1e-4 <= config["learning_rate"] <= 1e-1
        assert config["n_conv_layers"] in (1, 2, 3)
        assert all(4 <= config[k] <= 64 for k in FILTER_KEYS)


def test_configspace_conditions_and_defaults() -> None:
    cs = conditional_configspace(seed=1)
    assert dict(cs.get_default_configuration()) == {k: v for k, v in DEFAULT_CONFIG.items() if k != "n_filters_3"}
    seen_layers = set()
    for config in cs.sample_configuration(200):
        config = dict(config)
        n = config["n_conv_layers"]
        seen_layers.add(n)
        assert ("n_filters_2" in config) == (n >= 2)
        assert ("n_filters_3" in config) == (n == 3)
        assert 1e-4 <= config["learning_rate"] <= 1e-1 and 0.0 <= config["dropout"] <= 0.5
        assert config["batch_size"] in BATCH_SIZES and config["optimizer"] in OPTIMIZERS
        assert len(active_filters(config)) == n
    assert seen_layers == {1, 2, 3}


def test_load_mnist_reads_idx_and_splits(synthetic_mnist_root, tmp_path) -> None:
    splits = load_mnist(synthetic_mnist_root, valid_fraction=0.1, seed=0)
    assert splits.x_train.shape == (540, 1, 28, 28) and splits.x_valid.shape == (60, 1, 28, 28)
    assert splits.x_test.shape == (200, 1, 28, 28) and splits.y_test.dtype == torch.int64
    assert splits.x_train.dtype == torch.float32
    assert abs(float(splits.x_train.min()) - (0 - 0.1307) / 0.3081) < 1e-3
    assert load_mnist(synthetic_mnist_root, 0.1, 0).y_valid.equal(splits.y_valid)
    # the .gz versions are accepted too
    raw = tmp_path / "MNIST" / "raw"
    raw.mkdir(parents=True)
    for src in (synthetic_mnist_root / "MNIST" / "raw").iterdir():
        with open(src, "rb") as f_in, gzip.open(raw / (src.name + ".gz"), "wb") as f_out:
            shutil.copyfileobj(f_in, f_out)
    assert load_mnist(tmp_path, 0.1, 0).x_valid.equal(splits.x_valid)
    assert read_idx(raw / "t10k-labels-idx1-ubyte.gz").shape == (200,)


@pytest.mark.slow
def test_load_mnist_does_not_import_torchvision(synthetic_mnist_root) -> None:
    code = ("import sys; from benchmarks.mnist.data import load_mnist; "
            f"load_mnist({str(synthetic_mnist_root)!r}, 0.1, 0); print('torchvision' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, cwd=REPO_ROOT)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "False"


def test_missing_data_error_names_folder_and_files(tmp_path, monkeypatch) -> None:
    monkeypatch.setitem(sys.modules, "torchvision", None)  # import fails: no download attempt
    with pytest.raises(DataMissing) as info:
        load_mnist(tmp_path, 0.1, 0)
    message = str(info.value)
    assert str(tmp_path / "MNIST" / "raw") in message and "--dataset_path" in message
    assert all(name in message for name in ["train-images-idx3-ubyte", "t10k-labels-idx1-ubyte"])


def _tiny_splits(n: int = 64) -> DataSplits:
    gen = torch.Generator().manual_seed(0)
    x, y = torch.randn(n, 1, 28, 28, generator=gen), torch.randint(0, 10, (n,), generator=gen)
    return DataSplits(x, y, x[:16], y[:16], x[:16], y[:16])


def test_train_and_evaluate_on_tiny_data() -> None:
    seed_everything(0)
    data = _tiny_splits()
    model = build_convnet(1, [4], 0.0)
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-2)
    epochs = [train_one_epoch(model, optimizer, data.x_train, data.y_train, 16, epoch_generator(0, e),
                              torch.device("cpu")) for e in (1, 2, 3)]
    assert epochs[-1][0] < epochs[0][0] and all(0.0 <= error <= 1.0 for _, error in epochs)
    loss, error = evaluate(model, data.x_valid, data.y_valid, 5, torch.device("cpu"))
    assert loss > 0 and 0.0 <= error <= 1.0
    orders = [torch.randperm(100, generator=epoch_generator(3, e)).tolist() for e in (2, 2, 3)]
    assert orders[0] == orders[1] and orders[0] != orders[2]  # one order per (seed, epoch), a new one each epoch
    assert orders[0] != torch.randperm(100, generator=epoch_generator(4, 2)).tolist()


def _fit(epochs: int, checkpoint_dir=None) -> list[dict]:
    seed_everything(0)
    model = build_convnet(1, [4], 0.3).to(memory_format=torch.channels_last)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9)
    scheduler = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=4)
    reports: list[dict] = []
    trainer = ModelTrainer(model, optimizer, _tiny_splits(), batch_size=16, seed=0, device=torch.device("cpu"),
                           lr_scheduler=scheduler)
    run_epochs(trainer, epochs, report=lambda **kw: reports.append(kw), checkpoint_dir=checkpoint_dir,
               test_epochs=(2, 4))
    return reports


def test_fit_resume_matches_uninterrupted_run(tmp_path) -> None:
    full = _fit(4)
    first = _fit(2, str(tmp_path))
    seed_everything(123)  # the checkpoint restores every RNG state
    resumed = _fit(4, str(tmp_path))
    assert [r["epoch"] for r in first] == [1, 2] and [r["epoch"] for r in resumed] == [3, 4]
    assert "test_error" in first[-1] and "test_error" not in first[0]
    assert set(full[0]) == {"epoch", "train_loss", "train_error", "valid_loss", "valid_error", "epoch_time",
                            "elapsed_time"}
    assert [r["epoch"] for r in full] == [1, 2, 3, 4] and "test_error" in full[-1]
    drop = {"elapsed_time", "epoch_time"}  # times differ; losses, errors and test values must not
    for got, want in zip(first + resumed, full, strict=True):
        assert {k: v for k, v in got.items() if k not in drop} == {k: v for k, v in want.items() if k not in drop}
    assert resumed[0]["elapsed_time"] >= first[-1]["elapsed_time"]
    assert _fit(4, str(tmp_path)) == []  # nothing left to train


def test_checkpoint_roundtrip_and_mismatch(tmp_path) -> None:
    model = build_convnet(2, [4, 6], 0.0)
    optimizer = torch.optim.Adam(model.parameters())
    assert load_checkpoint(tmp_path, model, optimizer) == (0, {})
    save_checkpoint(tmp_path, model, optimizer, 5, {"elapsed": 1.5})
    assert sorted(p.name for p in tmp_path.iterdir()) == ["checkpoint.pt"]
    assert load_checkpoint(tmp_path, build_convnet(2, [4, 6], 0.0), optimizer) == (5, {"elapsed": 1.5})
    other = build_convnet(1, [8], 0.0)
    with pytest.raises(CheckpointError, match="another configuration"):
        load_checkpoint(tmp_path, other, torch.optim.Adam(other.parameters()))
