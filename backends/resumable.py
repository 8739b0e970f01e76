"""What a resumed run tells a trial backend (local or Ray) about the trials of the run it continues."""
from datetime import datetime
from typing import Any

from syne_tune.backend.trial_backend import TrialBackend
from syne_tune.backend.trial_status import Status, TrialResult


def register_trials(backend: TrialBackend, configs: dict[int, dict[str, Any]], resumable: set[int],
                    reports: dict[int, int]):
    """Make ``backend`` know an interrupted run's trials: ``configs`` by trial id (ids 0..n-1); those in
    ``resumable`` (paused, or running when the run was interrupted) as paused, the others as completed; and how many
    reports of each the run took into account (later lines of a trial's output are read as new reports)."""
    backend.trial_ids = sorted(configs)
    for trial_id, config in configs.items():
        status = Status.paused if trial_id in resumable else Status.completed
        backend._trial_dict[trial_id] = TrialResult(trial_id=trial_id, config=config, creation_time=datetime.now(),
                                                    status=status, metrics=[])
        backend._last_metric_seen_index[trial_id] = reports.get(trial_id, 0)
