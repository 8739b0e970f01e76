"""Write the results folder while the tuner runs: results.csv, trials.csv and metadata.json (see the README).

Files are rewritten whole every few seconds through a temporary file and an atomic rename, so that a crash or Ctrl-C
leaves the last complete version on disk, never a half-written one.
"""
import json
import math
import os
import socket
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from syne_tune.backend.trial_status import Status, Trial
from syne_tune.constants import ST_TUNER_TIME
from syne_tune.optimizer.scheduler import SchedulerDecision
from syne_tune.tuner_callback import TunerCallback

from schedulers.budget import Budget

# Every trials.csv starts with these; the scheduler's declared bookkeeping columns and the config follow.
# ``estimated``: whether any report of the trial was an estimate (a tabulated benchmark's surrogate answered);
# empty where the benchmark reports no such key.
TRIAL_COLUMNS = ["trial_id", "status", "epochs", "best_metric", "last_metric", "start_time", "end_time", "estimated"]
ESTIMATED = "estimated"


def now_iso() -> str:
    """The current time as an ISO 8601 string with the time zone."""
    return datetime.now(timezone.utc).astimezone().isoformat(timespec="seconds")


# A text field with one of these goes through pandas, which quotes it.
_QUOTED = (",", '"', "\n", "\r")


def _column_text(column: pd.Series) -> list[str] | None:
    """A column's values as ``to_csv`` writes them, for 64-bit floats, integers, booleans and plain strings (None
    otherwise): pandas writes such floats with numpy's shortest round-trip text, which is Python's ``repr``."""
    dtype = column.dtype
    if isinstance(dtype, np.dtype) and dtype.kind == "f" and dtype.itemsize == 8:
        return [repr(v) if v == v else "" for v in column.tolist()]
    if isinstance(dtype, np.dtype) and dtype.kind in "iub":
        return list(map(str, column.tolist()))
    if not (dtype == object or isinstance(dtype, pd.StringDtype)):
        return None
    missing = column.isna().tolist()
    values = ["" if gap else value for value, gap in zip(column.tolist(), missing)]
    if any(type(value) is not str or any(c in value for c in _QUOTED) for value in set(values)):
        return None
    return values


def csv_text(frame: pd.DataFrame, header: bool = True) -> str:
    """``frame.to_csv(index=False, header=header)``, byte for byte, three times faster for the columns results have;
    a frame with any other column goes through pandas."""
    names = list(frame.columns)
    # (pandas quotes the empty field of a one-column row, and there is little to gain on an empty frame)
    plain = len(frame) > 0 and 1 < len(set(names)) == len(names) and \
        all(type(name) is str and not any(c in name for c in _QUOTED) for name in names)
    columns = [_column_text(frame[name]) for name in names] if plain else [None]
    if any(column is None for column in columns):
        return frame.to_csv(index=False, header=header)
    return (",".join(names) + "\n" if header else "") + "\n".join(map(",".join, zip(*columns))) + "\n"


def write_atomically(path: Path, text: str):
    """Replace ``path`` by ``text`` so that readers see the old or the new file, never a partial one."""
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(text)
    os.replace(tmp, path)


class ResultsWriter(TunerCallback):
    """Collects every report and trial of a tuning run and writes them to ``folder`` every ``interval`` seconds (less
    often where a write takes more than a twentieth of that).

    ``scheduler_columns`` are the bookkeeping columns the scheduler's registry entry declares; the tuner's scheduler
    fills them through its ``TrialBookkeeping`` hook. ``time_offset``: wall-clock seconds the run had already spent
    before it was resumed. ``hold_rows``: write no file until that many reports arrived (a resumed simulation must
    first reproduce what the interrupted run wrote, see ``launchers.resume``).

    A metric value that is NaN or infinite is recorded but never counts as a trial's best.
    """

    def __init__(self, folder: Path, metadata: dict[str, Any], hyperparameters: list[str], metric: str, mode: str,
                 budget: Budget, scheduler_columns: tuple[str, ...] = (), interval: float = 2.0,
                 time_offset: float = 0.0, hold_rows: int = 0):
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
        self._time_keeper = None
        self.time_offset = time_offset
        self.frozen_time: float | None = None  # the tuner time of the event replayed, while a resume replays them
        self.hold_rows = hold_rows
        self._stopped_by_scheduler: set[int] = set()
        self._clock_start = time.perf_counter()
        self._last_write = -math.inf
        self._write_seconds = 0.0
        self._config_names = [(name, f"config_{name}") for name in hyperparameters]
        self._config_columns_of: dict[int, tuple[dict[str, Any], dict[str, Any]]] = {}
        self._syne_tune_keys_of: dict[tuple[str, ...], tuple[str, ...]] = {}
        # results.csv as written so far: its header, its lines in chunks, how many rows they hold and the column
        # names and types they were formatted with.
        self._csv_header = ""
        self._csv_chunks: list[str] = []
        self._csv_rows = 0
        self._csv_signature: tuple | None = None

    # Clock: simulated seconds where the backend keeps simulated time, else wall-clock seconds since the start.
    def tuner_time(self) -> float:
        if self.frozen_time is not None:
            return self.frozen_time
        if self._time_keeper is not None:
            return self._time_keeper.time()
        return self.time_offset + time.perf_counter() - self._clock_start

    def on_tuning_start(self, tuner):
        """``tuner``: Syne Tune's ``Tuner``, or an engine that stands in for it (``backends.engine``): what is read
        is its ``scheduler``, ``tuning_status.last_trial_status_seen`` and a simulated ``time_keeper`` (its own or
        its trial backend's), where it keeps one."""
        self._tuner = tuner
        self._time_keeper = getattr(tuner, "time_keeper", None) or \
            getattr(getattr(tuner, "trial_backend", None), "time_keeper", None)
        self._clock_start = time.perf_counter()
        self.folder.mkdir(parents=True, exist_ok=True)
        self.metadata.setdefault("start_time", now_iso())  # a resumed run keeps its first start
        # Who writes the heartbeat: a reader on this host can tell a killed run from a running one.
        self.metadata.update(end_time=None, status="running", pid=os.getpid(), host=socket.gethostname())
        self.write()

    def use_scheduler(self, scheduler: Any):
        """The scheduler whose bookkeeping hook fills the declared columns before the tuner starts (a resume's
        replay); the tuner's own takes over at ``on_tuning_start``."""
        self._tuner = _SchedulerOnly(scheduler)

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
        if not callable(getattr(scheduler, "trial_bookkeeping", None)):  # TrialBookkeeping (its isinstance is slow)
            raise TypeError(f"{type(scheduler).__name__} declares the trials.csv columns {self.scheduler_columns} "
                            "but has no trial_bookkeeping hook.")
        values = scheduler.trial_bookkeeping(trial_id)
        undeclared = set(values) - set(self.scheduler_columns)
        if undeclared:
            raise ValueError(f"{type(scheduler).__name__} records {sorted(undeclared)} for trial {trial_id}, which "
                             f"its registry entry does not declare ({self.scheduler_columns}).")
        return {column: values.get(column) for column in self.scheduler_columns}

    def _syne_tune_keys(self, result: dict[str, Any]) -> tuple[str, ...]:
        """The keys of ``result`` that Syne Tune adds (``st_...``), found once per set of keys."""
        keys = tuple(result)
        found = self._syne_tune_keys_of.get(keys)
        if found is None:
            found = self._syne_tune_keys_of[keys] = tuple(k for k in keys if k.startswith("st_"))
        return found

    def _config_columns(self, trial: Trial) -> dict[str, Any]:
        """The trial's ``config_<name>`` columns, kept while its config stays the same (a resume may change it)."""
        cached = self._config_columns_of.get(trial.trial_id)
        if cached is None or cached[0] != trial.config:
            cached = (dict(trial.config), {column: trial.config.get(name) for name, column in self._config_names})
            self._config_columns_of[trial.trial_id] = cached
        return cached[1]

    def on_trial_result(self, trial: Trial, status: str, result: dict[str, Any], decision: str):
        tuner_time = result[ST_TUNER_TIME] if ST_TUNER_TIME in result else self.tuner_time()
        row = {"trial_id": trial.trial_id, "tuner_time": tuner_time}
        row.update(result)
        for key in self._syne_tune_keys(result):
            del row[key]
        row["trial_id"] = trial.trial_id
        row.update(self._config_columns(trial))
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
            finite = value == value and value != math.inf and value != -math.inf
            if finite and (best is None or self.sign * value < self.sign * best):
                summary["best_metric"] = value

    def on_loop_end(self):
        # Statuses are read only when written: reading them on every loop costs O(trials) each time. A write costs
        # O(reports) too, so a long run writes less often: at most a twentieth of the time goes into writing.
        if time.perf_counter() - self._last_write >= max(self.interval, 20 * self._write_seconds):
            self.refresh_statuses()
            self.write()

    def on_tuning_end(self):
        # The final write is ``finish``'s, which the launcher calls next, also after an error or Ctrl-C.
        self.refresh_statuses()

    def finish(self, status: str):
        """Final write: every trial still marked running is recorded as stopped, and the run's end status. A run
        that is over for good also records its paused trials as stopped (synchronous Hyperband pauses the trials
        it does not promote); an interrupted one keeps them paused, for ``--resume``."""
        self.refresh_statuses()
        ended = (Status.in_progress, Status.stopping) + (() if status == "interrupted" else (Status.paused,))
        for summary in self.trials.values():
            if summary["status"] in ended:
                summary["status"] = Status.completed if summary["epochs"] >= self.max_resource else Status.stopped
        self.metadata.update(end_time=now_iso(), status=status)
        self.write()

    def refresh_statuses(self):
        """Bring each trial's ``status`` up to date with the tuner's."""
        self.apply_statuses(getattr(getattr(self._tuner, "tuning_status", None), "last_trial_status_seen", {}))

    def apply_statuses(self, status_seen: dict[int, str]):
        """Take the tuner's statuses (trial id -> Syne Tune status) for the trials they name."""
        for trial_id, status in status_seen.items():
            if trial_id in self.trials:
                trial = self.trials[trial_id]
                # Hyperband's schedulers "stop" a trial on its report at the largest budget: it has completed.
                # The simulator calls a trial completed once its table rows are used up, even if it was stopped.
                if trial_id in self._stopped_by_scheduler or status == Status.stopped:
                    status = Status.completed if trial["epochs"] >= self.max_resource else Status.stopped
                trial["status"] = status

    def write(self):
        """Rewrite the three files from what has been seen so far; ``metadata.json`` gets a fresh heartbeat (the
        time of the write) and the tuner seconds spent so far."""
        if len(self.rows) < self.hold_rows:
            return
        started = time.perf_counter()
        self.folder.mkdir(parents=True, exist_ok=True)
        write_atomically(self.folder / "results.csv", self._results_csv())
        write_atomically(self.folder / "trials.csv", csv_text(self.trials_frame()))
        self.metadata.update(heartbeat=now_iso(), elapsed=self.tuner_time())
        write_atomically(self.folder / "metadata.json", json.dumps(self.metadata, indent=2, default=str) + "\n")
        self._write_seconds = time.perf_counter() - started
        self._last_write = time.perf_counter()

    def _results_csv(self) -> str:
        """The text of results.csv. pandas formats a value by its column's type alone, so rows already formatted
        are kept while new rows come with the same columns of the same types; else every row is formatted again."""
        if self._csv_rows < len(self.rows) or not self._csv_header:
            new = self.results_frame(self.rows[self._csv_rows:])
            signature = (tuple(new.columns), tuple(str(dtype) for dtype in new.dtypes))
            if self._csv_rows and signature == self._csv_signature:
                self._csv_chunks.append(csv_text(new, header=False))
            else:
                frame = self.results_frame()
                self._csv_signature = (tuple(frame.columns), tuple(str(dtype) for dtype in frame.dtypes))
                self._csv_header = frame.iloc[:0].to_csv(index=False)
                self._csv_chunks = [csv_text(frame, header=False)]
            self._csv_rows = len(self.rows)
        return self._csv_header + "".join(self._csv_chunks)

    def results_frame(self, rows: list[dict[str, Any]] | None = None) -> pd.DataFrame:
        """One row per report (of ``rows``, by default all): trial id, tuner time, the reported metrics, then the
        config."""
        frame = pd.DataFrame(self.rows if rows is None else rows)
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

    def failed_trials(self) -> list[int]:
        """The ids of the trials that failed, in order."""
        return [trial_id for trial_id, trial in self.trials.items() if trial["status"] == Status.failed]

    def best_trial(self) -> dict[str, Any] | None:
        """The trial with the best (finite) metric so far, or None before the first such report."""
        reported = [t for t in self.trials.values() if t["best_metric"] is not None]
        if not reported:
            return None
        return min(reported, key=lambda t: self.sign * t["best_metric"])


class _SchedulerOnly:
    """What the writer reads from a tuner, before there is one: its scheduler."""

    def __init__(self, scheduler: Any):
        self.scheduler = scheduler
