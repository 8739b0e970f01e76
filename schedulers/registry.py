"""One entry per scheduler: its name, a one-line title, the module that builds it, and its ``trials.csv`` columns.

Adding a scheduler is one module and one line in ``SCHEDULERS``. The module defines (see ``SchedulerModule``)
``build(config_space, metric, mode, budget, seed, *, config_key=None, accepts=None, configspace=None)`` and
``arguments(config_space, budget)``, the settings that define it for ``metadata.json``. The module decides how it
honours the benchmark's hooks: Syne Tune's schedulers are wrapped in ``AcceptedOnly``, ours draw only accepted
configurations (``FreshSampler``) and compare them through ``config_key``. An entry's ``flags`` (launcher flags of its
own, such as grid search's ``--grid-points``) reach its module's ``build`` and ``arguments`` as keywords. A scheduler
that declares columns implements ``TrialBookkeeping``; the results writer writes exactly those columns. Modules are
imported only when a run builds one, so that ``--help`` answers fast.
"""
import importlib
from collections.abc import Callable, Hashable
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any, Protocol

from schedulers.budget import Budget

if TYPE_CHECKING:
    from ConfigSpace import ConfigurationSpace
    from syne_tune.optimizer.scheduler import TrialScheduler


class UnknownSchedulerError(ValueError):
    """A scheduler name that the registry does not know."""


class SchedulerModule(Protocol):
    """What a scheduler's module provides."""

    def build(self, config_space: dict[str, Any], metric: str, mode: str, budget: Budget, seed: int, *,
              config_key: Callable[[dict[str, Any]], Hashable] | None = None,
              accepts: Callable[[dict[str, Any]], bool] | None = None,
              configspace: "ConfigurationSpace | None" = None) -> "TrialScheduler":
        """The scheduler for a config space, a metric to minimise or maximise, a budget and a seed.

        ``config_key``: equal for equivalent configurations (None: none are); ``accepts``: which configurations the
        benchmark can evaluate (None: all); ``configspace``: the tuned hyperparameters as a ConfigSpace space with
        conditions, honoured by the schedulers that model the space (the others sample ``config_space`` flat).
        """

    def arguments(self, config_space: dict[str, Any], budget: Budget) -> dict[str, Any]:
        """The settings that define the scheduler, as recorded in ``metadata.json``."""


@dataclass(frozen=True)
class SchedulerEntry:
    """A registered scheduler; ``columns`` are the ``trials.csv`` columns its bookkeeping hook fills."""

    name: str
    title: str
    module: str
    columns: tuple[str, ...] = ()
    # Its own launcher flags (argparse dests), passed to the module's build and arguments as keywords; ``options``
    # holds their values for a run (``with_options``).
    flags: tuple[str, ...] = ()
    options: dict[str, Any] = field(default_factory=dict, compare=False)

    def _module(self) -> SchedulerModule:
        return importlib.import_module(self.module)

    def build(self, config_space: dict[str, Any], metric: str, mode: str, budget: Budget, seed: int, *,
              config_key: Callable[[dict[str, Any]], Hashable] | None = None,
              accepts: Callable[[dict[str, Any]], bool] | None = None,
              configspace: "ConfigurationSpace | None" = None) -> "TrialScheduler":
        """The scheduler itself (see ``SchedulerModule.build``)."""
        return self._module().build(config_space, metric, mode, budget, seed, config_key=config_key,
                                    accepts=accepts, configspace=configspace, **self.options)

    def arguments(self, config_space: dict[str, Any], budget: Budget) -> dict[str, Any]:
        """The settings that define it, for ``metadata.json``."""
        return self._module().arguments(config_space, budget, **self.options)

    def with_options(self, values: dict[str, Any]) -> "SchedulerEntry":
        """This entry with its flags' values taken from ``values`` (parsed flags; those left unset keep the module's
        defaults)."""
        options = {flag: values[flag] for flag in self.flags if values.get(flag) is not None}
        return replace(self, options=options) if options != self.options else self


SCHEDULERS: dict[str, SchedulerEntry] = {entry.name: entry for entry in (
    SchedulerEntry("random_search", "random search; every trial runs to the largest budget",
                   "schedulers.random_search"),
    SchedulerEntry("hyperband", "synchronous Hyperband (Li et al., as HpBandSter runs it): brackets of successive "
                   "halving at budgets max * eta^-k, promoted trials resumed from their checkpoints",
                   "schedulers.hyperband_sync", ("iteration", "bracket")),
    SchedulerEntry("bohb", "synchronous BOHB (Falkner et al.): hyperband with one KDE model per budget, HpBandSter's "
                   "settings, categorical bandwidth capped to stay informative", "schedulers.bohb_sync",
                   ("iteration", "bracket", "model_based")),
    SchedulerEntry("bohb_uncapped", "synchronous BOHB with HpBandSter's categorical kernel as it is (no bandwidth "
                   "cap), for comparison", "schedulers.bohb_uncapped", ("iteration", "bracket", "model_based")),
    SchedulerEntry("asha", "asynchronous successive halving in Li et al.'s brackets (Syne Tune's rules), a trial's "
                   "bracket drawn when it starts", "schedulers.asha", ("bracket",)),
    SchedulerEntry("async_bohb", "Syne Tune's asynchronous BOHB: asha with one KDE model on the last result of every "
                   "trial", "schedulers.async_bohb", ("bracket", "model_based")),
    SchedulerEntry("tpe", "Syne Tune's TPE: a KDE model of good configurations; every trial runs to the largest "
                   "budget", "schedulers.tpe"),
    SchedulerEntry("rea", "regularised evolution (population 10, sample 3), the standard NAS-Bench-201 baseline",
                   "schedulers.rea"),
    SchedulerEntry("grid_search", "grid search: every combination of a few values per hyperparameter (see the grid "
                   "flags), each run once to the largest budget", "schedulers.grid_search",
                   flags=("grid_points", "grid_order")),
)}


def get_scheduler(name: str) -> SchedulerEntry:
    """The registered scheduler called ``name``."""
    if name not in SCHEDULERS:
        raise UnknownSchedulerError(f"Unknown scheduler '{name}': choose one of {', '.join(SCHEDULERS)}.")
    return SCHEDULERS[name]
