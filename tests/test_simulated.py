"""The simulated backend: NAS-Bench-201 tables as Syne Tune blackboxes, replayed by all three schedulers."""
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest

from benchmarks.nasbench201.blackbox import OBJECTIVES, NB201Blackbox
from benchmarks.nasbench201.encoding import (HP_NAMES, NUM_ARCHS, canonical_index, index_to_config,
                                             isomorphism_classes)
from benchmarks.nasbench201.table import NB201Table
from conftest import REPO_ROOT

EPOCHS = 9


@pytest.fixture(scope="module")
def table_path(tmp_path_factory):
    """A table of 400 isomorphism-class representatives (of 8,765) with smooth synthetic learning curves."""
    rng = np.random.default_rng(0)
    archs = np.sort(rng.choice(sorted(isomorphism_classes()), 400, replace=False))
    quality = rng.uniform(0.05, 0.9, size=(len(archs), 2, 1))
    epochs = np.arange(1, EPOCHS + 1)[None, None, :]
    valid_error = np.clip(quality + 0.5 / epochs + rng.normal(0, 0.01, (len(archs), 2, EPOCHS)), 0, 1)
    metrics = {"valid_error": valid_error, "valid_loss": 2 * valid_error, "train_loss": 1.5 * valid_error,
               "epoch_time": np.broadcast_to(rng.uniform(0.5, 1.0, (len(archs), 1, 1)), valid_error.shape)}
    metrics = {name: np.ascontiguousarray(values, dtype=np.float32) for name, values in metrics.items()}
    metrics["valid_error"][0, 1] = np.nan  # one seed missing: filled with the other seed
    path = tmp_path_factory.mktemp("table") / "synthetic.npz"
    NB201Table(archs, [0, 1], metrics, dataset="synthetic").save(path)
    return path


def test_blackbox_answers_every_architecture_through_its_class(table_path):
    table = NB201Table.load(table_path)
    blackbox = NB201Blackbox(table)
    held = {int(a) for a in table.archs}
    estimated = 0
    for index in range(NUM_ARCHS):
        row, is_estimated = blackbox.resolve(index_to_config(index))
        if is_estimated:
            estimated += 1
            assert canonical_index(index) not in held
        else:
            assert int(table.archs[row]) == canonical_index(index)
    assert 0 < estimated < NUM_ARCHS
    # Tabulated answers equal the table (seed mean; cumulative time), estimated ones have the right shape.
    arch = int(table.archs[3])
    curve = blackbox.objective_function(index_to_config(arch))
    assert np.allclose(curve[:, 0], table.curve(arch, "valid_error"), atol=1e-6)
    assert np.allclose(curve[:, 3], np.cumsum(table.curve(arch, "epoch_time")), atol=1e-5)
    absent = next(i for i in range(NUM_ARCHS) if blackbox.resolve(index_to_config(i))[1])
    estimate = blackbox.objective_function(index_to_config(absent))
    assert estimate.shape == (EPOCHS, len(OBJECTIVES)) and (estimate[:, OBJECTIVES.index("estimated")] == 1).all()
    assert (curve[:, OBJECTIVES.index("estimated")] == 0).all()
    # A missing seed is filled from the other seed.
    first = blackbox.objective_function(index_to_config(int(table.archs[0])), seed=1)
    assert np.isfinite(first).all()


def simulate(tmp_path, scheduler, name, *flags):
    run = subprocess.run([sys.executable, str(REPO_ROOT / "launchers" / f"launch_{scheduler}.py"), "--backend",
                          "simulated", "--benchmark", "nasbench201", "--dataset", str(table_path_of(tmp_path)),
                          "--experiment-name", name, *flags], cwd=tmp_path, capture_output=True, text=True,
                         timeout=300)
    assert run.returncode == 0, run.stderr
    folder = tmp_path / "results" / name
    return pd.read_csv(folder / "results.csv"), pd.read_csv(folder / "trials.csv"), run


def table_path_of(tmp_path):
    return tmp_path / "table.npz"


@pytest.fixture
def sim_dir(tmp_path, table_path):
    table_path_of(tmp_path).write_bytes(table_path.read_bytes())
    return tmp_path


@pytest.mark.slow
@pytest.mark.parametrize("scheduler", ["random_search", "hyperband", "bohb"])
def test_simulated_run_is_identical_for_a_seed_and_differs_for_another(scheduler, sim_dir):
    flags = ["--max-num-trials", "30", "--max-epochs", str(EPOCHS)]
    first, first_trials, _ = simulate(sim_dir, scheduler, "a", *flags, "--seed", "1")
    again, again_trials, _ = simulate(sim_dir, scheduler, "b", *flags, "--seed", "1")
    other, _, _ = simulate(sim_dir, scheduler, "c", *flags, "--seed", "2")
    pd.testing.assert_frame_equal(first, again)
    pd.testing.assert_frame_equal(first_trials, again_trials)
    assert not first.equals(other)
    assert len(first_trials) == 30 and set(first.columns) >= {"tuner_time", "epoch", "valid_error", *(
        f"config_{name}" for name in HP_NAMES)}
    if scheduler != "random_search":
        assert (first_trials["epochs"] < EPOCHS).any() and (first_trials["epochs"] == EPOCHS).any()


def test_a_hundred_trial_bohb_run_at_four_workers(sim_dir):
    results, trials, run = simulate(sim_dir, "bohb", "hundred", "--n-workers", "4")  # default: 100 trials
    assert len(trials) == 100 and set(trials["model_based"]) == {True, False}
    assert "Best valid_error" in run.stdout
    # Simulated time: four trials run at once, so the run spans far less than the sum of the trials' times.
    assert results["tuner_time"].max() < results.groupby("trial_id")["elapsed_time"].max().sum() / 2


def test_simulated_wallclock_limit_stops_on_simulated_seconds(sim_dir):
    results, trials, _ = simulate(sim_dir, "random_search", "timed", "--max-wallclock-time", "30")
    assert results["tuner_time"].max() <= 30 + 1.0  # the last reports may arrive within one epoch of the limit
    assert "InProgress" not in set(trials["status"])


@pytest.mark.parametrize("flags, message", [
    (["--benchmark", "mnist_convnet"], "--backend simulated needs a tabulated benchmark"),
    (["--benchmark", "nasbench201", "--dataset", "cifar-imaginary"], "No NAS-Bench-201 table 'cifar-imaginary'"),
])
def test_simulated_backend_errors(flags, message, tmp_path):
    run = subprocess.run([sys.executable, str(REPO_ROOT / "launchers" / "launch_bohb.py"), "--backend", "simulated",
                          *flags], cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert run.returncode == 2 and message in run.stderr and "Traceback" not in run.stderr
