"""Keep a Syne Tune scheduler to the configurations a benchmark can evaluate (a partial table answers only the cells
of the classes it measured: a run must neither estimate the others nor fail on them), and, where asked, to
configurations no trial of the run has started (two cells of one NAS-Bench-201 class are the same network)."""
import logging
from collections.abc import Callable, Hashable
from typing import Any

from syne_tune.backend.trial_status import Trial
from syne_tune.optimizer.scheduler import TrialScheduler, TrialSuggestion

from schedulers.wrapper import SchedulerWrapper

MAX_REDRAWS = 10_000
logger = logging.getLogger(__name__)


class SamplingError(RuntimeError):
    """The scheduler keeps proposing configurations the benchmark cannot evaluate."""


def values_key(config: dict[str, Any]) -> Hashable:
    """A configuration compared by its values (where the benchmark has no equivalence of its own)."""
    return tuple(sorted(config.items()))


class AcceptedOnly(SchedulerWrapper):
    """Asks the wrapped scheduler again while it proposes a new configuration that `accepts` refuses or, with
    `distinct`, one whose key (`config_key`, else its values) a started trial already has.

    A refused proposal is dropped before the scheduler hears of a trial for it (Syne Tune's schedulers register a
    trial in `on_trial_add`, not in `suggest`), so it is as if it had never been drawn. Resumes are never refused.
    Only for such schedulers: one that reserves work in `suggest` (synchronous Hyperband's bracket slots) draws
    accepted configurations itself. When only started configurations come up for `MAX_REDRAWS` draws in a row, the
    space is taken as exhausted: `suggest` answers None and the run ends once its trials have finished.
    """

    def __init__(self, scheduler: TrialScheduler, accepts: Callable[[dict[str, Any]], bool] | None = None,
                 config_key: Callable[[dict[str, Any]], Hashable] | None = None, distinct: bool = False):
        super().__init__(scheduler)
        self.accepts = accepts
        self.key = (config_key or values_key) if distinct else None
        self.started: set[Hashable] = set()
        self.num_refused = self.num_repeats = 0

    def suggest(self) -> TrialSuggestion | None:
        refused = repeats = 0
        while refused + repeats < MAX_REDRAWS:
            suggestion = self.scheduler.suggest()
            if suggestion is None or not suggestion.spawn_new_trial_id or suggestion.config is None:
                return suggestion
            if self.accepts is not None and not self.accepts(suggestion.config):
                refused += 1
            elif self.key is not None and self.key(suggestion.config) in self.started:
                repeats += 1
            else:
                self.num_refused += refused
                self.num_repeats += repeats
                return suggestion
        if repeats:
            logger.warning("No new configuration in %d draws: the space the benchmark can evaluate is exhausted "
                           "(%d distinct configurations started).", MAX_REDRAWS, len(self.started))
            return None
        raise SamplingError(f"The scheduler proposed {MAX_REDRAWS} configurations in a row that the benchmark cannot "
                            "evaluate; use a table that covers more of the space.")

    def on_trial_add(self, trial: Trial):
        if self.key is not None:
            self.started.add(self.key(trial.config))
        super().on_trial_add(trial)


def accepted_only(scheduler: TrialScheduler, accepts: Callable[[dict[str, Any]], bool] | None,
                  config_key: Callable[[dict[str, Any]], Hashable] | None = None,
                  distinct: bool = False) -> TrialScheduler:
    """`scheduler` kept to what `accepts` allows (and to unseen configurations with `distinct`); itself where
    there is nothing to keep it from."""
    if accepts is None and not distinct:
        return scheduler
    return AcceptedOnly(scheduler, accepts, config_key, distinct)
