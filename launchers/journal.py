"""The journal of a run: every call the tuner made to the scheduler, in order, one JSON line each, written as it
happens (``<experiment>/journal.jsonl``). The schedulers are seeded, so these calls, made again on a fresh scheduler,
rebuild its state exactly: that is how ``--resume`` continues a run (``launchers.resume``).

Lines (``t``: tuner seconds at the call):

    {"suggest": "new", "config": {...}, "t": ...}         a new trial was suggested
    {"suggest": "resume", "trial": 3, "config": ..., "t": ...}   a paused trial was resumed (config None: as it was)
    {"suggest": "none", "t": ...}                          nothing more to start
    {"add": 3, "t": ...}                                   the new trial 3 started
    {"result": 3, "report": {...}, "decision": "CONTINUE", "t": ...}
    {"complete": 3, "t": ...}, {"error": 3, "t": ...}, {"remove": 3, "t": ...}

A line is written whole and flushed at once, so a killed launcher leaves at most a torn last line, which reading
skips.
"""
from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any, Callable

from syne_tune.backend.trial_status import Trial
from syne_tune.constants import ST_TUNER_TIME
from syne_tune.optimizer.scheduler import TrialScheduler, TrialSuggestion

from launchers.resume_plan import JOURNAL_FILE  # noqa: F401  (the file's name, for those who import it here)
from schedulers.wrapper import SchedulerWrapper


def _plain(value: Any) -> Any:
    """numpy scalars (and anything else with ``item``) as Python values, for JSON."""
    if hasattr(value, "item"):
        return value.item()
    raise TypeError(f"{type(value).__name__} is not JSON serialisable")


def as_json(value: Any) -> Any:
    """``value`` as it reads back from the journal (numpy scalars become Python ones)."""
    return json.loads(json.dumps(value, default=_plain))


class Journal:
    """Appends events to ``path``, one line each, flushed at once."""

    def __init__(self, path: Path):
        self.path = Path(path)
        self._file = open(self.path, "a", encoding="utf-8")

    def write(self, event: dict[str, Any]):
        self._file.write(json.dumps(event, default=_plain) + "\n")
        self._file.flush()

    def close(self):
        self._file.close()


def read(path: Path) -> list[dict[str, Any]]:
    """The events of a journal; a last line cut short by a kill is left out."""
    events = []
    with open(path, encoding="utf-8") as lines:
        for number, line in enumerate(lines, start=1):
            try:
                events.append(json.loads(line))
            except json.JSONDecodeError:
                if line.endswith("\n"):  # not the torn last line: the file was damaged
                    raise ValueError(f"{path} line {number} is not a JSON object") from None
    return events


def last_time(events: list[dict[str, Any]]) -> float:
    """The tuner time of the last event (0 for none)."""
    times = [event["t"] for event in events if isinstance(event.get("t"), (int, float))]
    return max(times) if times else 0.0


class Recorder(SchedulerWrapper):
    """Forwards every call to the scheduler and writes it, with its answer, to the journal.

    A call is written after the scheduler answered it: one that raised changed nothing and is not replayed.
    """

    def __init__(self, scheduler: TrialScheduler, journal: Journal, clock: Callable[[], float]):
        super().__init__(scheduler)
        self.journal = journal
        self.clock = clock

    def _write(self, **event: Any):
        event["t"] = self._last_time = self.clock()
        self.journal.write(event)

    def suggest(self) -> TrialSuggestion | None:
        suggestion = self.scheduler.suggest()
        if suggestion is None:
            self._write(suggest="none")
        elif suggestion.spawn_new_trial_id:
            self._write(suggest="new", config=suggestion.config)
        else:
            self._write(suggest="resume", trial=suggestion.checkpoint_trial_id, config=suggestion.config)
        return suggestion

    def on_trial_add(self, trial: Trial):
        self.scheduler.on_trial_add(trial)
        self._write(add=trial.trial_id)

    def on_trial_result(self, trial: Trial, result: dict[str, Any]) -> str:
        decision = self.scheduler.on_trial_result(trial, result)
        self._write(result=trial.trial_id, report=result, decision=decision)
        # The report's tuner time is the journal's, so that the results written and those rebuilt from the journal
        # agree to the last digit (the writer takes a report's own time where it has one).
        result.setdefault(ST_TUNER_TIME, self._last_time)
        return decision

    def on_trial_complete(self, trial: Trial, result: dict[str, Any]):
        self.scheduler.on_trial_complete(trial, result)
        self._write(complete=trial.trial_id)

    def on_trial_error(self, trial: Trial):
        self.scheduler.on_trial_error(trial)
        self._write(error=trial.trial_id)

    def on_trial_remove(self, trial: Trial):
        self.scheduler.on_trial_remove(trial)
        self._write(remove=trial.trial_id)


def same(a: Any, b: Any) -> bool:
    """Whether two journal values are equal, NaN equal to NaN."""
    if isinstance(a, float) and isinstance(b, float) and math.isnan(a) and math.isnan(b):
        return True
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(same(a[k], b[k]) for k in a)
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(same(x, y) for x, y in zip(a, b))
    return a == b
