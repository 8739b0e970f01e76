"""Stop suggesting after a number of trials, so that the tuner lets the running ones finish and then ends."""
from typing import Any

from syne_tune.backend.trial_status import Trial
from syne_tune.optimizer.scheduler import TrialScheduler, TrialSuggestion


class TrialLimit(TrialScheduler):
    """Wraps a scheduler; after ``max_trials`` suggestions it answers None, which the tuner reads as "space exhausted".

    Syne Tune's ``StoppingCriterion(max_num_trials_started=...)`` instead ends the run at once and kills the trials
    still running, which wastes their work.
    """

    def __init__(self, scheduler: TrialScheduler, max_trials: int):
        super().__init__(random_seed=getattr(scheduler, "random_seed", None))
        self.scheduler = scheduler
        self.max_trials = max_trials
        self.num_suggested = 0

    def suggest(self) -> TrialSuggestion | None:
        if self.num_suggested >= self.max_trials:
            return None
        suggestion = self.scheduler.suggest()
        if suggestion is not None:
            self.num_suggested += 1
        return suggestion

    def on_trial_add(self, trial: Trial):
        self.scheduler.on_trial_add(trial)

    def on_trial_error(self, trial: Trial):
        self.scheduler.on_trial_error(trial)

    def on_trial_result(self, trial: Trial, result: dict[str, Any]) -> str:
        return self.scheduler.on_trial_result(trial, result)

    def on_trial_complete(self, trial: Trial, result: dict[str, Any]):
        self.scheduler.on_trial_complete(trial, result)

    def on_trial_remove(self, trial: Trial):
        self.scheduler.on_trial_remove(trial)

    def metric_names(self) -> list[str]:
        return self.scheduler.metric_names()

    def metric_mode(self) -> str:
        return self.scheduler.metric_mode()

    def metadata(self) -> dict[str, Any]:
        return self.scheduler.metadata()

    def trial_bookkeeping(self, trial_id: int) -> dict[str, Any]:
        bookkeeping = getattr(self.scheduler, "trial_bookkeeping", None)
        return bookkeeping(trial_id) if bookkeeping else {}
