"""The Ray backend: every trial runs on a Ray cluster, on a local Ray instance started for the run by default.

``start`` connects (``ray_address``: join that cluster; None: start a local instance), checks that the cluster can
hold one trial, and returns a ``RayTrialBackend``. Ray (and the modules that use it) is imported only once ``start``
runs, so a local run or ``--help`` never loads it. Checkpoints go to ``storage`` (the experiment's folder in a
directory every node mounts at the same path) or, without it, to the results folder, which is shared trivially when
all nodes are this machine.
"""
from __future__ import annotations

import atexit
import importlib.util
import logging
import math
import os
import socket
import sys
from pathlib import Path

from backends.registry import BackendSetup
from benchmarks.registry import Benchmark

# Seconds the tuner sleeps while all workers are busy (as on the local backend).
TUNER_SLEEP_TIME = 0.05
# The local instance passes no data between tasks: a small object store starts faster and reserves less memory.
LOCAL_OBJECT_STORE_BYTES = 256 * 2**20
# Seconds to wait for the head node of --ray-address to accept a connection.
CONNECT_SECONDS = 5.0
MISSING_RAY = "--backend ray needs Ray, which is not installed: pip install -e \".[ray]\" (or pip install ray)."


def start(benchmark: Benchmark, n_workers: int, table_seed: str | int = "mean", seed: int = 0, *,
          ray_address: str | None = None, cpus_per_trial: float = 1, gpus_per_trial: float = 0,
          storage: str | None = None) -> BackendSetup:
    """Connect to Ray and return a backend running the benchmark's script, ``n_workers`` trials at a time."""
    if importlib.util.find_spec("ray") is None:
        raise SystemExit(MISSING_RAY)
    # Unretrieved replies of killed runners are expected; Ray would print each one on the progress bar.
    os.environ.setdefault("RAY_IGNORE_UNHANDLED_ERRORS", "1")
    import ray

    from backends.ray_trials import RayTrialBackend

    owns_connection = not ray.is_initialized()
    try:
        if owns_connection:
            connect(ray_address, n_workers, cpus_per_trial)
        check_resources(n_workers, cpus_per_trial, gpus_per_trial)
    except (SystemExit, KeyboardInterrupt) as stop:
        if owns_connection:
            ray.shutdown()
        if isinstance(stop, KeyboardInterrupt):  # Ctrl-C while Ray starts: no trial ran, nothing to report
            raise SystemExit("Interrupted while connecting to Ray; no trial was started.")
        raise
    backend = RayTrialBackend(str(benchmark.script), cpus_per_trial=cpus_per_trial, gpus_per_trial=gpus_per_trial,
                              checkpoint_root=Path(storage) if storage else None, shutdown_ray=owns_connection)
    atexit.register(backend.close)  # in case the tuner never reaches stop_all
    return BackendSetup(backend, callbacks=[], sleep_time=TUNER_SLEEP_TIME)


def connect(address: str | None, n_workers: int, cpus_per_trial: float):
    """Join the cluster at ``address``, or start a local instance with room for ``n_workers`` trials at once."""
    import ray

    # Ray's own chatter (token authentication, ...) would land between the progress bar's lines.
    quiet = {"log_to_driver": False, "logging_level": logging.ERROR}
    if address is not None:
        unreachable = _unreachable(address)
        try:
            if unreachable:  # ray.init would retry for many minutes
                raise ConnectionError(unreachable)
            ray.init(address=address, **quiet)
        except Exception as error:  # Ray raises several kinds; the user needs one sentence either way
            raise SystemExit(f"--ray-address {address}: no Ray cluster could be joined there ({error}); give the "
                             "address that `ray start --head` printed (host:port), or 'auto' on a cluster node.")
        return
    # Like the local backend, run n_workers trials at once even where that oversubscribes the cores.
    cpus = max(os.cpu_count() or 1, math.ceil(n_workers * cpus_per_trial))
    ray.init(address="local", num_cpus=cpus, include_dashboard=False, object_store_memory=LOCAL_OBJECT_STORE_BYTES,
             **quiet)


def _unreachable(address: str) -> str | None:
    """Why nothing listens at a host:port address, or None (also for 'auto' and ray:// ones, which Ray resolves)."""
    host, _, port = address.rpartition(":")
    if "://" in address or not host or not port.isdigit():
        return None
    try:
        socket.create_connection((host, int(port)), timeout=CONNECT_SECONDS).close()
    except OSError as error:
        return f"nothing answers at {host} port {port}: {error.strerror or error}"
    return None


def check_resources(n_workers: int, cpus_per_trial: float, gpus_per_trial: float):
    """Exit with one sentence where no trial fits the cluster; warn where fewer than ``n_workers`` fit at once."""
    import ray

    nodes = [node["Resources"] for node in ray.nodes() if node.get("Alive")]
    largest_cpus = max((node.get("CPU", 0) for node in nodes), default=0)
    largest_gpus = max((node.get("GPU", 0) for node in nodes), default=0)
    if largest_cpus < cpus_per_trial or largest_gpus < gpus_per_trial:
        raise SystemExit(f"--cpus-per-trial {cpus_per_trial:g} and --gpus-per-trial {gpus_per_trial:g} fit on no "
                         f"node of the Ray cluster (its largest has {largest_cpus:g} CPUs and {largest_gpus:g} GPUs): "
                         "ask for at most that much per trial.")
    fit = sum(min(node.get("CPU", 0) // cpus_per_trial,
                  node.get("GPU", 0) // gpus_per_trial if gpus_per_trial else math.inf) for node in nodes)
    if fit < n_workers:
        print(f"The Ray cluster runs {fit:.0f} trials at a time with --cpus-per-trial {cpus_per_trial:g} and "
              f"--gpus-per-trial {gpus_per_trial:g}; the other {n_workers - fit:.0f} of --n-workers {n_workers} wait "
              "for a free node.", file=sys.stderr)
