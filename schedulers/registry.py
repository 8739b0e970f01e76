"""One entry per scheduler: its name, a one-line title, the module that builds it, and its ``trials.csv`` columns.

Adding a scheduler is one module and one line in ``SCHEDULERS``. The module defines (see ``SchedulerModule``)
``build(config_space, metric, mode, budget, seed)`` and ``arguments(config_space, budget)``, the settings that define
it for ``metadata.json``. A scheduler that declares columns implements ``TrialBookkeeping``; the results writer
writes exactly those columns. Modules are imported only when a run builds one, so that ``--help`` answers fast.
"""
import importlib
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

from schedulers.budget import Budget

if TYPE_CHECKING:
    from syne_tune.optimizer.scheduler import TrialScheduler


class UnknownSchedulerError(ValueError):
    """A scheduler name that the registry does not know."""


class SchedulerModule(Protocol):
    """What a scheduler's module provides."""

    def build(self, config_space: dict[str, Any], metric: str, mode: str, budget: Budget,
              seed: int) -> "TrialScheduler":
        """The scheduler for a config space, a metric to minimise or maximise, a budget and a seed."""

    def arguments(self, config_space: dict[str, Any], budget: Budget) -> dict[str, Any]:
        """The settings that define the scheduler, as recorded in ``metadata.json``."""


@dataclass(frozen=True)
class SchedulerEntry:
    """A registered scheduler; ``columns`` are the ``trials.csv`` columns its bookkeeping hook fills."""

    name: str
    title: str
    module: str
    columns: tuple[str, ...] = ()

    def _module(self) -> SchedulerModule:
        return importlib.import_module(self.module)

    def build(self, config_space: dict[str, Any], metric: str, mode: str, budget: Budget,
              seed: int) -> "TrialScheduler":
        """The scheduler itself."""
        return self._module().build(config_space, metric, mode, budget, seed)

    def arguments(self, config_space: dict[str, Any], budget: Budget) -> dict[str, Any]:
        """The settings that define it, for ``metadata.json``."""
        return self._module().arguments(config_space, budget)


SCHEDULERS: dict[str, SchedulerEntry] = {entry.name: entry for entry in (
    SchedulerEntry("random_search", "random search; every trial runs to the largest budget",
                   "schedulers.random_search"),
    # hyperband and bohb keep today's asynchronous behaviour until synchronous versions replace them.
    SchedulerEntry("hyperband", "Hyperband; for now the same as asha", "schedulers.hyperband", ("bracket",)),
    SchedulerEntry("bohb", "BOHB; for now the same as async_bohb", "schedulers.bohb", ("bracket", "model_based")),
    SchedulerEntry("asha", "Syne Tune's asynchronous Hyperband: successive halving in Li et al.'s brackets",
                   "schedulers.hyperband", ("bracket",)),
    SchedulerEntry("async_bohb", "Syne Tune's asynchronous BOHB: asha with a KDE model of good configurations",
                   "schedulers.bohb", ("bracket", "model_based")),
    SchedulerEntry("tpe", "Syne Tune's TPE: a KDE model of good configurations; every trial runs to the largest "
                   "budget", "schedulers.tpe"),
    SchedulerEntry("rea", "regularised evolution (population 10, sample 3), the standard NAS-Bench-201 baseline",
                   "schedulers.rea"),
)}


def get_scheduler(name: str) -> SchedulerEntry:
    """The registered scheduler called ``name``."""
    if name not in SCHEDULERS:
        raise UnknownSchedulerError(f"Unknown scheduler '{name}': choose one of {', '.join(SCHEDULERS)}.")
    return SCHEDULERS[name]
