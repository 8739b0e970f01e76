"""The NAS-Bench-201 tables the project ships (trained by generate_table on MNIST-10k and on Fashion-MNIST) and the
README's offline run."""
import json
import re
import shlex
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest
from scipy.stats import spearmanr

from benchmarks.nasbench201.answers import ClassAnswers
from benchmarks.nasbench201.encoding import NUM_ARCHS, class_members, class_representatives, is_working
from benchmarks.nasbench201.runs import read_runs
from benchmarks.nasbench201.table import DEFAULT_TABLE, default_table_path, load_named_table
from conftest import REPO_ROOT, reports, run_script

SHIPPED = "mnist10k"
TABLES = ("mnist10k", "fmnist")
FASHION_MNIST = REPO_ROOT.parent / "shared" / "datasets" / "fashion-mnist"  # where the card's command looks


@pytest.fixture(scope="module")
def table():
    path = default_table_path(SHIPPED)
    assert path.is_file(), f"the shipped table {path} is missing"
    return load_named_table(SHIPPED)[0]


@pytest.fixture(scope="module", params=TABLES)
def any_table(request):
    """Each table the project ships, with its answers."""
    table = load_named_table(request.param)[0]
    return table, ClassAnswers(table)


def test_every_member_of_a_class_gets_the_same_answer(any_table):
    _, answers = any_table
    answered = 0
    for rep in class_representatives():
        members = class_members(rep)
        if not answers.answered(rep):
            assert not any(answers.answered(m) for m in members)
            continue
        answered += len(members)
        want = answers.curve(rep, "valid_error")
        for member in members:
            assert np.array_equal(answers.curve(member, "valid_error"), want)
    assert answered == len(answers.answered_cells()) > 4432  # more cells than mnist10k's old exact matches


def test_no_working_cell_is_answered_with_a_degenerate_curve(any_table):
    table, answers = any_table
    degenerate = [answers.curve(int(a), "valid_error") for a in table.archs if not is_working(int(a))]
    assert degenerate and all(curve[-1] > 0.8 for curve in degenerate)  # the zero-output cells are near chance
    for index in answers.answered_cells():
        if is_working(int(index)):
            curve = answers.curve(int(index), "valid_error")
            assert curve[-1] < 0.5 and not any(np.array_equal(curve, d) for d in degenerate)


def test_errors_lie_in_0_1_without_nan_and_runtimes_are_positive(any_table):
    table, _ = any_table
    for metric in ("train_error", "valid_error", "test_error"):
        values = table.array(metric)
        assert not np.isnan(values).any() and (values >= 0).all() and (values <= 1).all(), metric
    for metric in ("train_loss", "valid_loss", "test_loss"):
        assert np.isfinite(table.array(metric)).all(), metric
    assert (table.array("epoch_time") > 0).all()
    assert table.n_epochs >= 6  # Hyperband at eta 3 has at least two budgets (2 and 6 on fmnist, 1, 3, 9 on mnist10k)
    assert (np.asarray([table.figure(int(a), "params") for a in table.archs]) > 0).all()


def test_the_default_table_measures_every_official_class_so_every_cell_has_a_measured_answer():
    table, _ = load_named_table(DEFAULT_TABLE)
    answers = ClassAnswers(table)
    assert sorted(int(a) for a in table.archs) == sorted(class_representatives())  # all 6,466, each once
    assert len(answers.answered_cells()) == NUM_ARCHS
    card = default_table_path(DEFAULT_TABLE).with_suffix(".md").read_text()
    assert "6466 of the 6466 classes (100.0%), answering 15,625 of the 15,625 cells" in card
    assert "not yet trained" not in card


def test_card_describes_the_table(table):
    card = default_table_path(SHIPPED).with_suffix(".md").read_text()
    assert f"{len(table)} of the 8765 isomorphism classes" in card and "2110 of the 6466 official classes" in card
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
    assert set(results["estimated"]) == {0} and "Best valid_error" in run.stdout  # every answer a measurement
    metadata = json.loads((tmp_path / "offline" / "metadata.json").read_text())
    assert metadata["sampling"] == "the whole config space" and metadata["dataset"].endswith(f"{DEFAULT_TABLE}.npz")


@pytest.mark.slow
def test_shipped_rows_are_reproduced_by_the_current_train_script(real_mnist10k, tmp_path):
    """The card's command, with today's code, gives the numbers of the oldest and the newest shipped rows: the
    table still describes what `nasbench201_train.py` trains, although the code was refactored while it grew."""
    import torch

    header, results = read_runs(REPO_ROOT / "benchmarks" / "nasbench201" / "data" / "mnist10k-runs.jsonl")
    trained = [r for r in results if is_working(r["arch"])]
    if {trained[0]["torch"], trained[-1]["torch"]} != {torch.__version__}:
        pytest.skip(f"the rows were trained with torch {trained[0]['torch']}, this is {torch.__version__}: float "
                    "rounding differs between versions, and training amplifies it")
    data, train = header["data"], header["train"]
    flags = {"dataset": data["dataset"], "dataset_path": str(real_mnist10k), **{k: data[k] for k in (
        "valid_fraction", "data_fraction", "image_size")}, **{k: train[k] for k in (
            "channels", "cells_per_stage", "epochs", "batch_size", "learning_rate", "seed")}}
    for record in (trained[0], trained[-1]):
        args = ["--arch", record["arch_str"], "--device", "cpu", "--num_threads", "1",
                *[item for key, value in flags.items() for item in (f"--{key}", str(value))]]
        metrics = reports(run_script(REPO_ROOT / "training_scripts" / "nasbench201_train.py", *args, cwd=tmp_path))
        for metric in ("train_loss", "train_error", "valid_loss", "valid_error"):
            assert [m[metric] for m in metrics] == pytest.approx(record["metrics"][metric], rel=1e-4), metric


@pytest.mark.slow
def test_fashion_mnist_rows_are_reproduced_by_the_card_command():
    """The `fmnist` card's reproduce command, with today's code, gives the first and the last rows of the runs file (the
    mean of their two seeds), so the rows trained over many sessions all describe what the script trains."""
    import torch

    files = ("train-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz")
    if not all((FASHION_MNIST / name).is_file() for name in files):
        pytest.skip(f"real Fashion-MNIST not found under {FASHION_MNIST}")
    _, results = read_runs(REPO_ROOT / "benchmarks" / "nasbench201" / "data" / "fmnist-runs.jsonl")
    command = shlex.split(load_named_table("fmnist")[0].meta["reproduce"])
    for record in (results[0], results[-1]):
        if record["torch"] != torch.__version__:
            pytest.skip(f"row {record['arch']} was trained with torch {record['torch']}, this is {torch.__version__}: "
                        "float rounding differs between versions, and training amplifies it")
        args = [record["arch_str"] if item == "ARCH" else item for item in command[2:]]
        # From the repository root, as the card says: its data path is relative to it.
        run = subprocess.run([sys.executable, str(REPO_ROOT / command[1]), *args], cwd=REPO_ROOT,
                             capture_output=True, text=True, timeout=600)
        metrics = reports(run)
        for metric in ("train_loss", "valid_error", "test_error"):
            mean = np.mean(record["metrics"][metric], axis=0)
            assert [m[metric] for m in metrics] == pytest.approx(mean, rel=1e-4, abs=1e-6), (record["arch"], metric)


def test_fashion_mnist_table_and_card_come_from_the_runs_file():
    """The shipped `fmnist` table holds exactly the runs file's classes (its first lines: the file grows while the
    generator runs, the table is rebuilt at the end of a session) with their numbers, and its card's figures are
    those of the runs, recomputed here from the lines."""
    table, path = load_named_table("fmnist")
    _, results = read_runs(REPO_ROOT / "benchmarks" / "nasbench201" / "data" / "fmnist-runs.jsonl")
    built = results[:len(table)]
    assert sorted(r["arch"] for r in built) == [int(a) for a in table.archs]
    for r in built[::97]:  # a spread of rows, every metric and seed
        for metric, curves in r["metrics"].items():
            for k, curve in enumerate(curves):
                np.testing.assert_array_equal(table.curve(r["arch"], metric, k), np.float32(curve))
    working = [r for r in built if is_working(r["arch"])]
    seeds = np.array([[c[-1] for c in r["metrics"]["valid_error"]] for r in working], dtype=np.float32)
    final = seeds.mean(axis=1)
    test = np.array([np.mean(r["metrics"]["test_error"], axis=0)[-1] for r in working], dtype=np.float32)
    epochs = len(working[0]["metrics"]["valid_error"][0])
    early = np.array([np.mean(r["metrics"]["valid_error"], axis=0)[epochs // 3 - 1] for r in working], np.float32)
    card = path.with_suffix(".md").read_text()
    assert f"{len(built)} of the 6466 classes" in card
    assert f"Over the {len(working):,} working classes" in card
    assert f"median {np.median(final):.4f}" in card
    assert f"same answers (Spearman): {spearmanr(final, test).statistic:.3f}" in card
    assert f"epoch {epochs} validation error (Spearman): {spearmanr(early, final).statistic:.3f}" in card
    r = spearmanr(seeds[:, 0], seeds[:, 1]).statistic
    sd = np.std(seeds[:, 0] - seeds[:, 1], ddof=1) / np.sqrt(2)
    assert f"(Spearman over {len(working):,} classes): {r:.3f}" in card
    assert f"noise standard deviation of {sd:.4f}" in card and f"standard error of {sd / np.sqrt(2):.4f}" in card
    assert f"differ by less than about {2 * sd:.4f}" in card
