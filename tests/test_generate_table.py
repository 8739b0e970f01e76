"""The table generator on tiny synthetic MNIST: appending, restarting without retraining, building the table."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from syne_tune.report import retrieve

from benchmarks.nasbench201 import encoding as enc
from benchmarks.nasbench201.generate_table import RUN_METRICS, GenerationError, build_table, class_order, main, \
    read_runs
from benchmarks.nasbench201.table import NB201Table
from conftest import REPO_ROOT

SETTINGS = ["--valid-fraction", "0.2", "--data-fraction", "0.5", "--image-size", "8", "--channels", "2",
            "--cells-per-stage", "1", "--epochs", "2", "--batch-size", "32", "--learning-rate", "0.05"]


def generate(*args: str, cwd: Path, timeout: float = 300) -> subprocess.CompletedProcess:
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    return subprocess.run([sys.executable, "-m", "benchmarks.nasbench201.generate_table", *args], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=timeout)


@pytest.fixture(scope="module")
def runs(synthetic_mnist_root, tmp_path_factory) -> tuple[Path, list[str]]:
    """A runs file with 3 architectures trained by 2 worker processes: (its path, the run arguments)."""
    out = tmp_path_factory.mktemp("runs") / "synthetic-runs.jsonl"
    args = ["--dataset-path", str(synthetic_mnist_root), "--out", str(out), "--name", "synthetic", *SETTINGS]
    result = generate(*args, "--workers", "2", "--n-classes", "3", cwd=REPO_ROOT)
    assert result.returncode == 0, result.stderr
    return out, args


def lines(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def test_class_order_is_a_seeded_permutation_of_all_classes() -> None:
    order = class_order(0)
    assert sorted(order) == sorted(enc.isomorphism_classes()) and len(order) == 8765
    assert order == class_order(0) and order[:50] != class_order(1)[:50]
    assert all(enc.canonical_index(a) == a for a in order[:100])


def test_run_appends_one_line_per_architecture(runs) -> None:
    out, _ = runs
    records = lines(out)
    assert records[0]["type"] == "header" and records[0]["train"]["epochs"] == 2
    assert records[0]["split_sizes"] == {"n_train": 240, "n_valid": 60, "n_test": 200, "image_shape": [1, 8, 8]}
    results = records[1:]
    assert sorted(r["arch"] for r in results) == sorted(class_order(0)[:3])
    for r in results:
        assert set(r["metrics"]) == set(RUN_METRICS)
        assert all(len(v) == 2 for v in r["metrics"].values())
        assert all(0 <= e <= 1 for e in r["metrics"]["valid_error"] + r["metrics"]["test_error"])
        assert r["params"] > 0 and r["flops"] > 0 and r["torch"] and r["device"].startswith("CPU")
        assert r["arch_str"] == enc.index_to_string(r["arch"])


def test_restart_does_not_retrain(runs) -> None:
    out, args = runs
    before = out.read_text()
    result = generate(*args, "--workers", "2", "--n-classes", "3", cwd=REPO_ROOT)
    assert result.returncode == 0, result.stderr
    assert "3 architectures done, 0 of the first 3 classes to train" in result.stdout
    assert out.read_text() == before


def test_restart_with_more_classes_trains_only_the_new_ones(runs, tmp_path) -> None:
    out, args = runs
    copy = tmp_path / "runs.jsonl"
    copy.write_bytes(out.read_bytes() + b'{"type":"result","arch":12')  # a line cut short by a kill
    args = [a if a != str(out) else str(copy) for a in args]
    result = generate(*args, "--workers", "0", "--n-classes", "4", cwd=REPO_ROOT)
    assert result.returncode == 0, result.stderr
    records = lines(copy)  # the cut line was removed, then one line appended
    assert [r["arch"] for r in records[1:]] == [r["arch"] for r in lines(out)[1:]] + [class_order(0)[3]]


def test_restart_with_other_settings_is_refused(runs, capsys) -> None:
    out, args = runs
    before = out.read_text()
    changed = [a if a != "0.05" else "0.1" for a in args]  # another learning rate
    assert main([*changed, "--workers", "0", "--n-classes", "4"]) == 1
    err = capsys.readouterr().err
    assert "was made with other settings" in err and "Traceback" not in err
    assert out.read_text() == before


def test_build_makes_a_table_whose_values_match_the_lines(runs, tmp_path) -> None:
    out, _ = runs
    table = build_table(out)
    path = table.save(tmp_path / "synthetic.npz")
    loaded = NB201Table.load(path)
    results = lines(out)[1:]
    assert loaded.dataset == "synthetic" and loaded.n_epochs == 2 and loaded.seeds == (0,)
    assert list(loaded.archs) == sorted(r["arch"] for r in results)
    for r in results:
        for metric in ("train_loss", "train_error", "valid_loss", "valid_error", "test_loss", "test_error"):
            np.testing.assert_array_equal(loaded.curve(r["arch"], metric), np.float32(r["metrics"][metric]))
        times = r["metrics"]
        np.testing.assert_array_equal(loaded.curve(r["arch"], "epoch_time"), np.float32(times["epoch_cpu_time"]))
        np.testing.assert_array_equal(loaded.curve(r["arch"], "epoch_wall_time"), np.float32(times["epoch_time"]))
        assert loaded.figure(r["arch"], "params") == pytest.approx(r["params"] / 1e6)
        assert loaded.figure(r["arch"], "class_size") == len(enc.isomorphism_classes()[r["arch"]])
    meta = loaded.meta
    assert meta["canonical_only"] is True and meta["coverage"]["classes_trained"] == 3
    assert meta["settings"]["train"]["learning_rate"] == 0.05
    assert meta["provenance"]["torch_versions"] and meta["provenance"]["devices"]
    assert "nasbench201_train.py" in meta["reproduce"]


def test_build_command_writes_the_file(runs, tmp_path) -> None:
    out, _ = runs
    assert main(["build", "--runs", str(out), "--out", str(tmp_path / "t.npz")]) == 0
    assert len(NB201Table.load(tmp_path / "t.npz")) == 3
    assert main(["build", "--runs", str(tmp_path / "missing.jsonl")]) == 1


def test_table_row_reproduced_by_the_train_script(runs, synthetic_mnist_root, tmp_path) -> None:
    """The train script with the generator's settings gives the numbers of the table (same code, same data)."""
    out, _ = runs
    header, results = read_runs(out)
    record = results[0]
    script = REPO_ROOT / "training_scripts" / "nasbench201_train.py"
    data, train = header["data"], header["train"]
    result = subprocess.run(
        [sys.executable, str(script), "--arch", record["arch_str"], "--dataset", "mnist",
         "--dataset_path", str(synthetic_mnist_root), "--valid_fraction", str(data["valid_fraction"]),
         "--data_fraction", str(data["data_fraction"]), "--image_size", str(data["image_size"]),
         "--channels", str(train["channels"]), "--cells_per_stage", str(train["cells_per_stage"]),
         "--epochs", str(train["epochs"]), "--batch_size", str(train["batch_size"]),
         "--learning_rate", str(train["learning_rate"]), "--seed", str(train["seed"]), "--device", "cpu",
         "--num_threads", "1"], cwd=tmp_path, capture_output=True, text=True, timeout=180)
    assert result.returncode == 0, result.stderr
    reports = retrieve(result.stdout.splitlines())
    for metric in ("train_loss", "train_error", "valid_loss", "valid_error"):
        assert [m[metric] for m in reports] == pytest.approx(record["metrics"][metric], rel=1e-5)


def test_read_runs_rejects_a_garbled_line(tmp_path) -> None:
    path = tmp_path / "runs.jsonl"
    path.write_text('{"type": "header", "format": "nb201-runs/1"}\nnot json\n')
    with pytest.raises(GenerationError, match="Line 2"):
        read_runs(path)
    assert read_runs(tmp_path / "absent.jsonl") == (None, [])
