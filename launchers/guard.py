"""What ends a run early, checked as the tuner goes: a report without the metric or the resource attribute (a wrong
flag: no scheduler can use it), and too many failed trials (a broken script or data). Everything else that goes
wrong in a trial is a failed trial, recorded, and tuning goes on."""
from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from syne_tune.backend.trial_status import Status, Trial
from syne_tune.optimizer.scheduler import SchedulerDecision
from syne_tune.tuner_callback import TunerCallback

from launchers.cli import BROKEN_AFTER


class ReportError(ValueError):
    """A trial reported without the metric or the resource attribute; the message is one sentence for the user."""


class TooManyFailures(RuntimeError):
    """More trials failed than the run allows; the message is one sentence for the user."""


def _names(keys) -> str:
    shown = [key for key in keys if not key.startswith("st_")]
    return ", ".join(shown) if shown else "nothing"


class RunGuard(TunerCallback):
    """Checks every report before the scheduler sees it and counts failed trials.

    ``writer``: the results writer, which receives the reports of a batch that a bad report ends (so that nothing
    that arrived is lost); ``max_failures``: failed trials allowed (None: give up only when ``BROKEN_AFTER`` trials
    failed before any trial reported the metric); ``trials_folder``: where each trial's ``<id>/std.err`` is, whose
    last lines go to the tuner's log when the trial fails.
    """

    def __init__(self, writer: Any, metric: str, resource_attr: str, max_failures: int | None,
                 trials_folder: Path | None = None):
        self.writer = writer
        self.trials_folder = trials_folder
        self.asked = {metric: "--metric", resource_attr: "--resource-attr"}
        self.max_failures = max_failures
        self.failed: list[int] = []

    def on_fetch_status_results(self, trial_status_dict: dict[int, tuple[Trial, str]],
                                new_results: list[tuple[int, dict[str, Any]]]):
        for trial_id, result in new_results:
            missing = [name for name in self.asked if name not in result]
            if missing:
                for other_id, other in new_results:  # keep the batch: the scheduler will not see it
                    trial, status = trial_status_dict[other_id]
                    self.writer.on_trial_result(trial, status, other, SchedulerDecision.CONTINUE)
                wanted = " and ".join(f"{name} ({self.asked[name]})" for name in missing)
                raise ReportError(f"Trial {trial_id} reported {_names(result)} but not {wanted}: give "
                                  f"{' and '.join(self.asked[name] for name in missing)} a name the script "
                                  "reports.")
        for trial_id, (_, status) in trial_status_dict.items():
            if status == Status.failed and trial_id not in self.failed:
                self.failed.append(trial_id)
                self._log_failure(trial_id)

    def _log_failure(self, trial_id: int):
        stderr = self.trials_folder / str(trial_id) / "std.err" if self.trials_folder else None
        try:
            tail = stderr.read_text(errors="replace").strip().splitlines()[-3:] if stderr else []
        except OSError:
            tail = []
        logging.getLogger(__name__).warning("Trial %d failed; the last lines of %s:\n%s", trial_id, stderr,
                                            "\n".join(tail) or "(no output)")

    def on_loop_end(self):
        # Checked after the tuner recorded the statuses, so that the results show the last failure too.
        if self.max_failures is not None:
            if len(self.failed) > self.max_failures:
                count = len(self.failed)
                raise TooManyFailures(f"{count} trial{'s' if count > 1 else ''} failed, more than --max-failures "
                                      f"{self.max_failures} allows.")
        elif len(self.failed) >= BROKEN_AFTER and self.writer.best_trial() is None:
            raise TooManyFailures(f"{len(self.failed)} trials failed and none reported {self.writer.metric}, so "
                                  "the script or its data looks broken (--max-failures N goes on regardless).")
