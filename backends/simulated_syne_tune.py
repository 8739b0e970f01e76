"""The stock path for comparison: a tabulated benchmark replayed on Syne Tune's ``Tuner`` and simulator backend, on an
event-driven clock. ``--backend simulated`` runs our engine instead (``backends.simulated``), which gives the same
trials for a seed (see ``backends.engine``); this one is kept to check that, and to measure against."""
import numpy as np
from syne_tune.backend.simulator_backend.simulator_callback import SimulatorCallback
from syne_tune.blackbox_repository.simulated_tabular_backend import UserBlackboxBackend

from backends.registry import BackendSetup
from benchmarks.registry import Benchmark


class ReproducibleSimulatorBackend(UserBlackboxBackend):
    """Syne Tune's simulator on an event-driven clock.

    Syne Tune adds the tuner's own real compute time to the simulated clock, which varies from run to run; without
    it the same seed gives the same results. And where Syne Tune moves the clock by a fixed polling tick (5 s)
    while all workers are busy, leaving freed workers idle until the tick, this clock jumps to the next event, as
    the local backend's 0.05 s polling nearly does.

    A resumed trial's reports keep Syne Tune's times (counted from the resume), but their ``elapsed_time`` is the
    trial's training time so far, as a resumed script reports it, not the time since the resume.
    """

    def __init__(self, *args, table_seed: str | int = "mean", seed: int = 0, **kwargs):
        super().__init__(*args, **kwargs)
        # `random`: each trial answered by one of the table's seeds, drawn per trial from the run's seed
        self._draw_seeds = table_seed == "random"
        self._rng = np.random.RandomState(seed)
        self._trial_seeds: dict[int, int] = {}
        self._current_seed: int | None = None
        self._cumulative: list[tuple[dict, float]] = []

    def _run_job_and_collect_results(self, trial_id: int, config: dict | None = None):
        if self._draw_seeds:
            if trial_id not in self._trial_seeds:
                self._trial_seeds[trial_id] = int(self._rng.choice(self.blackbox.seeds))
            self._current_seed = self._trial_seeds[trial_id]
        paused = self._resource_paused_for_trial.get(trial_id)
        status, results = super()._run_job_and_collect_results(trial_id, config)
        if paused is not None:
            table = {int(r[self.time_attr]): r[self.elapsed_time_attr] for r in self.config_objectives(
                self._trial_dict[trial_id].config if config is None else config, self._current_seed)}
            offset = table.get(paused, 0.0)
            for result in results:
                total = table[int(result[self.time_attr])]
                moved = result[self.elapsed_time_attr] != total - offset  # Syne Tune kept the times increasing
                self._cumulative.append((result, result[self.elapsed_time_attr] + offset if moved else total))
        return status, results

    def _process_start_event(self, trial_id: int, time_event: float, config: dict | None = None):
        # The events are pushed with the times since the resume; only then do the reports get the trial's total.
        super()._process_start_event(trial_id, time_event, config)
        for result, elapsed in self._cumulative:
            result[self.elapsed_time_attr] = elapsed
        self._cumulative = []

    def config_objectives(self, config: dict, seed: int | None) -> list[dict]:
        return super().config_objectives(config, self._current_seed if seed is None else seed)

    def _advance_by_outside_time(self):
        pass

    def advance_to_next_event(self):
        """Move the simulated clock to the next report or trial end, if any is pending."""
        heap = self._simulator_state.event_heap
        if heap:
            self.time_keeper.advance_to(max(self.time_keeper.time(), heap[0][0]))


class EventDrivenSimulatorCallback(SimulatorCallback):
    """Syne Tune's simulator callback, waking the tuner at the next event instead of after a fixed tick."""

    def on_tuning_sleep(self, sleep_time: float):
        self._tuner.trial_backend.advance_to_next_event()


def start(benchmark: Benchmark, n_workers: int, table_seed: str | int = "mean", seed: int = 0) -> BackendSetup:
    """The benchmark's table on Syne Tune's simulator, with the callback that keeps the tuner on simulated time."""
    backend = ReproducibleSimulatorBackend(blackbox=benchmark.blackbox(table_seed=table_seed),
                                           elapsed_time_attr="elapsed_time", max_resource_attr=benchmark.epochs_flag,
                                           table_seed=table_seed, seed=seed)
    return BackendSetup(backend, callbacks=[EventDrivenSimulatorCallback()], sleep_time=0.0)
