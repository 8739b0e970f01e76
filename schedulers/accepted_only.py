"""Keep a scheduler to the configurations a benchmark can evaluate: a partial table answers only the cells of the
classes it measured, and a run must neither estimate the others nor fail on them."""
from collections.abc import Callable
from typing import Any

from syne_tune.optimizer.scheduler import TrialScheduler, TrialSuggestion

from schedulers.wrapper import SchedulerWrapper

MAX_REDRAWS = 10_000


class SamplingError(RuntimeError):
    """The scheduler keeps proposing configurations the benchmark cannot evaluate."""


class AcceptedOnly(SchedulerWrapper):
    """Asks the wrapped scheduler again while it proposes a new configuration that `accepts` refuses.

    A refused proposal is dropped before the scheduler hears of a trial for it (Syne Tune's schedulers register a
    trial in `on_trial_add`, not in `suggest`), so it is as if it had never been drawn. Resumes are never refused.
    Only for such schedulers: one that reserves work in `suggest` (synchronous Hyperband's bracket slots) draws
    accepted configurations itself.
    """

    def __init__(self, scheduler: TrialScheduler, accepts: Callable[[dict[str, Any]], bool]):
        super().__init__(scheduler)
        self.accepts = accepts
        self.num_refused = 0

    def suggest(self) -> TrialSuggestion | None:
        for _ in range(MAX_REDRAWS):
            suggestion = self.scheduler.suggest()
            if suggestion is None or not suggestion.spawn_new_trial_id or suggestion.config is None \
                    or self.accepts(suggestion.config):
                return suggestion
            self.num_refused += 1
        raise SamplingError(f"The scheduler proposed {MAX_REDRAWS} configurations in a row that the benchmark cannot "
                            "evaluate; use a table that covers more of the space.")


def accepted_only(scheduler: TrialScheduler, accepts: Callable[[dict[str, Any]], bool] | None) -> TrialScheduler:
    """``scheduler`` kept to what ``accepts`` allows; itself where every configuration can be evaluated."""
    return scheduler if accepts is None else AcceptedOnly(scheduler, accepts)
