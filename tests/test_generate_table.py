"""The table generator, the table build and card, and the setting experiment, on tiny synthetic MNIST."""
from __future__ import annotations

import json
import os
import shlex
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from scipy.stats import spearmanr
from syne_tune.report import retrieve

from benchmarks.nasbench201 import encoding as enc
from benchmarks.nasbench201.build_table import build_table
from benchmarks.nasbench201.card import card_markdown
from benchmarks.nasbench201.generate_table import PER_SEED, class_order, main
from benchmarks.nasbench201.runs import GenerationError, read_runs
from benchmarks.nasbench201.table import NB201Table
from conftest import REPO_ROOT

TINY = "dataset=mnist,valid_fraction=0.2,n_train=160,n_valid=60,n_test=100,image_size=8,channels=2,epochs=3," \
       "batch_size=32,learning_rate=0.05,seeds=0+1"


def generate(*args: str, timeout: float = 300) -> subprocess.CompletedProcess:
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    return subprocess.run([sys.executable, "-m", "benchmarks.nasbench201.generate_table", *args], cwd=REPO_ROOT,
                          env=env, capture_output=True, text=True, timeout=timeout)


@pytest.fixture(scope="module")
def runs(synthetic_mnist_root, tmp_path_factory) -> tuple[Path, list[str]]:
    """A runs file with 4 classes trained by 2 worker processes: (its path, the run arguments)."""
    out = tmp_path_factory.mktemp("runs") / "synthetic-runs.jsonl"
    args = ["--set", f"{TINY},dataset_path={synthetic_mnist_root}", "--out", str(out), "--name", "synthetic"]
    result = generate(*args, "--workers", "2", "--n-classes", "4")
    assert result.returncode == 0, result.stderr
    return out, args


def lines(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def test_class_order_is_a_seeded_permutation_of_the_official_classes() -> None:
    order = class_order(0)
    assert sorted(order) == enc.class_representatives() and len(order) == 6466
    assert order == class_order(0) and order[:50] != class_order(1)[:50]


@pytest.mark.slow
def test_run_appends_one_line_per_class_with_a_curve_per_seed(runs) -> None:
    out, _ = runs
    records = lines(out)
    assert records[0]["type"] == "header" and records[0]["setting"]["epochs"] == 3
    assert records[0]["split_sizes"] == {"n_train": 160, "n_valid": 60, "n_test": 100, "image_shape": [1, 8, 8]}
    results = records[1:]
    assert [r["arch"] for r in results] == class_order(0)[:4] or \
        sorted(r["arch"] for r in results) == sorted(class_order(0)[:4])
    for r in results:
        assert set(r["metrics"]) == set(PER_SEED) and r["seeds"] == [0, 1]
        assert all(len(per_seed) == 2 and all(len(curve) == 3 for curve in per_seed)
                   for per_seed in r["metrics"].values())
        assert r["metrics"]["valid_error"][0] != r["metrics"]["valid_error"][1]  # two seeds, two networks
        assert all(0 <= e <= 1 for curve in r["metrics"]["test_error"] for e in curve)
        assert r["params"] > 0 and len(r["epoch_cpu_time"]) == 3 and r["device"].startswith("CPU")


@pytest.mark.slow
def test_restarts_never_retrain_and_refuse_other_settings(runs, tmp_path, capsys) -> None:
    out, args = runs
    before = out.read_text()
    result = generate(*args, "--workers", "0", "--n-classes", "4")
    assert result.returncode == 0, result.stderr
    assert "4 classes done, 0 of the first 4 to train" in result.stdout and out.read_text() == before
    copy = tmp_path / "runs.jsonl"
    copy.write_bytes(out.read_bytes() + b'{"type":"result","arch":12')  # a line cut short by a kill
    more = [a if a != str(out) else str(copy) for a in args]
    result = generate(*more, "--workers", "0", "--n-classes", "5")
    assert result.returncode == 0, result.stderr
    assert [r["arch"] for r in lines(copy)[1:]] == [r["arch"] for r in lines(out)[1:]] + [class_order(0)[4]]
    other = [a.replace("learning_rate=0.05", "learning_rate=0.1") for a in args]
    assert main([*other, "--workers", "0", "--n-classes", "5"]) == 1
    err = capsys.readouterr().err
    assert "was made with other settings" in err and "Traceback" not in err and out.read_text() == before


def test_bad_setting_is_one_sentence(capsys) -> None:
    with pytest.raises(SystemExit):
        main(["--set", "epochz=3"])
    assert "'epochz=3' is not accepted" in capsys.readouterr().err


@pytest.mark.slow
def test_build_makes_a_table_whose_values_match_the_lines_and_a_true_card(runs, tmp_path) -> None:
    out, _ = runs
    loaded = NB201Table.load(build_table(out).save(tmp_path / "synthetic.npz"))
    results = lines(out)[1:]
    assert loaded.dataset == "synthetic" and loaded.n_epochs == 3 and loaded.seeds == (0, 1)
    assert list(loaded.archs) == sorted(r["arch"] for r in results)
    for r in results:
        for metric in PER_SEED:
            for k, seed in enumerate((0, 1)):
                np.testing.assert_array_equal(loaded.curve(r["arch"], metric, seed),
                                              np.float32(r["metrics"][metric][k]))
        np.testing.assert_array_equal(loaded.curve(r["arch"], "epoch_time"), np.float32(r["epoch_cpu_time"]))
        assert loaded.figure(r["arch"], "class_size") == len(enc.class_members(r["arch"]))
    meta = loaded.meta
    assert meta["coverage"]["classes_trained"] == 4 and meta["setting"]["learning_rate"] == 0.05
    assert "--seeds 0,1" in meta["reproduce"]
    # the card's figures, recomputed from the lines
    card = card_markdown(loaded)
    working = [r for r in results if enc.is_working(r["arch"])]
    final = [np.mean([c[-1] for c in r["metrics"]["valid_error"]]) for r in working]
    test = [np.mean([c[-1] for c in r["metrics"]["test_error"]]) for r in working]
    if len(working) > 2:
        assert f"same answers (Spearman): {spearmanr(final, test).statistic:.3f}" in card
    seed_diff = [r["metrics"]["valid_error"][0][-1] - r["metrics"]["valid_error"][1][-1] for r in working]
    assert f"noise standard deviation of {np.std(seed_diff, ddof=1) / np.sqrt(2):.4f}" in card
    if len(working) > 2:
        r = spearmanr([r["metrics"]["valid_error"][0][-1] for r in working],
                      [r["metrics"]["valid_error"][1][-1] for r in working]).statistic
        assert f"Two independent answers would agree at about {2 * r / (1 + r):.3f}" in card
        assert f"answer vs answer {2 * r / (1 + r):.3f} {'meets' if 2 * r / (1 + r) >= 0.7 else 'misses'} 0.7" in card
    assert "4 of the 6466 classes" in card and "are not answered" in card
    per_class = sum(r["cpu_seconds"] for r in results) / len(results)
    assert f"The other 6,462 would take about {6462 * per_class / 3600:.0f} core-hours more" in card


@pytest.mark.slow
def test_table_row_reproduced_by_the_train_script(runs, synthetic_mnist_root) -> None:
    """The card's command gives the table's numbers: same code, same data, the seeds side by side."""
    out, _ = runs
    table = build_table(out)
    record = read_runs(out)[1][0]
    command = shlex.split(table.meta["reproduce"].replace("ARCH", record["arch_str"]))
    # From the repository root, as the card says: its data path may be relative to it (../shared/... on every clone).
    result = subprocess.run([sys.executable, str(REPO_ROOT / command[1]), *command[2:]], cwd=REPO_ROOT,
                            capture_output=True, text=True, timeout=180)
    assert result.returncode == 0, result.stderr
    reports = retrieve(result.stdout.splitlines())
    for metric in ("train_loss", "valid_error", "test_error"):
        mean = np.mean(record["metrics"][metric], axis=0)
        assert [m[metric] for m in reports] == pytest.approx(mean, rel=1e-4, abs=1e-6), metric


def test_read_runs_rejects_a_garbled_line(tmp_path) -> None:
    path = tmp_path / "runs.jsonl"
    path.write_text('{"type": "header", "format": "nb201-runs/2"}\nnot json\n')
    with pytest.raises(GenerationError, match="Line 2"):
        read_runs(path)
    assert read_runs(tmp_path / "absent.jsonl") == (None, [])


@pytest.mark.slow
def test_setting_experiment_runs_end_to_end(synthetic_mnist_root, tmp_path) -> None:
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    command = [sys.executable, "-m", "benchmarks.nasbench201.setting_experiment"]
    candidate = TINY.replace("epochs=3", "epochs=3,n_train=100")
    run = subprocess.run([*command, "run", "--candidate", candidate, "--n-classes", "4", "--dataset-path",
                          str(synthetic_mnist_root), "--out", str(tmp_path)], cwd=REPO_ROOT, env=env,
                         capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stderr
    [path] = tmp_path.glob("*.jsonl")
    records = lines(path)
    assert records[0]["setting"]["seeds"] == [0, 1] and len(records) == 1 + 4 * 2
    assert {tuple(r["seeds"]) for r in records[1:]} == {(0, 1), (2, 3)}  # two independent answers per class
    report = subprocess.run([*command, "report", "--out", str(tmp_path)], cwd=REPO_ROOT, env=env,
                            capture_output=True, text=True, timeout=120)
    assert report.returncode == 0, report.stderr
    row = next(line for line in report.stdout.splitlines() if line.startswith(f"| {records[0]['candidate']} |"))
    cells = [c.strip() for c in row.split("|")[1:-1]]
    assert cells[2] == "4" and float(cells[3]) > 0  # classes, CPU seconds
    answers = [[np.mean([c[-1] for c in r["valid_error"]]) for r in records[1:] if r["run"] == run_]
               for run_ in (0, 1)]
    assert float(cells[5]) == pytest.approx(spearmanr(*answers).statistic, abs=1e-3)
