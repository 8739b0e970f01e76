"""Trial backends: real processes on this machine, or a tabulated benchmark replayed in simulated time."""
import os
import shutil

from syne_tune.backend.simulator_backend.simulator_callback import SimulatorCallback
from syne_tune.backend.trial_backend import TrialBackend
from syne_tune.blackbox_repository.simulated_tabular_backend import UserBlackboxBackend
from syne_tune.tuner_callback import TunerCallback

from benchmarks.registry import Benchmark


class ReproducibleSimulatorBackend(UserBlackboxBackend):
    """Syne Tune's simulator on an event-driven clock.

    Syne Tune adds the tuner's own real compute time to the simulated clock, which varies from run to run; without
    it the same seed gives the same results. And where Syne Tune moves the clock by a fixed polling tick (5 s)
    while all workers are busy, leaving freed workers idle until the tick, this clock jumps to the next event, as
    the local backend's 0.05 s polling nearly does.
    """

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


def local_backend(benchmark: Benchmark, n_workers: int) -> TrialBackend:
    """Every trial a process running the benchmark's training script."""
    from syne_tune.backend import LocalBackend

    # Share the cores among the workers: one trial's PyTorch threads must not starve the others.
    threads = str(max(1, (os.cpu_count() or 1) // n_workers))
    for variable in ("OMP_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ.setdefault(variable, threads)
    # Syne Tune probes GPUs with nvidia-smi; skip the probe (and its stray std.out file) where there is none.
    return LocalBackend(entry_point=str(benchmark.script), delete_checkpoints=True,
                        rotate_gpus=shutil.which("nvidia-smi") is not None)


def simulated_backend(benchmark: Benchmark) -> tuple[TrialBackend, TunerCallback]:
    """The benchmark's table on Syne Tune's simulator, and the callback that keeps the tuner on simulated time."""
    backend = ReproducibleSimulatorBackend(blackbox=benchmark.blackbox(), elapsed_time_attr="elapsed_time",
                                           max_resource_attr=benchmark.epochs_flag)
    return backend, EventDrivenSimulatorCallback()
