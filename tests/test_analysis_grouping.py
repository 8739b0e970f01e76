"""Which runs the analysis takes as seeds of one method, and what the summary says about the seeds it counts: runs
of other settings are not averaged, simulated time is named so for every simulated backend, and the test values,
unfinished runs and failed runs behind a mean are said."""
from __future__ import annotations

import json
import os
import re
import socket
import subprocess
import sys
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
import pytest

from test_analysis import REPO, write_results_folder


def run_folder(root: Path, name: str, final: float, *, scheduler: str = "bohb", seed: int = 0,
               test: float | None = None, backend: str = "simulated", **metadata) -> Path:
    """A run of nasbench201 whose incumbent is ``final`` (its test value ``test``, NaN if None); ``metadata``
    overrides entries of its metadata.json."""
    test = float("nan") if test is None else test
    reports = [{"trial_id": 0, "tuner_time": 10.0, "epoch": 1, "valid_error": final + 0.1, "test_error": test + 0.1},
               {"trial_id": 0, "tuner_time": 20.0, "epoch": 2, "valid_error": final, "test_error": test}]
    folder = write_results_folder(root, name, reports, {0: {"x0": "op0"}}, scheduler=scheduler, seed=seed,
                                  max_resource=2, backend=backend, benchmark="nasbench201")
    path = folder / "metadata.json"
    path.write_text(json.dumps({**json.loads(path.read_text()), "dataset": "/data/mnist10k.npz",
                                "table_seed": "mean", **metadata}))
    return folder


def summary(root: Path, **kwargs) -> str:
    from analysis.load import load_experiments
    from analysis.summary import summary_markdown
    return summary_markdown(load_experiments(root), **kwargs)


def section(md: str, heading: str) -> str:
    """The text of the section under ``## heading``, up to the next such heading."""
    return md.split(f"## {heading}\n", 1)[1].split("\n## ", 1)[0]


# 1. Runs of other settings are other groups -----------------------------------------------------------------------

def test_runs_on_two_tables_are_two_groups_not_two_seeds(tmp_path):
    from analysis.load import group_by_benchmark, load_experiments
    run_folder(tmp_path, "bohb-mnist", 0.02, seed=0, dataset="/data/mnist10k.npz")
    run_folder(tmp_path, "bohb-fmnist", 0.15, seed=1, dataset="/data/fmnist.npz")
    groups = group_by_benchmark(load_experiments(tmp_path))
    assert {name: [e.label for e in exps] for name, exps in groups.items()} == {
        "nasbench201 (dataset mnist10k)": ["bohb-mnist"], "nasbench201 (dataset fmnist)": ["bohb-fmnist"]}
    md = summary(tmp_path)
    assert "| bohb | 1 | 0.02 |" in section(md, "nasbench201 (dataset mnist10k)")
    assert "| bohb | 1 | 0.15 |" in section(md, "nasbench201 (dataset fmnist)")
    assert f"{np.mean([0.02, 0.15]):.3g}" not in md and "| bohb | 2 |" not in md  # not one mean over both


@pytest.mark.parametrize("setting, other, label", [
    ({"n_workers": 4}, {"n_workers": 8}, "n_workers"),
    ({"backend": "simulated"}, {"backend": "local"}, "backend"),
    ({"table_seed": "mean"}, {"table_seed": 1}, "table_seed"),
    ({"budget": {"resource_attr": "epoch", "min_resource": 1, "max_resource": 2, "eta": 3}},
     {"budget": {"resource_attr": "epoch", "min_resource": 1, "max_resource": 2, "eta": 2}}, "eta"),
    ({"stop_criterion": {"max_wallclock_time": None, "max_num_trials": 100}},
     {"stop_criterion": {"max_wallclock_time": None, "max_num_trials": 50}}, "max_num_trials"),
    ({"metric": "valid_error"}, {"metric": "test_error"}, "metric"),
], ids=["n_workers", "backend", "table_seed", "budget", "stop_criterion", "metric"])
def test_runs_that_differ_in_a_setting_are_two_groups_named_by_it(setting, other, label, tmp_path):
    from analysis.load import group_by_benchmark, load_experiments
    run_folder(tmp_path, "a-0", 0.02, seed=0, **setting)
    run_folder(tmp_path, "a-1", 0.04, seed=1, **setting)
    run_folder(tmp_path, "b-0", 0.15, seed=0, **other)
    groups = group_by_benchmark(load_experiments(tmp_path))
    assert sorted(sorted(e.label for e in exps) for exps in groups.values()) == [["a-0", "a-1"], ["b-0"]]
    for name in groups:  # the heading says which setting each group has, and only that one
        assert re.fullmatch(rf"nasbench201 \({label} [^,]+\)", name), name


def test_runs_alike_in_every_setting_are_one_group_named_by_its_benchmark(tmp_path):
    from analysis.load import group_by_benchmark, load_experiments
    for seed in range(2):
        for method in ("bohb", "rea"):
            run_folder(tmp_path, f"{method}-{seed}", 0.1 + seed / 100, scheduler=method, seed=seed)
    groups = group_by_benchmark(load_experiments(tmp_path))
    assert list(groups) == ["nasbench201"] and len(groups["nasbench201"]) == 4
    assert "| bohb | 2 |" in summary(tmp_path)


def test_two_tables_with_one_name_are_told_apart_by_their_paths(tmp_path):
    from analysis.load import group_by_benchmark, load_experiments
    run_folder(tmp_path, "a", 0.02, dataset="/here/mnist10k.npz")
    run_folder(tmp_path, "b", 0.15, dataset="/there/mnist10k.npz")
    assert sorted(group_by_benchmark(load_experiments(tmp_path))) == [
        'nasbench201 (dataset "/here/mnist10k.npz")', 'nasbench201 (dataset "/there/mnist10k.npz")']


# 2. Simulated time ------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("backend, simulated", [("simulated", True), ("simulated_syne_tune", True), ("local", False),
                                                ("ray", False), ("a_backend_no_longer_registered", False)])
def test_every_simulated_backend_keeps_simulated_seconds(backend, simulated, tmp_path):
    from analysis.load import load_experiment
    exp = load_experiment(run_folder(tmp_path, "run", 0.1, backend=backend))
    unit = "simulated seconds" if simulated else "seconds"
    assert exp.simulated is simulated and exp.time_unit == unit
    assert f"times in {unit}." in summary(tmp_path)


@pytest.mark.parametrize("simulated", [True, False])
def test_metadata_says_whether_time_is_simulated(simulated, tmp_path):
    from analysis.load import load_experiment
    exp = load_experiment(run_folder(tmp_path, "run", 0.1, backend="a_new_backend", simulated_time=simulated))
    assert exp.simulated is simulated


def test_the_analysis_reads_results_folders_without_the_tuning_code():
    # The results folder is the only contract between tuning and analysis (ARCHITECTURE.md).
    code = ("import sys, analysis.load, analysis.summary, analysis.trajectories, analysis.workers, analysis.plots; "
            "print(sorted(m for m in sys.modules if m.split('.')[0] in ('torch', 'syne_tune', 'sklearn', 'ray', "
            "'launchers', 'backends', 'schedulers', 'benchmarks')))")
    out = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


# 3. The seeds a test value is over ----------------------------------------------------------------------------------

def test_a_test_mean_over_fewer_seeds_says_how_many(tmp_path):
    from analysis.load import load_experiments
    from analysis.summary import method_summary
    tests = [0.02, 0.03, None]
    for seed, test in enumerate(tests):
        run_folder(tmp_path, f"bohb-{seed}", 0.01, seed=seed, test=test)
    for seed in range(2):  # a method whose incumbents carry no test value
        run_folder(tmp_path, f"rea-{seed}", 0.01, scheduler="rea", seed=seed)
    table = method_summary(load_experiments(tmp_path), 0.5).set_index("method")
    reported = [t for t in tests if t is not None]
    assert table.loc["bohb", "n_test"] == len(reported) and table.loc["bohb", "n_seeds"] == len(tests)
    assert table.loc["bohb", "test_mean"] == pytest.approx(np.mean(reported))
    assert table.loc["bohb", "test_se"] == pytest.approx(np.std(reported, ddof=1) / np.sqrt(len(reported)))
    md = summary(tmp_path)
    assert "| bohb | 3 | 0.01 ± 0 | 0.025 ± 0.005 (2/3) |" in md
    assert "| rea | 2 | 0.01 ± 0 | – |" in md


# 4. Runs that did not finish ----------------------------------------------------------------------------------------

def test_runs_that_did_not_finish_are_counted_and_named(tmp_path):
    now = datetime.now(timezone.utc).isoformat()
    run_folder(tmp_path, "bohb-0", 0.01, seed=0)
    run_folder(tmp_path, "bohb-1", 0.02, seed=1, status="interrupted")
    run_folder(tmp_path, "bohb-2", 0.03, seed=2, status="failed")
    run_folder(tmp_path, "bohb-3", 0.04, seed=3, status="running", host=socket.gethostname(), pid=os.getpid(),
               heartbeat=now)
    md = summary(tmp_path)
    assert f"| bohb | 4 | {np.mean([0.01, 0.02, 0.03, 0.04]):.4g} ± " in md  # not dropped
    named = re.search(r"^Counted as seeds .* did not finish: (.*)\.$", md, re.MULTILINE)
    assert named and named.group(1) == "`bohb-1` (interrupted), `bohb-2` (failed), `bohb-3` (running)"


def test_finished_runs_get_no_such_line(tmp_path):
    for seed in range(2):
        run_folder(tmp_path, f"bohb-{seed}", 0.01, seed=seed)
    assert "did not finish" not in summary(tmp_path)


# 5. Failed runs of a comparison -----------------------------------------------------------------------------------

def test_a_comparisons_failed_runs_are_listed_per_method(launch_in_process, nb201_table_path, tmp_path, monkeypatch):
    """A run that fails (its status failed, exit code 1) is not loaded, and the summary says so for its method."""
    import launchers.compare as compare

    run = compare._run_one

    def fails(task, callbacks=()):
        code = run(task, callbacks)
        if task.key != "hyperband-seed1":
            return code
        path = task.plan.folder / "metadata.json"
        path.write_text(json.dumps({**json.loads(path.read_text()), "status": "failed"}))
        return 1

    monkeypatch.setattr(compare, "_run_one", fails)
    out = tmp_path / "cmp"
    assert compare.main(["--benchmark", "nasbench201", "--dataset", str(nb201_table_path), "--schedulers",
                         "random_search", "hyperband", "--seeds", "2", "--max-num-trials", "4", "--out", str(out),
                         "--jobs", "1"]) == 1
    md = (out / "summary.md").read_text()
    assert "1 of 2 hyperband runs failed, not counted: hyperband-seed1." in md
    assert "| hyperband | 1 |" in md and "| random_search | 2 |" in md
    assert "random_search runs failed" not in md
