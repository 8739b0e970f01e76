"""The per-trial bookkeeping hook: facts a scheduler records about each trial, written as ``trials.csv`` columns."""
from typing import Any, Protocol, runtime_checkable


@runtime_checkable
class TrialBookkeeping(Protocol):
    """A scheduler that says, for a trial it started, the values of the columns its registry entry declares."""

    def trial_bookkeeping(self, trial_id: int) -> dict[str, Any]:
        """Column name -> value for ``trial_id`` (None where the scheduler has nothing to say)."""
