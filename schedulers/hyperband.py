"""Hyperband: Syne Tune's asynchronous successive halving over several brackets, recording each trial's bracket."""
import math
from typing import Any

from syne_tune.backend.trial_status import Trial
from syne_tune.optimizer.schedulers.asha import AsynchronousSuccessiveHalving


def num_brackets(min_resource: int, max_resource: int, eta: float) -> int:
    """Bracket count of Li et al.: s_max + 1 with s_max = floor(log_eta(max / min))."""
    # The small epsilon keeps exact powers of eta (log(1000) / log(10) = 2.999...) from rounding down.
    return int(math.floor(math.log(max_resource / min_resource) / math.log(eta) + 1e-9)) + 1


class Hyperband(AsynchronousSuccessiveHalving):
    """Asynchronous Hyperband whose bookkeeping (the bracket of every trial) can be written to ``trials.csv``."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self._trial_brackets: dict[int, int] = {}

    def on_trial_add(self, trial: Trial):
        super().on_trial_add(trial)
        self._trial_brackets[trial.trial_id] = self.brackets.index(self.trial_info[trial.trial_id])

    def trial_bookkeeping(self, trial_id: int) -> dict[str, Any]:
        """Scheduler facts about one trial, written as columns of ``trials.csv``."""
        return {"bracket": self._trial_brackets.get(trial_id)}
