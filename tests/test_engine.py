"""The discrete-event engine of ``--backend simulated``: the same trials as Syne Tune's path, pause and resume, stops,
the time limit, and the results writer it shares with every backend."""
import contextlib
import io
import subprocess
import sys
from datetime import datetime
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from syne_tune import StoppingCriterion, Tuner
from syne_tune.backend.trial_status import Trial
from syne_tune.blackbox_repository.blackbox import Blackbox
from syne_tune.config_space import choice, randint
from syne_tune.constants import ST_TUNER_TIME
from syne_tune.optimizer.scheduler import SchedulerDecision, TrialScheduler, TrialSuggestion
from syne_tune.tuner_callback import TunerCallback

from backends.engine import SimulationEngine
from backends.simulated_syne_tune import EventDrivenSimulatorCallback, ReproducibleSimulatorBackend
from benchmarks.nasbench201.table import DEFAULT_TABLE, load_named_table
from conftest import read_results
from launchers.results import ResultsWriter
from schedulers.budget import Budget

CONTINUE, PAUSE, STOP = SchedulerDecision.CONTINUE, SchedulerDecision.PAUSE, SchedulerDecision.STOP
EPOCHS = 6
HALT = 0.05 + 1e-3 + 0.05 + 1e-3  # Syne Tune's simulator: stop delay, then the job's end, each stepped past by 1 ms


@pytest.fixture(autouse=True)
def syne_tune_folder(tmp_path, monkeypatch):
    """Syne Tune's Tuner writes its bookkeeping under $SYNETUNE_FOLDER: keep it in the test's folder."""
    monkeypatch.setenv("SYNETUNE_FOLDER", str(tmp_path / "syne-tune"))


# The same trials as Syne Tune's path ----------------------------------------------------------------------------

def run_both(launch_in_process, tmp_path: Path, *flags: str) -> tuple[bytes, bytes, bytes, bytes]:
    """results.csv and trials.csv of the engine's run and of Syne Tune's, for the same flags."""
    files = []
    for backend in ("simulated", "simulated_syne_tune"):
        assert launch_in_process("--backend", backend, "--benchmark", "nasbench201", "--experiment-name", backend,
                                 *flags, cwd=tmp_path) == 0
        folder = tmp_path / "results" / backend
        files += [(folder / "results.csv").read_bytes(), (folder / "trials.csv").read_bytes()]
    return tuple(files)


@pytest.mark.parametrize("scheduler", ["asha", "hyperband"])
def test_the_engine_runs_the_same_trials_as_syne_tune_in_a_short_run(scheduler, launch_in_process, tmp_path,
                                                                     nb201_table_path):
    results, trials, st_results, st_trials = run_both(launch_in_process, tmp_path, "--scheduler", scheduler,
                                                      "--dataset", str(nb201_table_path), "--max-num-trials", "60")
    assert results == st_results and trials == st_trials
    assert (pd.read_csv(io.BytesIO(trials))["epochs"] < 9).any()  # decisions stopped or paused some trials


@pytest.mark.parametrize("scheduler", ["random_search", "asha"])  # 300 trials on the shipped table (issue 13)
def test_the_engine_runs_the_same_trials_as_syne_tune_on_the_shipped_table(scheduler, launch_in_process, tmp_path):
    results, trials, st_results, st_trials = run_both(launch_in_process, tmp_path, "--scheduler", scheduler,
                                                      "--max-num-trials", "300", "--seed", "1")
    # Same configurations, epochs, reported values and simulated times, to the byte.
    assert results == st_results and trials == st_trials
    frame = pd.read_csv(io.BytesIO(trials))
    assert len(frame) == 300 and frame["config_x0"].nunique() == 5
    if scheduler == "asha":  # the scheduler's decisions were exercised: some trials stopped early, some ran out
        max_epochs = load_named_table(DEFAULT_TABLE)[0].n_epochs
        assert (frame["epochs"] < max_epochs).any() and (frame["epochs"] == max_epochs).any()


@pytest.mark.slow  # a fresh interpreter: a few seconds
def test_a_simulated_run_loads_neither_syne_tunes_blackbox_repository_nor_scikit_learn(tmp_path):
    """Both cost a simulated launch a second or more; the engine reads the table's arrays only."""
    code = f"""
import sys
from launchers.cli import parse_args
from launchers.run import run
plan = parse_args(None, ["--scheduler", "asha", "--backend", "simulated", "--benchmark", "nasbench201",
                         "--max-num-trials", "20", "--results-dir", {str(tmp_path)!r}])
assert run(plan, progress_bar=False) == 0
loaded = [m for m in sys.modules if m.startswith(("sklearn", "syne_tune.blackbox_repository"))]
assert not loaded, loaded
"""
    done = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr


@pytest.mark.slow
@pytest.mark.parametrize("flags", [
    ["--scheduler", "hyperband", "--seed", "2", "--n-workers", "3"],   # pauses and resumes
    ["--scheduler", "bohb", "--seed", "3", "--max-num-trials", "200"],
    ["--scheduler", "asha", "--table-seed", "random", "--seed", "4"],
    ["--scheduler", "random_search", "--max-wallclock-time", "40", "--n-workers", "2"],
    ["--scheduler", "rea", "--seed", "5", "--n-workers", "1"],
])
def test_the_engine_runs_the_same_trials_as_syne_tune_elsewhere(flags, launch_in_process, tmp_path, nb201_table_path):
    results, trials, st_results, st_trials = run_both(launch_in_process, tmp_path, "--dataset",
                                                      str(nb201_table_path), *flags)
    assert results == st_results and trials == st_trials
    if "hyperband" in flags:
        frame = pd.read_csv(io.BytesIO(results))
        resumed = frame.groupby("trial_id")["tuner_time"].apply(lambda t: t.diff().max() > 3).sum()
        assert resumed > 0  # some trial was paused and resumed later


# A small table and a scripted scheduler ----------------------------------------------------------------------------

class Curves(Blackbox):
    """x in {0, 1, 2}: an epoch takes 1 + x seconds; loss 1 / epoch + x."""

    def __init__(self):
        super().__init__(configuration_space={"x": choice([0, 1, 2])}, fidelity_space={"epoch": randint(1, EPOCHS)},
                         objectives_names=["loss", "elapsed_time"])

    @property
    def fidelity_values(self) -> np.ndarray:
        return np.arange(1, EPOCHS + 1)

    def _objective_function(self, configuration, fidelity=None, seed=None):
        epoch = np.arange(1, EPOCHS + 1, dtype=float)
        return np.column_stack([1 / epoch + configuration["x"], epoch * (1 + configuration["x"])])


class Scripted(TrialScheduler):
    """Starts the configurations ``plan`` lists (``("resume", trial_id, epochs)`` resumes a paused trial), decides
    ``decisions[(trial_id, epoch)]`` (CONTINUE otherwise) and records every call it gets."""

    def __init__(self, plan: list, decisions: dict[tuple[int, int], str]):
        super().__init__(random_seed=0)
        self.plan, self.decisions, self.calls = list(plan), decisions, []

    def suggest(self):
        if not self.plan:
            return None
        step = self.plan.pop(0)
        if isinstance(step, tuple):
            _, trial_id, epochs = step
            return TrialSuggestion.resume_suggestion(trial_id, {"x": self.configs[trial_id], "epochs": epochs})
        return TrialSuggestion.start_suggestion({"x": step, "epochs": EPOCHS})

    @property
    def configs(self) -> dict[int, int]:
        return {call[1]: call[2] for call in self.calls if call[0] == "add"}

    def on_trial_add(self, trial: Trial):
        self.calls.append(("add", trial.trial_id, trial.config["x"]))

    def on_trial_result(self, trial: Trial, result: dict) -> str:
        self.calls.append(("result", trial.trial_id, result["epoch"]))
        return self.decisions.get((trial.trial_id, result["epoch"]), CONTINUE)

    def on_trial_complete(self, trial: Trial, result: dict):
        self.calls.append(("complete", trial.trial_id, result["epoch"]))

    def on_trial_remove(self, trial: Trial):
        self.calls.append(("remove", trial.trial_id))

    def metric_names(self) -> list[str]:
        return ["loss"]

    def metric_mode(self) -> str:
        return "min"

    def metadata(self) -> dict:
        return {}


class Record(TunerCallback):
    """What the run reported: (trial id, epoch, tuner time, elapsed time) per result, start times per trial."""

    def __init__(self):
        self.reports, self.starts, self.tuner = [], {}, None

    def on_tuning_start(self, tuner):
        self.tuner = tuner

    def _now(self) -> float:
        keeper = getattr(self.tuner, "time_keeper", None) or self.tuner.trial_backend.time_keeper
        return keeper.time()

    def on_start_trial(self, trial: Trial):
        self.starts[trial.trial_id] = self._now()

    def on_resume_trial(self, trial: Trial):
        self.starts[trial.trial_id] = self._now()

    def on_trial_result(self, trial, status, result, decision):
        self.reports.append((trial.trial_id, result["epoch"], result[ST_TUNER_TIME], result["elapsed_time"]))


def simulate(plan: list, decisions: dict, n_workers: int = 1, max_time: float = float("inf"),
             syne_tune: bool = False) -> tuple[Record, Scripted, dict[int, str]]:
    """Run the scripted scheduler on ``Curves`` with the engine, or with Syne Tune's path; what it recorded, the
    scheduler, and the last status seen per trial."""
    scheduler, record = Scripted(plan, decisions), Record()
    if not syne_tune:
        engine = SimulationEngine(Curves(), max_resource_attr="epochs")
        engine.run(scheduler, n_workers, [record], max_time)
        return record, scheduler, dict(engine.tuning_status.last_trial_status_seen)
    backend = ReproducibleSimulatorBackend(blackbox=Curves(), elapsed_time_attr="elapsed_time",
                                           max_resource_attr="epochs")
    tuner = Tuner(trial_backend=backend, scheduler=scheduler, stop_criterion=StoppingCriterion(max_time),
                  n_workers=n_workers, sleep_time=0, callbacks=[EventDrivenSimulatorCallback(), record],
                  save_tuner=False)
    with contextlib.redirect_stdout(io.StringIO()):
        tuner.run()
    return record, scheduler, dict(tuner.tuning_status.last_trial_status_seen)


def test_a_paused_trial_resumes_at_the_next_epoch_and_its_elapsed_time_goes_on():
    plan, decisions = [0, ("resume", 0, 5)], {(0, 2): PAUSE}
    record, scheduler, statuses = simulate(plan, decisions)
    # Epochs 1 and 2, paused; resumed from the checkpoint: epochs 3 to 5 (the new cap), none reported twice.
    assert [(trial, epoch) for trial, epoch, _, _ in record.reports] == [(0, 1), (0, 2), (0, 3), (0, 4), (0, 5)]
    assert [elapsed for *_, elapsed in record.reports] == [1, 2, 3, 4, 5]  # training time so far
    paused_at = 0.05 + 2 + 0.05
    resumed = paused_at + HALT
    assert record.starts[0] == pytest.approx(resumed, abs=1e-9)
    times = [time for _, _, time, _ in record.reports]
    # After the resume an epoch's report comes its own time (not the trial's total) after the restart.
    assert times == pytest.approx([1.1, 2.1, resumed + 0.05 + 1 + 0.05, resumed + 0.05 + 2 + 0.05,
                                   resumed + 0.05 + 3 + 0.05], abs=1e-9)
    assert ("remove", 0) in scheduler.calls and scheduler.calls[-1] == ("complete", 0, 5)
    assert statuses == {0: "Completed"}
    # Syne Tune's simulator makes the same calls at the same times.
    st_record, st_scheduler, st_statuses = simulate(plan, decisions, syne_tune=True)
    assert st_record.reports == record.reports and st_scheduler.calls == scheduler.calls
    assert st_statuses == statuses


def test_a_stopped_trial_frees_its_worker_once_the_stop_has_gone_through():
    # Two workers: trial 0 (1 s an epoch) stopped at epoch 2; trial 1 (3 s an epoch) runs on; trial 2 takes the
    # freed worker; trial 3 waits for trial 2, which the scheduler stops at its last epoch: no stop to go through.
    decisions = {(0, 2): STOP, (2, EPOCHS): STOP}
    record, scheduler, statuses = simulate([0, 2, 0, 0], decisions, n_workers=2)
    stopped_at = 0.05 + 2 + 0.05
    assert record.starts[2] == pytest.approx(stopped_at + HALT, abs=1e-9)
    last_of_2 = record.starts[2] + 0.05 + EPOCHS + 0.05
    assert record.starts[3] == pytest.approx(last_of_2, abs=1e-9)
    assert [e for t, e, _, _ in record.reports if t == 0] == [1, 2]  # nothing after the stop
    assert [e for t, e, _, _ in record.reports if t == 1] == list(range(1, EPOCHS + 1))
    assert statuses == {0: "Stopped", 1: "Completed", 2: "Completed", 3: "Completed"}
    st_record, st_scheduler, st_statuses = simulate([0, 2, 0, 0], decisions, n_workers=2, syne_tune=True)
    assert st_record.reports == record.reports and st_record.starts == record.starts
    assert st_scheduler.calls == scheduler.calls
    assert st_statuses == statuses


def test_the_run_ends_with_the_first_report_past_the_time_limit():
    record, _, statuses = simulate([0], {}, max_time=3.5)
    assert [time for _, _, time, _ in record.reports] == pytest.approx([1.1, 2.1, 3.1, 4.1], abs=1e-9)
    assert statuses == {0: "Stopped"}  # still running at the end


def test_a_scheduler_that_resumes_a_running_trial_is_an_error():
    with pytest.raises(RuntimeError, match="resumed trial 0, which is InProgress, not paused"):
        simulate([0, ("resume", 0, 3)], {}, n_workers=2)


# The results writer ----------------------------------------------------------------------------------------------

def test_results_written_in_several_writes_equal_one_write(tmp_path):
    """The writer formats the rows of results.csv once; what it writes equals formatting them all at the end, also
    when new rows change a column's type or bring a new column."""
    writer = ResultsWriter(tmp_path, {}, hyperparameters=["x"], metric="loss", mode="min",
                           budget=Budget("epoch", 1, 3, 3))
    writer._tuner = object()
    trial = Trial(trial_id=0, config={"x": 0.5}, creation_time=datetime.now())
    writer.on_start_trial(trial)
    batches = [[{"epoch": 1, "loss": 0.5, "n": 1}], [{"epoch": 2, "loss": 0.25, "n": 2}],
               [{"epoch": 3, "loss": 0.125, "n": None}],      # n becomes a float column with a gap
               [{"epoch": 3, "loss": 0.1, "n": 3.5, "extra": "a,b"}]]  # a new column, a value that needs quotes
    for batch in batches:
        for result in batch:
            writer.on_trial_result(trial, "InProgress", {**result, ST_TUNER_TIME: 1.0 + len(writer.rows)}, CONTINUE)
        writer.write()
        assert (tmp_path / "results.csv").read_text() == writer.results_frame().to_csv(index=False)
    assert pd.read_csv(tmp_path / "results.csv")["extra"].tolist()[-1] == "a,b"
    assert read_results(tmp_path)[0]["n"].isna().tolist() == [False, False, True, False]


def test_results_text_is_what_pandas_writes():
    """The writer's fast CSV text equals ``to_csv`` for floats of every size, integers, booleans, text and gaps, and
    hands anything else to pandas (text that needs quotes, mixed objects, 32-bit floats)."""
    from launchers.results import csv_text

    rng = np.random.default_rng(0)
    floats = np.concatenate([rng.normal(size=500) * 10.0 ** rng.integers(-30, 30, 500),
                             [0.0, -0.0, np.inf, -np.inf, np.nan, 1e16, 1e15, 1e-4, 1e-5, 5e-324, 0.1, 1 / 3]])
    frame = pd.DataFrame({"f": floats, "i": rng.integers(-10 ** 12, 10 ** 12, len(floats)), "b": floats > 0,
                          "s": [None if i % 3 else f"c{i}" for i in range(len(floats))]})
    variants = [frame, frame.assign(s="a,b"), frame.assign(s=[1.5 if i % 2 else "x" for i in range(len(floats))]),
                frame.assign(f=frame["f"].astype(np.float32)), frame.iloc[:0]]
    for variant in variants:
        assert csv_text(variant) == variant.to_csv(index=False)
        assert csv_text(variant, header=False) == variant.to_csv(index=False, header=False)
