"""`ClientSampler`: which clients take part in each round, resumable from a checkpoint."""

from __future__ import annotations

from typing import Any

import numpy as np

from tff_pipelines.data.errors import DataError
from tff_pipelines.data.seeding import seed_sequence

SAMPLING_KINDS = ("fixed", "poisson", "round_robin")


class ClientSampler:
    """Draws one cohort of client indices per call to `sample`.

    fixed: exactly `clients_per_round` clients, uniformly without replacement.
    poisson: each client independently with rate q = clients_per_round / population, which is
    what Poisson-subsampled DP accounting assumes. Drawn as m ~ Binomial(population, q) and then
    a uniform m-subset: the same distribution, in O(m) rather than O(population) work.
    round_robin: the next `clients_per_round` clients of a fixed cycle 0, 1, ..., population - 1,
    0, 1, ... (Distributed Selective SGD's exchange order; deterministic, nothing is drawn).
    The generator is seeded from (seed, "sampling") alone, so data choices never shift cohorts.
    """

    def __init__(self, population: int, clients_per_round: int, kind: str, seed: int) -> None:
        if kind not in SAMPLING_KINDS:
            raise DataError(f"sampling kind must be one of {SAMPLING_KINDS}, got {kind!r}")
        if isinstance(population, bool) or population < 1:
            raise DataError(f"population must be a positive integer, got {population!r}")
        if not 1 <= clients_per_round <= population:
            raise DataError(
                f"clients_per_round must be in [1, {population}] (the population), "
                f"got {clients_per_round!r}"
            )
        self.population = int(population)
        self.clients_per_round = int(clients_per_round)
        self.kind = kind
        self.seed = int(seed)
        self.rounds_sampled = 0
        self._rng = np.random.Generator(np.random.PCG64(seed_sequence(seed, "sampling")))

    @property
    def rate(self) -> float:
        """Probability that a given client takes part in a given round."""
        return self.clients_per_round / self.population

    def sample(self) -> np.ndarray:
        """Sorted int64 client indices for the next round (poisson cohorts may be empty)."""
        if self.kind == "round_robin":
            start = self.rounds_sampled * self.clients_per_round
            cohort = (start + np.arange(self.clients_per_round)) % self.population
            self.rounds_sampled += 1
            return np.sort(cohort).astype(np.int64)
        if self.kind == "fixed":
            size = self.clients_per_round
        else:
            size = int(self._rng.binomial(self.population, self.rate))
        cohort = self._rng.choice(self.population, size=size, replace=False)
        self.rounds_sampled += 1
        return np.sort(cohort).astype(np.int64)

    def get_state(self) -> dict[str, Any]:
        """JSON-serialisable configuration and generator state (PCG64 state is plain ints)."""
        return {
            "population": self.population,
            "clients_per_round": self.clients_per_round,
            "kind": self.kind,
            "seed": self.seed,
            "rounds_sampled": self.rounds_sampled,
            "rng": self._rng.bit_generator.state,
        }

    def set_state(self, state: dict[str, Any]) -> None:
        """Resume from `get_state()` output; refuses a state saved with another configuration."""
        mine = {"population": self.population, "clients_per_round": self.clients_per_round}
        mine |= {"kind": self.kind, "seed": self.seed}
        theirs = {key: state.get(key) for key in mine}
        if theirs != mine:
            raise DataError(f"sampler state was saved for {theirs}, this sampler is {mine}")
        self._rng.bit_generator.state = state["rng"]
        self.rounds_sampled = int(state["rounds_sampled"])
