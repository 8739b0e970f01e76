"""One entry per backend: its name, its help line, the module that starts it, and how a run on it is bounded.

Adding a backend is one module and one line in ``BACKENDS``. The module defines ``start(benchmark, n_workers,
table_seed, seed)`` returning a ``BackendSetup``. Modules are imported only when a run starts one: a local run never
loads the simulator (``syne_tune.blackbox_repository``, scikit-learn).
"""
import importlib
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from syne_tune.backend.trial_backend import TrialBackend

    from benchmarks.registry import Benchmark


@dataclass
class BackendSetup:
    """What the tuner needs from a backend: the trial backend, its tuner callbacks and the tuner's sleep time."""

    trial_backend: "TrialBackend"
    callbacks: list[Any] = field(default_factory=list)
    sleep_time: float = 0.0


@dataclass(frozen=True)
class BackendEntry:
    """A registered backend.

    ``uses_table``: it replays a benchmark's table (the benchmark must have one; ``--table-seed`` applies).
    ``simulated_time``: its clock is simulated seconds. The default stop applies when no limit is given.
    """

    name: str
    help: str
    module: str
    uses_table: bool = False
    simulated_time: bool = False
    default_max_wallclock_time: float | None = None
    default_max_num_trials: int | None = None

    def start(self, benchmark: "Benchmark", n_workers: int, table_seed: str | int = "mean",
              seed: int = 0) -> BackendSetup:
        """Set the backend up for a benchmark and a number of workers."""
        return importlib.import_module(self.module).start(benchmark, n_workers, table_seed, seed)


BACKENDS: dict[str, BackendEntry] = {entry.name: entry for entry in (
    BackendEntry("local", "every trial is a process on this machine", "backends.local",
                 default_max_wallclock_time=600.0),
    BackendEntry("simulated", "a tabulated benchmark replayed on Syne Tune's simulator in simulated time",
                 "backends.simulated", uses_table=True, simulated_time=True, default_max_num_trials=100),
)}
