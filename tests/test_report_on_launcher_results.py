"""analysis/report.py on real results folders written by the launchers (local and simulated backends)."""
import subprocess
import sys

import pytest

from conftest import REPO_ROOT
from test_launchers import custom_flags, launch, quick_script  # noqa: F401 (fixture)
from test_simulated import sim_dir, simulate, table_path  # noqa: F401 (fixtures)


def report(*args, cwd):
    return subprocess.run([sys.executable, str(REPO_ROOT / "analysis" / "report.py"), *args], cwd=cwd,
                          capture_output=True, text=True, timeout=300)


@pytest.mark.slow
def test_report_on_a_short_bohb_run(quick_script, tmp_path):  # noqa: F811
    run = launch("bohb", *custom_flags(*quick_script, "--n-workers", "2", "--max-num-trials", "20",
                                       "--experiment-name", "bohb-run"), cwd=tmp_path)
    assert run.returncode == 0, run.stderr
    out = report("results/bohb-run", "--out", "report", cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    pngs = {p.name for p in (tmp_path / "report").rglob("*.png")}
    assert {"anytime.png", "error_curves.png", "losses_over_time.png", "model_based_hist.png",
            "concurrency.png"} <= pngs
    assert all(p.stat().st_size > 5000 for p in (tmp_path / "report").rglob("*.png"))
    summary = (tmp_path / "report" / "summary.md").read_text()
    assert "bohb-run" in summary and "x" in summary


@pytest.mark.slow
def test_report_compares_methods_over_seeds_on_simulated_runs(sim_dir):  # noqa: F811
    for scheduler in ("random_search", "bohb"):
        for seed in ("1", "2"):
            simulate(sim_dir, scheduler, f"{scheduler}-{seed}", "--max-num-trials", "30", "--seed", seed)
    out = report("results", "--out", "report", cwd=sim_dir)
    assert out.returncode == 0, out.stderr
    summary = (sim_dir / "report" / "summary.md").read_text()
    assert "random_search" in summary and "bohb" in summary
    assert (sim_dir / "report" / "anytime.png").stat().st_size > 5000


def test_report_on_a_missing_folder_says_so(tmp_path):
    out = report("nowhere", "--out", "report", cwd=tmp_path)
    assert out.returncode == 2 and "nowhere" in out.stderr and "Traceback" not in out.stderr
