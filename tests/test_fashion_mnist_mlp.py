"""The Fashion-MNIST MLP (Syne Tune's tutorial example): model, config space, flags, and the script end to end."""
from __future__ import annotations

import dataclasses
import importlib.util
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from syne_tune.config_space import is_log_space

import conftest
from benchmarks.fashion_mnist.model import build_mlp
from benchmarks.fashion_mnist.space import DEFAULT_CONFIG, MAX_EPOCHS, config_space
from benchmarks.training import count_parameters
from conftest import REPO_ROOT, reports, stable

SCRIPT = REPO_ROOT / "training_scripts" / "fashion_mnist_mlp.py"
REAL_FASHION_MNIST = REPO_ROOT.parent / "shared" / "datasets" / "fashion-mnist"
SMALL = ["--n_units_1", "32", "--n_units_2", "16", "--batch_size", "32", "--learning_rate", "0.01",
         "--dropout_1", "0.1", "--dropout_2", "0.1", "--weight_decay", "1e-6"]
# SMALL's parameters: 784 inputs -> 32 -> 16 -> 10, each Linear with weights and biases
SMALL_PARAMS = (784 * 32 + 32) + (32 * 16 + 16) + (16 * 10 + 10)


def run_script(*args: str, cwd: Path, timeout: float = 180) -> subprocess.CompletedProcess:
    """Run the MLP script from `cwd` with one thread, capturing its output."""
    return conftest.run_script(SCRIPT, *args, cwd=cwd, timeout=timeout)


def _load_script_module():
    spec = importlib.util.spec_from_file_location("fashion_mnist_mlp_script", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_mlp_shapes_and_parameter_count() -> None:
    model = build_mlp(50, 20, dropout_1=0.3, dropout_2=0.1).eval()
    out = model(torch.randn(7, 1, 28, 28))
    assert out.shape == (7, 10)
    linears = [m for m in model.modules() if isinstance(m, torch.nn.Linear)]
    assert [(m.in_features, m.out_features) for m in linears] == [(784, 50), (50, 20), (20, 10)]
    assert count_parameters(model) == (784 * 50 + 50) + (50 * 20 + 20) + (20 * 10 + 10)
    dropouts = [m.p for m in model.modules() if isinstance(m, torch.nn.Dropout)]
    assert dropouts == [0.3, 0.1]


def test_mlp_rejects_bad_arguments() -> None:
    with pytest.raises(ValueError, match="n_units_2"):
        build_mlp(8, 0, 0.0, 0.0)
    with pytest.raises(ValueError, match="dropout_1"):
        build_mlp(8, 8, 1.0, 0.0)


def test_config_space_has_the_tutorial_ranges() -> None:
    space = config_space()
    assert set(space) == set(DEFAULT_CONFIG)
    expected = {"n_units_1": (4, 1024, True), "n_units_2": (4, 1024, True), "batch_size": (8, 128, True),
                "dropout_1": (0.0, 0.99, False), "dropout_2": (0.0, 0.99, False),
                "learning_rate": (1e-6, 1.0, True), "weight_decay": (1e-8, 1.0, True)}
    for key, (lower, upper, log) in expected.items():
        assert (space[key].lower, space[key].upper, is_log_space(space[key])) == (lower, upper, log), key
        assert lower <= DEFAULT_CONFIG[key] <= upper, key
    for key in ("n_units_1", "n_units_2", "batch_size"):
        assert isinstance(space[key].sample(), int)
    assert MAX_EPOCHS == 81


def test_flag_defaults_are_the_default_config() -> None:
    args = vars(_load_script_module().parse_args([]))
    assert {k: args[k] for k in DEFAULT_CONFIG} == DEFAULT_CONFIG
    assert Path(args["dataset_path"]) == REPO_ROOT / "data"
    assert args["epochs"] == MAX_EPOCHS
    assert round(60_000 * args["valid_fraction"]) == 10_000


@pytest.mark.parametrize("flags, bad", [
    (["--n_units_1", "0"], "--n_units_1 0"),
    (["--n_units_2", "-3"], "--n_units_2 -3"),
    (["--batch_size", "0"], "--batch_size 0"),
    (["--dropout_2", "1"], "--dropout_2 1"),
    (["--dropout_1", "-0.1"], "--dropout_1 -0.1"),
    (["--learning_rate", "0"], "--learning_rate 0"),
    (["--weight_decay", "-0.001"], "--weight_decay -0.001"),
    (["--valid_fraction", "1"], "--valid_fraction 1"),
    (["--num_threads", "-1"], "--num_threads -1"),
    (["--device", "tpu"], "'tpu'"),
])
def test_bad_flags_exit_with_clear_message(flags: list[str], bad: str, capsys) -> None:
    with pytest.raises(SystemExit) as exit_info:
        _load_script_module().parse_args([*flags, "--epochs", "1"])
    err = capsys.readouterr().err
    assert exit_info.value.code == 2 and bad in err and "Traceback" not in err


def test_missing_data_gives_clear_message(tmp_path, monkeypatch, capsys) -> None:
    import benchmarks.mnist.data as data

    monkeypatch.setitem(sys.modules, "torchvision", None)  # import fails: no download attempt
    # and no system folder, so that a machine with Debian's dataset-fashion-mnist package still finds nothing
    monkeypatch.setattr(data, "FASHION_MNIST", dataclasses.replace(data.FASHION_MNIST, system_folders=()))
    assert _load_script_module().main(["--dataset_path", str(tmp_path), "--epochs", "1", *SMALL]) == 1
    message = capsys.readouterr().err.strip().splitlines()[-1]
    assert message.startswith("error: FashionMNIST data not found")
    assert str(tmp_path / "FashionMNIST" / "raw") in message and "--dataset_path" in message
    assert all(name in message for name in conftest.MNIST_FILES)


@pytest.fixture(scope="module")
def two_epochs(synthetic_fashion_root, tmp_path_factory) -> tuple[list[str], list[dict], Path]:
    """A 2-epoch run with a checkpoint dir and --report_test: (its arguments, its reports, its checkpoint dir)."""
    ckpt = tmp_path_factory.mktemp("mlp_ckpt")
    args = ["--dataset_path", str(synthetic_fashion_root), "--seed", "5", "--report_test", *SMALL]
    result = run_script(*args, "--epochs", "2", "--st_checkpoint_dir", str(ckpt), cwd=ckpt.parent)
    return args, reports(result), ckpt


@pytest.mark.slow
def test_two_epochs_report_lines(two_epochs) -> None:
    _, metrics, ckpt = two_epochs
    assert [m["epoch"] for m in metrics] == [1, 2]
    for m in metrics:
        assert {"train_loss", "train_error", "valid_loss", "valid_error", "epoch_time", "elapsed_time"} <= set(m)
        assert 0.0 <= m["valid_error"] <= 1.0 and m["valid_loss"] > 0
        assert m["params"] == SMALL_PARAMS
    assert metrics[-1]["valid_error"] < 0.5  # the synthetic classes are bright squares in distinct places
    assert "test_error" not in metrics[0] and 0.0 <= metrics[-1]["test_error"] <= 1.0
    assert (ckpt / "checkpoint.pt").is_file()


@pytest.mark.slow
def test_resume_matches_uninterrupted_run(two_epochs, tmp_path) -> None:
    args, first, ckpt = two_epochs
    resume_dir = tmp_path / "ckpt"
    shutil.copytree(ckpt, resume_dir)
    resumed = reports(run_script(*args, "--epochs", "4", "--st_checkpoint_dir", str(resume_dir), cwd=tmp_path))
    assert [m["epoch"] for m in resumed] == [3, 4]
    assert resumed[0]["elapsed_time"] > first[-1]["elapsed_time"]
    full = reports(run_script(*args, "--epochs", "4", cwd=tmp_path))
    # test metrics are reported in each run's last epoch only: 2 for the first run, 4 for the others
    no_test = [{k: v for k, v in m.items() if not k.startswith("test_")} for m in stable(first + resumed)]
    assert no_test == [{k: v for k, v in m.items() if not k.startswith("test_")} for m in stable(full)]
    assert stable(resumed)[-1] == stable(full)[-1]


def test_checkpoint_of_another_config_is_refused(synthetic_fashion_root, tmp_path, capsys) -> None:
    script = _load_script_module()
    args = ["--dataset_path", str(synthetic_fashion_root), "--st_checkpoint_dir", str(tmp_path), *SMALL]
    assert script.main([*args, "--epochs", "1"]) == 0
    assert (tmp_path / "checkpoint.pt").is_file()
    capsys.readouterr()
    assert script.main([*args, "--epochs", "2", "--n_units_1", "33"]) == 1
    err = capsys.readouterr().err
    assert "Traceback" not in err and "another configuration" in err.strip().splitlines()[-1]


@pytest.mark.slow
def test_default_config_learns_real_fashion_mnist(tmp_path) -> None:
    if not all((REAL_FASHION_MNIST / f"{name}.gz").is_file() for name in conftest.MNIST_FILES):
        pytest.skip(f"real Fashion-MNIST not found under {REAL_FASHION_MNIST}")
    result = run_script("--dataset_path", str(REAL_FASHION_MNIST), "--epochs", "1", cwd=tmp_path, timeout=600)
    metrics = reports(result)
    assert [m["epoch"] for m in metrics] == [1]
    assert metrics[0]["valid_error"] < 0.25  # about 0.15 after one epoch; chance is 0.9
