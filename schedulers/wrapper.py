"""A scheduler around another one: every call is forwarded, the bookkeeping hook included; subclasses change
`suggest` (a trial limit, a restriction to the configurations a benchmark can evaluate)."""
from typing import Any

from syne_tune.backend.trial_status import Trial
from syne_tune.optimizer.scheduler import TrialScheduler, TrialSuggestion

from schedulers.bookkeeping import TrialBookkeeping


class SchedulerWrapper(TrialScheduler):
    """Forwards everything to `scheduler`."""

    def __init__(self, scheduler: TrialScheduler):
        super().__init__(random_seed=getattr(scheduler, "random_seed", None))
        self.scheduler = scheduler
        # Checked once: a runtime Protocol check costs more than the call it guards, on every trial.
        self._keeps_books = isinstance(scheduler, TrialBookkeeping)

    def suggest(self) -> TrialSuggestion | None:
        return self.scheduler.suggest()

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
        """The wrapped scheduler's bookkeeping (`TrialBookkeeping`); nothing when it keeps none."""
        if self._keeps_books:
            return self.scheduler.trial_bookkeeping(trial_id)
        return {}
