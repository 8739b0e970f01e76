"""analysis/report.py on real results folders written by the launchers (local and simulated backends)."""
import subprocess
import sys

import pytest

from conftest import REPO_ROOT, custom_flags, launch, simulate


def report(*args, cwd):
    return subprocess.run([sys.executable, str(REPO_ROOT / "analysis" / "report.py"), *args], cwd=cwd,
                          capture_output=True, text=True, timeout=300)


@pytest.mark.slow
def test_report_on_a_short_bohb_run(quick_script, tmp_path):
    run = launch("bohb", *custom_flags(*quick_script, "--n-workers", "2", "--max-num-trials", "20",
                                       "--experiment-name", "bohb-run"), cwd=tmp_path)
    assert run.returncode == 0, run.stderr
    out = report("results/bohb-run", "--out", "report", cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    pngs = {p.name for p in (tmp_path / "report").rglob("*.png")}
    assert {"anytime.png", "error_curves.png", "losses_over_time.png", "model_based_hist.png",
            "concurrency.png"} <= pngs
    summary = (tmp_path / "report" / "summary.md").read_text()
    assert "| bohb-run | bohb | 0 |" in summary and "x=" in summary


@pytest.mark.slow
def test_report_compares_methods_over_seeds_on_simulated_runs(nb201_table_path, tmp_path):
    for scheduler in ("random_search", "rea"):
        for seed in ("1", "2"):
            simulate(tmp_path, nb201_table_path, scheduler, f"{scheduler}-{seed}", "--max-num-trials", "20",
                     "--seed", seed)
    out = report("results", "--out", "report", cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    summary = (tmp_path / "report" / "summary.md").read_text()
    assert "| random_search | 2 |" in summary and "| rea | 2 |" in summary
    assert (tmp_path / "report" / "anytime.png").is_file()


def test_report_on_a_missing_folder_says_so(tmp_path):
    out = report("nowhere", "--out", "report", cwd=tmp_path)
    assert out.returncode == 2 and "nowhere" in out.stderr and "Traceback" not in out.stderr
