"""Build a scheduler from its name: random search, Hyperband or BOHB, all on Syne Tune 0.16."""
from typing import Any

from syne_tune.optimizer.baselines import RandomSearch
from syne_tune.optimizer.scheduler import TrialScheduler

from schedulers.bohb import BOHB
from schedulers.hyperband import Hyperband, num_brackets

SCHEDULERS = ("random_search", "hyperband", "bohb")


class UnknownSchedulerError(ValueError):
    """A scheduler name that the factory does not know."""


def make_scheduler(name: str, config_space: dict[str, Any], metric: str, mode: str, resource_attr: str,
                   min_resource: int, max_resource: int, eta: float = 3, seed: int = 0) -> TrialScheduler:
    """The scheduler ``name`` (one of ``SCHEDULERS``) for a config space, metric and budget range."""
    do_minimize = mode == "min"
    if name == "random_search":
        return RandomSearch(config_space, metrics=[metric], do_minimize=do_minimize, random_seed=seed)
    if name not in SCHEDULERS:
        raise UnknownSchedulerError(f"Unknown scheduler '{name}': choose one of {', '.join(SCHEDULERS)}.")
    multi_fidelity = dict(
        config_space=config_space, metric=metric, do_minimize=do_minimize, time_attr=resource_attr,
        max_t=max_resource, grace_period=min_resource, reduction_factor=eta,
        brackets=num_brackets(min_resource, max_resource, eta), random_seed=seed,
    )
    if name == "hyperband":
        return Hyperband(searcher="random_search", **multi_fidelity)
    return BOHB(**multi_fidelity)


def scheduler_arguments(name: str, min_resource: int, max_resource: int, eta: float) -> dict[str, Any]:
    """The arguments that define a scheduler's behaviour, for ``metadata.json``."""
    if name == "random_search":
        return {}
    return {"grace_period": min_resource, "max_t": max_resource, "reduction_factor": eta,
            "brackets": num_brackets(min_resource, max_resource, eta)}
