"""Draw configurations that the benchmark can evaluate and that a run has not started yet.

Random draws follow the space's prior. When many draws in a row find nothing new (a finite space nearly used up),
a finite space is listed once and later draws pick uniformly among its configurations not started yet, so
that "exhausted" is a fact, not a guess; an infinite space (a float hyperparameter) never gets there.
"""
from collections.abc import Callable, Hashable
from typing import Any

import numpy as np

from schedulers.search_space import SearchSpace
from schedulers.seen import SeenConfigurations

BATCH = 16
# Consecutive fruitless random draws before a finite space is listed, and before an infinite one is given up on.
DRAWS_BEFORE_LISTING = 256
MAX_DRAWS = 10_000


class FreshSampler:
    """Configurations (with their keys) that ``accepts`` allows and that ``seen`` has not seen started."""

    def __init__(self, space: SearchSpace, seen: SeenConfigurations, rng: np.random.Generator,
                 accepts: Callable[[dict[str, Any]], bool] | None = None):
        self.space, self.seen, self.rng, self.accepts = space, seen, rng, accepts
        # ConfigSpace samples from a RandomState; this one is seeded from the scheduler's generator.
        self.random_state = np.random.RandomState(int(rng.integers(2 ** 31 - 1)))
        self._pool: list[tuple[dict[str, Any], Hashable]] | None = None
        self._listed = False
        self._finite = space.size() is not None
        self._decoded: dict[bytes, tuple[dict[str, Any], Hashable] | None] = {}
        self.exhausted_reason = ""

    def check(self, vector: np.ndarray) -> tuple[dict[str, Any], Hashable] | None:
        """The configuration of ``vector`` and its key if it may start, else None (do not change the dict)."""
        if self._finite:  # the same vectors come up again and again: decode each once
            token = vector.tobytes()
            if token not in self._decoded:
                self._decoded[token] = self._decode(vector)
            found = self._decoded[token]
        else:
            found = self._decode(vector)
        return found if found is not None and self.seen.is_new(found[1]) else None

    def _decode(self, vector: np.ndarray) -> tuple[dict[str, Any], Hashable] | None:
        """The configuration of ``vector`` and its key, or None if the benchmark cannot evaluate it."""
        config = self.space.decode(vector)
        if self.accepts is not None and not self.accepts(config):
            return None
        return config, self.seen.key(config)

    def random(self) -> tuple[dict[str, Any], Hashable] | None:
        """A random configuration not started yet; None (with ``exhausted_reason``) when there is none."""
        if not self._listed:
            limit = DRAWS_BEFORE_LISTING if self._finite else MAX_DRAWS
            for _ in range(0, limit, BATCH):
                for vector in self.space.sample(BATCH, self.random_state):
                    found = self.check(vector)
                    if found is not None:
                        return found
            self._listed = True
            self._pool = self._list()
            if self._pool is None:
                self.exhausted_reason = (f"no configuration that the benchmark accepts and that has not run turned up "
                                         f"in {limit} random draws")
                return None
        if self._pool is None:
            return None
        fresh = [entry for entry in self._pool if self.seen.is_new(entry[1])]
        if not fresh:
            self.exhausted_reason = (f"all {len(self._pool)} configurations that the benchmark accepts "
                                     f"({len({k for _, k in self._pool})} distinct) have run or are running")
            return None
        return fresh[int(self.rng.integers(len(fresh)))]

    def _list(self) -> list[tuple[dict[str, Any], Hashable]] | None:
        """Every configuration of a finite space that the benchmark accepts, with its key; None if infinite."""
        vectors = self.space.enumerate()
        if vectors is None:
            return None
        return [found for found in map(self._decode, vectors) if found is not None]
