"""Synchronous BOHB with HpBandSter's categorical kernel as it is (no bandwidth cap), for comparison with ``bohb``.

Late in a run the normal reference rule gives most categorical hyperparameters a bandwidth above (c - 1) / c,
where the Aitchison-Aitken kernel weighs a matching value less than a non-matching one (../shared/FINDINGS.md).
"""
from collections.abc import Callable, Hashable
from typing import Any

from schedulers import bohb_sync
from schedulers.bohb_sync import SynchronousBOHB
from schedulers.budget import Budget


def arguments(config_space: dict[str, Any], budget: Budget) -> dict[str, Any]:
    """BOHB's settings, without the categorical cap."""
    return bohb_sync.arguments(config_space, budget, categorical_cap=None)


def build(config_space: dict[str, Any], metric: str, mode: str, budget: Budget, seed: int, *,
          config_key: Callable[[dict[str, Any]], Hashable] | None = None,
          accepts: Callable[[dict[str, Any]], bool] | None = None, configspace: Any = None) -> SynchronousBOHB:
    """Synchronous BOHB with HpBandSter's uncapped categorical bandwidths."""
    return bohb_sync.build(config_space, metric, mode, budget, seed, config_key=config_key, accepts=accepts,
                           configspace=configspace, categorical_cap=None)
