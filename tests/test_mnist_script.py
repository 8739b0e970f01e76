"""The MNIST training script run as a subprocess on tiny synthetic data (and once on real MNIST-10k, slow)."""
from __future__ import annotations

import importlib.util
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from benchmarks.mnist.space import DEFAULT_CONFIG
import conftest
from conftest import REPO_ROOT, reports, stable

SCRIPT = REPO_ROOT / "training_scripts" / "mnist_convnet.py"
TINY = ["--n_conv_layers", "1", "--n_filters_1", "6", "--batch_size", "32", "--dropout", "0.2"]


def run_script(*args: str, cwd: Path, timeout: float = 180) -> subprocess.CompletedProcess:
    """Run the MNIST script from `cwd` with one thread, capturing its output."""
    return conftest.run_script(SCRIPT, *args, cwd=cwd, timeout=timeout)


@pytest.fixture(scope="module")
def two_epochs(synthetic_mnist_root, tmp_path_factory) -> tuple[list[str], list[dict], Path]:
    """A 2-epoch run with a checkpoint dir and --report_test: (its arguments, its reports, its checkpoint dir)."""
    ckpt = tmp_path_factory.mktemp("ckpt")
    args = ["--dataset_path", str(synthetic_mnist_root), "--epochs", "2", "--seed", "3", "--report_test", *TINY]
    result = run_script(*args, "--st_checkpoint_dir", str(ckpt), cwd=ckpt.parent)
    return args, reports(result), ckpt


@pytest.mark.slow
def test_two_epochs_report_lines(two_epochs) -> None:
    _, metrics, ckpt = two_epochs
    assert [m["epoch"] for m in metrics] == [1, 2]
    for m in metrics:
        assert {"valid_error", "valid_loss", "train_loss", "elapsed_time"} <= set(m)
        assert 0.0 <= m["valid_error"] <= 1.0 and m["elapsed_time"] > 0
    assert metrics[-1]["valid_error"] < 0.9  # the synthetic data are learnable
    assert metrics[1]["elapsed_time"] > metrics[0]["elapsed_time"]
    assert (ckpt / "checkpoint.pt").is_file()
    # TINY: conv 1->6 (3x3 with bias); 28 -> 14 after pooling; Linear(6*14*14 -> 10)
    assert all(m["params"] == (1 * 6 * 9 + 6) + (6 * 14 * 14 * 10 + 10) for m in metrics)


@pytest.mark.slow
def test_report_test_in_last_line_only(two_epochs) -> None:
    _, metrics, _ = two_epochs
    assert "test_error" not in metrics[0] and "test_loss" not in metrics[0]
    assert 0.0 <= metrics[-1]["test_error"] <= 1.0 and metrics[-1]["test_loss"] > 0


@pytest.mark.slow
def test_same_seed_gives_identical_metrics(two_epochs, tmp_path) -> None:
    args, metrics, _ = two_epochs
    again = reports(run_script(*args, cwd=tmp_path))  # no checkpoint dir: checkpointing changes nothing either
    assert stable(again) == stable(metrics)


@pytest.mark.slow
def test_resume_continues_epoch_count(two_epochs, tmp_path) -> None:
    args, metrics, ckpt = two_epochs
    resume_dir = tmp_path / "ckpt"
    shutil.copytree(ckpt, resume_dir)
    resumed = reports(run_script(*args, "--epochs", "4", "--st_checkpoint_dir", str(resume_dir), cwd=tmp_path))
    assert [m["epoch"] for m in resumed] == [3, 4]
    assert resumed[0]["elapsed_time"] > metrics[-1]["elapsed_time"]
    assert "test_error" in resumed[-1] and "test_error" not in resumed[0]


def _load_script_module():
    spec = importlib.util.spec_from_file_location("mnist_convnet_script", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_flag_defaults_are_the_default_config() -> None:
    script = _load_script_module()
    args = vars(script.parse_args([]))
    assert {k: args[k] for k in DEFAULT_CONFIG} == DEFAULT_CONFIG
    assert Path(args["dataset_path"]) == REPO_ROOT / "data"
    # the flag of a layer that does not exist is ignored, even when out of range
    assert script.parse_args(["--n_conv_layers", "1", "--n_filters_2", "0"]).n_filters_2 == 0


@pytest.mark.parametrize("flags, bad", [
    (["--n_conv_layers", "0"], "--n_conv_layers 0"),
    (["--learning_rate", "-1"], "--learning_rate -1"),
    (["--optimizer", "rmsprop"], "'rmsprop'"),
    (["--dropout", "1"], "--dropout 1"),
    (["--valid_fraction", "0"], "--valid_fraction 0"),
    (["--n_conv_layers", "2", "--n_filters_2", "0"], "--n_filters_2 0"),
    (["--num_threads", "-1"], "--num_threads -1"),
])
def test_bad_flags_exit_with_clear_message(flags: list[str], bad: str, capsys) -> None:
    with pytest.raises(SystemExit) as exit_info:
        _load_script_module().parse_args([*flags, "--epochs", "1"])
    err = capsys.readouterr().err
    assert exit_info.value.code == 2 and bad in err and "Traceback" not in err


@pytest.mark.slow
def test_missing_data_gives_clear_message(tmp_path) -> None:
    empty = tmp_path / "no_mnist_here"
    empty.mkdir()
    result = run_script("--dataset_path", str(empty), "--epochs", "1", *TINY, cwd=tmp_path, timeout=120)
    assert result.returncode != 0
    assert "Traceback" not in result.stderr
    message = result.stderr.strip().splitlines()[-1]
    assert str(empty) in message and "--dataset_path" in message
    for name in ["train-images-idx3-ubyte", "train-labels-idx1-ubyte", "t10k-images-idx3-ubyte",
                 "t10k-labels-idx1-ubyte"]:
        assert name in message


@pytest.mark.slow
def test_default_config_learns_real_mnist10k(real_mnist10k, tmp_path) -> None:
    result = subprocess.run([sys.executable, str(SCRIPT), "--dataset_path", str(real_mnist10k), "--epochs", "3"],
                            cwd=tmp_path, capture_output=True, text=True, timeout=600)
    metrics = reports(result)
    assert [m["epoch"] for m in metrics] == [1, 2, 3]
    assert min(m["valid_error"] for m in metrics) < 0.15
