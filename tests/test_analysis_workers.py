"""Worker use (``analysis.workers``): a trial that synchronous Hyperband or BOHB pauses frees its worker until it is
resumed, so it is counted only while it runs; trials of schedulers that never pause are counted from their start to
their last report."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from syne_tune.constants import ST_TUNER_TIME

from analysis.load import Experiment, load_experiment
from analysis.workers import busy_intervals, concurrency, worker_use
from launchers.results import ResultsWriter


def experiment(reports: list[tuple[int, float, int]], starts: dict[int, float], statuses: dict[int, str], *,
               scheduler: str, n_workers: int, budget: tuple[int, int, float],
               brackets: dict[int, int] | None = None, scheduler_kwargs: dict | None = None) -> Experiment:
    """An experiment as ``load_experiment`` gives it, from reports (trial id, tuner time, epoch), the trials' start
    times and statuses; ``budget``: (min, max, eta)."""
    results = pd.DataFrame(reports, columns=["trial_id", "tuner_time", "epoch"])
    results["valid_error"] = 0.5
    results = results.sort_values(["tuner_time", "trial_id", "epoch"], kind="mergesort", ignore_index=True)
    rows = []
    for trial_id, start in starts.items():
        own = results[results["trial_id"] == trial_id]
        rows.append({"trial_id": trial_id, "status": statuses[trial_id],
                     "epochs": int(own["epoch"].max()) if len(own) else 0, "best_metric": 0.5, "last_metric": 0.5,
                     "start_time": start,
                     "end_time": float(own["tuner_time"].max()) if len(own) else np.nan})
    trials = pd.DataFrame(rows)
    if brackets is not None:
        trials["bracket"] = trials["trial_id"].map(brackets).astype("Int64")
    metadata = {"metric": "valid_error", "mode": "min", "scheduler": scheduler, "n_workers": n_workers,
                "scheduler_kwargs": scheduler_kwargs or {}, "backend": "local",
                "budget": {"resource_attr": "epoch", "min_resource": budget[0], "max_resource": budget[1],
                           "eta": budget[2]}}
    return Experiment(name=scheduler, path=Path(scheduler), metadata=metadata, results=results, trials=trials)


def rows(intervals: pd.DataFrame) -> list[tuple[int, float, float]]:
    return sorted((int(t), float(s), float(e)) for t, s, e in intervals[["trial_id", "start", "end"]].to_numpy())


@pytest.mark.parametrize("scheduler", ["hyperband", "bohb", "bohb_uncapped"])
def test_a_paused_trial_frees_its_worker_until_it_is_resumed(scheduler):
    # One worker: trial 0 runs 0-10 and is paused at its rung (epoch 1); trial 1 runs 10-20 and is paused; trial 0,
    # promoted, resumes 20-30 and completes.
    exp = experiment([(0, 10.0, 1), (1, 20.0, 1), (0, 30.0, 2)], starts={0: 0.0, 1: 10.0},
                     statuses={0: "Completed", 1: "Stopped"}, scheduler=scheduler, n_workers=1, budget=(1, 2, 2),
                     brackets={0: 0, 1: 0}, scheduler_kwargs={"budgets": [1, 2]})
    # The resumed run needs as long before its report as the first one did (10 s): it starts when trial 1 ends.
    assert rows(busy_intervals(exp)) == [(0, 0.0, 10.0), (0, 20.0, 30.0), (1, 10.0, 20.0)]
    assert concurrency(exp)["running"].max() == 1
    assert worker_use(exp) == pytest.approx(1.0)


def test_a_trial_is_paused_at_its_own_brackets_rungs_and_a_resumed_run_starts_after_the_last():
    # Budgets 1, 3, 9 as the run recorded them. Trial 0 (bracket 1) is first paused at 3, not at 1, and resumes from
    # its checkpoint at epoch 4; its first report came 2 s after its start, so the resumed run started 2 s before
    # its first report. Trial 1 (bracket 0) keeps no checkpoint: paused at 1, resumed at once with budget 3, it
    # starts over at epoch 1 (a report at 1 that is no pause) and is paused at 3; its first run's 5 s before the
    # first report would put the resumed run's start before the pause, so it starts at the pause.
    reports = [(0, 2.0, 1), (0, 4.0, 2), (0, 6.0, 3), *[(0, 15.0 + 2 * k, 4 + k) for k in range(6)],
               (1, 5.0, 1), (1, 7.0, 1), (1, 8.5, 2), (1, 9.0, 3)]
    exp = experiment(reports, starts={0: 0.0, 1: 0.0}, statuses={0: "Completed", 1: "Stopped"}, scheduler="bohb",
                     n_workers=2, budget=(1, 9, 3), brackets={0: 1, 1: 0}, scheduler_kwargs={"budgets": [1, 3, 9]})
    assert rows(busy_intervals(exp)) == [(0, 0.0, 6.0), (0, 13.0, 25.0), (1, 0.0, 5.0), (1, 5.0, 9.0)]
    # Busy worker-seconds 6 + 12 + 5 + 4 of 2 workers x 25 s.
    assert worker_use(exp) == pytest.approx(27 / 50)


def test_trials_of_a_scheduler_that_never_pauses_run_from_their_start_to_their_last_report():
    # asha on 2 workers: trials stopped at the rung (epoch 1), two completed, one still running at the end, with
    # the bracket column that asha records and reports at the budgets where Hyperband would pause.
    reports = [(0, 3.0, 1), (0, 5.0, 2), (0, 7.0, 3), (1, 4.0, 1), (2, 6.0, 1), (2, 8.0, 2), (2, 10.0, 3),
               (3, 9.0, 1)]
    starts = {0: 0.0, 1: 0.0, 2: 4.0, 3: 7.0, 4: 9.5}
    statuses = {0: "Completed", 1: "Stopped", 2: "Completed", 3: "Stopped", 4: "InProgress"}
    exp = experiment(reports, starts, statuses, scheduler="asha", n_workers=2, budget=(1, 3, 3),
                     brackets={t: 0 for t in starts}, scheduler_kwargs={"budgets": [1, 3]})
    # As before: one interval per trial, from trials.csv's start to its end (the end of the run while running).
    trials = exp.trials
    end_of_run = exp.results["tuner_time"].max()
    ends = trials["end_time"].where(trials["status"] != "InProgress", end_of_run)
    expected = sorted(zip(trials["trial_id"], trials["start_time"], ends))
    assert rows(busy_intervals(exp)) == expected
    # The running trials at each moment, counted interval by interval.
    conc = concurrency(exp)
    for time, running in zip(conc["time"], conc["running"]):
        assert running == sum(start <= time < end for _, start, end in expected)
    busy = sum(end - start for _, start, end in expected)
    assert worker_use(exp) == pytest.approx(busy / (2 * max(end for *_, end in expected)))


def test_on_a_simulated_hyperband_run_the_busy_intervals_are_the_runs_the_engine_made(launch_in_process, tmp_path,
                                                                                      nb201_table_path, monkeypatch):
    # Each run of a trial as the engine makes it: from its start or resume to its last report.
    runs: dict[int, list[list[float]]] = {}
    on_start, on_result = ResultsWriter.on_start_trial, ResultsWriter.on_trial_result

    def on_start_trial(writer, trial):
        on_start(writer, trial)
        runs[trial.trial_id] = [[writer.tuner_time(), np.nan]]

    def on_resume_trial(writer, trial):
        runs[trial.trial_id].append([writer.tuner_time(), np.nan])

    def on_trial_result(writer, trial, status, result, decision):
        on_result(writer, trial, status, result, decision)
        runs[trial.trial_id][-1][1] = result[ST_TUNER_TIME]

    monkeypatch.setattr(ResultsWriter, "on_start_trial", on_start_trial)
    monkeypatch.setattr(ResultsWriter, "on_resume_trial", on_resume_trial, raising=False)
    monkeypatch.setattr(ResultsWriter, "on_trial_result", on_trial_result)
    assert launch_in_process("--scheduler", "hyperband", "--backend", "simulated", "--benchmark", "nasbench201",
                             "--dataset", str(nb201_table_path), "--max-num-trials", "40", "--n-workers", "3",
                             "--experiment-name", "hb", cwd=tmp_path) == 0
    exp = load_experiment(tmp_path / "results" / "hb")
    made = sorted((t, s, e) for t, trial_runs in runs.items() for s, e in trial_runs)
    assert sum(len(r) for r in runs.values()) > len(runs)  # some trials were paused and resumed
    got = rows(busy_intervals(exp))
    # The table's epochs of a cell take equally long, so a resumed run's start is found to rounding.
    assert [t for t, _, _ in got] == [t for t, _, _ in made]
    assert np.allclose([[s, e] for _, s, e in got], [[s, e] for _, s, e in made], rtol=0, atol=1e-6)
    assert concurrency(exp)["running"].max() <= 3
    assert worker_use(exp) <= 1.0
