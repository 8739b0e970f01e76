"""Which configurations a run has started, so that none is trained twice.

Configurations are compared by a key: the benchmark's ``config_key`` where it has one (two NAS-Bench-201 cells of
one official class are the same network), else the configuration's values. A configuration starts at most one trial
per run; promotions continue that trial from its checkpoint. So no (configuration, budget) pair is evaluated twice,
and no epoch is trained twice either: a second trial of a configuration, even at a larger budget than the first
reached, would train the first one's epochs again from scratch (starting it from the first trial's checkpoint is not
something every backend supports).
"""
from collections.abc import Callable, Hashable
from typing import Any


class SeenConfigurations:
    """The keys of the configurations started so far."""

    def __init__(self, key: Callable[[dict[str, Any]], Hashable]):
        self.key = key
        self._started: set[Hashable] = set()

    def is_new(self, key: Hashable) -> bool:
        """Whether no trial of ``key`` has started."""
        return key not in self._started

    def start(self, key: Hashable):
        """A trial of ``key`` starts."""
        self._started.add(key)

    def __len__(self) -> int:
        return len(self._started)
