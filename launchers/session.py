"""The parts of a run that make it safe to stop and to go on: checks before anything is written, the journal of a
local or Ray run, and what a resumed run rebuilds first (``launchers.resume``)."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable

from syne_tune.optimizer.scheduler import TrialScheduler
from syne_tune.tuner_callback import TunerCallback

from backends.registry import BackendSetup
from launchers import journal as journals
from launchers.cli import LaunchPlan
from launchers.resume import Restarts, ResumeError, SameStart, previous_results, replay
from launchers.results import ResultsWriter, now_iso

# Packages whose ValueErrors are worded for the user (one sentence naming the bad value): a scheduler that cannot
# be built as asked (ScheduleError, SpaceError, GridError, BudgetError) or a benchmark that cannot be.
_USER_ERRORS_FROM = ("schedulers", "benchmarks")


class UsageError(RuntimeError):
    """Bad input found before the run starts; the message is one sentence for the user."""


def said_for_the_user(error: BaseException) -> bool:
    """Whether ``error`` is one of our own one-sentence errors (not a bug's ValueError from deep inside)."""
    return type(error).__module__.split(".")[0] in _USER_ERRORS_FROM and type(error).__name__.endswith("Error")


def check_data(plan: LaunchPlan):
    """Trials that read a dataset find it (downloaded once, here, where the scripts would download it); raises
    ``UsageError`` naming the launcher's ``--dataset-path`` where it is missing."""
    if plan.benchmark.script is None or plan.backend.uses_table:
        return
    from benchmarks.data_check import check_data as check
    from benchmarks.download import DataMissing

    try:
        check(plan.benchmark, plan.args.dataset_path)
    except DataMissing as missing:
        raise UsageError(str(missing)) from None


def metadata(plan: LaunchPlan, fresh: dict[str, Any]) -> dict[str, Any]:
    """``metadata.json`` of the run: a resumed one keeps its first start time and lists when it was resumed."""
    if plan.previous is None:
        return fresh
    return {**fresh, "start_time": plan.previous.get("start_time"),
            "resumed": [*plan.previous.get("resumed", []), now_iso()]}


@dataclass
class Resumed:
    """What a run gets from ``prepare``: the seconds already spent (0 for a new run), its own tuner callbacks, the
    last results of the trials it restarts (the tuner hands them to the scheduler if they end with nothing new),
    a check after tuning, and ``close``."""

    spent: float = 0.0
    callbacks: list[TunerCallback] = field(default_factory=list)
    last_results: dict[int, dict[str, Any]] = field(default_factory=dict)
    check: Callable[[], None] = lambda: None
    closers: list[Callable[[bool], None]] = field(default_factory=list)

    def close(self, keep_checkpoints: bool):
        """End the run's files; the trials' checkpoints stay only where the run may be resumed."""
        for closer in self.closers:
            closer(keep_checkpoints)


def prepare(plan: LaunchPlan, scheduler: TrialScheduler, backend: BackendSetup,
            writer: ResultsWriter) -> tuple[TrialScheduler, Resumed]:
    """The scheduler the tuner drives, and what the run needs to go on where it stopped (see ``launchers.resume``).

    Local and Ray backends: the scheduler is journaled, and a resumed run replays the journal first. Simulated
    backends: a resumed run is simulated again from its start, checked against what it wrote. Raises
    ``ResumeError``."""
    resumed = Resumed()
    trial_backend = backend.trial_backend
    if backend.engine is not None or plan.backend.simulated_time:
        if plan.previous is not None:
            check = SameStart(writer, previous_results(plan.folder), plan.folder)
            resumed.callbacks.append(check)
            resumed.check = check.check
        return scheduler, resumed
    if not hasattr(trial_backend, "prepare_resume"):  # a backend that cannot restart trials: no journal, no resume
        return scheduler, resumed
    path = plan.folder / journals.JOURNAL_FILE
    try:
        events = journals.read(path) if plan.previous is not None else []
    except (OSError, ValueError) as error:
        raise ResumeError(f"Cannot resume '{plan.folder}': its journal cannot be read ({error}).") from None
    # Wrapped before the replay, as the run that wrote the journal was wrapped before its first call (making the
    # wrapper draws no random number either way: it takes the scheduler's seed).
    journal = journals.Journal(path)
    recorder = journals.Recorder(scheduler, journal, writer.tuner_time)
    resumed.closers.append(lambda keep: journal.close())
    if hasattr(trial_backend, "discard_checkpoints"):
        resumed.closers.append(lambda keep: None if keep else trial_backend.discard_checkpoints())
    if plan.previous is None:
        return recorder, resumed
    try:
        state = replay(events, scheduler, writer, plan.folder)
    except (KeyError, IndexError, TypeError) as error:
        journal.close()
        raise ResumeError(f"Cannot resume '{plan.folder}': its journal does not fit its run ({error!r}).") from None
    except ResumeError:
        journal.close()
        raise
    resumed.spent = max(state.spent, float(plan.previous.get("elapsed") or 0.0))
    writer.time_offset = resumed.spent
    trial_backend.prepare_resume({i: t.config for i, t in state.trials.items()},
                                 set(state.running) | state.paused, state.reports)
    resumed.last_results = {i: state.last_result[i] for i in state.running if i in state.last_result}
    return Restarts(recorder, [state.trials[i] for i in state.running]), resumed
