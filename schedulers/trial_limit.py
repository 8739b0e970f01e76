"""Stop starting trials after a number of them, so that the tuner lets the running ones finish and then ends."""
from typing import Protocol, runtime_checkable

from syne_tune.optimizer.scheduler import TrialScheduler, TrialSuggestion

from schedulers.wrapper import SchedulerWrapper


@runtime_checkable
class StopsNewTrials(Protocol):
    """A scheduler that can go on resuming paused trials after it was told to start no new one."""

    def stop_new_trials(self):
        """From now on, suggest only resumes (None when there is none to make)."""


class TrialLimit(SchedulerWrapper):
    """Wraps a scheduler; after `max_trials` new trials it answers None, which the tuner reads as "space exhausted".

    Resumes of paused trials do not count. A scheduler that pauses and resumes trials (synchronous Hyperband,
    ``StopsNewTrials``) is then told to start no new trial and asked on: its promotions that are ready when a worker
    asks still run. Syne Tune's `StoppingCriterion(max_num_trials_started=...)` instead ends the run at once and
    kills the trials still running, which wastes their work.
    """

    def __init__(self, scheduler: TrialScheduler, max_trials: int):
        super().__init__(scheduler)
        self.max_trials = max_trials
        self.num_suggested = 0
        self._told = False
        self._stops_new_trials = isinstance(scheduler, StopsNewTrials)  # checked once: a Protocol check is slow

    def suggest(self) -> TrialSuggestion | None:
        if self.num_suggested >= self.max_trials:
            if not self._stops_new_trials:
                return None
            if not self._told:
                self.scheduler.stop_new_trials()
                self._told = True
        suggestion = self.scheduler.suggest()
        if suggestion is not None and suggestion.spawn_new_trial_id:
            self.num_suggested += 1
        return suggestion
