"""Write the results folder while the tuner runs: results.csv, trials.csv and metadata.json (see the README).

Files are rewritten whole every few seconds through a temporary file and an atomic rename, so that a crash or Ctrl-C
leaves the last complete version on disk, never a half-written one.
"""
import json
import math
import os
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import pandas as pd
from syne_tune.backend.trial_status import Status, Trial
from syne_tune.constants import ST_TUNER_TIME
from syne_tune.optimizer.scheduler import SchedulerDecision
from syne_tune.tuner_callback import TunerCallback

from schedulers.bookkeeping import TrialBookkeeping
from schedulers.budget import Budget

# Every trials.csv starts with these; the scheduler's declared bookkeeping columns and the config follow.
# ``estimated``: whether any report of the trial was an estimate (a tabulated benchmark's surrogate answered);
# empty where the benchmark reports no such key.
TRIAL_COLUMNS = ["trial_id", "status", "epochs", "best_metric", "last_metric", "start_time", "end_time", "estimated"]
ESTIMATED = "estimated"


def now_iso() -> str:
    """The current time as an ISO 8601 string with the time zone."""
    return datetime.now(timezone.utc).astimezone().isoformat(timespec="seconds")


def write_atomically(path: Path, text: str):
    """Replace ``path`` by ``text`` so that readers see the old or the new file, never a partial one."""
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(text)
    os.replace(tmp, path)


class ResultsWriter(TunerCallback):
    """Collects every report and trial of a tuning run and writes them to ``folder`` every ``interval`` seconds.

    ``scheduler_columns`` are the bookkeeping columns the scheduler's registry entry declares; the tuner's scheduler
    fills them through its ``TrialBookkeeping`` hook.
    """

    def __init__(self, folder: Path, metadata: dict[str, Any], hyperparameters: list[str], metric: str, mode: str,
                 budget: Budget, scheduler_columns: tuple[str, ...] = (), interval: float = 2.0):
        self.folder = Path(folder)
        self.metadata = dict(metadata)
        self.metric = metric
        self.resource_attr = budget.resource_attr
        self.max_resource = budget.max_resource
        self.sign = 1 if mode == "min" else -1
        self.hyperparameters = hyperparameters
        self.scheduler_columns = list(scheduler_columns)
        self.interval = interval
        self.rows: list[dict[str, Any]] = []
        self.trials: dict[int, dict[str, Any]] = {}
        self._tuner = None
        self._stopped_by_scheduler: set[int] = set()
        self._clock_start = time.perf_counter()
        self._last_write = -math.inf

    # Clock: simulated seconds where the backend keeps simulated time, else wall-clock seconds since the start.
    def tuner_time(self) -> float:
        time_keeper = getattr(getattr(self._tuner, "trial_backend", None), "time_keeper", None)
        if time_keeper is not None:
            return time_keeper.time()
        return time.perf_counter() - self._clock_start

    def on_tuning_start(self, tuner):
        self._tuner = tuner
        self._clock_start = time.perf_counter()
        self.folder.mkdir(parents=True, exist_ok=True)
        self.metadata.update(start_time=now_iso(), end_time=None, status="running")
        self.write()

    def on_start_trial(self, trial: Trial):
        config = {f"config_{name}": trial.config.get(name) for name in self.hyperparameters}
        self.trials[trial.trial_id] = {
            "trial_id": trial.trial_id, "status": Status.in_progress, "epochs": 0, "best_metric": None,
            "last_metric": None, "start_time": self.tuner_time(), "end_time": None, ESTIMATED: None,
            **self._bookkeeping(trial.trial_id), **config,
        }

    def _bookkeeping(self, trial_id: int) -> dict[str, Any]:
        """The declared scheduler columns of a trial, from the scheduler's hook."""
        if not self.scheduler_columns:
            return {}
        scheduler = self._tuner.scheduler
        if not isinstance(scheduler, TrialBookkeeping):
            raise TypeError(f"{type(scheduler).__name__} declares the trials.csv columns {self.scheduler_columns} "
                            "but has no trial_bookkeeping hook.")
        values = scheduler.trial_bookkeeping(trial_id)
        undeclared = set(values) - set(self.scheduler_columns)
        if undeclared:
            raise ValueError(f"{type(scheduler).__name__} records {sorted(undeclared)} for trial {trial_id}, which "
                             f"its registry entry does not declare ({self.scheduler_columns}).")
        return {column: values.get(column) for column in self.scheduler_columns}

    def on_trial_result(self, trial: Trial, status: str, result: dict[str, Any], decision: str):
        tuner_time = result.get(ST_TUNER_TIME, self.tuner_time())
        metrics = {k: v for k, v in result.items() if not k.startswith("st_") and k != "trial_id"}
        row = {"trial_id": trial.trial_id, "tuner_time": tuner_time, **metrics}
        row.update({f"config_{name}": trial.config.get(name) for name in self.hyperparameters})
        self.rows.append(row)
        summary = self.trials.get(trial.trial_id)
        if summary is None:
            return
        value = result.get(self.metric)
        summary["epochs"] = max(summary["epochs"], int(result.get(self.resource_attr, 0)))
        summary["end_time"] = tuner_time
        if decision == SchedulerDecision.STOP:
            self._stopped_by_scheduler.add(trial.trial_id)
        if ESTIMATED in result:
            summary[ESTIMATED] = bool(summary[ESTIMATED]) or bool(result[ESTIMATED])
        if value is not None:
            summary["last_metric"] = value
            best = summary["best_metric"]
            if best is None or self.sign * value < self.sign * best:
                summary["best_metric"] = value

    def on_loop_end(self):
        self._update_statuses()
        if time.perf_counter() - self._last_write >= self.interval:
            self.write()

    def on_tuning_end(self):
        self._update_statuses()
        self.write()

    def finish(self, status: str):
        """Final write: every trial still marked running is recorded as stopped, and the run's end status."""
        self._update_statuses()
        for summary in self.trials.values():
            if summary["status"] in (Status.in_progress, Status.stopping):
                summary["status"] = Status.completed if summary["epochs"] >= self.max_resource else Status.stopped
        self.metadata.update(end_time=now_iso(), status=status)
        self.write()

    def _update_statuses(self):
        status_seen = getattr(getattr(self._tuner, "tuning_status", None), "last_trial_status_seen", {})
        for trial_id, status in status_seen.items():
            if trial_id in self.trials:
                trial = self.trials[trial_id]
                # Hyperband's schedulers "stop" a trial on its report at the largest budget: it has completed.
                # The simulator calls a trial completed once its table rows are used up, even if it was stopped.
                if trial_id in self._stopped_by_scheduler or status == Status.stopped:
                    status = Status.completed if trial["epochs"] >= self.max_resource else Status.stopped
                trial["status"] = status

    def write(self):
        """Rewrite the three files from what has been seen so far."""
        self.folder.mkdir(parents=True, exist_ok=True)
        write_atomically(self.folder / "results.csv", self.results_frame().to_csv(index=False))
        write_atomically(self.folder / "trials.csv", self.trials_frame().to_csv(index=False))
        write_atomically(self.folder / "metadata.json", json.dumps(self.metadata, indent=2, default=str) + "\n")
        self._last_write = time.perf_counter()

    def results_frame(self) -> pd.DataFrame:
        """One row per report: trial id, tuner time, the reported metrics, then the config."""
        frame = pd.DataFrame(self.rows)
        if frame.empty:
            frame = pd.DataFrame(columns=["trial_id", "tuner_time", self.resource_attr, self.metric]
                                 + [f"config_{name}" for name in self.hyperparameters])
        config_columns = [c for c in frame.columns if c.startswith("config_")]
        leading = ["trial_id", "tuner_time", self.resource_attr, self.metric]
        metrics = [c for c in frame.columns if c not in leading and c not in config_columns]
        return frame[[c for c in leading if c in frame.columns] + metrics + config_columns]

    def trials_frame(self) -> pd.DataFrame:
        """One row per trial: status, epochs reached, best and last metric, scheduler bookkeeping, config."""
        columns = TRIAL_COLUMNS + self.scheduler_columns + [f"config_{name}" for name in self.hyperparameters]
        return pd.DataFrame(list(self.trials.values()), columns=columns)

    def best_trial(self) -> dict[str, Any] | None:
        """The trial with the best metric so far, or None before the first report."""
        reported = [t for t in self.trials.values() if t["best_metric"] is not None]
        if not reported:
            return None
        return min(reported, key=lambda t: self.sign * t["best_metric"])
