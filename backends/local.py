"""The local backend: every trial is a process running the benchmark's training script on this machine."""
import os
import shutil

from syne_tune.backend import LocalBackend

from backends.registry import BackendSetup
from benchmarks.registry import Benchmark

# Seconds the tuner sleeps while all workers are busy; Syne Tune's default of 5 s adds seconds to every trial.
TUNER_SLEEP_TIME = 0.05


def start(benchmark: Benchmark, n_workers: int, table_seed: str | int = "mean", seed: int = 0) -> BackendSetup:
    """Syne Tune's ``LocalBackend`` on the benchmark's script, the cores shared among the workers."""
    # One trial's PyTorch threads must not starve the others.
    threads = str(max(1, (os.cpu_count() or 1) // n_workers))
    for variable in ("OMP_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ.setdefault(variable, threads)
    # Syne Tune probes GPUs with nvidia-smi; skip the probe (and its stray std.out file) where there is none.
    backend = LocalBackend(entry_point=str(benchmark.script), delete_checkpoints=True,
                           rotate_gpus=shutil.which("nvidia-smi") is not None)
    return BackendSetup(backend, callbacks=[], sleep_time=TUNER_SLEEP_TIME)
