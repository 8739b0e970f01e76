"""The launchers end to end: results folder, columns, summary, early stopping, BOHB picks, errors, Ctrl-C."""
import json
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import ConfigSpace as CS
import pandas as pd
import psutil
import pytest

from conftest import REPO_ROOT

LAUNCHERS = {name: REPO_ROOT / "launchers" / f"launch_{name}.py" for name in ("random_search", "hyperband", "bohb")}
RESULTS_COLUMNS = ["trial_id", "tuner_time", "epoch", "valid_error", "valid_loss", "train_loss", "elapsed_time"]
TRIALS_COLUMNS = ["trial_id", "status", "epochs", "best_metric", "last_metric", "start_time", "end_time", "bracket",
                  "model_based"]
METADATA_KEYS = {"experiment_name", "benchmark", "metric", "mode", "resource_attr", "min_resource", "max_resource",
                 "scheduler", "scheduler_kwargs", "seed", "n_workers", "backend", "stop_criterion", "config_space",
                 "command_line", "versions", "start_time", "end_time", "status"}

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


@pytest.fixture
def quick_script(tmp_path) -> tuple[Path, Path]:
    script = tmp_path / "quick.py"
    script.write_text(QUICK_SCRIPT)
    space = CS.ConfigurationSpace()
    space.add([CS.UniformFloatHyperparameter("x", 0, 1), CS.CategoricalHyperparameter("kind", ["a", "b"]),
               CS.Constant("epochs", 9)])
    space.to_json(tmp_path / "space.json")
    return script, tmp_path / "space.json"


def launch(scheduler: str, *flags: str, cwd: Path, timeout: float = 120) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(LAUNCHERS[scheduler]), *flags], cwd=cwd, capture_output=True,
                          text=True, timeout=timeout)


def custom_flags(script: Path, space: Path, *more: str) -> list[str]:
    return ["--training-script", str(script), "--config-space", str(space), "--metric", "loss", "--mode", "min",
            "--resource-attr", "epoch", "--max-resource", "9", *more]


def read_results(folder: Path) -> tuple[pd.DataFrame, pd.DataFrame, dict]:
    return (pd.read_csv(folder / "results.csv"), pd.read_csv(folder / "trials.csv"),
            json.loads((folder / "metadata.json").read_text()))


@pytest.mark.slow
@pytest.mark.parametrize("scheduler", list(LAUNCHERS))
def test_launcher_tunes_mnist_convnet_and_writes_documented_results(scheduler, synthetic_mnist_root, tmp_path):
    run = launch(scheduler, "--n-workers", "2", "--max-num-trials", "4", "--max-epochs", "3",
                 "--dataset-path", str(synthetic_mnist_root), "--experiment-name", "e2e", "--seed", "1", cwd=tmp_path)
    assert run.returncode == 0, run.stderr
    folder = tmp_path / "results" / "e2e"
    results, trials, metadata = read_results(folder)
    assert list(results.columns[:4]) == RESULTS_COLUMNS[:4] and set(RESULTS_COLUMNS) <= set(results.columns)
    assert {"config_learning_rate", "config_n_conv_layers", "config_optimizer"} <= set(results.columns)
    assert list(trials.columns[:len(TRIALS_COLUMNS)]) == TRIALS_COLUMNS
    assert METADATA_KEYS <= set(metadata)
    assert metadata["scheduler"] == scheduler and metadata["status"] == "finished"
    assert len(trials) == 4 and set(trials["status"]) <= {"Completed", "Stopped"}
    assert results["valid_error"].between(0, 1).all() and results["epoch"].max() <= 3
    # The summary's best is the best of results.csv.
    best = results.loc[results["valid_error"].idxmin()]
    summary = re.search(r"Best valid_error: ([0-9.e-]+) \(trial (\d+)", run.stdout)
    assert summary, run.stdout
    assert float(summary.group(1)) == pytest.approx(best["valid_error"], rel=1e-5)
    assert int(summary.group(2)) in set(results.loc[results["valid_error"] == best["valid_error"], "trial_id"])
    assert "results/e2e" in run.stdout


@pytest.mark.slow
@pytest.mark.parametrize("scheduler", ["hyperband", "bohb"])
def test_successive_halving_stops_some_trials_early(scheduler, quick_script, tmp_path):
    run = launch(scheduler, *custom_flags(*quick_script, "--n-workers", "2", "--max-num-trials", "24",
                                          "--experiment-name", "sh"), cwd=tmp_path)
    assert run.returncode == 0, run.stderr
    results, trials, _ = read_results(tmp_path / "results" / "sh")
    assert len(trials) == 24
    assert (trials["epochs"] < 9).any() and (trials["epochs"] == 9).any()
    assert set(trials.loc[trials["epochs"] == 9, "status"]) == {"Completed"}
    assert trials["bracket"].notna().all() and trials["bracket"].nunique() >= 2
    # trials.csv agrees with results.csv.
    assert (results.groupby("trial_id")["epoch"].max() == trials.set_index("trial_id")["epochs"]).all()
    assert (results.groupby("trial_id")["loss"].min() == trials.set_index("trial_id")["best_metric"]).all()
    if scheduler == "bohb":
        assert set(trials["model_based"]) == {True, False}


def test_random_search_runs_every_trial_to_the_end_with_the_custom_script(quick_script, tmp_path):
    run = launch("random_search", *custom_flags(*quick_script, "--n-workers", "2", "--max-num-trials", "4",
                                                "--experiment-name", "rs"), cwd=tmp_path)
    assert run.returncode == 0, run.stderr
    results, trials, metadata = read_results(tmp_path / "results" / "rs")
    assert list(trials["epochs"]) == [9, 9, 9, 9] and set(trials["status"]) == {"Completed"}
    assert trials["bracket"].isna().all() and trials["model_based"].isna().all()
    assert {"config_x", "config_kind"} <= set(results.columns) and len(results) == 36
    assert metadata["benchmark"] == "custom-quick" and metadata["metric"] == "loss"
    assert (tmp_path / "results" / "rs" / "tuner.log").stat().st_size > 0  # Syne Tune's chatter went to the log


@pytest.mark.parametrize("flags, message", [
    (["--n-workers", "0"], "--n-workers must be at least 1, got 0"),
    (["--benchmark", "cifar"], "Unknown benchmark 'cifar': choose one of"),
    (["--min-epochs", "5", "--max-epochs", "3"], "--min-epochs 5 and --max-epochs 3 must satisfy"),
    (["--max-epochs", "99"], "<= 9 (the benchmark's largest budget)"),
    (["--eta", "1"], "--eta must be greater than 1"),
    (["--dataset", "cifar10"], "--dataset applies to nasbench201 and nasbench201_train, not to 'mnist_convnet'"),
    (["--metric", "loss"], "missing: --training-script, --config-space"),
    (["--training-script", "nope.py", "--config-space", "s.json", "--metric", "m", "--mode", "min",
      "--resource-attr", "epoch", "--max-resource", "3"], "Training script 'nope.py' does not exist"),
])
def test_bad_flags_exit_with_one_clear_sentence(flags, message, tmp_path):
    run = launch("bohb", *flags, cwd=tmp_path)
    assert run.returncode == 2
    assert message in run.stderr and "Traceback" not in run.stderr
    assert not (tmp_path / "results").exists()


def test_an_existing_results_folder_is_never_overwritten(quick_script, tmp_path):
    folder = tmp_path / "results" / "taken"
    folder.mkdir(parents=True)
    (folder / "results.csv").write_text("precious\n")
    run = launch("bohb", *custom_flags(*quick_script, "--experiment-name", "taken"), cwd=tmp_path)
    assert run.returncode == 2 and "already exists" in run.stderr
    assert (folder / "results.csv").read_text() == "precious\n"


def test_sigint_stops_every_trial_and_leaves_readable_csvs(quick_script, tmp_path):
    script, space = quick_script
    process = subprocess.Popen(
        [sys.executable, str(LAUNCHERS["hyperband"]),
         *custom_flags(script, space, "--n-workers", "2", "--experiment-name", "int")],
        cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    folder = tmp_path / "results" / "int"
    deadline = time.time() + 60
    while time.time() < deadline:  # wait until trials have reported and the CSVs were written
        if (folder / "results.csv").exists() and len(pd.read_csv(folder / "results.csv")) >= 5:
            break
        time.sleep(0.2)
    trial_processes = psutil.Process(process.pid).children(recursive=True)
    assert trial_processes
    process.send_signal(signal.SIGINT)
    stdout, stderr = process.communicate(timeout=60)
    assert process.returncode == 130, stderr
    time.sleep(0.5)
    alive = [p for p in trial_processes if p.is_running() and p.status() != psutil.STATUS_ZOMBIE]
    assert not alive
    results, trials, metadata = read_results(folder)
    assert metadata["status"] == "interrupted" and metadata["end_time"]
    assert len(results) >= 5 and "InProgress" not in set(trials["status"])
    assert "Tuning interrupted" in stdout


@pytest.mark.slow
def test_nasbench201_lookup_runs_as_real_processes(tmp_path):
    run = launch("hyperband", "--benchmark", "nasbench201", "--n-workers", "2", "--max-num-trials", "4",
                 "--max-epochs", "3", "--experiment-name", "nb201", cwd=tmp_path)
    assert run.returncode == 0, run.stderr
    results, trials, metadata = read_results(tmp_path / "results" / "nb201")
    assert len(trials) == 4 and results["epoch"].max() <= 3 and set(results["estimated"]) <= {0, 1}
    assert {f"config_x{i}" for i in range(6)} <= set(results.columns)
    assert metadata["benchmark"] == "nasbench201" and metadata["dataset"].endswith("mnist10k.npz")
