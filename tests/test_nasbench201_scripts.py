"""NAS-Bench-201 scripts: training from scratch on tiny synthetic MNIST, and the table lookup on a synthetic table."""
from __future__ import annotations

import importlib.util
import json
import pickle
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from syne_tune.report import retrieve

from benchmarks.nasbench201 import encoding as enc
from benchmarks.nasbench201.table import METRICS, NB201Table
from conftest import REPO_ROOT, reports, run_script, stable

TRAIN_SCRIPT = REPO_ROOT / "training_scripts" / "nasbench201_train.py"
LOOKUP_SCRIPT = REPO_ROOT / "training_scripts" / "nasbench201_lookup.py"
ARCH = "|nor_conv_3x3~0|+|skip_connect~0|nor_conv_1x1~1|+|avg_pool_3x3~0|none~1|nor_conv_3x3~2|"
TINY = ["--dataset", "mnist", "--channels", "4", "--cells_per_stage", "1", "--image_size", "16",
        "--data_fraction", "0.5", "--batch_size", "32", "--learning_rate", "0.05", "--device", "cpu",
        "--num_threads", "1", "--seed", "1"]


def load_module(path: Path, name: str):
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


# ---------------------------------------------------------------- training from scratch

@pytest.fixture(scope="module")
def two_epochs(synthetic_mnist_root, tmp_path_factory) -> tuple[list[str], list[dict], Path]:
    """A 2-epoch run with a checkpoint dir: (its arguments, its reports, its checkpoint dir)."""
    ckpt = tmp_path_factory.mktemp("nb201_ckpt")
    args = ["--arch", ARCH, "--dataset_path", str(synthetic_mnist_root), "--epochs", "2", *TINY]
    return args, reports(run_script(TRAIN_SCRIPT, *args, "--st_checkpoint_dir", str(ckpt), cwd=ckpt.parent)), ckpt


@pytest.mark.slow
def test_train_two_epochs_report_lines(two_epochs) -> None:
    _, metrics, ckpt = two_epochs
    assert [m["epoch"] for m in metrics] == [1, 2]
    for m in metrics:
        assert {"valid_error", "valid_loss", "train_loss", "elapsed_time"} <= set(m)
        assert 0.0 <= m["valid_error"] <= 1.0 and m["valid_loss"] > 0 and m["elapsed_time"] > 0
    assert metrics[1]["elapsed_time"] > metrics[0]["elapsed_time"]
    assert (ckpt / "checkpoint.pt").is_file()


@pytest.mark.slow
def test_train_resume_continues_at_epoch_3(two_epochs, tmp_path) -> None:
    args, metrics, ckpt = two_epochs
    resume_dir = tmp_path / "ckpt"
    shutil.copytree(ckpt, resume_dir)
    resumed = reports(run_script(TRAIN_SCRIPT, *args, "--epochs", "3", "--st_checkpoint_dir", str(resume_dir),
                                 cwd=tmp_path))
    assert [m["epoch"] for m in resumed] == [3]
    assert resumed[0]["elapsed_time"] > metrics[-1]["elapsed_time"]


@pytest.mark.slow
def test_train_with_x_flags_equals_arch_string(two_epochs, synthetic_mnist_root, tmp_path) -> None:
    _, metrics, _ = two_epochs
    edges = [f"--{k}={v}" for k, v in enc.string_to_config(ARCH).items()]
    again = reports(run_script(TRAIN_SCRIPT, *edges, "--dataset_path", str(synthetic_mnist_root), "--epochs", "2",
                               *TINY, cwd=tmp_path))
    assert stable(again) == stable(metrics)  # same seed, no checkpoint: identical numbers


@pytest.mark.parametrize("flags, message", [
    (["--arch", "|conv~0|+|bad"], "Malformed architecture string '|conv~0|+|bad'"),
    (["--arch", ARCH, "--seeds", "0,x"], "--seeds '0,x' is not accepted"),
    (["--arch", ARCH, "--n_train", "0"], "--n_train 0"),
    (["--arch", ARCH.replace("avg_pool_3x3", "max_pool_3x3")], "Unknown operation 'max_pool_3x3'"),
    (["--x0", "skip_connect", "--x1", "none"], "lacks --x2, --x3, --x4, --x5"),
    ([f"--x{k}=conv" if k == 3 else f"--x{k}=none" for k in range(6)], "Unknown operation 'conv' for x3"),
    (["--arch", ARCH, *[f"--x{k}=none" for k in range(6)]], "name different architectures"),
    ([], "No architecture given"),
    (["--arch", ARCH, "--data_fraction", "0"], "--data_fraction 0"),
    (["--arch", ARCH, "--image_size", "2"], "--image_size 2"),
    (["--arch", ARCH, "--channels", "0"], "--channels 0"),
])
def test_train_flag_errors(flags: list[str], message: str, capsys) -> None:
    script = load_module(TRAIN_SCRIPT, "nasbench201_train_script")
    with pytest.raises(SystemExit) as exit_info:
        script.parse_args(flags)
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err


def test_train_arch_and_consistent_x_flags_accepted() -> None:
    script = load_module(TRAIN_SCRIPT, "nasbench201_train_script")
    edges = [f"--{k}={v}" for k, v in enc.string_to_config(ARCH).items()]
    assert script.parse_args(["--arch", ARCH, *edges]).arch_string == ARCH
    assert script.parse_args(edges).arch_string == ARCH


@pytest.mark.slow
def test_train_architecture_resume_is_exact(synthetic_mnist_root, tmp_path) -> None:
    """A run interrupted after epoch 1 and resumed gives the numbers of an uninterrupted run."""
    import torch

    from benchmarks.nasbench201.datasets import DataSpec, prepare_data
    from benchmarks.nasbench201.training import TrainSpec, train_architecture

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        splits = prepare_data(DataSpec("mnist", str(synthetic_mnist_root), 0.1, 0.5, 12))
        spec = TrainSpec(channels=2, cells_per_stage=1, epochs=3, batch_size=32, learning_rate=0.05, seed=2)
        full = train_architecture(ARCH, splits, spec, test_epochs="all")

        def stop_after_first(**metrics):
            if metrics["epoch"] == 1:
                raise KeyboardInterrupt

        with pytest.raises(KeyboardInterrupt):
            train_architecture(ARCH, splits, spec, report=stop_after_first, checkpoint_dir=str(tmp_path))
        info: dict = {}
        resumed = train_architecture(ARCH, splits, spec, checkpoint_dir=str(tmp_path), test_epochs="all",
                                     start_info=info)
    finally:
        torch.set_num_threads(threads)
    assert info["params"] > 0 and info["flops"] > 0
    assert [m["epoch"] for m in resumed] == [2, 3]
    assert stable(resumed) == stable(full[1:])
    assert {"test_error", "test_loss", "train_error"} <= set(full[0])


# ---------------------------------------------------------------- data preparation

def _write_cifar(root: Path, n_per_batch: int = 20) -> Path:
    folder = root / "cifar-10-batches-py"
    folder.mkdir(parents=True)
    rng = np.random.default_rng(0)
    for name in [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]:
        batch = {"data": rng.integers(0, 256, (n_per_batch, 3072), dtype=np.uint8),
                 "labels": rng.integers(0, 10, n_per_batch).tolist()}
        with open(folder / name, "wb") as f:
            pickle.dump(batch, f)
    return root


def test_cifar10_read_from_pickle_batches_subsampled_and_resized(tmp_path) -> None:
    from benchmarks.nasbench201.datasets import DataSpec, prepare_data, split_sizes

    root = _write_cifar(tmp_path)
    splits = prepare_data(DataSpec("cifar10", str(root), valid_fraction=0.2, data_fraction=0.5, image_size=16))
    assert split_sizes(splits) == {"n_train": 40, "n_valid": 10, "n_test": 20, "image_shape": [3, 16, 16]}
    full = prepare_data(DataSpec("cifar10", str(root), valid_fraction=0.2))
    assert full.x_train.shape == (80, 3, 32, 32) and abs(float(full.x_train.mean())) < 1.5


def test_missing_cifar_gives_one_sentence(tmp_path, monkeypatch) -> None:
    from benchmarks.nasbench201 import datasets

    monkeypatch.setitem(sys.modules, "torchvision", None)  # import fails: the download attempt fails here
    with pytest.raises(datasets.DataMissing) as err:
        datasets.load_cifar10(tmp_path)
    assert str(tmp_path) in str(err.value) and "--dataset_path" in str(err.value) and "data_batch_1" in str(err.value)


def test_resize_to_half_is_average_pooling_and_crop_flip_keeps_shape() -> None:
    import torch
    import torch.nn.functional as F

    from benchmarks.nasbench201.datasets import crop_flip, resize_images

    x = torch.randn(5, 1, 28, 28)
    torch.testing.assert_close(resize_images(x, 14), F.avg_pool2d(x, 2))
    assert resize_images(x, 16).shape == (5, 1, 16, 16)
    torch.manual_seed(0)
    y = crop_flip(torch.randn(6, 3, 8, 8))
    assert y.shape == (6, 3, 8, 8)


# ---------------------------------------------------------------- the lookup script

CLASS_REP = 1 * 5 ** 5 + 3 * 5 ** 2  # x0 = skip_connect (a dead end), x3 = nor_conv_3x3: a class of many members
MEMBERS = [m for m in enc.class_members(enc.class_of(CLASS_REP)) if m != enc.class_of(CLASS_REP)][:2]
# a table holding two members of one class (as the official benchmark does), and single cells of other classes
LOOKUP_ARCHS = sorted({0, *MEMBERS, enc.class_of(ARCH), 15624})
LOOKUP_SEEDS = [0, 1]
LOOKUP_EPOCHS = 4


@pytest.fixture(scope="module")
def table_path(tmp_path_factory) -> Path:
    rng = np.random.default_rng(0)
    shape = (len(LOOKUP_ARCHS), len(LOOKUP_SEEDS), LOOKUP_EPOCHS)
    metrics = {m: rng.random(shape).astype(np.float32) for m in METRICS}
    metrics["epoch_time"] = (0.002 + 0.01 * rng.random(shape)).astype(np.float32)
    table = NB201Table(LOOKUP_ARCHS, LOOKUP_SEEDS, metrics, {"params": rng.random(len(LOOKUP_ARCHS))},
                       dataset="synthetic")
    return table.save(tmp_path_factory.mktemp("table") / "synthetic.npz")


def lookup(*args: str, capsys) -> tuple[int, list[dict], str]:
    """Run the lookup script's main in this process: (exit status, reports, stderr)."""
    script = load_module(LOOKUP_SCRIPT, "nasbench201_lookup_script")
    try:
        code = script.main(list(args))
    except SystemExit as exit_info:
        code = exit_info.code
    out = capsys.readouterr()
    return code, retrieve(out.out.splitlines()), out.err


REPORTED = ("valid_error", "valid_loss", "train_loss", "test_error")


def expected(table: NB201Table, archs: list[int], seed: int | None, epochs: range) -> list[dict]:
    """What the lookup must report: the mean of the table rows `archs` (one class)."""
    curves = {m: np.mean([table.curve(a, m, seed) for a in archs], axis=0) for m in (*REPORTED, "epoch_time")}
    cumulative = np.cumsum(curves["epoch_time"].astype(np.float64))
    return [{"epoch": e, **{m: float(curves[m][e - 1]) for m in REPORTED}, "elapsed_time": float(cumulative[e - 1])}
            for e in epochs]


def compare(got: list[dict], want: list[dict]) -> None:
    assert [m["epoch"] for m in got] == [m["epoch"] for m in want]
    for g, w in zip(got, want):
        for key in REPORTED:
            assert g[key] == pytest.approx(w[key], rel=1e-6)
        assert g["elapsed_time"] == pytest.approx(w["elapsed_time"], rel=1e-6) and g["estimated"] == 0


@pytest.mark.parametrize("seed", [None, 1])
def test_lookup_reports_equal_the_table(table_path, seed, capsys) -> None:
    table = NB201Table.load(table_path)
    arch = enc.class_of(ARCH)
    flags = ["--seed", str(seed)] if seed is not None else []
    code, got, err = lookup("--table", str(table_path), "--arch", ARCH, *flags, capsys=capsys)
    assert code == 0, err
    compare(got, expected(table, [arch], seed, range(1, LOOKUP_EPOCHS + 1)))


def test_every_member_of_a_class_gets_the_mean_of_the_class_rows(table_path, capsys) -> None:
    table = NB201Table.load(table_path)
    members = enc.class_members(enc.class_of(CLASS_REP))
    for member in (members[0], MEMBERS[0], members[-1]):
        edges = [f"--{k}={v}" for k, v in enc.index_to_config(member).items()]
        code, got, err = lookup("--table", str(table_path), *edges, "--epochs", "3", capsys=capsys)
        assert code == 0, err
        compare(got, expected(table, MEMBERS, None, range(1, 4)))


def test_lookup_resume_from_checkpoint(table_path, tmp_path, capsys) -> None:
    table = NB201Table.load(table_path)
    args = ["--table", str(table_path), "--arch", enc.index_to_string(15624), "--st_checkpoint_dir", str(tmp_path)]
    code, first, _ = lookup(*args, "--epochs", "2", capsys=capsys)
    assert code == 0 and [m["epoch"] for m in first] == [1, 2]
    code, second, _ = lookup(*args, "--epochs", "4", capsys=capsys)
    assert code == 0
    compare(second, expected(table, [15624], None, range(3, 5)))
    assert json.loads((tmp_path / "lookup_checkpoint.json").read_text()) == {"arch": 15624, "epoch": 4}


def test_lookup_time_scale_sleeps_the_scaled_tabulated_epoch_time(table_path, capsys, monkeypatch) -> None:
    slept = []
    monkeypatch.setattr(time, "sleep", slept.append)
    code, got, _ = lookup("--table", str(table_path), "--arch", enc.index_to_string(0), "--time_scale", "2.5",
                          capsys=capsys)
    assert code == 0 and [m["epoch"] for m in got] == [1, 2, 3, 4]
    epoch_time = NB201Table.load(table_path).curve(0, "epoch_time", None)  # cell 0 is the only row of its class
    assert slept == pytest.approx(list(2.5 * epoch_time), rel=1e-6)
    slept.clear()
    assert lookup("--table", str(table_path), "--arch", enc.index_to_string(0), capsys=capsys)[0] == 0
    assert slept == []  # the default --time_scale 0 never sleeps


def test_lookup_refuses_a_class_the_table_lacks(table_path, capsys) -> None:
    absent = "|nor_conv_1x1~0|+|none~0|none~1|+|none~0|nor_conv_1x1~1|none~2|"
    code, got, err = lookup("--table", str(table_path), "--arch", absent, capsys=capsys)
    assert code == 1 and not got and "has not measured" in err and "Traceback" not in err


@pytest.mark.parametrize("flags, code, message", [
    (["--arch", "|none~0|+|"], 2, "Malformed architecture string"),
    (["--arch", ARCH, "--epochs", "5"], 2, "--epochs 5 is not accepted; the table"),
    (["--arch", ARCH, "--seed", "7"], 2, "--seed 7 is not accepted"),
])
def test_lookup_errors(table_path, flags, code, message, capsys) -> None:
    status, got, err = lookup("--table", str(table_path), *flags, capsys=capsys)
    assert status == code and message in err and not got and "Traceback" not in err


def test_lookup_missing_table_names_where_tables_come_from(tmp_path) -> None:
    result = run_script(LOOKUP_SCRIPT, "--table", str(tmp_path / "none.npz"), "--arch", ARCH, cwd=tmp_path, timeout=60)
    assert result.returncode == 1 and "Traceback" not in result.stderr
    assert "none.npz" in result.stderr and "generate_table build" in result.stderr


def test_lookup_does_not_import_torch(table_path, tmp_path) -> None:
    probe = ("import runpy, sys\n"
             f"sys.argv = [{str(LOOKUP_SCRIPT)!r}, '--table', {str(table_path)!r}, '--arch', {ARCH!r}]\n"
             "try:\n    runpy.run_path(sys.argv[0], run_name='__main__')\nexcept SystemExit:\n    pass\n"
             "print('TORCH_LOADED' if 'torch' in sys.modules else 'NO_TORCH')\n")
    result = subprocess.run([sys.executable, "-c", probe], cwd=tmp_path, capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    assert "NO_TORCH" in result.stdout and len(retrieve(result.stdout.splitlines())) == LOOKUP_EPOCHS
