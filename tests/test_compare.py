"""launchers/compare.py: every (method, seed) run on the simulated backend, the report, and reruns that skip what
finished."""
import json
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest

from conftest import REPO_ROOT, default_signals, read_results, write_synthetic_nb201_table
from launchers.compare import main

RUNS = ["hyperband-seed0", "hyperband-seed1", "random_search-seed0", "random_search-seed1"]


def flags(table: Path, out: Path, *more: str) -> list[str]:
    return ["--benchmark", "nasbench201", "--dataset", str(table), "--schedulers", "random_search", "hyperband",
            "--seeds", "2", "--max-num-trials", "12", "--n-workers", "2", "--out", str(out), *more]


def status(folder: Path) -> str:
    return json.loads((folder / "metadata.json").read_text())["status"]


@pytest.fixture
def compare(launch_in_process, nb201_table_path, tmp_path):
    """``compare(*more)`` runs compare.py in this process, its runs one after the other (``--jobs 1``), on the
    synthetic table into ``tmp_path/cmp``; returns the exit code. (``launch_in_process`` restores what runs set.)"""
    return lambda *more: main(flags(nb201_table_path, tmp_path / "cmp", "--jobs", "1", *more))


def test_every_method_and_seed_runs_as_a_launch_would_and_the_report_compares_them(
        compare, launch_in_process, nb201_table_path, tmp_path):
    assert compare() == 0
    out = tmp_path / "cmp"
    assert sorted(p.name for p in (out / "runs").iterdir()) == RUNS
    for name in RUNS:
        results, trials, metadata = read_results(out / "runs" / name)
        assert metadata["status"] == "finished" and metadata["backend"] == "simulated" and len(trials) == 12
        assert f"{metadata['scheduler']}-seed{metadata['seed']}" == name
    # A run is what launch.py writes for the same flags.
    assert launch_in_process("--scheduler", "hyperband", "--backend", "simulated", "--benchmark", "nasbench201",
                             "--dataset", str(nb201_table_path), "--seed", "1", "--max-num-trials", "12",
                             "--n-workers", "2", "--experiment-name", "alone", cwd=tmp_path) == 0
    for file in ("results.csv", "trials.csv"):
        assert (tmp_path / "results" / "alone" / file).read_bytes() == (out / "runs" / RUNS[1] / file).read_bytes()
    summary = (out / "summary.md").read_text()
    for method in ("random_search", "hyperband"):  # mean ± standard error over 2 seeds, test error, time to target
        assert re.search(rf"^\| {method} \| 2 \| [\d.]+ ± [\d.]+ \| [\d.]+ ± [\d.]+ \|.*\| \d/2 \|", summary,
                         re.MULTILINE), summary
    assert "Time to target" in summary and (out / "anytime.png").stat().st_size > 10_000


def test_a_rerun_skips_finished_runs_and_redoes_the_others(compare, tmp_path, capsys):
    assert compare() == 0
    runs = tmp_path / "cmp" / "runs"
    assert sorted(p.name for p in runs.iterdir()) == RUNS and all(status(runs / name) == "finished" for name in RUNS)
    assert "| hyperband | 2 |" in (tmp_path / "cmp" / "summary.md").read_text()
    before = {name: (runs / name / "results.csv").read_bytes() for name in RUNS}
    written = {name: (runs / name / "results.csv").stat().st_mtime_ns for name in RUNS}
    metadata = json.loads((runs / RUNS[2] / "metadata.json").read_text())
    (runs / RUNS[2] / "metadata.json").write_text(json.dumps({**metadata, "status": "interrupted"}))
    capsys.readouterr()
    assert compare() == 0
    assert "3 of 4 runs already finished" in capsys.readouterr().out
    assert {name: (runs / name / "results.csv").stat().st_mtime_ns for name in RUNS if name != RUNS[2]} == \
        {name: t for name, t in written.items() if name != RUNS[2]}  # untouched
    assert status(runs / RUNS[2]) == "finished"
    assert (runs / RUNS[2] / "results.csv").read_bytes() == before[RUNS[2]]  # the same seed, the same run


def test_finished_runs_with_other_settings_are_not_mixed_in(compare, capsys):
    assert compare() == 0
    with pytest.raises(SystemExit) as exit_:
        compare("--max-epochs", "3")
    assert exit_.value.code == 2
    error = capsys.readouterr().err
    assert "holds a finished run with other settings (budget" in error and "give another --out" in error


@pytest.mark.parametrize("more, message", [
    (["--schedulers", "random_search", "hyperbnd"], "Unknown scheduler 'hyperbnd': choose from random_search,"),
    (["--seeds", "0"], "--seeds must be at least 1, got 0."),
    (["--jobs", "0"], "--jobs must be at least 1, got 0."),
    (["--max-epochs", "99"], "--max-epochs 99 must satisfy"),
])
def test_bad_flags_are_one_sentence(more, message, compare, capsys, tmp_path):
    with pytest.raises(SystemExit) as exit_:
        compare(*more)
    assert exit_.value.code == 2
    error = capsys.readouterr().err
    assert message in error and "Traceback" not in error
    assert not (tmp_path / "cmp" / "runs").exists()


@pytest.mark.slow
def test_an_interrupted_comparison_keeps_complete_csvs_and_a_rerun_finishes_it(tmp_path):
    """Runs in worker processes; SIGTERM (as Ctrl-C) stops them with their CSVs complete; the rerun does the rest."""
    # 400 epochs make a random search run last seconds, not a fraction of one, so that the signal finds it running.
    table = write_synthetic_nb201_table(tmp_path / "long.npz", epochs=400)
    out = tmp_path / "cmp"
    command = [sys.executable, str(REPO_ROOT / "launchers" / "compare.py"),
               *flags(table, out, "--seeds", "3", "--max-num-trials", "300", "--jobs", "2")]
    process = subprocess.Popen(command, cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                               preexec_fn=default_signals)
    started_before_a_finish: set[str] | None = None

    def a_run_started_after_a_finish_is_running() -> bool:
        # The first two runs start and may end together; a run that started after one finished has its whole
        # length left when the signal lands.
        nonlocal started_before_a_finish
        states = {p.name: status(p) for p in (out / "runs").glob("*") if (p / "metadata.json").exists()}
        if started_before_a_finish is None:
            started_before_a_finish = set(states) if "finished" in states.values() else None
            return False
        return any(state == "running" and name not in started_before_a_finish for name, state in states.items())

    deadline = time.time() + 120
    while time.time() < deadline and not a_run_started_after_a_finish_is_running():
        time.sleep(0.05)
    process.send_signal(signal.SIGTERM)
    _, err = process.communicate(timeout=60)
    assert process.returncode == 130 and "Run the same command again" in err
    statuses = {p.name: status(p) for p in (out / "runs").iterdir() if (p / "metadata.json").exists()}
    assert "interrupted" in statuses.values() and len(statuses) < 6, statuses
    for name, state in statuses.items():  # every CSV complete, whatever the run's state
        results, trials, _ = read_results(out / "runs" / name)
        assert set(results["trial_id"]) <= set(trials["trial_id"])
    finished = {name: (out / "runs" / name / "results.csv").read_bytes() for name, s in statuses.items()
                if s == "finished"}
    rerun = subprocess.run(command, cwd=tmp_path, capture_output=True, text=True, timeout=300)
    assert rerun.returncode == 0, rerun.stderr
    assert f"{len(finished)} of 6 runs already finished" in rerun.stdout
    runs = list((out / "runs").iterdir())
    assert len(runs) == 6 and all(status(p) == "finished" for p in runs)
    assert all((out / "runs" / name / "results.csv").read_bytes() == data for name, data in finished.items())
    assert len(pd.read_csv(out / "runs" / "random_search-seed2" / "trials.csv")) == 300
