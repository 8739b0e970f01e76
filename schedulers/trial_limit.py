"""Stop suggesting after a number of trials, so that the tuner lets the running ones finish and then ends."""
from syne_tune.optimizer.scheduler import TrialScheduler, TrialSuggestion

from schedulers.wrapper import SchedulerWrapper


class TrialLimit(SchedulerWrapper):
    """Wraps a scheduler; after `max_trials` suggestions it answers None, which the tuner reads as "space exhausted".

    Syne Tune's `StoppingCriterion(max_num_trials_started=...)` instead ends the run at once and kills the trials
    still running, which wastes their work.
    """

    def __init__(self, scheduler: TrialScheduler, max_trials: int):
        super().__init__(scheduler)
        self.max_trials = max_trials
        self.num_suggested = 0

    def suggest(self) -> TrialSuggestion | None:
        if self.num_suggested >= self.max_trials:
            return None
        suggestion = self.scheduler.suggest()
        if suggestion is not None:
            self.num_suggested += 1
        return suggestion
