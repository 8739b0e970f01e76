"""The simulated backend: a tabulated benchmark replayed by our discrete-event engine (``backends.engine``), which
drives the scheduler itself in simulated time; ``--backend simulated_syne_tune`` is Syne Tune's path for the same."""
from backends.engine import SimulationEngine
from backends.registry import BackendSetup
from benchmarks.registry import Benchmark


def start(benchmark: Benchmark, n_workers: int, table_seed: str | int = "mean", seed: int = 0) -> BackendSetup:
    """The benchmark's table in the engine."""
    engine = SimulationEngine(benchmark.blackbox(table_seed=table_seed), elapsed_time_attr="elapsed_time",
                              max_resource_attr=benchmark.epochs_flag, table_seed=table_seed, seed=seed)
    return BackendSetup(engine=engine)
