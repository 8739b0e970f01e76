"""A tuning run survives crashing trials, bad input, signals and kill -9, and can be resumed (issue 14).

The trial scripts here are tiny and import nothing heavy (they print Syne Tune's report lines themselves), so that a
run of 30 trials takes seconds. Tests that start trial processes are marked slow.
"""
from __future__ import annotations

import contextlib
import json
import math
import os
import signal
import socket
import subprocess
import sys
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pandas as pd
import psutil
import pytest

from conftest import REPO_ROOT, default_signals, read_results
from launchers.cli import main, parse_args
from schedulers.registry import SCHEDULERS

# A trial script: reports `loss` each epoch, checkpoints its epoch (so a resumed trial goes on), and crashes at epoch
# crash_epoch(x) when that is not None (about 30% of the trials, decided by x alone).
FLAKY = r'''
import argparse, json, os, sys, time
parser = argparse.ArgumentParser()
parser.add_argument("--x", type=float)
parser.add_argument("--kind", type=str)
parser.add_argument("--epochs", type=int)
parser.add_argument("--sleep", type=float, default=0.0)
parser.add_argument("--crash", type=int, default=1)
parser.add_argument("--metric_name", default="loss")
parser.add_argument("--value", default="")
parser.add_argument("--st_checkpoint_dir")
args = parser.parse_args()

def crash_epoch(x):
    h = int(x * 1_000_003) % 10
    return h + 1 if h < 3 else None

done = 0
mark = os.path.join(args.st_checkpoint_dir, "epoch") if args.st_checkpoint_dir else None
if mark and os.path.exists(mark):
    done = int(open(mark).read())
for epoch in range(done + 1, args.epochs + 1):
    if args.crash and crash_epoch(args.x) == epoch:
        raise RuntimeError(f"boom at epoch {epoch}")
    time.sleep(args.sleep)
    loss = (args.x - 0.3) ** 2 + 1.0 / epoch + (0.2 if args.kind == "b" else 0.0)
    if args.value:
        loss = float(args.value)
    if mark:
        os.makedirs(args.st_checkpoint_dir, exist_ok=True)
        with open(mark + ".tmp", "w") as f:
            f.write(str(epoch))
        os.replace(mark + ".tmp", mark)
    report = {"epoch": epoch, args.metric_name: loss, "st_worker_timestamp": time.time()}
    print("[tune-metric]: " + json.dumps(report), flush=True)
'''
SILENT = "import sys\nsys.exit(0)\n"


def crash_epoch(x: float) -> int | None:
    """The epoch at which FLAKY crashes for ``x`` (as the script computes it)."""
    h = int(x * 1_000_003) % 10
    return h + 1 if h < 3 else None


def write_space(path: Path, **constants) -> Path:
    """A ConfigSpace JSON: x in [0, 1], kind a|b, epochs 9, and more constants (script flags)."""
    import ConfigSpace as CS

    space = CS.ConfigurationSpace()
    space.add([CS.UniformFloatHyperparameter("x", 0, 1), CS.CategoricalHyperparameter("kind", ["a", "b"]),
               CS.Constant("epochs", 9), *(CS.Constant(k, v) for k, v in constants.items())])
    space.to_json(path)
    return path


@pytest.fixture
def flaky(tmp_path: Path) -> Path:
    script = tmp_path / "flaky.py"
    script.write_text(FLAKY)
    return script


def custom(script: Path, space: Path, *more: str, metric: str = "loss", resource: str = "epoch") -> list[str]:
    return ["--training-script", str(script), "--config-space", str(space), "--metric", metric, "--mode", "min",
            "--resource-attr", resource, "--max-resource", "9", *more]


def last_line(text: str) -> str:
    lines = [line for line in text.strip().splitlines() if line.strip()]
    return lines[-1] if lines else ""


def one_sentence(err: str) -> str:
    """The error's last line, checked to be one sentence without a traceback."""
    assert "Traceback" not in err, err
    line = last_line(err)
    assert line.endswith("."), err
    return line


def exit_status(call) -> int:
    """What ``call`` returned, or the status it exited with (argparse's errors exit)."""
    try:
        return call()
    except SystemExit as exit_:
        return exit_.code


def snapshot(root: Path) -> dict[Path, bytes]:
    return {p: p.read_bytes() for p in root.rglob("*") if p.is_file()} if root.exists() else {}


def assert_kept(before: dict[Path, bytes]):
    for path, content in before.items():
        assert path.is_file() and path.read_bytes() == content, f"{path} was changed or removed"


# Simulated runs: a resumed run equals an uninterrupted one -----------------------------------------------------

class _StopAfter:
    """A tuner callback that interrupts the run (as Ctrl-C would) once ``n`` trials have started."""

    def __init__(self, n: int):
        self.n, self.started = n, 0

    def on_tuning_start(self, tuner): pass
    def on_start_trial(self, trial): self.started += 1
    def on_resume_trial(self, trial): pass
    def on_trial_result(self, trial, status, result, decision): pass
    def on_trial_complete(self, trial, result): pass
    def on_tuning_end(self): pass
    def on_fetch_status_results(self, trial_status_dict, new_results): pass

    def on_loop_end(self):
        if self.started >= self.n:
            raise KeyboardInterrupt("test stop")


def _simulated(table: Path, scheduler: str, name: str) -> list[str]:
    return ["--scheduler", scheduler, "--backend", "simulated", "--benchmark", "nasbench201", "--dataset", str(table),
            "--max-num-trials", "40", "--n-workers", "3", "--seed", "4", "--experiment-name", name]


def _as_if_killed(folder: Path, keep_rows: int):
    """Make an interrupted run's folder look as kill -9 leaves it: metadata still "running" (a dead launcher's pid,
    an old heartbeat) and results.csv as last written, a few seconds before the end."""
    metadata = json.loads((folder / "metadata.json").read_text())
    old = (datetime.now(timezone.utc) - timedelta(minutes=5)).isoformat()
    metadata.update(status="running", end_time=None, pid=2 ** 22 + 17, heartbeat=old)
    (folder / "metadata.json").write_text(json.dumps(metadata))
    lines = (folder / "results.csv").read_text().splitlines(keepends=True)
    (folder / "results.csv").write_text("".join(lines[:keep_rows + 1]))


@pytest.mark.parametrize("scheduler", ["random_search", "hyperband", "asha"])
def test_a_resumed_simulation_equals_an_uninterrupted_one(scheduler, nb201_table_path, tmp_path, monkeypatch,
                                                          launch_in_process):
    from launchers.run import run

    assert launch_in_process(*_simulated(nb201_table_path, scheduler, "whole"), cwd=tmp_path) == 0
    monkeypatch.chdir(tmp_path)
    plan = parse_args(None, _simulated(nb201_table_path, scheduler, "cut"))
    assert run(plan, progress_bar=False, callbacks=[_StopAfter(15)]) == 130
    cut = tmp_path / "results" / "cut"
    assert json.loads((cut / "metadata.json").read_text())["status"] == "interrupted"
    written = len(pd.read_csv(cut / "results.csv"))
    assert 0 < written < len(pd.read_csv(tmp_path / "results" / "whole" / "results.csv"))
    _as_if_killed(cut, keep_rows=written - 7)
    assert launch_in_process("--resume", "cut", cwd=tmp_path) == 0
    whole = tmp_path / "results" / "whole"
    for file in ("results.csv", "trials.csv"):
        assert (cut / file).read_bytes() == (whole / file).read_bytes(), file
    metadata = json.loads((cut / "metadata.json").read_text())
    assert metadata["status"] == "finished" and len(metadata["resumed"]) == 1


def test_a_resumed_simulation_that_differs_is_refused_with_its_files_untouched(nb201_table_path, tmp_path,
                                                                               monkeypatch, capsys,
                                                                               launch_in_process):
    from launchers.run import run

    monkeypatch.chdir(tmp_path)
    assert run(parse_args(None, _simulated(nb201_table_path, "random_search", "cut")), progress_bar=False,
               callbacks=[_StopAfter(10)]) == 130
    cut = tmp_path / "results" / "cut"
    results = pd.read_csv(cut / "results.csv")
    results.loc[3, "valid_error"] += 0.125  # as if the table had changed since
    results.to_csv(cut / "results.csv", index=False)
    before = snapshot(cut)
    capsys.readouterr()
    assert launch_in_process("--resume", "cut", cwd=tmp_path) == 1
    assert "did not reproduce the reports it wrote" in one_sentence(capsys.readouterr().err)
    assert_kept({p: c for p, c in before.items() if p.name != "tuner.log"})


# Bad input: one sentence, a non-zero exit, nothing already written lost ------------------------------------------

def _case_files(tmp_path: Path, flaky_script: Path) -> dict[str, str]:
    """Files the catalogue's cases refer to: {name: path}."""
    (tmp_path / "a_file").write_text("not a folder\n")
    (tmp_path / "bad.json").write_text("{not json")
    (tmp_path / "table.npz").write_bytes(b"not a table")
    space = write_space(tmp_path / "space.json")
    runs = tmp_path / "results"
    # A finished run and an interrupted one (simulated), a killed local run without its journal, a run without the
    # flags it was started with, a Ray run, a run still going (this process), and an experiment folder that is a file.
    for name, status, backend in [("done", "finished", "simulated"), ("nojournal", "interrupted", "local"),
                                  ("ray-run", "interrupted", "ray"), ("alive", "running", "local"),
                                  ("rs-run", "interrupted", "simulated")]:
        folder = runs / name
        folder.mkdir(parents=True)
        (folder / "results.csv").write_text("trial_id,tuner_time,epoch,loss\n0,1.0,1,0.5\n")
        args = {"scheduler": "random_search", "backend": backend, "benchmark": "nasbench201"}
        (folder / "metadata.json").write_text(json.dumps({
            "status": status, "metric": "loss", "mode": "min", "scheduler": "random_search", "pid": os.getpid(),
            "host": socket.gethostname(), "heartbeat": datetime.now(timezone.utc).isoformat(),
            "launch": {"args": args, "cwd": str(tmp_path)}}))
    (runs / "old").mkdir()
    (runs / "old" / "metadata.json").write_text(json.dumps({"status": "interrupted"}))
    (runs / "is-a-file").write_text("x\n")
    (runs / "taken").mkdir()
    (runs / "taken" / "results.csv").write_text("precious\n")
    return {"space": str(space), "script": str(flaky_script), "file": str(tmp_path / "a_file"),
            "bad_json": str(tmp_path / "bad.json"), "table": str(tmp_path / "table.npz")}


# (flags, launcher's scheduler (None: launch.py), exit status, words the sentence must hold)
CATALOGUE = [
    (["--n-workers", "0"], "bohb", 2, "--n-workers must be at least 1"),
    (["--max-failures", "-1"], "bohb", 2, "--max-failures must be 0 or more"),
    (["--max-wallclock-time", "-5"], "bohb", 2, "--max-wallclock-time must be positive"),
    (["--eta", "1"], "bohb", 2, "--eta must be greater than 1"),
    (["--n-workers", "two"], "bohb", 2, "invalid int value: 'two'"),
    ([], None, 2, "the following arguments are required: --scheduler"),
    (["--scheduler", "sha"], None, 2, "invalid choice: 'sha'"),
    (["--experiment-name", "../../escape"], "bohb", 2, "must be one folder name"),
    (["--experiment-name", "a/b"], "bohb", 2, "must be one folder name"),
    (["--experiment-name", ".."], "bohb", 2, "must be one folder name"),
    (["--experiment-name", ""], "bohb", 2, "must be one folder name"),
    (["--results-dir", "{file}"], "bohb", 2, "is a file, not a folder"),
    (["--results-dir", "{file}/sub"], "bohb", 2, "cannot be created, since"),
    (["--results-dir", "/proc/hpo-results"], "bohb", 2, "cannot be created in '/proc'"),
    (["--experiment-name", "is-a-file"], "bohb", 2, "is a file: choose another --experiment-name"),
    (["--experiment-name", "taken"], "bohb", 2, "already exists and is not empty"),
    (["--training-script", "missing.py", "--config-space", "{space}", "--metric", "loss", "--mode", "min",
      "--resource-attr", "epoch", "--max-resource", "9"], "bohb", 2, "Training script 'missing.py' does not exist"),
    (["--training-script", "{script}", "--config-space", "{bad_json}", "--metric", "loss", "--mode", "min",
      "--resource-attr", "epoch", "--max-resource", "9"], "bohb", 2, "is not ConfigSpace JSON"),
    (["--metric", "loss"], "bohb", 2, "missing: --training-script"),
    (["--benchmark", "nasbench201", "--dataset", "{table}"], "bohb", 2, "table.npz"),
    (["--benchmark", "nasbench201", "--backend", "simulated", "--table-seed", "7"], "bohb", 2,
     "is not a seed of this table"),
    (["--backend", "simulated"], "bohb", 2, "needs a tabulated benchmark"),
    (["--backend", "simulated", "--benchmark", "nasbench201", "--min-epochs", "5", "--eta", "1.05"], "hyperband",
     2, "are not accepted: as whole epochs"),
    (["--training-script", "{script}", "--config-space", "{space}", "--metric", "loss", "--mode", "min",
      "--resource-attr", "epoch", "--max-resource", "9", "--grid-points", "100000000"], "grid_search", 2,
     "--grid-points 100000000 gives 200,000,000 combinations"),
    (["--resume", "nowhere"], None, 2, "No run to resume at 'nowhere'"),
    (["--resume", "done"], None, 2, "it finished, so there is nothing to resume"),
    (["--resume", "alive"], None, 2, "it is still running (process"),
    (["--resume", "old"], None, 2, "does not record the flags it was started with"),
    (["--resume", "ray-run"], None, 2, "it has no journal.jsonl"),
    (["--resume", "nojournal"], None, 2, "it has no journal.jsonl"),
    (["--resume", "rs-run", "--seed", "3"], None, 2, "give no other flag than --results-dir and --verbose (got "
                                                     "--seed)"),
    (["--resume", "rs-run"], "bohb", 2, "was tuned with random_search, not bohb"),
    (["--dataset-path", "{file}_missing"], "random_search", 2, "MNIST data not found in"),
]


@pytest.mark.parametrize("flags, scheduler, code, words", CATALOGUE,
                         ids=[f"{i}-{' '.join(c[0])[:40]}" for i, c in enumerate(CATALOGUE)])
def test_bad_input_is_one_sentence_and_a_non_zero_exit_with_nothing_lost(flags, scheduler, code, words, flaky,
                                                                         tmp_path, monkeypatch, capsys):
    files = _case_files(tmp_path, flaky)
    monkeypatch.chdir(tmp_path)
    # No download from the tests: the one the data check would try fails at once.
    import benchmarks.data_check as data_check

    def no_download(data, folder):
        raise RuntimeError("offline")

    monkeypatch.setattr(data_check, "_download", no_download)
    before = snapshot(tmp_path)
    assert exit_status(lambda: main(scheduler, [flag.format(**files) for flag in flags])) == code
    assert words in one_sentence(capsys.readouterr().err)
    assert_kept(before)


def test_a_resume_whose_journal_was_altered_is_refused_before_any_trial_starts(flaky, tmp_path, monkeypatch,
                                                                               capsys, launch_in_process):
    """The replay checks every suggestion against the journal; an edited one is one sentence, exit 1."""
    space = write_space(tmp_path / "space.json")
    folder = tmp_path / "results" / "edited"
    folder.mkdir(parents=True)
    (folder / "journal.jsonl").write_text(json.dumps({"suggest": "new", "config": {"x": 2.0}, "t": 0.1}) + "\n")
    monkeypatch.chdir(tmp_path)
    args = vars(parse_args("random_search", custom(flaky, space, "--experiment-name", "edited2")).args)
    (folder / "metadata.json").write_text(json.dumps({
        "status": "interrupted", "metric": "loss", "mode": "min", "scheduler": "random_search",
        "launch": {"args": {k: v for k, v in args.items() if k != "resume"}, "cwd": str(tmp_path)}}))
    before = snapshot(folder)
    assert launch_in_process("--resume", "edited", cwd=tmp_path) == 1
    assert "suggested another configuration for trial 0" in one_sentence(capsys.readouterr().err)
    assert_kept(before)
    assert not (folder / "trials").exists()


@pytest.mark.parametrize("damage, words", [
    (lambda text: text[:-7], "ends in the middle of a line"),
    (lambda text: text.replace("0.5", "zero point five", 1), "non-numeric value 'zero point five'"),
    (lambda text: "", "is empty"),
])
def test_a_damaged_results_file_is_one_sentence_for_the_analysis(damage, words, tmp_path, capsys):
    from analysis.report import main as report

    folder = tmp_path / "run"
    folder.mkdir()
    (folder / "results.csv").write_text("trial_id,tuner_time,epoch,loss\n0,1.0,1,0.5\n0,2.0,2,0.25\n")
    (folder / "trials.csv").write_text("trial_id,status,epochs,best_metric,last_metric,start_time,end_time\n"
                                       "0,Completed,2,0.25,0.25,0.0,2.0\n")
    (folder / "metadata.json").write_text(json.dumps({"metric": "loss", "mode": "min", "scheduler": "x"}))
    (folder / "results.csv").write_text(damage((folder / "results.csv").read_text()))
    assert report([str(folder), "--out", str(tmp_path / "report")]) == 2
    assert words in one_sentence(capsys.readouterr().err)


# State: heartbeats, NaN, paused trials, the journal -------------------------------------------------------------

def test_a_run_whose_launcher_is_gone_reads_as_interrupted():
    from analysis.load import run_status

    now = datetime.now(timezone.utc)
    fresh, stale = now.isoformat(), (now - timedelta(minutes=2)).isoformat()
    here = socket.gethostname()
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True,
                          text=True).stdout.strip()
    assert run_status({"status": "running", "host": here, "pid": os.getpid(), "heartbeat": fresh}) == "running"
    assert run_status({"status": "running", "host": here, "pid": int(dead), "heartbeat": fresh}) == "interrupted"
    assert run_status({"status": "running", "host": "elsewhere", "pid": 1, "heartbeat": fresh}) == "running"
    assert run_status({"status": "running", "host": "elsewhere", "pid": 1, "heartbeat": stale}) == "interrupted"
    assert run_status({"status": "running"}) == "interrupted"  # no heartbeat at all: written before they existed
    assert run_status({"status": "finished", "host": here, "pid": int(dead)}) == "finished"


def _writer(tmp_path: Path):
    from launchers.results import ResultsWriter
    from schedulers.budget import Budget

    return ResultsWriter(tmp_path, {}, hyperparameters=["x"], metric="loss", mode="min",
                         budget=Budget("epoch", 1, 9, 3))


def _trial(trial_id: int):
    from syne_tune.backend.trial_status import Trial

    return Trial(trial_id=trial_id, config={"x": 0.5}, creation_time=datetime.now())


def test_nan_and_infinite_values_are_recorded_but_never_the_incumbent(tmp_path, capsys):
    from analysis.load import load_experiment
    from analysis.summary import best_configuration

    writer = _writer(tmp_path)
    writer.metadata.update(metric="loss", mode="min", scheduler="random_search")
    for trial_id, values in enumerate([[math.nan, 0.5], [-math.inf, math.inf], [0.25]]):
        writer.on_start_trial(_trial(trial_id))
        for epoch, value in enumerate(values, start=1):
            writer.on_trial_result(_trial(trial_id), "InProgress", {"epoch": epoch, "loss": value}, "CONTINUE")
    assert [t["best_metric"] for t in writer.trials.values()] == [0.5, None, 0.25]
    assert writer.best_trial()["trial_id"] == 2
    writer.write()
    results = pd.read_csv(tmp_path / "results.csv")
    assert results["loss"].isna().sum() == 1 and set(results["loss"]) >= {math.inf, -math.inf}  # all recorded
    best = best_configuration(load_experiment(tmp_path))
    assert best["trial_id"] == 2 and best["value"] == 0.25


def test_paused_trials_are_not_running_and_end_stopped_unless_the_run_can_be_resumed(tmp_path):
    from launchers.progress import ProgressBar

    for status, paused_becomes in [("finished", "Stopped"), ("failed", "Stopped"), ("interrupted", "Paused")]:
        writer = _writer(tmp_path)
        for trial_id in range(3):
            writer.on_start_trial(_trial(trial_id))
            writer.on_trial_result(_trial(trial_id), "InProgress", {"epoch": 3, "loss": 0.5}, "PAUSE")
        writer.apply_statuses({0: "Paused", 1: "Paused", 2: "InProgress"})
        bar = ProgressBar(writer, 10, 100.0)
        bar._update()
        assert bar.bar.postfix.startswith("trials=3, running=1, paused=2")
        bar.bar.close()
        writer.finish(status)
        assert [t["status"] for t in writer.trials.values()] == [paused_becomes, paused_becomes, "Stopped"]


def test_the_journal_skips_a_torn_last_line_and_refuses_a_damaged_one(tmp_path):
    from launchers.journal import read

    path = tmp_path / "journal.jsonl"
    path.write_text('{"add": 0, "t": 1.0}\n{"result": 0, "rep')
    assert read(path) == [{"add": 0, "t": 1.0}]
    path.write_text('{"add": 0, "t": 1.0}\n{"result": 0, "rep\n{"add": 1, "t": 2.0}\n')
    with pytest.raises(ValueError, match="line 2 is not a JSON object"):
        read(path)


def _scheduler(name: str, seed: int = 3):
    from schedulers.budget import Budget
    from syne_tune.config_space import choice, uniform

    import numpy as np

    from schedulers.trial_limit import TrialLimit

    np.random.seed(seed)
    space = {"x": uniform(0, 1), "kind": choice(["a", "b"]), "epochs": 9}
    # A trial limit, as the launcher sets one: the scheduler then answers None rather than a trial never started.
    return TrialLimit(SCHEDULERS[name].build(space, "loss", "min", Budget("epoch", 1, 9, 3), seed), 25)


@pytest.mark.parametrize("scheduler", ["random_search", "hyperband", "bohb", "asha"])
def test_replaying_the_journal_rebuilds_the_scheduler_and_the_results(scheduler, tmp_path):
    """Drive a scheduler through a run (pauses, resumes, failures), journaled; a fresh one fed the journal then
    suggests what the original would, and the rebuilt results equal the live ones."""
    from sync_driver import drive

    from launchers.journal import Journal, Recorder, read
    from launchers.resume import replay
    from launchers.results import ResultsWriter
    from schedulers.budget import Budget

    def writer(folder):
        return ResultsWriter(folder, {}, ["x", "kind"], "loss", "min", Budget("epoch", 1, 9, 3),
                             scheduler_columns=SCHEDULERS[scheduler].columns)

    live, journal = writer(tmp_path / "live"), Journal(tmp_path / "journal.jsonl")
    original = _scheduler(scheduler)
    recorder = Recorder(original, journal, clock=lambda: 1.5)
    live.use_scheduler(recorder)

    class Feeding:  # the tuner's callbacks, as the drive's loop makes the calls
        def __getattr__(self, name):
            return getattr(recorder, name)

        def on_trial_add(self, trial):
            recorder.on_trial_add(trial)
            live.on_start_trial(trial)

        def on_trial_result(self, trial, result):
            decision = recorder.on_trial_result(trial, result)
            live.on_trial_result(trial, "InProgress", result, decision)
            return decision

    run = drive(Feeding(), lambda config, epoch: (config["x"] - 0.3) ** 2 + 1 / epoch, n_workers=3,
                max_trials=100, fail=lambda config: config["x"] > 0.85)
    assert run.exhausted and len(run.configs) == 25 and "failed" in run.status.values()
    journal.close()
    rebuilt = writer(tmp_path / "rebuilt")
    fresh = _scheduler(scheduler)
    state = replay(read(tmp_path / "journal.jsonl"), fresh, rebuilt, tmp_path)
    assert rebuilt.results_frame().equals(live.results_frame())
    # (statuses are the tuner's, which the drive has none of; start times are the journal's, a moment earlier)
    ignore = ["status", "start_time"]
    assert rebuilt.trials_frame().drop(columns=ignore).equals(live.trials_frame().drop(columns=ignore))
    assert sum(state.reports.values()) == len(live.rows) and state.spent == 1.5 and not state.running
    assert {i for i, status in run.status.items() if status == "paused"} == state.paused
    assert fresh.num_suggested == original.num_suggested == 25  # the limit's count is rebuilt too
    # Both go on alike. Past the limit TrialLimit answers None without asking (random search, asha), so ask the
    # schedulers it wraps: new trials there, synchronous Hyperband's promotions that became ready after the drive's
    # last question.
    going_on = []
    for _ in range(5):
        a, b = original.scheduler.suggest(), fresh.scheduler.suggest()
        assert (a is None) == (b is None)
        if a is None:
            break
        assert (a.spawn_new_trial_id, a.checkpoint_trial_id, a.config) == \
            (b.spawn_new_trial_id, b.checkpoint_trial_id, b.config)
        going_on.append(a)
    assert going_on  # not None against None


# Real trial processes (slow) ------------------------------------------------------------------------------------

def _trials_to_run(scheduler: str, space: Path, metadata: dict, limit: int) -> int:
    """How many trials a run of ``scheduler`` starts: ``limit``, but grid search ends with its grid, every category's
    values times --grid-points values per numeric hyperparameter (a constant is one value)."""
    import ConfigSpace as CS

    if scheduler != "grid_search":
        return limit
    points = metadata["scheduler_kwargs"]["grid_points"]
    size = math.prod(len(hp.choices) if isinstance(hp, CS.CategoricalHyperparameter) else
                     1 if isinstance(hp, CS.Constant) else points
                     for hp in CS.ConfigurationSpace.from_json(space).values())
    return min(size, limit)


@pytest.mark.slow
@pytest.mark.parametrize("scheduler", list(SCHEDULERS))
def test_crashing_trials_are_recorded_and_tuning_goes_on(scheduler, flaky, tmp_path, capsys, launch_in_process):
    """About 30% of 30 trials crash (some before any report): every scheduler tunes on to the end, each failure is
    a row with its status and epochs, and the CSVs agree."""
    space = write_space(tmp_path / "space.json")
    flags = custom(flaky, space, "--scheduler", scheduler, "--n-workers", "2", "--max-num-trials", "30",
                   "--experiment-name", "flaky", "--seed", "2")
    assert launch_in_process(*flags, cwd=tmp_path) == 0
    results, trials, metadata = read_results(tmp_path / "results" / "flaky")
    assert metadata["status"] == "finished"
    assert len(trials) == _trials_to_run(scheduler, space, metadata, 30)
    failed = trials[trials["status"] == "Failed"]
    assert len(failed) >= 2
    for _, trial in trials.iterrows():  # a trial failed when it reached its crash epoch, unless stopped before
        crash = crash_epoch(trial["config_x"])
        if trial["status"] == "Failed":
            assert crash is not None and trial["epochs"] == crash - 1, trial
        elif trial["status"] == "Completed":
            assert crash is None, trial
        else:
            assert trial["status"] == "Stopped" and (crash is None or trial["epochs"] <= crash - 1), trial
    epochs = results.groupby("trial_id")["epoch"].apply(list)
    for trial_id, reached in epochs.items():  # every epoch reported once, in order
        assert reached == list(range(1, len(reached) + 1))
    reached = trials.set_index("trial_id")["epochs"]
    assert (epochs.apply(len).reindex(reached.index, fill_value=0) == reached).all()
    assert (results.groupby("trial_id")["loss"].min() == trials.set_index("trial_id")["best_metric"].dropna()).all()
    assert f"({len(failed)} failed)" in capsys.readouterr().out
    assert "boom at epoch" in (tmp_path / "results" / "flaky" / "trials" / str(failed["trial_id"].iloc[0]) /
                               "std.err").read_text()


@pytest.mark.slow
@pytest.mark.parametrize("flags, words, code", [
    (["--max-failures", "1"], "2 trials failed, more than --max-failures 1 allows", 1),
    (["--max-failures", "0"], "1 trial failed, more than --max-failures 0 allows", 1),
], ids=["1", "0"])
def test_max_failures_ends_the_run_in_one_sentence(flags, words, code, flaky, tmp_path, capsys, launch_in_process):
    space = write_space(tmp_path / "space.json")
    assert launch_in_process(*custom(flaky, space, "--scheduler", "random_search", "--n-workers", "1",
                                     "--max-num-trials", "30", "--experiment-name", "fails", *flags),
                             cwd=tmp_path) == code
    err = capsys.readouterr().err
    assert words in err and "ended with: RuntimeError: boom at epoch" in err and "Traceback" not in err
    _, trials, metadata = read_results(tmp_path / "results" / "fails")
    assert metadata["status"] == "failed" and len(trials) < 30
    assert (trials["status"] == "Failed").sum() == int(flags[1]) + 1


@pytest.mark.slow
@pytest.mark.parametrize("script, constants, words", [
    (SILENT, {}, "trials failed and none reported loss, so the script or its data looks broken (--max-failures N "
                 "goes on regardless); trial"),
    (FLAKY, {"crash": 0, "value": "nan"}, "No trial reported a finite loss (18 reports, none with a finite value)"),
], ids=["silent", "only-nan"])
def test_a_run_without_a_finite_result_exits_1_in_one_sentence(script, constants, words, tmp_path, capsys,
                                                               launch_in_process):
    (tmp_path / "script.py").write_text(script)
    space = write_space(tmp_path / "space.json", **constants)
    assert launch_in_process(*custom(tmp_path / "script.py", space, "--scheduler", "random_search", "--n-workers",
                                     "2", "--max-num-trials", "2" if constants else "8", "--experiment-name", "none"),
                             cwd=tmp_path) == 1
    out, err = capsys.readouterr()
    assert words in one_sentence(err)
    assert "No trial reported a finite loss." in out


@pytest.mark.slow
@pytest.mark.parametrize("flag, reported, words", [
    ("metric", {"metric_name": "mean_loss"}, "reported epoch, mean_loss but not loss (--metric): give --metric a "
                                             "name the script reports."),
    ("resource", {}, "reported epoch, loss but not step (--resource-attr): give --resource-attr a name the script "
                     "reports."),
], ids=["metric", "resource-attr"])
def test_a_report_without_the_metric_stops_the_run_keeping_what_arrived(flag, reported, words, flaky, tmp_path,
                                                                        capsys, launch_in_process):
    space = write_space(tmp_path / "space.json", crash=0, **reported)
    names = {"metric": "mean_loss" if flag == "metric" else "loss"}
    flags = custom(flaky, space, "--scheduler", "random_search", "--n-workers", "2", "--max-num-trials", "4",
                   "--experiment-name", "wrong", metric="loss", resource="step" if flag == "resource" else "epoch")
    assert launch_in_process(*flags, cwd=tmp_path) == 2
    assert words in one_sentence(capsys.readouterr().err)
    results, _, metadata = read_results(tmp_path / "results" / "wrong")
    assert metadata["status"] == "failed" and len(results) >= 1  # the reports that arrived are kept
    assert names["metric"] in results.columns


def _launcher(script: Path, space: Path, name: str, tmp_path: Path, *more: str) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, str(REPO_ROOT / "launchers" / "launch.py"),
                             *custom(script, space, "--scheduler", "random_search", "--n-workers", "2",
                                     "--experiment-name", name, *more)],
                            cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            preexec_fn=default_signals)


def _wait_for_reports(folder: Path, n: int, timeout: float = 60):
    """Until results.csv holds ``n`` reports (it is rewritten every 2 s; the journal is written as they come)."""
    deadline = time.time() + timeout
    while time.time() < deadline:
        with contextlib.suppress(OSError, pd.errors.EmptyDataError):
            if len(pd.read_csv(folder / "results.csv")) >= n:
                return
        time.sleep(0.1)
    raise AssertionError(f"fewer than {n} reports in {folder} after {timeout} s")


def _trial_processes(launcher: subprocess.Popen) -> list[psutil.Process]:
    found = []
    for process in psutil.Process(launcher.pid).children(recursive=True):
        with contextlib.suppress(psutil.Error):  # one that just ended
            if "flaky.py" in " ".join(process.cmdline()):
                found.append(process)
    return found


def _own_group(process: psutil.Process) -> bool | None:
    try:
        return os.getpgid(process.pid) == process.pid
    except ProcessLookupError:
        return None


def _gone_within(processes: list[psutil.Process], seconds: float) -> bool:
    deadline = time.time() + seconds
    while time.time() < deadline:
        alive = []
        for process in processes:
            with contextlib.suppress(psutil.NoSuchProcess):  # reaped between the two questions
                if process.is_running() and process.status() != psutil.STATUS_ZOMBIE:
                    alive.append(process)
        if not alive:
            return True
        time.sleep(0.1)
    return False


def _trial_mid_run(folder: Path) -> tuple[Path, int] | None:
    """A trial that has reported, but not yet its budget (Hyperband's rung, or 9): its folder and last epoch."""
    for out in sorted(folder.glob("trials/*/std.out")):
        with contextlib.suppress(OSError, ValueError, IndexError):  # a line or config.json being written
            epochs = [json.loads(line.split(": ", 1)[1])["epoch"] for line in out.read_text().splitlines()
                      if line.startswith("[tune-metric]")]
            budget = json.loads((out.parent / "config.json").read_text())["epochs"]
            if epochs and epochs[-1] < budget:
                return out.parent, epochs[-1]
    return None


def _wait_for_a_trial_mid_run(folder: Path, timeout: float = 60) -> None:
    deadline = time.time() + timeout
    while time.time() < deadline:
        if _trial_mid_run(folder):
            return
        time.sleep(0.01)
    raise AssertionError(f"no trial of {folder} was between two reports for {timeout} s")


def _print_an_unread_report(folder: Path) -> int:
    """Append a report (loss 123.0) to the output of a trial that was cut short, as its script would (checkpoint
    first, then the report line); the trial's id."""
    found = _trial_mid_run(folder)
    if found is None:
        raise AssertionError("no trial was cut short by the kill")
    trial, last = found
    (trial / "checkpoints" / "epoch").write_text(str(last + 1))
    with open(trial / "std.out", "a") as lines:
        lines.write("[tune-metric]: " + json.dumps({"epoch": last + 1, "loss": 123.0,
                                                    "st_worker_timestamp": time.time()}) + "\n")
    return int(trial.name)


@pytest.mark.slow
@pytest.mark.parametrize("scheduler", ["random_search", "hyperband"])
def test_kill_9_leaves_no_trial_and_resume_completes_the_run_losing_nothing(scheduler, flaky, tmp_path,
                                                                            launch_in_process):
    """A results path with spaces, quotes and unicode; the launcher is killed with SIGKILL mid-run. (Hyperband's
    paused trials and promotions go through the journal too.)"""
    space = write_space(tmp_path / "space.json", crash=0, sleep=0.15)
    name = "my 'run' (1) ü"
    folder = tmp_path / "results" / name
    launcher = _launcher(flaky, space, name, tmp_path, "--max-num-trials", "6" if scheduler == "random_search"
                         else "12", "--scheduler", scheduler)
    _wait_for_reports(folder, 7)
    # Kill while a trial is between two reports (an epoch takes 0.15 s), or no trial is cut short: with Hyperband
    # the kill could otherwise land when every running trial has just reached its rung or not reported yet.
    _wait_for_a_trial_mid_run(folder)
    trials = _trial_processes(launcher)
    groups = [own for own in map(_own_group, trials) if own is not None]
    assert groups and all(groups)  # each trial in its own process group
    launcher.kill()
    launcher.wait()
    assert _gone_within(trials, 5), "trial processes outlived the launcher"
    from analysis.load import run_status

    metadata = json.loads((folder / "metadata.json").read_text())
    assert metadata["status"] == "running" and run_status(metadata) == "interrupted"
    before = pd.read_csv(folder / "results.csv")
    journaled = (folder / "journal.jsonl").read_text().count('"result"')
    # A report that a script printed (after its checkpoint) but the tuner never read before the kill: it must not
    # be lost. (Made here, so that the test does not hang on the timing of the kill.)
    unread = _print_an_unread_report(folder)
    assert launch_in_process("--resume", name, cwd=tmp_path) == 0
    results, trials_csv, metadata = read_results(folder)
    assert metadata["status"] == "finished" and len(metadata["resumed"]) == 1
    kept = before.merge(results, how="left", indicator=True)
    assert (kept["_merge"] == "both").all()  # every report written before the kill is still there, unchanged
    assert len(results) >= journaled and len(trials_csv) == (6 if scheduler == "random_search" else 12)
    assert len(results[results["loss"] == 123.0]) == 1 and unread in set(results["trial_id"])
    for _, epochs in results.groupby("trial_id")["epoch"]:  # trials went on from their checkpoints: no epoch twice
        assert list(epochs) == list(range(1, len(epochs) + 1))
    assert (trials_csv["epochs"] == results.groupby("trial_id")["epoch"].max().reindex(trials_csv["trial_id"])
            .to_numpy()).all()
    if scheduler == "random_search":
        assert len(results) == 6 * 9 and list(trials_csv["status"]) == ["Completed"] * 6
    else:
        assert set(trials_csv["status"]) <= {"Completed", "Stopped"} and (trials_csv["epochs"] > 1).any()
    new = results.merge(before, how="left", indicator=True)["_merge"].eq("left_only").to_numpy()
    assert results.loc[new, "tuner_time"].min() >= before["tuner_time"].max()  # the clock goes on where it stopped


@pytest.mark.slow
@pytest.mark.parametrize("signum, code", [(signal.SIGINT, 130), (signal.SIGTERM, 143), (signal.SIGHUP, 129)],
                         ids=["SIGINT", "SIGTERM", "SIGHUP"])
def test_a_signal_stops_every_trial_and_exits_128_plus_its_number(signum, code, flaky, tmp_path):
    space = write_space(tmp_path / "space.json", crash=0, sleep=0.15)
    launcher = _launcher(flaky, space, "sig", tmp_path)
    _wait_for_reports(tmp_path / "results" / "sig", 3)
    _wait_for_a_trial_mid_run(tmp_path / "results" / "sig")  # so that a trial process is running now
    trials = _trial_processes(launcher)
    assert trials  # else the check below holds for nothing
    launcher.send_signal(signum)
    out, err = launcher.communicate(timeout=120)
    assert launcher.returncode == code, err
    assert _gone_within(trials, 30)  # generous: the machine may be loaded
    _, trials_csv, metadata = read_results(tmp_path / "results" / "sig")
    assert metadata["status"] == "interrupted" and "Tuning interrupted" in out
    assert "InProgress" not in set(trials_csv["status"])
    # the running trials' checkpoints stay, for --resume
    assert any((tmp_path / "results" / "sig" / "trials").glob("*/checkpoints/epoch"))


@pytest.mark.slow
def test_a_trial_dies_with_its_launcher_and_a_stop_ends_its_children(tmp_path):
    """The parent-death signal (the launcher killed before it could stop anything) and the process group."""
    parent = (
        "import subprocess, sys, time\n"
        "from backends import trial_process\n"
        "child = [sys.executable, '-c', 'import subprocess, sys, time; "
        "subprocess.Popen([sys.executable, \"-c\", \"import time; time.sleep(60)\"]); time.sleep(60)']\n"
        "p = trial_process.start(child, sys.stdout, sys.stderr, {})\n"
        "print(p.pid, flush=True)\n"
        "time.sleep(1.0)\n"
        "if sys.argv[1] == 'stop':\n"
        "    trial_process.kill_group(p)\n"
        "    time.sleep(60)\n"
    )
    for how in ("die", "stop"):
        launcher = subprocess.Popen([sys.executable, "-c", parent, how], cwd=REPO_ROOT, stdout=subprocess.PIPE,
                                    text=True, env={**os.environ, "PYTHONPATH": str(REPO_ROOT)})
        trial = psutil.Process(int(launcher.stdout.readline()))
        deadline = time.time() + 5
        while not trial.children() and time.time() < deadline:
            time.sleep(0.05)
        family = [trial, *trial.children(recursive=True)]
        assert len(family) == 2 and os.getpgid(trial.pid) == trial.pid
        if how == "die":
            launcher.kill()
            # by its parent-death signal: it would sleep 60 s otherwise (30 s is for a loaded machine)
            assert _gone_within([trial], 30)
            with contextlib.suppress(ProcessLookupError):
                os.killpg(trial.pid, signal.SIGKILL)  # its own child, left in its group
        else:
            assert _gone_within(family, 30)  # a stop ends the whole group (each would sleep 60 s)
            launcher.kill()
        launcher.wait()


def test_a_run_without_reports_is_no_seed_in_the_summary(tmp_path):
    from analysis.load import load_experiments
    from analysis.summary import method_summary, summary_markdown

    for name, rows in [("seed0", "0,1.0,1,0.5\n"), ("seed1", "0,1.0,1,0.25\n"), ("seed2", "")]:
        folder = tmp_path / name
        folder.mkdir()
        (folder / "results.csv").write_text("trial_id,tuner_time,epoch,loss\n" + rows)
        (folder / "trials.csv").write_text("trial_id,status,epochs,best_metric,last_metric,start_time,end_time\n"
                                           "0,Failed,0,,,0.0,\n")
        (folder / "metadata.json").write_text(json.dumps({"metric": "loss", "mode": "min", "scheduler": "rs",
                                                          "status": "finished"}))
    experiments = load_experiments(tmp_path)
    summary = method_summary(experiments, 0.3).iloc[0]
    assert (summary["n_seeds"], summary["n_silent"], summary["final_mean"]) == (2, 1, 0.375)
    assert "Runs without any report of loss, not counted as seeds: rs 1." in summary_markdown(experiments)
