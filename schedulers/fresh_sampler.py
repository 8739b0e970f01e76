"""Draw configurations that the benchmark can evaluate and that a run has not started yet.

Random draws follow the space's prior. When many draws in a row find nothing new (a finite space nearly used up),
a finite space is listed once, in a random order, and later draws walk that order, skipping what has started: each is
uniform among the configurations not started yet, at a constant cost per draw, and "exhausted" is a fact, not a
guess; an infinite space (a float hyperparameter) never gets there.
"""
from collections.abc import Callable, Hashable
from typing import Any

import numpy as np

from schedulers.search_space import SearchSpace
from schedulers.seen import SeenConfigurations

BATCH = 64
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
        self._pool: list[tuple[dict[str, Any], Hashable]] | None = None  # shuffled
        self._cursor = 0  # the pool's entries before it have been handed out or had started
        self._drawn, self._next_drawn = np.empty((0, space.dim)), 0
        self._listed = False
        self._finite = space.size() is not None
        self._decoded: dict[bytes, tuple[dict[str, Any], Hashable] | None] = {}
        self.exhausted_reason = ""

    def check(self, vector: np.ndarray) -> tuple[dict[str, Any], Hashable] | None:
        """The configuration of ``vector`` and its key if it may start, else None (do not change the dict)."""
        found = self._decode_once(vector) if self._finite else self._decode(vector)
        return found if found is not None and self.seen.is_new(found[1]) else None

    def _decode_once(self, vector: np.ndarray) -> tuple[dict[str, Any], Hashable] | None:
        """``_decode`` of a finite space's vector, remembered: the same vectors come up again and again."""
        token = vector.tobytes()
        if token not in self._decoded:
            self._decoded[token] = self._decode(vector)
        return self._decoded[token]

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
            for _ in range(limit):
                found = self.check(self._draw())
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
        # Entries are handed out once (every caller starts what it gets), so walking the shuffled pool and
        # skipping what started is a uniform pick among the configurations not started yet.
        while self._cursor < len(self._pool):
            entry = self._pool[self._cursor]
            self._cursor += 1
            if self.seen.is_new(entry[1]):
                return entry
        self.exhausted_reason = (f"all {len(self._pool)} configurations that the benchmark accepts "
                                 f"({len({k for _, k in self._pool})} distinct) have run or are running")
        return None

    def _draw(self) -> np.ndarray:
        """The next vector drawn from the space's prior (drawn ``BATCH`` at a time: one draw is as dear as many)."""
        if self._next_drawn >= len(self._drawn):
            self._drawn, self._next_drawn = self.space.sample(BATCH, self.random_state), 0
        self._next_drawn += 1
        return self._drawn[self._next_drawn - 1]

    def _list(self) -> list[tuple[dict[str, Any], Hashable]] | None:
        """Every configuration of a finite space that the benchmark accepts, with its key, in a random order; None if
        the space is infinite."""
        vectors = self.space.enumerate()
        if vectors is None:
            return None
        pool = [found for found in map(self._decode_once, vectors) if found is not None]
        return [pool[i] for i in self.rng.permutation(len(pool))]
