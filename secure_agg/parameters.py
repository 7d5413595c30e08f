"""SecAgg+ parameters for an expected cohort: the neighbour degree k and the threshold t.

SecAgg+ (Bell et al. 2020) pairs each client with k = O(log n) others instead of all n - 1; the
threshold must exceed k/2 so that the server, whatever it claims about dropouts, never collects
both of one client's secrets (its self-mask seed and its mask key), and be at most k so that the
secrets can be rebuilt at all.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any


def auto_neighbours(cohort: int) -> int | None:
    """The smallest even k >= 2·log2(cohort), or None (everyone pairs) when that is not below
    cohort - 1. Bell et al. derive the constant from the tolerated corruption and dropout; this
    heuristic does not, so a deployment should take k from their analysis."""
    if cohort < 2:
        return None
    k = 2 * math.ceil(math.log2(cohort))
    return None if k >= cohort - 1 else k


def auto_threshold(neighbours: int) -> int:
    """k//2 + 1: the smallest safe threshold, which tolerates the most dropouts."""
    return neighbours // 2 + 1


def plan(cohort: int, neighbours: int | str, threshold: int | str) -> tuple[int | None, int]:
    """(k, t) for a spec's settings ('all', 'auto' or numbers) at the expected cohort; k None means
    everyone pairs, and t then counts out of cohort - 1."""
    k = (
        auto_neighbours(cohort)
        if neighbours == "auto"
        else None
        if neighbours == "all"
        else neighbours
    )
    degree = cohort - 1 if k is None else k
    t = auto_threshold(degree) if threshold == "auto" else threshold
    return k, t


def threshold_problem(degree: int, threshold: int) -> str | None:
    """Why t is unsafe or unusable with `degree` neighbours, or None."""
    if threshold <= degree / 2:
        return (
            f"must exceed half the neighbours ({degree}/2): with t <= k/2 the server can collect "
            "both secrets of one client and unmask its update"
        )
    if threshold > degree:
        return f"cannot exceed the number of neighbours ({degree}): no secret could be rebuilt"
    return None


@dataclass(frozen=True)
class SecAggSettings:
    """A run's SecAgg+ parameters at the expected cohort (k None: everyone pairs)."""

    neighbours: int | None
    threshold: int
    dropout_rate: float = 0.0
    max_dropout: float = 0.0

    def describe(self) -> dict[str, Any]:
        return {
            "protocol": "SecAgg+ (Bell et al. 2020) on the masking of Bonawitz et al. 2017",
            "neighbours": "all" if self.neighbours is None else self.neighbours,
            "threshold": self.threshold,
            "simulated_dropout_rate": self.dropout_rate,
            "max_dropout": self.max_dropout,
        }
