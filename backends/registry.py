"""One entry per backend: its name, its help line, the module that starts it, and how a run on it is bounded.

Adding a backend is one module and one line in ``BACKENDS``. The module defines ``start(benchmark, n_workers,
table_seed, seed, **flags)`` returning a ``BackendSetup``, ``flags`` being the values of the launcher flags its entry
names (``--backend ray``'s ``--ray-address``, ...; none for the others). Modules are imported only when a run starts
one: a local run never loads the simulator (``syne_tune.blackbox_repository``, scikit-learn) nor Ray.
"""
import importlib
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from syne_tune.backend.trial_backend import TrialBackend

    from backends.engine import SimulationEngine
    from benchmarks.registry import Benchmark


@dataclass
class BackendSetup:
    """What a run needs from a backend: for Syne Tune's ``Tuner``, the trial backend, its tuner callbacks and the
    tuner's sleep time; or an ``engine`` that runs the tuning loop itself instead of the ``Tuner``
    (``engine.run(scheduler, n_workers, callbacks, max_wallclock_time)``)."""

    trial_backend: "TrialBackend | None" = None
    callbacks: list[Any] = field(default_factory=list)
    sleep_time: float = 0.0
    engine: "SimulationEngine | None" = None


@dataclass(frozen=True)
class BackendEntry:
    """A registered backend.

    ``uses_table``: it replays a benchmark's table (the benchmark must have one; ``--table-seed`` applies).
    ``simulated_time``: its clock is simulated seconds. The default stop applies when no limit is given.
    ``reference``: kept to compare against (tests, ``perf/``); messages that suggest a backend leave it out.
    """

    name: str
    help: str
    module: str
    uses_table: bool = False
    simulated_time: bool = False
    default_max_wallclock_time: float | None = None
    default_max_num_trials: int | None = None
    reference: bool = False
    # Its own launcher flags (argparse dests); the module's start takes them as keyword arguments.
    flags: tuple[str, ...] = ()

    def start(self, benchmark: "Benchmark", n_workers: int, table_seed: str | int = "mean",
              seed: int = 0, options: dict[str, Any] | None = None) -> BackendSetup:
        """Set the backend up for a benchmark and a number of workers; ``options``: values of its ``flags``."""
        return importlib.import_module(self.module).start(benchmark, n_workers, table_seed, seed, **(options or {}))


BACKENDS: dict[str, BackendEntry] = {entry.name: entry for entry in (
    BackendEntry("local", "every trial is a process on this machine", "backends.local",
                 default_max_wallclock_time=600.0),
    BackendEntry("simulated", "a tabulated benchmark replayed in simulated time by our discrete-event engine",
                 "backends.simulated", uses_table=True, simulated_time=True, default_max_num_trials=100),
    BackendEntry("simulated_syne_tune", "the same on Syne Tune's Tuner and simulator (same trials for a seed, "
                 "slower), to compare against", "backends.simulated_syne_tune", uses_table=True,
                 simulated_time=True, default_max_num_trials=100, reference=True),
    BackendEntry("ray", "every trial is a process on a Ray cluster (see the Ray flags)", "backends.ray_cluster",
                 default_max_wallclock_time=600.0, flags=("ray_address", "cpus_per_trial", "gpus_per_trial",
                                                          "storage")),
)}
