"""Continue an interrupted run (``--resume``): rebuild its state, then let the tuning go on as if never stopped.

- **Local and Ray backends.** The run's journal (``launchers.journal``) holds every call the tuner made to the
  scheduler. ``replay`` makes them again, in order, on a fresh scheduler built with the same seed: every suggestion
  and decision must come out as recorded (the run is refused otherwise), and the scheduler ends in the state it had.
  The same calls rebuild the results writer (its reports, trials and their statuses). Trials that were running
  restart from their checkpoints (``Restarts``; on Ray, on any node), and the reports their scripts printed but the
  tuner never read are read then (on Ray, from the output their nodes kept in the shared storage); trials the
  scheduler paused stay resumable. The wall-clock budget counts the seconds already spent.
- **Simulated backends.** Time is simulated and the run is a function of its flags and seed, so the exact state is
  the one reached by simulating again from the start, which costs seconds. The resumed run is that simulation; it
  writes nothing until it has reproduced every report the interrupted run wrote (``SameStart``), so a changed table
  or code is refused with the interrupted run's files untouched.
"""
from __future__ import annotations

import io
import math
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import pandas as pd
from syne_tune.backend.trial_status import Status, Trial
from syne_tune.constants import ST_TUNER_TIME
from syne_tune.optimizer.scheduler import SchedulerDecision, TrialScheduler, TrialSuggestion
from syne_tune.tuner_callback import TunerCallback

from launchers.journal import as_json, same
from launchers.results import ResultsWriter, csv_text
from schedulers.wrapper import SchedulerWrapper


class ResumeError(RuntimeError):
    """The run cannot go on; the message is one sentence for the user."""


@dataclass
class Replayed:
    """The state of an interrupted run, rebuilt from its journal."""

    trials: dict[int, Trial] = field(default_factory=dict)   # every trial, with its latest config
    running: list[int] = field(default_factory=list)         # running when the run stopped: to restart
    paused: set[int] = field(default_factory=set)            # paused by the scheduler, which may resume them
    reports: dict[int, int] = field(default_factory=dict)    # reports the scheduler saw, per trial
    last_result: dict[int, dict[str, Any]] = field(default_factory=dict)
    spent: float = 0.0                                       # tuner seconds of the last event


def _mismatch(folder: Path, what: str) -> ResumeError:
    return ResumeError(f"Cannot resume '{folder}': replaying its journal through a fresh scheduler {what}, so the "
                       "code, a package or the run's files changed since it ran; start a new run.")


def replay(events: list[dict[str, Any]], scheduler: TrialScheduler, writer: ResultsWriter,
           folder: Path) -> Replayed:
    """Make the journal's calls again on ``scheduler`` (fresh, seeded as the run was) and feed ``writer`` the same
    trials and reports; the state reached. Raises ``ResumeError`` where the scheduler answers otherwise."""
    state = Replayed()
    statuses: dict[int, str] = {}
    # The config of a new trial just suggested: the tuner adds its trial right after (a suggestion followed by
    # anything else was never started).
    pending: dict[str, Any] | None = None
    writer.use_scheduler(scheduler)

    def add(trial_id: int, config: dict[str, Any]):
        trial = Trial(trial_id=trial_id, config=config, creation_time=datetime.now())
        scheduler.on_trial_add(trial)
        writer.on_start_trial(trial)
        state.trials[trial_id] = trial
        state.running.append(trial_id)
        statuses[trial_id] = Status.in_progress

    def end(trial_id: int, status: str):
        if trial_id in state.running:
            state.running.remove(trial_id)
        statuses[trial_id] = status

    for event in events:
        writer.frozen_time = event.get("t", 0.0)
        if "add" not in event:
            pending = None
        kind = event.get("suggest")
        if kind is not None:
            suggestion = scheduler.suggest()
            if kind == "none":
                if suggestion is not None:
                    raise _mismatch(folder, "suggested a trial where the run had none left")
            elif kind == "new":
                if suggestion is None or not suggestion.spawn_new_trial_id or \
                        not same(as_json(suggestion.config), event["config"]):
                    raise _mismatch(folder, f"suggested another configuration for trial {len(state.trials)}")
                pending = suggestion.config
            else:
                trial_id = event["trial"]
                if suggestion is None or suggestion.spawn_new_trial_id or \
                        suggestion.checkpoint_trial_id != trial_id:
                    raise _mismatch(folder, f"did not resume trial {trial_id} where the run did")
                if suggestion.config is not None:
                    state.trials[trial_id].config = suggestion.config
                state.paused.discard(trial_id)
                state.running.append(trial_id)
                statuses[trial_id] = Status.in_progress
        elif "add" in event:
            if pending is None:
                raise _mismatch(folder, f"found trial {event['add']} started without a suggestion")
            add(event["add"], pending)
            pending = None
        elif "result" in event:
            trial_id, result = event["result"], event["report"]
            trial = state.trials[trial_id]
            decision = scheduler.on_trial_result(trial, result)
            if decision != event["decision"]:
                raise _mismatch(folder, f"decided {decision} on a report of trial {trial_id} where the run decided "
                                        f"{event['decision']}")
            result.setdefault(ST_TUNER_TIME, event["t"])  # as the journal's recorder stamped it
            writer.on_trial_result(trial, Status.in_progress, result, decision)
            state.reports[trial_id] = state.reports.get(trial_id, 0) + 1
            state.last_result[trial_id] = result
            if decision == SchedulerDecision.PAUSE:
                state.paused.add(trial_id)
                end(trial_id, Status.paused)
            elif decision == SchedulerDecision.STOP:
                end(trial_id, Status.stopped)
        elif "complete" in event:
            trial_id = event["complete"]
            scheduler.on_trial_complete(state.trials[trial_id], state.last_result.get(trial_id, {}))
            end(trial_id, Status.completed)
        elif "error" in event:
            scheduler.on_trial_error(state.trials[event["error"]])
            end(event["error"], Status.failed)
        elif "remove" in event:
            scheduler.on_trial_remove(state.trials[event["remove"]])
    state.spent = max((e["t"] for e in events if isinstance(e.get("t"), (int, float))), default=0.0)
    if pending is not None:  # the run stopped between a suggestion and its trial's start: start it now
        writer.frozen_time = state.spent
        add(len(state.trials), pending)
    writer.frozen_time = None
    writer.apply_statuses(statuses)
    return state


class Restarts(SchedulerWrapper):
    """Resumes the trials that were running when the run stopped, before anything the scheduler suggests: the tuner
    asks its backend to resume them, and they go on from their checkpoints. The scheduler itself still counts them
    as running, as it did when the run stopped."""

    def __init__(self, scheduler: TrialScheduler, trials: list[Trial]):
        super().__init__(scheduler)
        self.waiting = list(trials)

    def suggest(self) -> TrialSuggestion | None:
        if self.waiting:
            trial = self.waiting.pop(0)
            return TrialSuggestion.resume_suggestion(trial.trial_id, trial.config)
        return self.scheduler.suggest()


def previous_results(folder: Path) -> pd.DataFrame:
    """The interrupted run's results.csv (empty where it wrote none)."""
    try:
        return pd.read_csv(folder / "results.csv")
    except (OSError, pd.errors.EmptyDataError):
        return pd.DataFrame()


class SameStart(TunerCallback):
    """A resumed simulation's check: once it has as many reports as the interrupted run wrote, they must be the same
    (values compared as written, so ``results.csv`` text is compared through pandas). The writer holds its files
    until then (``hold_rows``), and for good if they differ."""

    def __init__(self, writer: ResultsWriter, previous: pd.DataFrame, folder: Path):
        self.writer = writer
        self.previous = previous
        self.folder = folder
        self.checked = len(previous) == 0
        writer.hold_rows = len(previous)

    def on_trial_result(self, trial: Trial, status: str, result: dict[str, Any], decision: str):
        if not self.checked and len(self.writer.rows) >= len(self.previous):
            self.check()

    def check(self):
        """Compare (at the end too: a simulation with fewer reports than the interrupted run is not the same)."""
        if self.checked:
            return
        rows = self.writer.rows[:len(self.previous)]
        again = pd.read_csv(io.StringIO(csv_text(self.writer.results_frame(rows)))) if rows else None
        if not _same_frames(again, self.previous):
            self.writer.hold_rows = math.inf  # leave the interrupted run's files as they are
            raise ResumeError(f"Cannot resume '{self.folder}': simulating it again from its seed did not reproduce "
                              "the reports it wrote, so its table or the code changed since it ran; start a new "
                              "run.")
        self.checked = True


def _same_frames(again: pd.DataFrame | None, previous: pd.DataFrame) -> bool:
    if again is None or len(again) != len(previous):
        return False
    try:
        pd.testing.assert_frame_equal(again, previous, check_dtype=False, check_exact=True)
    except AssertionError:
        return False
    return True
