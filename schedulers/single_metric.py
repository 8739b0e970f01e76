"""What our own schedulers share: one metric to minimise or maximise, and metadata that names their settings."""
from typing import Any

from syne_tune.optimizer.scheduler import TrialScheduler


class SingleMetricScheduler(TrialScheduler):
    """A scheduler of one metric; subclasses say their settings in ``settings()`` (for ``metadata.json``)."""

    def __init__(self, metric: str, mode: str, seed: int):
        super().__init__(random_seed=seed)
        self.metric, self.mode = metric, mode

    def metric_names(self) -> list[str]:
        return [self.metric]

    def metric_mode(self) -> str:
        return self.mode

    def settings(self) -> dict[str, Any]:
        """The values that define this scheduler."""
        return {}

    def metadata(self) -> dict[str, Any]:
        return {"scheduler_name": type(self).__name__, "scheduler_kwargs": self.settings()}
