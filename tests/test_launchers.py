"""The launchers: flags checked in-process, the results writer, and end-to-end runs (results folder, Ctrl-C)."""
import argparse
import signal
import subprocess
import sys
import time
from datetime import datetime
from pathlib import Path

import pandas as pd
import psutil
import pytest

from benchmarks.nasbench201.table import DEFAULT_TABLE
from conftest import REPO_ROOT, custom_flags, default_signals, launch, read_results
from launchers.cli import build_parser, parse_args, table_seed
from schedulers.budget import Budget
from schedulers.registry import SCHEDULERS

RESULTS_COLUMNS = ["trial_id", "tuner_time", "epoch", "valid_error", "valid_loss", "train_loss", "elapsed_time"]
TRIALS_COLUMNS = ["trial_id", "status", "epochs", "best_metric", "last_metric", "start_time", "end_time",
                  "estimated"]
METADATA_KEYS = {"experiment_name", "benchmark", "metric", "mode", "budget", "scheduler", "scheduler_kwargs",
                 "trial_columns", "seed", "n_workers", "backend", "simulated_time", "table_seed", "sampling",
                 "table_noise", "stop_criterion", "config_space", "command_line", "versions", "start_time", "end_time",
                 "status"}


def parse_error(capsys, *flags: str, scheduler: str | None = "bohb") -> str:
    """The message a launcher's parser exits with (status 2) for ``flags``."""
    with pytest.raises(SystemExit) as exit_:
        parse_args(scheduler, list(flags))
    assert exit_.value.code == 2
    return capsys.readouterr().err


# Flags, in-process ----------------------------------------------------------------------------------------------

@pytest.mark.parametrize("flags, message", [
    (["--n-workers", "0"], "--n-workers must be at least 1, got 0."),
    (["--benchmark", "cifar"], "Unknown benchmark 'cifar': choose one of fashion_mnist_mlp, mnist_convnet, "
                               "mnist_convnet_efficient, nasbench201, nasbench201_train."),
    (["--min-epochs", "5", "--max-epochs", "3"], "--min-epochs 5 and --max-epochs 3 must satisfy"),
    (["--max-epochs", "99"], "<= 9 (the benchmark's largest budget)."),
    (["--eta", "1"], "--eta must be greater than 1, got 1.0."),
    (["--dataset", "cifar10"], "--dataset applies to nasbench201 and nasbench201_train, not to 'mnist_convnet'."),
    (["--benchmark", "nasbench201", "--dataset", "cifar-imaginary"], "No NAS-Bench-201 table 'cifar-imaginary'"),
    (["--backend", "simulated"], "--backend simulated needs a tabulated benchmark, and 'mnist_convnet' has no "
                                 "table: choose one of nasbench201."),
    (["--table-seed", "2"], "--table-seed 2 applies to the backends that replay a table (simulated), not to "
                            "'local'."),
    (["--table-seed", "first"], "argument --table-seed: 'first' is not accepted: give mean, random or a seed "
                                "number (0 or more)."),
    (["--metric", "loss"], "missing: --training-script, --config-space, --mode, --resource-attr, --max-resource."),
    (["--training-script", "nope.py", "--config-space", "s.json", "--metric", "m", "--mode", "min",
      "--resource-attr", "epoch", "--max-resource", "3"], "Training script 'nope.py' does not exist"),
])
def test_bad_flags_exit_with_one_clear_sentence(flags, message, capsys, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    error = parse_error(capsys, *flags)
    assert message in error and "Traceback" not in error
    assert error.strip().splitlines()[-1].endswith(".")
    assert not (tmp_path / "results").exists()


def test_a_bad_config_space_file_is_one_sentence(quick_script, capsys, tmp_path):
    script, _ = quick_script
    (tmp_path / "bad.json").write_text("{not json")
    error = parse_error(capsys, *custom_flags(script, tmp_path / "bad.json"))
    assert f"Config space file '{tmp_path / 'bad.json'}' is not ConfigSpace JSON" in error


def test_the_generic_launcher_needs_a_known_scheduler(capsys):
    assert "the following arguments are required: --scheduler" in parse_error(capsys, scheduler=None)
    assert "argument --scheduler: invalid choice: 'sha'" in parse_error(capsys, "--scheduler", "sha", scheduler=None)


def test_help_lists_every_scheduler_with_its_title(capsys):
    with pytest.raises(SystemExit):
        build_parser(None).parse_args(["--help"])
    text = " ".join(capsys.readouterr().out.split())
    for name, entry in SCHEDULERS.items():
        assert f"{name} {entry.title}" in text
    assert "--table-seed mean|random|N" in text and "a seed drawn per trial" in text


def test_help_documents_failures_and_resume_and_hyperband_says_synchronous(capsys):
    import ast

    with pytest.raises(SystemExit):
        build_parser("hyperband").parse_args(["--help"])
    text = " ".join(capsys.readouterr().out.split())
    assert "--max-failures N end the run once more than N trials failed" in text
    assert "--resume EXPERIMENT continue an interrupted or killed run" in text
    doc = ast.get_docstring(ast.parse((REPO_ROOT / "launchers" / "launch_hyperband.py").read_text()))
    assert doc.startswith("Tune a training script with synchronous Hyperband") and "asynchronous successive" not in doc


@pytest.mark.parametrize("text, value", [("mean", "mean"), ("random", "random"), ("0", 0), ("17", 17)])
def test_table_seed_accepts_mean_random_and_seed_numbers(text, value):
    assert table_seed(text) == value


@pytest.mark.parametrize("text", ["-1", "1.5", "Mean", ""])
def test_table_seed_rejects_anything_else(text):
    with pytest.raises(argparse.ArgumentTypeError, match="give mean, random or a seed number"):
        table_seed(text)


def test_one_budget_is_built_from_the_flags(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    plan = parse_args(None, ["--scheduler", "asha", "--min-epochs", "2", "--max-epochs", "8", "--eta", "2"])
    assert plan.budget == Budget("epoch", 2, 8, 2.0)
    assert plan.scheduler is SCHEDULERS["asha"] and plan.backend.name == "local"
    assert plan.args.max_wallclock_time == 600 and plan.args.max_num_trials is None
    assert plan.folder.parent == Path("results") and plan.folder.name.startswith("mnist_convnet-asha-")


def test_simulated_runs_stop_after_100_trials_by_default(nb201_table_path, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    plan = parse_args("rea", ["--backend", "simulated", "--benchmark", "nasbench201", "--dataset",
                              str(nb201_table_path), "--table-seed", "random"])
    assert plan.args.max_num_trials == 100 and plan.args.max_wallclock_time is None
    assert plan.args.table_seed == "random" and plan.budget == Budget("epoch", 1, 9, 3)
    timed = parse_args("rea", ["--backend", "simulated", "--benchmark", "nasbench201", "--dataset",
                               str(nb201_table_path), "--max-wallclock-time", "30"])
    assert timed.args.max_num_trials is None and timed.args.max_wallclock_time == 30


def test_an_existing_results_folder_is_never_overwritten(quick_script, capsys, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    folder = tmp_path / "results" / "taken"
    folder.mkdir(parents=True)
    (folder / "results.csv").write_text("precious\n")
    assert "already exists" in parse_error(capsys, *custom_flags(*quick_script, "--experiment-name", "taken"))
    assert (folder / "results.csv").read_text() == "precious\n"


def test_help_and_a_local_run_load_no_simulator(tmp_path):
    """--help loads no Syne Tune scheduler; a local run loads no simulator (blackbox repository, scikit-learn)."""
    code = f"""
import sys
from launchers.cli import parse_args
try:
    parse_args("bohb", ["--help"])
except SystemExit:
    pass
assert not [m for m in sys.modules if m.startswith("syne_tune.optimizer")], "--help imported a scheduler"
plan = parse_args("bohb", ["--benchmark", "nasbench201", "--results-dir", {str(tmp_path)!r}])
space = plan.benchmark.script_config_space(plan.budget.max_resource)
plan.scheduler.build(space, plan.benchmark.metric, plan.benchmark.mode, plan.budget, 0)
plan.backend.start(plan.benchmark, 1)
import launchers.run
loaded = [m for m in sys.modules if m.startswith(("sklearn", "syne_tune.blackbox_repository"))]
assert not loaded, loaded
"""
    run = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stderr


# The results writer, in-process ---------------------------------------------------------------------------------

class _Tuner:
    def __init__(self, scheduler):
        self.scheduler = scheduler


class _Bookkeeping:
    def __init__(self, records):
        self.records = records

    def trial_bookkeeping(self, trial_id):
        return self.records


def _writer(tmp_path, columns, scheduler):
    from launchers.results import ResultsWriter

    writer = ResultsWriter(tmp_path, {}, hyperparameters=["x"], metric="loss", mode="min",
                           budget=Budget("epoch", 1, 3, 3), scheduler_columns=columns)
    writer._tuner = _Tuner(scheduler)
    return writer


def _trial(trial_id=0):
    from syne_tune.backend.trial_status import Trial

    return Trial(trial_id=trial_id, config={"x": 0.5}, creation_time=datetime.now())


def test_the_writer_writes_exactly_the_declared_scheduler_columns(tmp_path):
    writer = _writer(tmp_path, ("bracket",), _Bookkeeping({"bracket": 2}))
    writer.on_start_trial(_trial())
    writer.on_trial_result(_trial(), "InProgress", {"epoch": 1, "loss": 0.4}, "CONTINUE")
    writer.on_trial_result(_trial(), "InProgress", {"epoch": 2, "loss": 0.5}, "CONTINUE")
    trials = writer.trials_frame()
    assert list(trials.columns) == TRIALS_COLUMNS + ["bracket", "config_x"]
    assert trials.loc[0, ["bracket", "epochs", "best_metric", "last_metric"]].tolist() == [2, 2, 0.4, 0.5]
    plain = _writer(tmp_path, (), object())  # no columns declared: no hook needed
    plain.on_start_trial(_trial())
    assert list(plain.trials_frame().columns) == TRIALS_COLUMNS + ["config_x"]


def test_a_trial_is_estimated_when_any_of_its_reports_was(tmp_path):
    writer = _writer(tmp_path, (), object())
    for trial_id, estimates in enumerate([(0.0, 1.0, 0.0), (0.0, 0.0), ()]):
        writer.on_start_trial(_trial(trial_id))
        for epoch, estimated in enumerate(estimates, start=1):
            writer.on_trial_result(_trial(trial_id), "InProgress", {"epoch": epoch, "loss": 0.5,
                                                                    "estimated": estimated}, "CONTINUE")
    writer.on_start_trial(_trial(3))
    writer.on_trial_result(_trial(3), "InProgress", {"epoch": 1, "loss": 0.5, "test_error": 0.25}, "CONTINUE")
    assert writer.trials_frame()["estimated"].tolist() == [True, False, None, None]
    assert writer.results_frame()["test_error"].tolist()[-1] == 0.25


def test_the_writer_rejects_undeclared_bookkeeping(tmp_path):
    with pytest.raises(ValueError, match=r"records \['model_based'\] for trial 0, which its registry entry does "
                                         r"not declare"):
        _writer(tmp_path, ("bracket",), _Bookkeeping({"bracket": 0, "model_based": True})).on_start_trial(_trial())
    with pytest.raises(TypeError, match="declares the trials.csv columns .* but has no trial_bookkeeping hook"):
        _writer(tmp_path, ("bracket",), object()).on_start_trial(_trial())


# End to end ---------------------------------------------------------------------------------------------------

@pytest.mark.slow
def test_launcher_tunes_mnist_convnet_and_writes_documented_results(synthetic_mnist_root, tmp_path):
    scheduler = "bohb"
    run = launch(scheduler, "--n-workers", "2", "--max-num-trials", "3", "--max-epochs", "2",
                 "--dataset-path", str(synthetic_mnist_root), "--experiment-name", "e2e", "--seed", "1", cwd=tmp_path)
    assert run.returncode == 0, run.stderr
    results, trials, metadata = read_results(tmp_path / "results" / "e2e")
    assert list(results.columns[:4]) == RESULTS_COLUMNS[:4] and set(RESULTS_COLUMNS) <= set(results.columns)
    assert {"config_learning_rate", "config_n_conv_layers", "config_optimizer"} <= set(results.columns)
    declared = list(SCHEDULERS[scheduler].columns)
    assert list(trials.columns) == TRIALS_COLUMNS + declared + [c for c in trials.columns if c.startswith("config_")]
    assert METADATA_KEYS <= set(metadata) and metadata["trial_columns"] == declared
    assert metadata["budget"] == {"resource_attr": "epoch", "min_resource": 1, "max_resource": 2, "eta": 3}
    assert metadata["scheduler"] == scheduler and metadata["status"] == "finished"
    assert metadata["table_noise"] is None and metadata["sampling"] == "the whole config space"
    assert metadata["simulated_time"] is False
    assert len(trials) == 3 and set(trials["status"]) <= {"Completed", "Stopped"}
    assert results["valid_error"].between(0, 1).all() and results["epoch"].max() <= 2
    # The printed summary's best is the best of results.csv.
    best = results["valid_error"].min()
    assert f"Best valid_error: {best:.6g} (trial " in run.stdout and "results/e2e" in run.stdout


@pytest.mark.slow
@pytest.mark.parametrize("scheduler", ["asha", "async_bohb"])
def test_successive_halving_stops_some_trials_early(scheduler, quick_script, tmp_path):
    flags = custom_flags(*quick_script, "--n-workers", "2", "--max-num-trials", "24", "--experiment-name", "sh")
    run = launch(None, "--scheduler", scheduler, *flags, cwd=tmp_path)
    assert run.returncode == 0, run.stderr
    results, trials, metadata = read_results(tmp_path / "results" / "sh")
    assert len(trials) == 24 and metadata["scheduler"] == scheduler
    assert (trials["epochs"] < 9).any() and (trials["epochs"] == 9).any()
    assert set(trials.loc[trials["epochs"] == 9, "status"]) == {"Completed"}
    assert trials["bracket"].notna().all() and trials["bracket"].nunique() >= 2
    # trials.csv agrees with results.csv.
    assert (results.groupby("trial_id")["epoch"].max() == trials.set_index("trial_id")["epochs"]).all()
    assert (results.groupby("trial_id")["loss"].min() == trials.set_index("trial_id")["best_metric"]).all()
    if scheduler == "async_bohb":
        assert set(trials["model_based"]) == {True, False}


@pytest.mark.slow
def test_random_search_runs_every_trial_to_the_end_with_the_custom_script(quick_script, tmp_path):
    run = launch("random_search", *custom_flags(*quick_script, "--n-workers", "2", "--max-num-trials", "4",
                                                "--experiment-name", "rs"), cwd=tmp_path)
    assert run.returncode == 0, run.stderr
    results, trials, metadata = read_results(tmp_path / "results" / "rs")
    assert list(trials["epochs"]) == [9, 9, 9, 9] and set(trials["status"]) == {"Completed"}
    assert list(trials.columns[:8]) == TRIALS_COLUMNS and all(c.startswith("config_") for c in trials.columns[8:])
    assert trials["estimated"].isna().all()  # the script reports no estimates
    assert {"config_x", "config_kind"} <= set(results.columns) and len(results) == 36
    assert metadata["benchmark"] == "custom-quick" and metadata["metric"] == "loss"
    assert (tmp_path / "results" / "rs" / "tuner.log").stat().st_size > 0  # Syne Tune's chatter went to the log


@pytest.mark.slow
def test_sigint_stops_every_trial_and_leaves_readable_csvs(quick_script, tmp_path):
    script, space = quick_script
    process = subprocess.Popen(
        [sys.executable, str(REPO_ROOT / "launchers" / "launch_hyperband.py"),
         *custom_flags(script, space, "--n-workers", "2", "--experiment-name", "int")],
        cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, preexec_fn=default_signals)
    folder = tmp_path / "results" / "int"
    deadline = time.time() + 60
    while time.time() < deadline:  # wait until trials have reported and the CSVs were written
        if (folder / "results.csv").exists() and len(pd.read_csv(folder / "results.csv")) >= 5:
            break
        time.sleep(0.2)
    trial_processes = psutil.Process(process.pid).children(recursive=True)
    assert trial_processes
    process.send_signal(signal.SIGINT)
    stdout, stderr = process.communicate(timeout=120)  # (a busy machine stops trials slowly)
    assert process.returncode == 130, stderr
    time.sleep(0.5)

    def alive(process: psutil.Process) -> bool:
        try:
            return process.is_running() and process.status() != psutil.STATUS_ZOMBIE
        except psutil.NoSuchProcess:  # reaped between the two questions
            return False

    assert not [p for p in trial_processes if alive(p)]
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
    assert metadata["benchmark"] == "nasbench201" and metadata["dataset"].endswith(f"{DEFAULT_TABLE}.npz")
