"""The NAS-Bench-201 table the project ships (trained by generate_table on MNIST-10k) and the README's offline run."""
import re
import shlex
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest
from scipy.stats import spearmanr

from benchmarks.nasbench201.blackbox import OBJECTIVES, NB201Blackbox
from benchmarks.nasbench201.card import ZERO_CLASS
from benchmarks.nasbench201.encoding import NUM_ARCHS, canonical_index, index_to_config, is_zero_cell
from benchmarks.nasbench201.generate_table import read_runs, train_script_command
from benchmarks.nasbench201.table import default_table_path, load_named_table
from benchmarks.registry import NASBENCH201_DEFAULT_TABLE
from conftest import REPO_ROOT, reports, run_script


@pytest.fixture(scope="module")
def table():
    path = default_table_path(NASBENCH201_DEFAULT_TABLE)
    assert path.is_file(), f"the shipped table {path} is missing"
    return load_named_table(NASBENCH201_DEFAULT_TABLE)[0]


def test_every_architecture_resolves_to_a_finite_answer(table):
    blackbox = NB201Blackbox(table)
    held = {int(a) for a in table.archs}
    exact = 0
    for index in range(NUM_ARCHS):
        row, is_estimated = blackbox.resolve(index_to_config(index))
        if not is_estimated:
            exact += 1
            assert int(table.archs[row]) in (index, canonical_index(index)) and canonical_index(index) in held
    assert exact == table.meta["coverage"]["architectures_covered"]
    # Estimated answers (a sample, the surrogate is the same for all) are finite and flagged.
    estimated = [i for i in range(0, NUM_ARCHS, 97) if canonical_index(i) not in held][:20]
    for index in estimated:
        curves = blackbox.curves(index_to_config(index))
        assert curves.shape == (table.n_epochs, len(OBJECTIVES)) and np.isfinite(curves).all()
        assert (curves[:, OBJECTIVES.index("estimated")] == 1).all()


def test_errors_lie_in_0_1_without_nan_and_runtimes_are_positive(table):
    for metric in ("train_error", "valid_error", "test_error"):
        values = table.array(metric)
        assert not np.isnan(values).any() and (values >= 0).all() and (values <= 1).all(), metric
    for metric in ("train_loss", "valid_loss", "test_loss"):
        assert np.isfinite(table.array(metric)).all(), metric
    assert (table.array("epoch_time") > 0).all()
    assert table.n_epochs >= 9  # budgets 1, 3 and 9 exist for eta 3
    assert (np.asarray([table.figure(int(a), "params") for a in table.archs]) > 0).all()


def test_zero_output_cells_are_worse_than_the_best_cells(table):
    assert ZERO_CLASS in table
    assert all(is_zero_cell(i) == (canonical_index(i) == ZERO_CLASS) for i in range(0, NUM_ARCHS, 7))
    final = np.nanmean(table.array("valid_error"), axis=1)[:, -1]
    zero = table.curve(ZERO_CLASS, "valid_error")[-1]
    assert zero > 0.5 and zero > np.sort(final)[:10].max() + 0.3


def test_card_describes_the_table(table):
    card = default_table_path(NASBENCH201_DEFAULT_TABLE).with_suffix(".md").read_text()
    assert f"{len(table)} of the 8765 isomorphism classes" in card
    assert "Rank correlation" in card and "Best architectures" in card and "core-hours" in card
    final = np.nanmean(table.array("valid_error"), axis=1)
    test = np.nanmean(table.array("test_error"), axis=1)
    assert f"| against epoch 9 | {spearmanr(final[:, 0], final[:, 8]).statistic:.3f} | " in card
    assert f"correlate at only {spearmanr(final[:, 8], test[:, 8]).statistic:.3f}" in card


def readme_offline_command() -> list[str]:
    readme = (REPO_ROOT / "README.md").read_text()
    match = re.search(r"^(python launchers/launch_bohb\.py --backend simulated[^\n]*)$", readme, re.MULTILINE)
    assert match, "the README has no offline simulated command"
    return match.group(1).split()


def test_readme_offline_command_runs_end_to_end(tmp_path):
    command = readme_offline_command()
    run = subprocess.run([sys.executable, str(REPO_ROOT / command[1]), *command[2:], "--results-dir",
                          str(tmp_path), "--experiment-name", "offline"], cwd=REPO_ROOT, capture_output=True,
                         text=True, timeout=300)
    assert run.returncode == 0, run.stderr
    trials = pd.read_csv(tmp_path / "offline" / "trials.csv")
    results = pd.read_csv(tmp_path / "offline" / "results.csv")
    assert len(trials) == 100 and results["valid_error"].between(0, 1).all()
    assert set(results["estimated"]) <= {0, 1} and "Best valid_error" in run.stdout


@pytest.mark.slow
def test_shipped_rows_are_reproduced_by_the_current_train_script(real_mnist10k, tmp_path):
    """The card's command, with today's code, gives the numbers of the oldest and the newest shipped rows: the
    table still describes what `nasbench201_train.py` trains, although the code was refactored while it grew."""
    header, results = read_runs(REPO_ROOT / "benchmarks" / "nasbench201" / "data" / "mnist10k-runs.jsonl")
    header["data"]["dataset_path"] = str(real_mnist10k)
    trained = [r for r in results if r["arch"] != ZERO_CLASS]
    for record in (trained[0], trained[-1]):
        command = shlex.split(train_script_command(header, record["arch_str"]))
        metrics = reports(run_script(REPO_ROOT / command[1], *command[2:], cwd=tmp_path))
        for metric in ("train_loss", "train_error", "valid_loss", "valid_error"):
            assert [m[metric] for m in metrics] == pytest.approx(record["metrics"][metric], rel=1e-4), metric
