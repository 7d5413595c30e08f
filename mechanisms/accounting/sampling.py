"""How the cohort of a round is drawn, and what that means for privacy.

The sampling scheme fixes both the neighbouring relation (what a "neighbouring dataset" is) and
the dp_accounting event that amplifies one release by sampling.
"""

from dataclasses import dataclass
from typing import Any, Literal

import dp_accounting

SamplingKind = Literal["poisson", "fixed", "round_robin"]

_NEIGHBOURING_TEXT = {
    "poisson": "add/remove one client",
    "fixed": "replace one client",
    "round_robin": "replace one client",
}


@dataclass(frozen=True)
class Sampling:
    """A cohort of `cohort` clients out of `population`, drawn once per round.

    `poisson`: each client joins independently with rate cohort/population; neighbours differ by
    adding or removing one client. `fixed`: exactly `cohort` clients without replacement; the
    population size is public and neighbours differ by replacing one client. `round_robin`: the
    next `cohort` clients of a fixed public cycle (nothing is drawn, so nothing is amplified).
    """

    kind: SamplingKind
    population: int
    cohort: int

    def __post_init__(self) -> None:
        if self.kind not in _NEIGHBOURING_TEXT:
            raise ValueError(
                f"sampling kind must be 'poisson', 'fixed' or 'round_robin', got {self.kind!r}"
            )
        for name in ("population", "cohort"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int):
                raise ValueError(f"{name} must be an integer, got {value!r}")
            if value < 1:
                raise ValueError(f"{name} must be at least 1, got {value}")
        if self.cohort > self.population:
            raise ValueError(f"cohort ({self.cohort}) cannot exceed population ({self.population})")

    @property
    def rate(self) -> float:
        return self.cohort / self.population

    @property
    def relation(self) -> dp_accounting.NeighboringRelation:
        if self.kind == "poisson":
            return dp_accounting.NeighboringRelation.ADD_OR_REMOVE_ONE
        return dp_accounting.NeighboringRelation.REPLACE_ONE

    @property
    def neighbouring(self) -> str:
        return _NEIGHBOURING_TEXT[self.kind]

    def describe(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "population": self.population,
            "cohort": self.cohort,
            "rate": self.rate,
        }

    def round_event(self, event: dp_accounting.DpEvent) -> dp_accounting.DpEvent:
        """The privacy event of one round: `event` applied to a freshly sampled cohort.

        `event` must be stated for this sampling's `relation` (e.g. a Gaussian sum release is
        GaussianDpEvent(z) for add/remove but GaussianDpEvent(z / 2) for replace-one).
        """
        if self.kind == "poisson":
            return dp_accounting.PoissonSampledDpEvent(self.rate, event)
        if self.kind == "round_robin":  # every round charged as if the client took part
            return event
        return dp_accounting.SampledWithoutReplacementDpEvent(self.population, self.cohort, event)
