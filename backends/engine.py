"""A discrete-event simulator of a tuning run over a tabulated blackbox, driving a Syne Tune scheduler directly.

It stands in for Syne Tune's ``Tuner`` with its simulator backend (``UserBlackboxBackend``) on the event-driven
clock of ``backends.simulated_syne_tune``: the same loop, the same event times and the same calls to the scheduler,
so that a seed gives the same trials on both. What it leaves out is what made that path slow: no per-report dict
copies through a backend, no status rows for every trial on every loop, no results store besides our writer, no
polling and no sleeping. A trial's whole curve comes from one blackbox call when it starts.

The loop, as Syne Tune's ``Tuner.run`` (one pass per "fetch"):

1. Process every event due at the current time (``_process_until``): a start runs the trial's job at once, pushing
   one result event per epoch at ``start + elapsed + delay_on_trial_result`` and a completion at
   ``start + last elapsed + delay_complete_after_final_report``; a result waits to be fetched; a completion sets the
   trial's status; a stop drops the trial's later events.
2. Hand the fetched results of the running trials to the scheduler, trial by trial in the iteration order of the
   running set (as the ``Tuner`` does), and act on its decision: STOP and PAUSE cost ``delay_stop`` +
   ``delay_complete_after_stop`` (+ 2 ms) of simulated time, during which other events keep happening. Completed
   trials get ``on_trial_complete``.
3. With free workers, ask the scheduler for new or resumed trials; each starts ``delay_start`` later. A scheduler
   that answers None has nothing more to run: the loop then only lets running trials finish.
4. With no free worker, jump the clock to the next event.

Events at the same time are processed in the order they were pushed. The run ends when the largest tuner time
seen exceeds ``max_wallclock_time``, or when the scheduler has nothing more and no trial runs.

A paused trial resumes after the last epoch it reported (its checkpoint): its results restart at the next epoch
and their times count from the resume, as in Syne Tune's simulator; its reported ``elapsed_time`` continues from
where it paused (seconds of training so far, as the local backend's scripts report it).

Callbacks are Syne Tune ``TunerCallback`` objects; the engine passes itself as the tuner to ``on_tuning_start``
and offers what our callbacks read from a tuner: ``scheduler``, ``tuning_status.last_trial_status_seen`` and a
simulated clock, ``time_keeper.time()``. It calls ``on_tuning_start``, ``on_start_trial``, ``on_resume_trial``,
``on_trial_result``, ``on_trial_complete``, ``on_loop_end`` and ``on_tuning_end``.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from heapq import heappop, heappush
from typing import Any, Sequence

import numpy as np
from syne_tune.backend.trial_status import Status, Trial
from syne_tune.constants import ST_TUNER_TIME
from syne_tune.optimizer.scheduler import SchedulerDecision, TrialScheduler
from syne_tune.tuner_callback import TunerCallback

# Event kinds; the heap orders events by (time, push count), so ties are first in, first out.
_START, _RESULT, _COMPLETE, _STOP = range(4)
# Syne Tune's simulator steps the clock just past a stop event, and past the completion that follows it.
_STEP_PAST = 1e-3
# Syne Tune's simulator keeps reported times increasing by at least this much.
_MIN_TIME_STEP = 0.01


@dataclass(frozen=True)
class Delays:
    """Simulated latencies in seconds, Syne Tune's ``SimulatorConfig`` defaults."""

    start: float = 0.05
    on_trial_result: float = 0.05
    complete_after_final_report: float = 0.05
    stop: float = 0.05
    complete_after_stop: float = 0.05


@dataclass
class _TrialState:
    trial: Trial
    status: str = Status.in_progress    # what the simulated backend says about the job
    generation: int = 0                 # events of an older generation were dropped by a stop
    table_seed: int | None = None
    paused_at: int | None = None        # resource level of the last pause (its checkpoint)
    started: bool = False


@dataclass
class TuningStatusView:
    """The part of Syne Tune's ``TuningStatus`` that our callbacks read: the last status seen per trial."""

    last_trial_status_seen: dict[int, str] = field(default_factory=dict)


class _Exhausted(Exception):
    """The scheduler has no more trials to suggest."""


class SimulationEngine:
    """Replays ``blackbox`` (a Syne Tune ``Blackbox`` with one fidelity) for a scheduler, in simulated time.

    ``elapsed_time_attr``: the objective holding a trial's cumulative seconds at each fidelity.
    ``max_resource_attr``: the config key that caps a trial's fidelity (as for Syne Tune's simulator).
    ``table_seed``: ``random`` draws one of ``blackbox.seeds`` per trial from ``seed``; anything else leaves the
    choice to the blackbox.
    """

    def __init__(self, blackbox: Any, elapsed_time_attr: str = "elapsed_time", max_resource_attr: str | None = None,
                 table_seed: str | int = "mean", seed: int = 0, delays: Delays = Delays()):
        self.blackbox = blackbox
        self.delays = delays
        self.max_resource_attr = max_resource_attr
        self.time_attr = blackbox.fidelity_name()
        self._objectives = list(blackbox.objectives_names)
        self._elapsed_column = self._objectives.index(elapsed_time_attr)
        self._fidelities = [int(f) for f in blackbox.fidelity_values]
        self._lowest, self._highest = min(self._fidelities), max(self._fidelities)
        self._config_keys = set(blackbox.configuration_space)
        self._draw_seeds = table_seed == "random"
        self._rng = np.random.RandomState(seed)
        self._reset()

    def _reset(self):
        self.scheduler: TrialScheduler | None = None
        self.tuning_status = TuningStatusView()
        self.now = 0.0
        self._start_stamp = datetime.now()
        self._heap: list[tuple] = []
        self._pushed = 0
        self._trials: list[_TrialState] = []
        self._pending: dict[int, list[dict[str, Any]]] = {}  # results processed, not yet fetched
        self._ended: set[int] = set()  # trials whose job ended since the last fetch
        self._last_result: dict[int, dict[str, Any]] = {}
        self._max_tuner_time = -math.inf

    # The tuner surface that callbacks read ---------------------------------------------------------------------

    @property
    def time_keeper(self) -> "SimulationEngine":
        """The engine is its own simulated clock (``time()``)."""
        return self

    def time(self) -> float:
        """Simulated seconds since the run started."""
        return self.now

    # The run -------------------------------------------------------------------------------------------------

    def run(self, scheduler: TrialScheduler, n_workers: int, callbacks: Sequence[TunerCallback] = (),
            max_wallclock_time: float = math.inf):
        """Tune with ``scheduler`` on ``n_workers`` simulated workers until the run ends (see the module doc)."""
        self._reset()
        self.scheduler = scheduler
        seen = self.tuning_status.last_trial_status_seen
        for callback in callbacks:
            callback.on_tuning_start(self)
        running: set[int] = set()  # a set, as in the Tuner: its iteration order decides whose results go first
        exhausted = False
        try:
            while not self._max_tuner_time > max_wallclock_time:
                statuses, results = self._fetch(running)
                done = self._decide(statuses, results, callbacks)
                for trial_id in statuses:
                    seen[trial_id] = statuses[trial_id][1]
                for trial_id, (_, status) in done.items():
                    seen[trial_id] = status
                running.difference_update(done.keys())
                if exhausted or len(running) >= n_workers:
                    if not running:
                        break
                    self._advance_to_next_event()
                else:
                    try:
                        for _ in range(n_workers - len(running)):
                            trial_id = self._start_next(callbacks)
                            running.add(trial_id)
                            seen[trial_id] = Status.in_progress
                    except _Exhausted:
                        exhausted = True
                for callback in callbacks:
                    callback.on_loop_end()
        finally:
            for callback in callbacks:
                callback.on_tuning_end()
            # As the Tuner does once it stops the trials still running.
            for trial_id, status in seen.items():
                if status == Status.in_progress:
                    seen[trial_id] = Status.stopped

    def _fetch(self, running: set[int]) -> tuple[dict[int, tuple[Trial, str]], list[tuple[int, dict]]]:
        """Process the events due now; the new results of running trials (others' are dropped), and the statuses
        of the running trials that reported or whose job ended (one still in progress with nothing new would
        change nothing)."""
        self._process_until(self.now)
        pending, ended = self._pending, self._ended
        if not pending and not ended:
            return {}, []
        results, statuses, trials = [], {}, self._trials
        for trial_id in running:
            reports = pending.get(trial_id)
            if reports:
                results.extend((trial_id, result) for result in reports)
            elif trial_id not in ended:
                continue
            state = trials[trial_id]
            statuses[trial_id] = (state.trial, state.status)
        pending.clear()
        ended.clear()
        for _, result in results:
            if result[ST_TUNER_TIME] > self._max_tuner_time:
                self._max_tuner_time = result[ST_TUNER_TIME]
        return statuses, results

    def _decide(self, statuses: dict[int, tuple[Trial, str]], results: list[tuple[int, dict]],
                callbacks: Sequence[TunerCallback]) -> dict[int, tuple[Trial, str]]:
        """The Tuner's ``_update_running_trials``: results to the scheduler, its decisions carried out."""
        scheduler = self.scheduler
        done: dict[int, tuple[Trial, str]] = {}
        for trial_id, result in results:
            if trial_id in done:
                continue
            trial, status = statuses[trial_id]
            self._last_result[trial_id] = result
            decision = scheduler.on_trial_result(trial=trial, result=result)
            for callback in callbacks:
                callback.on_trial_result(trial=trial, status=status, result=result, decision=decision)
            if decision == SchedulerDecision.STOP:
                if status != Status.completed:
                    status = Status.stopped
                    self._halt(trial_id, Status.stopped)
                scheduler.on_trial_remove(trial=trial)
                done[trial_id] = (trial, status)
            elif decision == SchedulerDecision.PAUSE:
                state = self._trials[trial_id]
                state.status = Status.paused
                state.paused_at = int(result[self.time_attr])
                self._halt(trial_id, Status.paused)
                scheduler.on_trial_remove(trial=trial)
                done[trial_id] = (trial, Status.paused)
        for trial_id, (trial, status) in statuses.items():
            if status == Status.completed:
                decided = done.get(trial_id)
                if decided is not None and decided[1] == Status.paused:
                    status = Status.paused
                last = self._last_result.get(trial_id)
                if last is None:
                    raise RuntimeError(f"Trial {trial_id} completed without reporting a result.")
                if decided is None:
                    scheduler.on_trial_complete(trial, last)
                if status == Status.completed:
                    for callback in callbacks:
                        callback.on_trial_complete(trial, last)
                done[trial_id] = (trial, status)
        return done

    def _start_next(self, callbacks: Sequence[TunerCallback]) -> int:
        """Start (or resume) the trial the scheduler suggests; its id."""
        suggestion = self.scheduler.suggest()
        if suggestion is None:
            raise _Exhausted
        if suggestion.spawn_new_trial_id:
            # A checkpoint to start from (``checkpoint_trial_id``) changes nothing in a table's answers.
            trial_id = len(self._trials)
            trial = Trial(trial_id=trial_id, config=suggestion.config.copy(),
                          creation_time=self._start_stamp + timedelta(seconds=self.now))
            self._trials.append(_TrialState(trial))
            self._schedule(trial_id)
            self.scheduler.on_trial_add(trial=trial)
            for callback in callbacks:
                callback.on_start_trial(trial)
            return trial_id
        trial_id = suggestion.checkpoint_trial_id
        state = self._trials[trial_id]
        if state.status != Status.paused:
            raise RuntimeError(f"The scheduler resumed trial {trial_id}, which is {state.status}, not paused.")
        if suggestion.config is not None:
            state.trial.config = suggestion.config
        self._schedule(trial_id)
        state.status = Status.in_progress
        for callback in callbacks:
            callback.on_resume_trial(state.trial)
        return trial_id

    # Simulated backend ---------------------------------------------------------------------------------------

    def _push(self, time: float, kind: int, trial_id: int, payload: Any = None):
        heappush(self._heap, (time, self._pushed, kind, trial_id, self._trials[trial_id].generation, payload))
        self._pushed += 1

    def _schedule(self, trial_id: int):
        self._process_until(self.now)
        self._push(self.now + self.delays.start, _START, trial_id)

    def _halt(self, trial_id: int, status: str):
        """Syne Tune's ``_stop_or_pause_trial``: the stop arrives ``delay_stop`` later, the job ends
        ``delay_complete_after_stop`` after that; the clock moves past both, processing what happens meanwhile."""
        time_stop = self.now + self.delays.stop
        self._push(time_stop, _STOP, trial_id)
        self.now = max(self.now, time_stop + _STEP_PAST)
        self._process_until(self.now)
        time_complete = self.now + self.delays.complete_after_stop
        self._push(time_complete, _COMPLETE, trial_id, status)
        self.now = max(self.now, time_complete + _STEP_PAST)
        self._process_until(self.now)

    def _advance_to_next_event(self):
        heap, trials = self._heap, self._trials
        while heap and heap[0][4] != trials[heap[0][3]].generation:
            heappop(heap)  # dropped by a stop
        if heap:
            self.now = max(self.now, heap[0][0])
        elif not (self._pending or self._ended):  # (a stop's delay may have let the last events happen already)
            raise RuntimeError("Trials are running but no event is pending: the simulation cannot go on.")

    def _process_until(self, until: float):
        heap, trials = self._heap, self._trials
        while heap and heap[0][0] <= until:
            time, _, kind, trial_id, generation, payload = heappop(heap)
            state = trials[trial_id]
            if generation != state.generation:
                continue
            if kind == _RESULT:
                # A report's dict is made only now: most of a curve's reports are dropped by an early stop.
                row, fidelity = payload
                result = dict(zip(self._objectives, row))
                result[self.time_attr] = fidelity
                result[ST_TUNER_TIME] = time
                self._pending.setdefault(trial_id, []).append(result)
            elif kind == _START:
                self._run_job(state, time)
            elif kind == _COMPLETE:
                state.status = payload
                self._ended.add(trial_id)
            else:  # _STOP: the job's later events are void
                state.generation += 1

    def _table_seed(self, state: _TrialState) -> int | None:
        if self._draw_seeds and not state.started:
            state.table_seed = int(self._rng.choice(self.blackbox.seeds))
        state.started = True
        return state.table_seed

    def _run_job(self, state: _TrialState, time_event: float):
        """The trial's reports from the table, pushed as events (Syne Tune's ``_process_start_event``)."""
        trial = state.trial
        seed = self._table_seed(state)
        config = {k: v for k, v in trial.config.items() if k in self._config_keys}
        # Python lists from here: a curve has a handful of rows, for which numpy's per-call cost is the larger one.
        table = np.asarray(self.blackbox.objective_function(config, seed=seed)).tolist()
        fidelities, low = self._fidelities, self._lowest
        top = self._highest
        if self.max_resource_attr is not None and self.max_resource_attr in trial.config:
            top = int(trial.config[self.max_resource_attr])
        rows = [i for i, f in enumerate(fidelities) if low <= f <= top]
        column = self._elapsed_column
        offset = None
        if state.paused_at is not None:
            # Resume from the checkpoint: later epochs only, their times counted from the resume (Syne Tune's rule).
            at_pause = [i for i in rows if fidelities[i] == state.paused_at]
            offset = float(table[at_pause[0]][column]) if at_pause else 0.0
            rows = [i for i in rows if fidelities[i] > state.paused_at]
        values = [table[i] for i in rows]
        elapsed = [row[column] for row in values] if offset is None else [row[column] - offset for row in values]
        trial_id = trial.trial_id
        delay_result = self.delays.on_trial_result
        time_final = time_event
        if elapsed and elapsed[0] >= _MIN_TIME_STEP and \
                all(later >= earlier + _MIN_TIME_STEP for earlier, later in zip(elapsed, elapsed[1:])):
            # The table's times already rise by the least step Syne Tune keeps (the usual case): nothing to move.
            for row, i, since_start in zip(values, rows, elapsed):
                time_result = time_event + since_start
                self._push(time_result + delay_result, _RESULT, trial_id, (row, fidelities[i]))
                time_final = time_result
        else:
            previous = None
            for row, i, since_start in zip(values, rows, elapsed):
                moved = max(since_start, _MIN_TIME_STEP) if previous is None else \
                    max(since_start, previous + _MIN_TIME_STEP)
                if offset is None:
                    row[column] = moved
                elif moved != since_start:  # Syne Tune moved it: keep the move, on the whole trial's clock
                    row[column] = moved + offset
                previous = moved
                time_result = time_event + moved
                self._push(time_result + delay_result, _RESULT, trial_id, (row, fidelities[i]))
                time_final = max(time_final, time_result)
        self._push(time_final + self.delays.complete_after_final_report, _COMPLETE, trial_id, Status.completed)
