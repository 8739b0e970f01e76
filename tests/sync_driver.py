"""A minimal discrete-event loop that drives a Syne Tune ``TrialScheduler`` the way the tuner does, for tests.

Workers ask ``suggest`` when free; a new trial is added (``on_trial_add``), a resumed one continues after the last
epoch it reported; every epoch is one report (``on_trial_result``) ``epoch_time`` seconds after the previous one;
PAUSE frees the worker and keeps the trial resumable, STOP ends it, and a trial that reaches its ``epochs`` ends by
itself (``on_trial_complete``). None from ``suggest`` ends the scheduling for good, as in Syne Tune's tuner.
"""
import heapq
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from syne_tune.backend.trial_status import Trial
from syne_tune.optimizer.scheduler import SchedulerDecision


@dataclass
class Run:
    """What happened: per trial its config, the epochs it trained (in order), and its status."""

    configs: dict[int, dict[str, Any]] = field(default_factory=dict)
    epochs: dict[int, list[int]] = field(default_factory=dict)
    status: dict[int, str] = field(default_factory=dict)
    suggestions: list[tuple[str, int]] = field(default_factory=list)  # ("start" | "resume", trial id)
    exhausted: bool = False
    time: float = 0.0


def drive(scheduler, loss: Callable[[dict[str, Any], int], float], *, n_workers: int = 4, max_trials: int = 100,
          max_time: float = float("inf"), epoch_time: Callable[[dict[str, Any]], float] = lambda config: 1.0,
          max_epochs: int = 9, metric: str = "loss", fail: Callable[[dict[str, Any]], bool] = lambda c: False) -> Run:
    """Run ``scheduler`` on ``n_workers`` until ``max_trials`` trials have started and ended, or ``max_time``."""
    run = Run()
    events: list[tuple[float, int, int, int, int]] = []  # (time, sequence, trial id, epoch, segment)
    sequence = 0
    segment: dict[int, int] = {}  # a trial's current run; events of an earlier run (before a pause) are dropped
    trials: dict[int, Trial] = {}
    last_epoch: dict[int, int] = {}
    running: set[int] = set()

    def start_epochs(trial_id: int, now: float):
        nonlocal sequence
        config = trials[trial_id].config
        first, last = last_epoch.get(trial_id, 0) + 1, int(config.get("epochs", max_epochs))
        t = now
        segment[trial_id] = segment.get(trial_id, 0) + 1
        for epoch in range(first, last + 1):
            t += epoch_time(config)
            heapq.heappush(events, (t, sequence, trial_id, epoch, segment[trial_id]))
            sequence += 1
        running.add(trial_id)

    now = 0.0
    while True:
        while len(running) < n_workers and not run.exhausted and len(trials) <= max_trials:
            suggestion = scheduler.suggest()
            if suggestion is None:
                run.exhausted = True
                break
            if suggestion.spawn_new_trial_id:
                if len(trials) == max_trials:
                    break
                trial_id = len(trials)
                trials[trial_id] = Trial(trial_id=trial_id, config=dict(suggestion.config),
                                         creation_time=datetime.now())
                run.configs[trial_id], run.epochs[trial_id] = dict(suggestion.config), []
                scheduler.on_trial_add(trials[trial_id])
                run.suggestions.append(("start", trial_id))
            else:
                trial_id = suggestion.checkpoint_trial_id
                assert run.status.get(trial_id) == "paused", f"resumed trial {trial_id} is {run.status.get(trial_id)}"
                if suggestion.config is not None:
                    trials[trial_id].config = dict(suggestion.config)
                run.suggestions.append(("resume", trial_id))
            run.status[trial_id] = "running"
            if fail(trials[trial_id].config):
                run.status[trial_id] = "failed"
                scheduler.on_trial_error(trials[trial_id])
                continue
            start_epochs(trial_id, now)
        if not events or now > max_time:
            break
        now, _, trial_id, epoch, part = heapq.heappop(events)
        if trial_id not in running or part != segment[trial_id]:
            continue
        run.epochs[trial_id].append(epoch)
        last_epoch[trial_id] = epoch
        result = {"epoch": epoch, metric: loss(trials[trial_id].config, epoch)}
        decision = scheduler.on_trial_result(trials[trial_id], result)
        if decision in (SchedulerDecision.PAUSE, SchedulerDecision.STOP):
            running.discard(trial_id)
            run.status[trial_id] = "paused" if decision == SchedulerDecision.PAUSE else "stopped"
            if decision == SchedulerDecision.PAUSE:
                scheduler.on_trial_remove(trials[trial_id])
        elif epoch == int(trials[trial_id].config.get("epochs", max_epochs)):
            running.discard(trial_id)
            run.status[trial_id] = "completed"
            scheduler.on_trial_complete(trials[trial_id], result)
    run.time = now
    return run
